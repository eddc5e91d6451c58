package embed

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgembed/imgembed/wasm/api"
)

// fake is a tower over ints: input v < 0 fails to prepare, the model
// returns [v, batchSize] per row, and records its batch sizes.
type fake struct {
	mu      sync.Mutex
	batches []int
	inPrep  atomic.Int32
	maxPrep atomic.Int32
	delay   time.Duration
}

func (f *fake) tower(maxBatch, workers int) *Tower[int, float32] {
	return &Tower[int, float32]{
		RowLen:   2,
		MaxBatch: maxBatch,
		Workers:  workers,
		Prepare: func(ctx context.Context, v int, row []float32) error {
			c := f.inPrep.Add(1)
			defer f.inPrep.Add(-1)
			for {
				m := f.maxPrep.Load()
				if c <= m || f.maxPrep.CompareAndSwap(m, c) {
					break
				}
			}
			time.Sleep(f.delay)
			if v < 0 {
				return api.New(api.CorruptImage, nil, "bad %d", v)
			}
			row[0], row[1] = float32(v), float32(v)*2
			return nil
		},
		Forward: func(ctx context.Context, rows []float32, n int) ([][]float32, error) {
			f.mu.Lock()
			f.batches = append(f.batches, n)
			f.mu.Unlock()
			if len(rows) != 2*n {
				return nil, fmt.Errorf("rows %d for n %d", len(rows), n)
			}
			out := make([][]float32, n)
			for i := range out {
				out[i] = []float32{rows[2*i], rows[2*i+1]}
			}
			return out, nil
		},
	}
}

func check(t *testing.T, inputs []int, res []Result) {
	t.Helper()
	for i, v := range inputs {
		r := res[i]
		if v < 0 {
			if !errors.Is(r.Err, api.ErrCorruptImage) || r.Embedding != nil {
				t.Errorf("input %d (%d): %v, want CorruptImage", i, v, r)
			}
			continue
		}
		if r.Err != nil || len(r.Embedding) != 2 || r.Embedding[0] != float32(v) || r.Embedding[1] != float32(2*v) {
			t.Errorf("input %d (%d): %+v", i, v, r)
		}
	}
}

// eachInOrder runs Each, checks every result, and that they came in input
// order.
func eachInOrder(t *testing.T, tw *Tower[int, float32], inputs []int) {
	t.Helper()
	var order []int
	res := make([]Result, len(inputs))
	tw.Each(context.Background(), inputs, func(i int, r Result) {
		order = append(order, i)
		res[i] = r
	})
	check(t, inputs, res)
	for i, v := range order {
		if v != i {
			t.Fatalf("emit order %v", order)
		}
	}
}

func TestOrderBatchesErrors(t *testing.T) {
	f := &fake{delay: time.Millisecond}
	tw := f.tower(3, 4)
	inputs := []int{1, -1, 2, 3, -2, 4, 5, 6, 7, -3}
	eachInOrder(t, tw, inputs)
	// 7 good inputs in batches of at most 3 (full batches while inputs last).
	total := 0
	for _, b := range f.batches {
		if b > 3 || b < 1 {
			t.Errorf("batch of %d", b)
		}
		total += b
	}
	if total != 7 || len(f.batches) != 3 {
		t.Errorf("batches %v, want 3 batches of 7 rows", f.batches)
	}
	if m := f.maxPrep.Load(); m < 2 || m > 4 {
		t.Errorf("at most %d prepares at once, want 2..4 (workers 4)", m)
	}
}

func TestSlotsBoundPrepares(t *testing.T) {
	f := &fake{delay: 2 * time.Millisecond}
	slots := make(chan struct{}, 2)
	slots <- struct{}{}
	slots <- struct{}{}
	b := NewBatcher[float32](2, 2)
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tw := f.tower(2, 4)
			tw.Slots, tw.Batcher = slots, b
			in := []int{1, 2, 3, 4, 5, 6}
			check(t, in, tw.Run(context.Background(), in))
		}()
	}
	wg.Wait()
	if m := f.maxPrep.Load(); m > 2 {
		t.Errorf("%d prepares at once across calls, slots allow 2", m)
	}
}

func TestCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	f := &fake{delay: 5 * time.Millisecond}
	tw := f.tower(2, 2)
	ctx, cancel := context.WithCancel(context.Background())
	inputs := make([]int, 200)
	for i := range inputs {
		inputs[i] = i
	}
	n := 0
	res := make([]Result, len(inputs))
	tw.Each(ctx, inputs, func(i int, r Result) {
		res[i] = r
		if n++; n == 5 {
			cancel()
		}
	})
	aborted := 0
	for i, r := range res {
		switch {
		case errors.Is(r.Err, api.ErrAborted):
			if !errors.Is(r.Err, context.Canceled) {
				t.Errorf("input %d: %v does not wrap context.Canceled", i, r.Err)
			}
			aborted++
		case r.Err != nil || r.Embedding == nil:
			t.Errorf("input %d: %+v", i, r)
		}
	}
	if aborted < 150 {
		t.Errorf("only %d of 200 aborted after cancelling at the 5th", aborted)
	}
	waitGoroutines(t, before)
}

func TestPanicsAreErrors(t *testing.T) {
	tw := &Tower[int, float32]{RowLen: 1,
		Prepare: func(_ context.Context, v int, row []float32) error {
			if v == 1 {
				panic("decoder bug")
			}
			return nil
		},
		Forward: func(_ context.Context, rows []float32, n int) ([][]float32, error) {
			return make([][]float32, n), nil
		}}
	res := tw.Run(context.Background(), []int{0, 1, 2})
	if !errors.Is(res[1].Err, api.ErrInvalidInput) || res[0].Err != nil || res[2].Err != nil {
		t.Errorf("%+v", res)
	}
}

// waitGoroutines fails if the goroutine count does not settle back to
// before (plus slack for the runtime's own).
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+2 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSlowInputDoesNotHoldBatches: while the first input's prepare is
// stuck, the rows behind it go through the model in full batches (up to
// the credits' bound, whatever the number of inputs: no deadlock when the
// stuck input is all that is left); once it comes, every result is right
// and reported in input order.
func TestSlowInputDoesNotHoldBatches(t *testing.T) {
	for _, n := range []int{12, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			f := &fake{}
			tw := f.tower(4, 2)
			unblock := make(chan struct{})
			prep := tw.Prepare
			tw.Prepare = func(ctx context.Context, v int, row []float32) error {
				if v == 1000 {
					<-unblock
				}
				return prep(ctx, v, row)
			}
			inputs := make([]int, n)
			inputs[0] = 1000
			for i := 1; i < n; i++ {
				inputs[i] = i
			}
			go func() {
				// Before the stuck input comes: full batches without it.
				deadline := time.Now().Add(10 * time.Second)
				for time.Now().Before(deadline) {
					f.mu.Lock()
					k := len(f.batches)
					f.mu.Unlock()
					if k >= 2 {
						break
					}
					time.Sleep(time.Millisecond)
				}
				close(unblock)
			}()
			eachInOrder(t, tw, inputs)
			if len(f.batches) < 2 || f.batches[0] != 4 || f.batches[1] != 4 {
				t.Fatalf("batches %v: want two full ones while the first input was stuck", f.batches)
			}
		})
	}
}
