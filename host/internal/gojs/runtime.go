package gojs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	goruntime "runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Config configures a Runtime. The zero value works: output is discarded,
// argv is ["js"], the clock is real.
type Config struct {
	Stdout, Stderr io.Writer // guest fd 1 and 2 (fs.writeSync/fs.write, println, panics)
	Args           []string  // argv; default ["js"]
	Env            map[string]string
	// Globals are set on globalThis after the built-in globals (so they may
	// replace them).
	Globals map[string]Value
	// VirtualClock makes time jump to the next timer whenever the loop is
	// idle and no host work (Async) is outstanding: time.Sleep(time.Hour)
	// returns at once, and nanotime/Date/performance.now see the jump.
	VirtualClock bool
	// Rand feeds crypto.getRandomValues and runtime.getRandomData; default
	// crypto/rand.
	Rand io.Reader
	// Cwd is process.cwd(); default "/".
	Cwd string
	// TimezoneOffset is what Date.prototype.getTimezoneOffset returns
	// (minutes, JS sign convention); default 0 (UTC), for reproducibility.
	TimezoneOffset int
	// RuntimeConfig replaces the wazero configuration. Nil means
	// wazero.NewRuntimeConfig().WithCloseOnContextDone(true) with
	// CompilationCache: cancelling a context or Close then stops a guest
	// even in a loop that never calls the host. That flag makes wazero
	// leave the compiled code at every loop header and function entry,
	// which slows Go's wasm output 4-6x (see BenchmarkCloseOnContextDone);
	// without it, cancellation and Close stop the guest at its next import
	// call (any syscall/js use, timer, clock or write), which suits guests
	// whose loops are bounded.
	RuntimeConfig wazero.RuntimeConfig
	// CompilationCache holds compiled machine code across runtimes (compiling
	// a Go binary takes seconds). Nil means a process-wide in-memory cache,
	// which keeps the code of every distinct binary for the process's life.
	CompilationCache wazero.CompilationCache
}

var sharedCache = sync.OnceValue(wazero.NewCompilationCache)

// Runtime is one instantiated GOOS=js module and its JS realm.
type Runtime struct {
	cfg     Config
	wr      wazero.Runtime
	mod     api.Module
	getspFn api.Function
	stdout  io.Writer
	stderr  *tailWriter

	mu      sync.Mutex      // serialises the loop methods
	ctx     context.Context // of the outermost loop method in progress
	inner   context.Context // ctx without cancellation, for nested calls
	depth   int             // nesting of guest calls (run/resume)
	entries uint64          // guest entries so far; tells imports when sp may have moved
	started bool
	exited  bool
	code    int
	dead    error       // a trap or cancellation made the module unusable
	closed  atomic.Bool // Close was called
	stop    atomic.Bool // closed, or ctx ended: the next import call aborts the guest
	unwatch func() bool // stops the context.AfterFunc that sets stop

	table  valueTable
	global *Object
	goObj  *Object // the `this` of wasm_exec.js: the Go instance, id 6

	microtasks []func()
	timers     map[int32]*timer
	nextTimer  int32
	t0         time.Time
	skew       time.Duration // virtual clock advance

	postMu sync.Mutex
	posted []func()
	wake   chan struct{}
	async  atomic.Int64
}

type timer struct {
	id    int32
	due   time.Duration // on rt.now()
	guest bool          // scheduleTimeoutEvent; else a JS setTimeout
	fired bool
	fn    func()
}

// NewRuntime compiles and instantiates wasm (a GOOS=js GOARCH=wasm binary)
// without running it. Set extra globals with Config.Globals or Global()
// before Start.
func NewRuntime(ctx context.Context, wasm []byte, cfg Config) (*Runtime, error) {
	rc := cfg.RuntimeConfig
	if rc == nil {
		cache := cfg.CompilationCache
		if cache == nil {
			cache = sharedCache()
		}
		rc = wazero.NewRuntimeConfig().WithCloseOnContextDone(true).WithCompilationCache(cache)
	}
	rt := &Runtime{
		cfg:    cfg,
		stdout: cfg.Stdout,
		stderr: &tailWriter{w: cfg.Stderr, max: 16 << 10},
		timers: map[int32]*timer{},
		t0:     time.Now(),
		wake:   make(chan struct{}, 1),
	}
	if rt.stdout == nil {
		rt.stdout = io.Discard
	}
	if rt.cfg.Rand == nil {
		rt.cfg.Rand = rand.Reader
	}
	if rt.cfg.Cwd == "" {
		rt.cfg.Cwd = "/"
	}
	if len(rt.cfg.Args) == 0 {
		rt.cfg.Args = []string{"js"}
	}
	rt.wr = wazero.NewRuntimeWithConfig(ctx, rc)
	if err := rt.instantiate(ctx, wasm); err != nil {
		rt.wr.Close(ctx)
		return nil, err
	}
	rt.global = rt.newGlobals()
	rt.goObj = rt.newGoObject()
	for k, v := range cfg.Globals {
		rt.global.Set(k, v)
	}
	rt.table.init(rt.global, rt.goObj)
	return rt, nil
}

