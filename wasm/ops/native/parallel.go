package native

import "sync"

// workerPool is a fixed set of goroutines that run the chunks of one
// parallel loop; the calling goroutine runs a chunk too, so New(threads)
// starts threads-1 workers.
type workerPool struct {
	tasks chan func()
	once  sync.Once
}

func newWorkerPool(n int) *workerPool {
	p := &workerPool{tasks: make(chan func())}
	for i := 0; i < n; i++ {
		go func() {
			for f := range p.tasks {
				f()
			}
		}()
	}
	return p
}

func (p *workerPool) close() { p.once.Do(func() { close(p.tasks) }) }

// parallelFor splits [0,n) into at most o.threads contiguous chunks and runs
// fn on each, returning when all are done; a panic in any chunk is raised
// on the calling goroutine. cost is the approximate work per
// index in simple operations; loops below minParallelWork run inline because
// waking a worker costs a few microseconds.
func (o *Ops) parallelFor(n, cost int, fn func(lo, hi int)) {
	const minParallelWork = 1 << 16
	t := o.threads
	if t > n {
		t = n
	}
	if o.workers == nil || t <= 1 || n*cost < minParallelWork {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	// A panic in a worker goroutine would kill the process (no caller can
	// recover it), so workers hand theirs to the calling goroutine, which
	// re-panics after every chunk has stopped writing.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		panicked any
	)
	wg.Add(t - 1)
	for i := 1; i < t; i++ {
		lo, hi := i*n/t, (i+1)*n/t
		o.workers.tasks <- func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					mu.Lock()
					if panicked == nil {
						panicked = r
					}
					mu.Unlock()
				}
			}()
			fn(lo, hi)
		}
	}
	func() {
		defer wg.Wait() // also when fn panics here: workers may still write
		fn(0, n/t)
	}()
	if panicked != nil {
		panic(panicked)
	}
}

func (o *Ops) parallelElems(n int, fn func(lo, hi int)) { o.parallelFor(n, 1, fn) }

func (o *Ops) parallelRows(rows, rowLen int, fn func(lo, hi int)) {
	o.parallelFor(rows, rowLen, fn)
}
