package native

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// workerPool is a fixed set of goroutines that help the calling goroutine
// through the chunks of one parallel loop (New(threads) starts threads-1).
//
// Work is shared dynamically: a loop is cut into more chunks than threads
// and every participant takes the next chunk from an atomic counter, so a
// worker that wakes late or is descheduled (the machine may be shared)
// leaves its part to the others instead of making them wait at the end.
// Between loops a worker spins briefly before it parks: the ops of a
// forward pass follow each other within microseconds, and waking a parked
// goroutine costs tens of microseconds, more than a small loop's half.
type workerPool struct {
	cur      atomic.Pointer[parJob] // the latest loop
	sleepers atomic.Int32
	closed   atomic.Bool
	mu       sync.Mutex
	cond     *sync.Cond
}

// spinFor is how long an idle worker polls for the next loop before it
// parks.
const spinFor = 50 * time.Microsecond

// parJob is one parallel loop.
type parJob struct {
	fn func(lo, hi int)
	n  int
	// grain is the smallest chunk (and a divisor of every chunk's start
	// and size, but the last's); share is the thread count used to size
	// chunks (see take).
	grain, share  int
	next, done    atomic.Int64  // indices taken, indices finished
	finished      chan struct{} // closed when done reaches n
	panicOnce     sync.Once
	panicked      any
	panickedValid atomic.Bool
}

func newWorkerPool(n int) *workerPool {
	p := &workerPool{}
	p.cond = sync.NewCond(&p.mu)
	for i := 0; i < n; i++ {
		go p.worker()
	}
	return p
}

func (p *workerPool) worker() {
	var last *parJob
	for {
		j := p.wait(last)
		if j == nil {
			return
		}
		last = j
		j.work()
	}
}

// wait returns the first loop other than last, or nil once the pool is
// closed.
func (p *workerPool) wait(last *parJob) *parJob {
	start := time.Now()
	for i := 0; ; i++ {
		if p.closed.Load() {
			return nil
		}
		if j := p.cur.Load(); j != last {
			return j
		}
		if i&63 == 63 {
			if time.Since(start) > spinFor {
				break
			}
			runtime.Gosched()
		}
	}
	p.sleepers.Add(1)
	p.mu.Lock()
	for p.cur.Load() == last && !p.closed.Load() {
		p.cond.Wait()
	}
	p.mu.Unlock()
	p.sleepers.Add(-1)
	if p.closed.Load() {
		return nil
	}
	return p.cur.Load()
}

// submit publishes j to the workers.
func (p *workerPool) submit(j *parJob) {
	p.cur.Store(j)
	if p.sleepers.Load() > 0 {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

func (p *workerPool) close() {
	if p.closed.Swap(true) {
		return
	}
	p.mu.Lock()
	p.cond.Broadcast()
	p.mu.Unlock()
}

// work runs chunks of j until none is left.
func (j *parJob) work() {
	for {
		lo, hi, ok := j.take()
		if !ok {
			return
		}
		j.run(lo, hi)
		if j.done.Add(int64(hi-lo)) == int64(j.n) {
			close(j.finished)
		}
	}
}

// take claims the next chunk: guided self-scheduling, a chunk is the
// remaining indices over 2 x share (whole grains, at least one), so the
// first chunks are large (few hand-offs) and the last are one grain (the
// threads finish close together). The sizes depend only on where a chunk
// starts, so the chunks are the same whichever thread takes them.
func (j *parJob) take() (lo, hi int, ok bool) {
	for {
		next := j.next.Load()
		lo = int(next)
		if lo >= j.n {
			return 0, 0, false
		}
		size := max(j.grain, (j.n-lo)/(2*j.share)/j.grain*j.grain)
		hi = min(lo+size, j.n)
		if j.next.CompareAndSwap(next, int64(hi)) {
			return lo, hi, true
		}
	}
}

// run runs one chunk, keeping its panic for the calling goroutine: a panic
// in a worker would otherwise kill the process.
func (j *parJob) run(lo, hi int) {
	defer func() {
		if r := recover(); r != nil {
			j.panicOnce.Do(func() { j.panicked = r; j.panickedValid.Store(true) })
		}
	}()
	j.fn(lo, hi)
}

// Chunk sizing: a chunk is at least minChunkWork simple operations (cost
// units) so taking one is cheap next to running it, and at least
// 1/maxChunksPerThread of a thread's share (the smallest, last chunks of
// guided scheduling: see take).
const (
	minParallelWork    = 1 << 15
	minChunkWork       = 1 << 13
	maxChunksPerThread = 32
)

// parallelFor runs fn over [0,n) in contiguous chunks, on the calling
// goroutine and the pool's workers, and returns when all are done; a panic
// in any chunk is raised on the calling goroutine once no chunk runs. cost
// is the approximate work per index in simple operations; loops below
// minParallelWork run inline.
func (o *Ops) parallelFor(n, cost int, fn func(lo, hi int)) {
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
	grain := max(1, minChunkWork/max(cost, 1))
	if most := maxChunksPerThread * t; (n+grain-1)/grain > most {
		grain = (n + most - 1) / most
	}
	if grain >= 64 {
		grain = (grain + 15) &^ 15 // whole vectors for elementwise loops
	}
	j := &parJob{fn: fn, n: n, grain: grain, share: t, finished: make(chan struct{})}
	o.workers.submit(j)
	j.work()
	if j.done.Load() < int64(n) {
		// Workers are finishing their last chunks: poll briefly, then block.
		for i := 0; i < 1000 && j.done.Load() < int64(n); i++ {
			if i&15 == 15 {
				runtime.Gosched()
			}
		}
		<-j.finished
	}
	j.fn = nil // workers keep a pointer to their last loop, not its data
	if j.panickedValid.Load() {
		panic(j.panicked)
	}
}

func (o *Ops) parallelElems(n int, fn func(lo, hi int)) { o.parallelFor(n, 1, fn) }

func (o *Ops) parallelRows(rows, rowLen int, fn func(lo, hi int)) {
	o.parallelFor(rows, rowLen, fn)
}