func (rt *Runtime) instantiate(ctx context.Context, wasm []byte) error {
	// Compiling a Go binary's thousands of functions is the slow part of a
	// cold start; wazero can spread it over threads.
	cm, err := rt.wr.CompileModule(experimental.WithCompilationWorkers(ctx, goruntime.GOMAXPROCS(0)), wasm)
	if err != nil {
		return fmt.Errorf("%w: compile: %w", ErrInvalidModule, err)
	}
	for _, name := range []string{"run", "resume", "getsp"} {
		if _, ok := cm.ExportedFunctions()[name]; !ok {
			return fmt.Errorf("%w: no %q export: not a GOOS=js GOARCH=wasm binary", ErrInvalidModule, name)
		}
	}
	b := rt.wr.NewHostModuleBuilder("gojs")
	for name, h := range imports {
		h := h
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
				if rt.stop.Load() {
					// Cancellation without WithCloseOnContextDone: unwind
					// the guest at its next import call.
					panic(&abortError{rt.classify(errStopped)})
				}
				h(rt, uint32(stack[0]))
			}), []api.ValueType{api.ValueTypeI32}, nil).
			WithParameterNames("sp").
			Export(name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("gojs: host module: %w", err)
	}
	// The Go runtime calls its own run export; no start function, no _start.
	mod, err := rt.wr.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return fmt.Errorf("%w: instantiate: %w", ErrInvalidModule, err)
	}
	rt.mod = mod
	return nil
}

// Global returns globalThis. Only touch it on the loop goroutine once the
// guest is running.
func (rt *Runtime) Global() *Object { return rt.global }

// Module returns the wazero module (e.g. to call //go:wasmexport functions).
func (rt *Runtime) Module() api.Module { return rt.mod }

// Exited reports whether the guest has exited, and its code. Like Stderr,
// call it on the loop goroutine or while no loop method runs.
func (rt *Runtime) Exited() (bool, int) { return rt.exited, rt.code }

// Stderr returns the tail (up to 16 KiB) of what the guest wrote to stderr.
func (rt *Runtime) Stderr() string { return rt.stderr.String() }

// Close releases the module. It may be called from any goroutine, also
// while a loop method is running: the running guest is aborted.
func (rt *Runtime) Close(ctx context.Context) error {
	if rt.closed.Swap(true) {
		return nil
	}
	rt.stop.Store(true)
	rt.signal()
	return rt.wr.Close(ctx)
}

// Start runs the guest's main until it first yields (main returned or all
// goroutines wait) or exits, and then the microtasks that run queued. It
// does not wait for timers: use Wait, Poll or Await for that.
func (rt *Runtime) Start(ctx context.Context) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.started {
		return ErrAlreadyStarted
	}
	rt.started = true
	rt.setCtx(ctx)
	argc, argv, err := rt.writeArgs()
	if err != nil {
		return err
	}
	if err := rt.callExport("run", uint64(argc), uint64(argv)); err != nil {
		return err
	}
	return rt.drain()
}

// Wait runs the event loop until the guest exits and returns its exit code.
// A guest panic returns (2, *PanicError). When nothing is pending that could
// ever wake the guest, the guest is told about the deadlock (like Node does),
// prints its goroutine dump and Wait returns a *PanicError that matches
// ErrDeadlock.
func (rt *Runtime) Wait(ctx context.Context) (int, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !rt.started {
		return 0, ErrNotStarted
	}
	rt.setCtx(ctx)
	err := rt.loop(ctx, func() bool { return rt.exited })
	if errors.Is(err, ErrDeadlock) && !rt.exited {
		// Same as wasm_exec_node.js on process exit: event id 0 means deadlock.
		ev := NewObject(map[string]Value{"id": 0})
		rt.goObj.Set("_pendingEvent", ev)
		if err := rt.callExport("resume"); err != nil {
			return 0, err
		}
		if !rt.exited {
			return 0, ErrDeadlock
		}
		err = nil
	}
	if rt.exited {
		if perr := rt.panicError(); perr != nil {
			return rt.code, perr
		}
		return rt.code, nil
	}
	return 0, err
}

// Run is Start followed by Wait.
func (rt *Runtime) Run(ctx context.Context) (int, error) {
	if err := rt.Start(ctx); err != nil {
		return 0, err
	}
	return rt.Wait(ctx)
}

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

func (rt *Runtime) setCtx(ctx context.Context) {
	rt.ctx = ctx
	rt.inner = context.WithoutCancel(ctx)
	if rt.unwatch != nil {
		rt.unwatch()
	}
	rt.stop.Store(rt.closed.Load() || ctx.Err() != nil)
	rt.unwatch = context.AfterFunc(ctx, func() { rt.stop.Store(true) })
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
	_, err := f.Call(callCtx, params...)
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

func (rt *Runtime) writeArgs() (argc, argv uint32, err error) {
	mem := rt.mod.Memory()
	offset := uint32(4096)
	strPtr := func(s string) uint32 {
		p := offset
		mem.Write(offset, append([]byte(s), 0))
		offset += uint32(len(s) + 1)
		if offset%8 != 0 {
			offset += 8 - offset%8
		}
		return p
	}
	var ptrs []uint32
	for _, a := range rt.cfg.Args {
		ptrs = append(ptrs, strPtr(a))
	}
	ptrs = append(ptrs, 0)
	keys := make([]string, 0, len(rt.cfg.Env))
	for k := range rt.cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ptrs = append(ptrs, strPtr(k+"="+rt.cfg.Env[k]))
	}
	ptrs = append(ptrs, 0)
	argv = offset
	for _, p := range ptrs {
		mem.WriteUint32Le(offset, p)
		mem.WriteUint32Le(offset+4, 0)
		offset += 8
	}
	if offset >= 4096+8192 {
		return 0, 0, ErrArgsTooLong
	}
	return uint32(len(rt.cfg.Args)), argv, nil
}

// tailWriter forwards to w and keeps the last max bytes.
type tailWriter struct {
	w   io.Writer
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	if t.w != nil {
		return t.w.Write(p)
	}
	return len(p), nil
}

func (t *tailWriter) String() string { return string(t.buf) }
