package embed

import (
	"context"
	"slices"
	"sync"

	"github.com/imgembed/imgembed/wasm/api"
)

// Batcher runs the forward passes of every call sharing it one at a time
// and merges the batches that wait while a pass runs into one pass of up to
// Max rows. Concurrent small calls (a server's one-image requests) then
// share a batch, which the kernels run at a lower cost per row, instead of
// queueing one single-row pass each.
//
// It is also a sync.Locker, for passes that are not merged (another tower
// on the same kernels): Lock waits for the turn, Unlock gives it back.
type Batcher[R any] struct {
	// Max bounds the rows of a merged pass; a single batch larger than
	// Max still runs whole.
	Max int
	// RowLen is the length of one row.
	RowLen int

	turn  chan struct{} // holding its one slot is the right to run a pass
	mu    sync.Mutex    // guards queue and each pending.taken
	queue []*pending[R]
}

// pending is one call's batch waiting for a pass.
type pending[R any] struct {
	rows  []R
	n     int
	out   [][]float32
	err   error
	taken bool          // a pass has taken it (under mu)
	done  chan struct{} // closed when out and err are set
}

// NewBatcher returns a Batcher merging up to max rows of rowLen values.
func NewBatcher[R any](max, rowLen int) *Batcher[R] {
	return &Batcher[R]{Max: max, RowLen: rowLen, turn: make(chan struct{}, 1)}
}

// Lock waits for the turn to run a pass.
func (b *Batcher[R]) Lock() { b.turn <- struct{}{} }

// Unlock gives the turn back.
func (b *Batcher[R]) Unlock() { <-b.turn }

// Do runs rows (n rows of RowLen) through forward, possibly merged with
// other calls' waiting rows into one pass, and returns this call's n
// outputs. forward runs one pass at a time, on the goroutine of whichever
// call got the turn. When ctx ends before a pass took the rows, Do fails
// with Aborted at once; once taken, it waits for that pass to end (the pass
// is reading the rows).
func (b *Batcher[R]) Do(ctx context.Context, rows []R, n int, forward func(rows []R, n int) ([][]float32, error)) ([][]float32, error) {
	p := &pending[R]{rows: rows, n: n, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, p)
	b.mu.Unlock()
	select {
	case <-p.done:
		return p.out, p.err
	case b.turn <- struct{}{}:
	case <-ctx.Done():
		b.mu.Lock()
		taken := p.taken
		if !taken {
			b.queue = slices.DeleteFunc(b.queue, func(q *pending[R]) bool { return q == p })
		}
		b.mu.Unlock()
		if !taken {
			return nil, aborted(ctx)
		}
		<-p.done
		return p.out, p.err
	}
	defer b.Unlock()
	b.mu.Lock()
	if p.taken { // an earlier pass ran our rows while we waited for the turn
		b.mu.Unlock()
		<-p.done
		return p.out, p.err
	}
	take := []*pending[R]{p}
	total := n
	b.queue = slices.DeleteFunc(b.queue, func(q *pending[R]) bool { return q == p })
	b.queue = slices.DeleteFunc(b.queue, func(q *pending[R]) bool {
		if total+q.n > b.Max {
			return false
		}
		take = append(take, q)
		total += q.n
		return true
	})
	for _, q := range take {
		q.taken = true
	}
	b.mu.Unlock()

	all := rows[:n*b.RowLen]
	if len(take) > 1 {
		all = make([]R, 0, total*b.RowLen)
		for _, q := range take {
			all = append(all, q.rows[:q.n*b.RowLen]...)
		}
	}
	out, err := checked(forward, all, total)
	off := 0
	for _, q := range take {
		if err != nil {
			q.err = err
		} else {
			q.out = out[off : off+q.n : off+q.n]
		}
		off += q.n
		close(q.done)
	}
	return p.out, p.err
}

// checked runs forward on n rows, turning a panic into an error (the
// other calls in a merged pass must still be answered) and checking that
// it returned n outputs.
func checked[R any](forward func(rows []R, n int) ([][]float32, error), rows []R, n int) (out [][]float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, api.New(api.InvalidModel, nil, "forward: internal error: %v", r)
		}
	}()
	out, err = forward(rows, n)
	if err == nil && len(out) != n {
		return nil, api.New(api.InvalidModel, nil, "forward returned %d results for %d inputs", len(out), n)
	}
	return out, err
}
