// Package embed is the orchestration every host shares: what an input is
// (bytes, a file, a URL, raw pixels, preprocessed pixels), the limits, how
// an input becomes a model row (decode and preprocess), batching up to
// MaxBatch, per-input typed errors and cancellation, as a pipeline over
// goroutines in which the next inputs are prepared (in parallel up to
// Workers) while the current batch runs through the model.
//
// It is plain Go: the browser module (wasm/main, over syscall/js) and the
// native engine (host) supply what differs (how URLs are fetched and files
// opened, the forward pass) and adapt the results.
package embed

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/imgembed/imgembed/wasm/api"
)

// Tower turns inputs of type In into rows of R and runs batches of rows
// through a model. Images (In = Input, R = float32) are one tower; a text
// tower (token ids) fits the same pipeline.
type Tower[In, R any] struct {
	// RowLen is the length of one input's row (3*S*S for images).
	RowLen int
	// MaxBatch bounds the rows of one Forward call (default
	// api.DefaultMaxBatch).
	MaxBatch int
	// Workers is how many inputs of one call are prepared at once
	// (default 1).
	Workers int
	// Window is how many inputs ahead of the one being prepared Ahead is
	// called for (default max(MaxBatch, 4)).
	Window int
	// Ahead, if set, is called once per input, in order, when the input
	// enters the window; it may start slow work (a download) and return
	// the input that Prepare will see. It must not block.
	Ahead func(ctx context.Context, in In) In
	// Prepare fills row from in. It runs on a worker goroutine.
	Prepare func(ctx context.Context, in In, row []R) error
	// Forward runs n rows (n*RowLen values) through the model and returns
	// n outputs. Calls sharing a Batcher are serialised by it.
	Forward func(ctx context.Context, rows []R, n int) ([][]float32, error)
	// Check, if set, vets each output row (non-finite values, zero norm);
	// an error fails that input alone, with InvalidModel unless it is an
	// *api.Error.
	Check func(out []float32) error
	// Slots, if set, bounds the prepares running at once across every
	// call sharing it (a receive takes a slot, a send gives it back; fill
	// it before use).
	Slots chan struct{}
	// Batcher, if set, serialises Forward across the calls sharing it and
	// merges their waiting batches into one pass.
	Batcher *Batcher[R]
}

// Result is one input's outcome: an embedding, or an *api.Error.
type Result struct {
	Embedding []float32
	Err       error
}

// Run embeds inputs and returns their results in input order.
func (t *Tower[In, R]) Run(ctx context.Context, inputs []In) []Result {
	out := make([]Result, len(inputs))
	t.Each(ctx, inputs, func(i int, r Result) { out[i] = r })
	return out
}

type prepared[R any] struct {
	row []R // nil when err is set
	err error
}

