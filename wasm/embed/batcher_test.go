package embed

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/imgembed/imgembed/wasm/api"
)

// TestBatcherMergesConcurrentCalls: 16 one-input calls at once share
// passes (some pass runs more than one row), every call gets its own
// output, no pass exceeds Max, and a call cancelled while queued is not run.
func TestBatcherMergesConcurrentCalls(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	f := &fake{}
	b := NewBatcher[float32](8, 2)
	gate := make(chan struct{})
	var first sync.Once
	tower := func() *Tower[int, float32] {
		tw := f.tower(8, 1)
		fwd := tw.Forward
		tw.Forward = func(ctx context.Context, rows []float32, n int) ([][]float32, error) {
			first.Do(func() { <-gate }) // hold the first pass so the others queue
			time.Sleep(2 * time.Millisecond)
			return fwd(ctx, rows, n)
		}
		tw.Batcher = b
		return tw
	}
	const callers = 16
	var wg sync.WaitGroup
	results := make([][]Result, callers)
	cancelled, cancel := context.WithCancel(context.Background())
	call := func(c int, ctx context.Context) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[c] = tower().Run(ctx, []int{c + 1})
		}()
	}
	queued := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			b.mu.Lock()
			q := len(b.queue)
			b.mu.Unlock()
			if q >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d calls queued, want %d", q, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// One call takes the turn and is held in its pass; the others queue
	// behind it; the last one is cancelled while it waits.
	for c := range callers - 1 {
		call(c, context.Background())
	}
	queued(callers - 2)
	call(callers-1, cancelled)
	queued(callers - 1)
	cancel()
	time.Sleep(10 * time.Millisecond)
	close(gate)
	wg.Wait()

	rows, merged := 0, false
	for _, n := range f.batches {
		if n > 8 {
			t.Errorf("a pass ran %d rows, Max is 8", n)
		}
		rows += n
		merged = merged || n > 1
	}
	if !merged {
		t.Errorf("no pass merged calls: batches %v", f.batches)
	}
	if rows != callers-1 {
		t.Errorf("passes ran %d rows for %d live calls (the cancelled one must not run): %v", rows, callers-1, f.batches)
	}
	for c, r := range results {
		if c == callers-1 {
			var ae *api.Error
			if !errors.As(r[0].Err, &ae) || ae.Code != api.Aborted {
				t.Errorf("cancelled call: %+v, want Aborted", r[0])
			}
			continue
		}
		if r[0].Err != nil || len(r[0].Embedding) != 2 || r[0].Embedding[0] != float32(c+1) || r[0].Embedding[1] != float32(2*(c+1)) {
			t.Errorf("call %d got %+v, want [%d %d]", c, r[0], c+1, 2*(c+1))
		}
	}
	waitGoroutines(t, goroutines)
}

// TestBatcherPanicAnswersEveryCall: a pass that panics fails every call it
// merged, and the next pass still runs.
func TestBatcherPanicAnswersEveryCall(t *testing.T) {
	b := NewBatcher[float32](4, 1)
	b.Lock() // hold the turn so that three calls queue
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = b.Do(context.Background(), []float32{float32(i)}, 1, func([]float32, int) ([][]float32, error) { panic("boom") })
		}()
	}
	for {
		b.mu.Lock()
		q := len(b.queue)
		b.mu.Unlock()
		if q == 3 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.Unlock()
	wg.Wait()
	for i, err := range errs {
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.InvalidModel {
			t.Errorf("call %d: %v, want InvalidModel", i, err)
		}
	}
	out, err := b.Do(context.Background(), []float32{7}, 1, func(rows []float32, n int) ([][]float32, error) { return [][]float32{rows}, nil })
	if err != nil || out[0][0] != 7 {
		t.Errorf("after a panic: %v, %v", out, err)
	}
}
