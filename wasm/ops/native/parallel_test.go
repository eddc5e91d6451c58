package native

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestParallelForEveryIndexOnce runs loops of many sizes from several
// goroutines at once on one Ops (they replace each other as the workers'
// current loop), some nested inside a chunk, and checks that every index
// of every loop runs exactly once and that Close stops the workers.
func TestParallelForEveryIndexOnce(t *testing.T) {
	base := runtime.NumGoroutine()
	o := New(3)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for _, n := range []int{1, 2, 3, 17, 100, 1000, 4099} {
				for _, cost := range []int{1, 64, 1 << 12, 1 << 20} {
					hits := make([]atomic.Int32, n)
					o.parallelFor(n, cost, func(lo, hi int) {
						for i := lo; i < hi; i++ {
							hits[i].Add(1)
						}
						if g == 0 && lo == 0 && n == 100 {
							// nested loop inside a chunk
							inner := make([]atomic.Int32, 50)
							o.parallelFor(50, 1<<20, func(lo, hi int) {
								for i := lo; i < hi; i++ {
									inner[i].Add(1)
								}
							})
							for i := range inner {
								if inner[i].Load() != 1 {
									t.Errorf("nested index %d ran %d times", i, inner[i].Load())
								}
							}
						}
					})
					for i := range hits {
						if h := hits[i].Load(); h != 1 {
							t.Errorf("n=%d cost=%d: index %d ran %d times", n, cost, i, h)
							return
						}
					}
				}
			}
		}(g)
	}
	wg.Wait()
	o.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Errorf("%d goroutines after Close, %d before New", n, base)
	}
}