// Each is Run reporting each result as soon as it is known, in input order,
// on the calling goroutine. When ctx ends, the inputs not yet embedded
// fail with Aborted. Each returns once every goroutine it started has
// ended, except downloads started by Ahead (they end with ctx).
func (t *Tower[In, R]) Each(ctx context.Context, inputs []In, emit func(i int, r Result)) {
	n := len(inputs)
	if n == 0 {
		return
	}
	maxBatch := t.MaxBatch
	if maxBatch <= 0 {
		maxBatch = api.DefaultMaxBatch
	}
	workers := max(t.Workers, 1)
	window := t.Window
	if window <= 0 {
		window = max(maxBatch, 4)
	}
	// Rows in flight: a whole next batch can be prepared while the
	// current one runs, plus one per worker. This bounds the memory of a
	// call whatever its number of inputs.
	// Rows are made as needed, up to the pool's capacity, and reused: a
	// call with one input makes one (a forward call under wazero paid
	// ~5 MB of allocation and zeroing for rows it never used).
	pool := make(chan []R, maxBatch+workers)
	made := 0 // rows made (dispatcher goroutine only)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Prepared rows arrive in any order: a batch is the first MaxBatch
	// rows ready, so one slow input (a 12 MP photo, a download) does not
	// hold back the rows behind it. credits bounds how far the inputs
	// taken up run ahead of the oldest one not yet reported (whose
	// results wait in done).
	type ready struct {
		i int
		p prepared[R]
	}
	readies := make(chan ready, n)
	credits := make(chan struct{}, 2*maxBatch+workers)
	for range cap(credits) {
		credits <- struct{}{}
	}
	var inflight atomic.Int64 // inputs taken up and not yet received from readies
	type job struct {
		i   int
		in  In
		row []R
	}
	jobs := make(chan job)
	var wg sync.WaitGroup

	// Dispatcher: hands inputs out in order, one row each; calls Ahead a
	// window in front.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		ahead := 0
		ins := make([]In, n)
		copy(ins, inputs)
		for i := 0; i < n; i++ {
			for ; ahead < n && ahead < i+window && t.Ahead != nil && ctx.Err() == nil; ahead++ {
				ins[ahead] = t.Ahead(ctx, ins[ahead])
			}
			abort := func() {
				for ; i < n; i++ {
					inflight.Add(1)
					readies <- ready{i, prepared[R]{err: aborted(ctx)}}
				}
			}
			select {
			case <-credits:
			case <-ctx.Done():
				abort()
				return
			}
			inflight.Add(1)
			var row []R
			select {
			case row = <-pool:
			default:
				if made < cap(pool) {
					row = make([]R, t.RowLen)
					made++
					break
				}
				select {
				case row = <-pool:
				case <-ctx.Done():
				}
			}
			if row == nil {
				inflight.Add(-1) // counted again by abort
				abort()
				return
			}
			select {
			case jobs <- job{i, ins[i], row}:
			case <-ctx.Done():
				pool <- row
				inflight.Add(-1)
				abort()
				return
			}
			ins[i] = *new(In) // drop our reference (a fetched body)
		}
	}()

	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				readies <- ready{j.i, t.prepare(ctx, j.in, j.row)}
			}
		}()
	}

	// The forward loop, on the caller's goroutine: collects prepared rows
	// as they come and runs a batch whenever MaxBatch are ready or the
	// inputs end. Results wait in done until every earlier one is out.
	done := map[int]Result{}
	next := 0
	release := func() {
		for ; ; next++ {
			r, ok := done[next]
			if !ok {
				return
			}
			delete(done, next)
			emit(next, r)
			select {
			case credits <- struct{}{}:
			default: // the last inputs' credits: no room is needed
			}
		}
	}
	batch := make([]R, 0, min(n, maxBatch)*t.RowLen)
	var idx []int
	run := func() {
		embs, err := t.forward(ctx, batch, len(idx))
		for k, j := range idx {
			if err != nil {
				done[j] = Result{Err: err}
				continue
			}
			if t.Check != nil {
				if err := t.Check(embs[k]); err != nil {
					done[j] = Result{Err: api.As(err, api.InvalidModel)}
					continue
				}
			}
			done[j] = Result{Embedding: embs[k]}
		}
		batch, idx = batch[:0], idx[:0]
	}
	for got := 0; ; {
		// A short batch runs when the inputs end, or when nothing more can
		// arrive before it does: every credit is out and nothing is being
		// prepared, so the oldest input not reported is in it.
		stuck := len(credits) == 0 && inflight.Load() == 0
		if len(idx) > 0 && (len(idx) == maxBatch || got == n || stuck) {
			run()
			release()
			continue
		}
		if got == n {
			break
		}
		rd := <-readies
		got++
		inflight.Add(-1)
		i, p := rd.i, rd.p
		if p.row != nil {
			if p.err == nil {
				batch = append(batch, p.row...)
				idx = append(idx, i)
			}
			pool <- p.row
		}
		if p.err != nil {
			done[i] = Result{Err: p.err}
		}
		release()
	}
	cancel()
	wg.Wait()
}

// prepare runs Prepare for one input, within the shared slots, turning a
// panic (hostile data reaching a decoder bug) into that input's error.
func (t *Tower[In, R]) prepare(ctx context.Context, in In, row []R) (p prepared[R]) {
	p.row = row
	if ctx.Err() != nil {
		p.err = aborted(ctx)
		return p
	}
	if t.Slots != nil {
		select {
		case <-t.Slots:
			defer func() { t.Slots <- struct{}{} }()
		case <-ctx.Done():
			p.err = aborted(ctx)
			return p
		}
	}
	defer func() {
		if r := recover(); r != nil {
			p.err = api.New(api.InvalidInput, nil, "internal error preparing the input: %v", r)
		}
	}()
	if err := t.Prepare(ctx, in, row); err != nil {
		p.err = api.As(err, api.InvalidInput)
	}
	return p
}

// forward runs one batch (through the Batcher when there is one); a
// cancelled call's batch fails with Aborted instead of running.
func (t *Tower[In, R]) forward(ctx context.Context, rows []R, n int) ([][]float32, error) {
	if ctx.Err() != nil {
		return nil, aborted(ctx)
	}
	fwd := func(rows []R, n int) ([][]float32, error) { return t.Forward(ctx, rows, n) }
	var out [][]float32
	var err error
	if t.Batcher != nil {
		out, err = t.Batcher.Do(ctx, rows, n, fwd)
	} else {
		out, err = checked(fwd, rows, n)
	}
	if err != nil {
		return nil, api.As(err, api.InvalidInput)
	}
	return out, nil
}

func aborted(ctx context.Context) *api.Error {
	cause := context.Cause(ctx)
	if cause == nil {
		cause = context.Canceled
	}
	return &api.Error{Code: api.Aborted, Message: fmt.Sprintf("aborted: %v", cause), Err: cause}
}
