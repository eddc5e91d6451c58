package gojs

import (
	"context"
	"sync"
	"time"
)

type timer struct {
	id    int32
	due   time.Duration // on rt.now()
	guest bool          // scheduleTimeoutEvent; else a JS setTimeout
	fired bool
	fn    func()
}

// Poll runs the event loop until done() is true (checked after each task).
func (rt *Runtime) Poll(ctx context.Context, done func() bool) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if err := rt.ready(ctx); err != nil {
		return err
	}
	return rt.loop(ctx, done)
}

// Post queues fn to run on the loop goroutine. It is safe from any
// goroutine. Post alone does not keep a waiting loop from reporting a
// deadlock: use Async for work that is still in flight.
func (rt *Runtime) Post(fn func()) {
	rt.postMu.Lock()
	rt.posted = append(rt.posted, fn)
	rt.postMu.Unlock()
	rt.signal()
}

// Async registers host work in flight (e.g. an HTTP download): until the
// returned complete is called, an idle loop waits instead of reporting a
// deadlock. complete(fn) is goroutine-safe, must be called once, and runs
// fn (e.g. a Promise resolve) on the loop goroutine.
func (rt *Runtime) Async() (complete func(fn func())) {
	rt.async.Add(1)
	var once sync.Once
	return func(fn func()) {
		once.Do(func() {
			rt.Post(fn) // post before releasing, so the loop never sees neither
			rt.async.Add(-1)
			rt.signal()
		})
	}
}

// Go runs work on a new goroutine and returns a promise settled with its
// result on the loop goroutine. work must not touch loop-owned values.
func (rt *Runtime) Go(work func() (Value, error)) *Promise {
	p, resolve, reject := rt.NewPromise()
	complete := rt.Async()
	go func() {
		v, err := work()
		complete(func() {
			if err != nil {
				reject(ErrorValue(err))
				return
			}
			resolve(v)
		})
	}()
	return p
}

// SetTimeout schedules fn on the loop after d (like JS setTimeout); the
// returned id can be passed to ClearTimeout. Loop goroutine only.
func (rt *Runtime) SetTimeout(fn func(), d time.Duration) int32 {
	if d < 0 {
		d = 0
	}
	rt.nextTimer++
	id := rt.nextTimer
	rt.timers[id] = &timer{id: id, due: rt.now() + d, fn: fn}
	return id
}

// ClearTimeout cancels a timer from SetTimeout. Loop goroutine only.
func (rt *Runtime) ClearTimeout(id int32) {
	if t, ok := rt.timers[id]; ok && !t.guest {
		delete(rt.timers, id)
	}
}

// loop is the event loop: microtasks, posted host callbacks, due timers;
// when idle it sleeps until a timer, a post or ctx; with nothing pending it
// returns ErrDeadlock.
func (rt *Runtime) loop(ctx context.Context, done func() bool) error {
	var tm *time.Timer
	defer func() {
		if tm != nil {
			tm.Stop()
		}
	}()
	for {
		if err := rt.drain(); err != nil {
			return err
		}
		if done() {
			return nil
		}
		if err := rt.stateErr(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if rt.runPosted() {
			continue
		}
		next := rt.nextTimerDue()
		if next != nil && next.due <= rt.now() {
			if err := rt.fire(next); err != nil {
				return err
			}
			continue
		}
		inflight := rt.async.Load() > 0
		if next == nil && !inflight {
			// Work may have completed since runPosted looked: complete posts
			// before it releases its count, so with the count at zero its
			// post is visible here.
			if rt.hasPosted() {
				continue
			}
			return ErrDeadlock
		}
		if next != nil && rt.cfg.VirtualClock && !inflight {
			rt.skew += next.due - rt.now()
			continue
		}
		var tc <-chan time.Time
		if next != nil {
			d := next.due - rt.now()
			if tm == nil {
				tm = time.NewTimer(d)
			} else {
				tm.Reset(d)
			}
			tc = tm.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-rt.wake:
		case <-tc:
		}
		if tm != nil {
			tm.Stop()
		}
	}
}

// drain runs queued microtasks until none are left.
func (rt *Runtime) drain() error {
	for len(rt.microtasks) > 0 {
		if err := rt.stateErr(); err != nil {
			rt.microtasks = nil
			return nil // the caller reports the state
		}
		fn := rt.microtasks[0]
		rt.microtasks[0] = nil
		rt.microtasks = rt.microtasks[1:]
		fn()
	}
	if rt.dead != nil {
		return rt.dead
	}
	return nil
}

func (rt *Runtime) enqueue(fn func()) { rt.microtasks = append(rt.microtasks, fn) }

// QueueMicrotask queues fn as a microtask. Loop goroutine only.
func (rt *Runtime) QueueMicrotask(fn func()) { rt.enqueue(fn) }

func (rt *Runtime) runPosted() bool {
	rt.postMu.Lock()
	ps := rt.posted
	rt.posted = nil
	rt.postMu.Unlock()
	for i, fn := range ps {
		fn()
		if err := rt.drain(); err != nil || rt.exited {
			// Keep the rest for a later loop (or drop them with the guest).
			rt.postMu.Lock()
			rt.posted = append(ps[i+1:len(ps):len(ps)], rt.posted...)
			rt.postMu.Unlock()
			break
		}
	}
	return len(ps) > 0
}

func (rt *Runtime) hasPosted() bool {
	rt.postMu.Lock()
	defer rt.postMu.Unlock()
	return len(rt.posted) > 0
}

func (rt *Runtime) signal() {
	select {
	case rt.wake <- struct{}{}:
	default:
	}
}

func (rt *Runtime) nextTimerDue() *timer {
	var best *timer
	for _, t := range rt.timers {
		if t.fired {
			continue
		}
		if best == nil || t.due < best.due || (t.due == best.due && t.id < best.id) {
			best = t
		}
	}
	return best
}

func (rt *Runtime) fire(t *timer) error {
	t.fired = true
	if !t.guest {
		delete(rt.timers, t.id)
		t.fn()
		return nil
	}
	// As wasm_exec.js: resume, and again while Go has not cleared the
	// timeout (golang/go#28975), a bounded number of times.
	for i := 0; i < 16; i++ {
		if err := rt.resume(); err != nil {
			return err
		}
		if _, ok := rt.timers[t.id]; !ok || rt.exited {
			break
		}
	}
	delete(rt.timers, t.id)
	return nil
}

// now is the loop clock: monotonic time since the runtime was made, plus
// the virtual clock's jumps.
func (rt *Runtime) now() time.Duration { return time.Since(rt.t0) + rt.skew }

// wallNow is the guest's wall clock.
func (rt *Runtime) wallNow() time.Time { return rt.t0.Add(rt.now()) }
