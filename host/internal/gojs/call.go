package gojs

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
)

// Call calls fn (a *Function: a guest js.FuncOf or a host function) with
// this and args, then runs the microtasks it queued. A thrown JS value is
// returned as *Exception.
func (rt *Runtime) Call(ctx context.Context, fn Value, this Value, args ...Value) (Value, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if err := rt.ready(ctx); err != nil {
		return nil, err
	}
	v, err := rt.Invoke(fn, this, args...)
	if derr := rt.drain(); derr != nil {
		return nil, derr
	}
	if err != nil {
		if rt.fatal(err) {
			return nil, rt.stateErr()
		}
		return nil, err
	}
	if rt.exited {
		return nil, rt.exitError()
	}
	return v, nil
}

// Await runs the event loop until v (a *Promise or a thenable; anything
// else is returned as is) settles, and returns its value, or its reason as
// an *Exception (whose Unwrap gives back a Go error that went through
// ErrorValue). If nothing pending could ever settle it, Await returns an error
// matching ErrDeadlock and the guest stays usable.
func (rt *Runtime) Await(ctx context.Context, v Value) (Value, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if err := rt.ready(ctx); err != nil {
		return nil, err
	}
	p, ok := v.(*Promise)
	if !ok {
		if _, isObj := v.(propertyHolder); !isObj {
			return v, nil
		}
		if _, thenable := GetProperty(v, "then").(*Function); !thenable {
			return v, nil
		}
		q, resolve, _ := rt.NewPromise()
		resolve(v)
		p = q
	}
	p.handled = true
	err := rt.loop(ctx, func() bool { return p.state != Pending })
	if err != nil {
		if errors.Is(err, ErrDeadlock) {
			return nil, fmt.Errorf("gojs: awaiting a promise that nothing pending can settle: %w", err)
		}
		return nil, err
	}
	if p.state == Rejected {
		return nil, &Exception{p.result}
	}
	return p.result, nil
}

// Invoke calls fn on the loop goroutine, without locking or running
// microtasks: for use inside host Funcs, Post/Async callbacks and promise
// callbacks. Errors that abort the guest (exit, trap, cancellation) must be
// returned unchanged (or wrapped with %w) by the caller.
func (rt *Runtime) Invoke(fn Value, this Value, args ...Value) (v Value, err error) {
	f, ok := fn.(*Function)
	if !ok || f.Call == nil {
		name := ""
		if ok {
			name = f.Name + " "
		}
		te := NewTypeError(name + "is not a function")
		te.goErr = ErrNotFunction
		return nil, &Exception{te}
	}
	for i, a := range args {
		args[i] = normalize(a)
	}
	defer recoverHostPanic(f.Name, &err)
	v, err = f.Call(normalize(this), args)
	if err != nil {
		return nil, err
	}
	return normalize(v), nil
}

// recoverHostPanic turns a panic in host Go code called from JS into a
// thrown Error (as tfjs throws where the Go kernels panic), so a host bug or
// misuse does not take the guest down. Guest aborts keep unwinding.
func recoverHostPanic(name string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	if ab, ok := r.(*abortError); ok {
		panic(ab)
	}
	hp := &HostPanicError{Func: name, Value: r, Stack: debug.Stack()}
	o := NewError(hp.Error())
	o.goErr = hp
	*err = &Exception{o}
}

// Construct is `new fn(...args)` on the loop goroutine.
func (rt *Runtime) Construct(fn Value, args ...Value) (v Value, err error) {
	f, ok := fn.(*Function)
	if !ok || f.Construct == nil {
		return nil, &Exception{NewTypeError("not a constructor")}
	}
	for i, a := range args {
		args[i] = normalize(a)
	}
	defer recoverHostPanic(f.Name, &err)
	v, err = f.Construct(args)
	if err != nil {
		return nil, err
	}
	return normalize(v), nil
}

func (rt *Runtime) setCtx(ctx context.Context) {
	rt.ctx = ctx
	rt.inner = context.WithoutCancel(ctx)
	if rt.unwatch != nil {
		rt.unwatch()
	}
	// A cancel of an earlier call's context may still be setting stop (its
	// AfterFunc runs on its own goroutine): under stopMu, only the context
	// being watched may set it.
	rt.stopMu.Lock()
	rt.watching = ctx
	rt.stop.Store(rt.closed.Load() || ctx.Err() != nil)
	rt.stopMu.Unlock()
	rt.unwatch = context.AfterFunc(ctx, func() {
		rt.stopMu.Lock()
		defer rt.stopMu.Unlock()
		if rt.watching == ctx {
			rt.stop.Store(true)
		}
	})
}

// fatal reports whether err aborts the guest (and must be propagated).
func (rt *Runtime) fatal(err error) bool {
	var ab *abortError
	return errors.As(err, &ab)
}

func (rt *Runtime) ready(ctx context.Context) error {
	if !rt.started {
		return ErrNotStarted
	}
	rt.setCtx(ctx)
	return rt.stateErr()
}

// stateErr is the error that prevents further guest calls, if any.
func (rt *Runtime) stateErr() error {
	switch {
	case rt.dead != nil:
		return rt.dead
	case rt.exited:
		return rt.exitError()
	case rt.closed.Load():
		return ErrClosed
	}
	return nil
}

func (rt *Runtime) exitError() error {
	if p := rt.panicError(); p != nil {
		return p
	}
	return &ExitError{Code: rt.code}
}

func (rt *Runtime) panicError() error {
	s := rt.stderr.String()
	if rt.code != 0 && isPanicText(s) {
		return &PanicError{Code: rt.code, Stderr: s,
			Deadlock: strings.Contains(s, "all goroutines are asleep - deadlock!")}
	}
	return nil
}

var errExit = errors.New("gojs: guest exited during the call")

// callExport enters the guest. Nested entries (from a host import that
// called back into Go code) turn failures into *abortError for the import
// to re-panic; the outermost entry returns the final error, and nil when
// the guest merely exited.
func (rt *Runtime) callExport(name string, params ...uint64) error {
	if err := rt.stateErr(); err != nil {
		if rt.depth > 0 {
			return &abortError{err}
		}
		return err
	}
	f := rt.mod.ExportedFunction(name)
	rt.entries++
	rt.depth++
	// Only the outermost entry watches ctx (wazero starts a goroutine per
	// call with a cancellable context); closing the module on cancellation
	// aborts the nested frames too.
	callCtx := rt.ctx
	if rt.depth > 1 {
		callCtx = rt.inner
	}
	if rt.measure {
		rt.mark = time.Now()
	}
	_, err := f.Call(callCtx, params...)
	if rt.measure {
		rt.guest += time.Since(rt.mark)
	}
	rt.depth--
	if err == nil {
		return nil
	}
	var ab *abortError
	if errors.As(err, &ab) {
		err = ab.err
	} else {
		err = rt.classify(err)
	}
	if rt.depth > 0 {
		return &abortError{err}
	}
	if err == errExit {
		return nil
	}
	return err
}

// classify turns a wazero call error into the runtime's error and state.
func (rt *Runtime) classify(err error) error {
	switch {
	case rt.exited:
		return errExit
	case rt.closed.Load():
		rt.dead = ErrClosed
	case rt.ctx != nil && rt.ctx.Err() != nil:
		rt.dead = fmt.Errorf("%w: guest aborted: %w", ErrClosed, rt.ctx.Err())
	default:
		rt.dead = &TrapError{Err: err, Stderr: rt.stderr.String()}
	}
	return rt.dead
}

// resume runs a pending event (or the timer check) in the guest.
func (rt *Runtime) resume() error { return rt.callExport("resume") }
