package gojs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	goruntime "runtime"
	"sort"
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

	mu       sync.Mutex      // serialises the loop methods
	ctx      context.Context // of the outermost loop method in progress
	inner    context.Context // ctx without cancellation, for nested calls
	depth    int             // nesting of guest calls (run/resume)
	entries  uint64          // guest entries so far; tells imports when sp may have moved
	started  bool
	exited   bool
	code     int
	dead     error           // a trap or cancellation made the module unusable
	closed   atomic.Bool     // Close was called
	stop     atomic.Bool     // closed, or ctx ended: the next import call aborts the guest
	stopMu   sync.Mutex      // orders setting stop by a context's end against setCtx
	watching context.Context // the context whose end sets stop (under stopMu)
	unwatch  func() bool     // stops the context.AfterFunc that sets stop

	table  valueTable
	global *Object
	goObj  *Object // the `this` of wasm_exec.js: the Go instance, id 6

	microtasks []func()
	timers     map[int32]*timer
	nextTimer  int32
	t0         time.Time
	skew       time.Duration // virtual clock advance

	// MeasureGuest: time spent running guest code (loop goroutine only).
	measure bool
	guest   time.Duration
	mark    time.Time      // when the guest last (re)gained control
	calls   map[string]int // import calls by name while measuring

	postMu sync.Mutex
	posted []func()
	wake   chan struct{}
	async  atomic.Int64
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
		h, name := h, name
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
				if rt.stop.Load() {
					// Cancellation without WithCloseOnContextDone: unwind
					// the guest at its next import call.
					panic(&abortError{rt.classify(errStopped)})
				}
				if rt.measure {
					rt.guest += time.Since(rt.mark)
					rt.calls[name]++
					h(rt, uint32(stack[0]))
					rt.mark = time.Now()
					return
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
	mod, err := rt.wr.InstantiateModule(experimental.WithMemoryAllocator(ctx, rt.memoryAllocator()), cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return fmt.Errorf("%w: instantiate: %w", ErrInvalidModule, err)
	}
	rt.mod = mod
	return nil
}

// MeasureGuest turns on (or off) the accounting of the time the guest's
// own code runs: the wall time inside guest entries (run, resume) minus the
// time in the host's import functions. GuestTime returns the total so far.
// Call both while no loop method runs. It costs two clock reads and a map
// update per import call while on. ImportCalls counts the import calls.
func (rt *Runtime) MeasureGuest(on bool) {
	rt.measure = on
	if on && rt.calls == nil {
		rt.calls = map[string]int{}
	}
}

// GuestTime is the guest time accounted since MeasureGuest(true).
func (rt *Runtime) GuestTime() time.Duration { return rt.guest }

// ImportCalls returns the import calls made while measuring (MeasureGuest),
// by import name ("syscall/js.valueCall", ...): a copy.
func (rt *Runtime) ImportCalls() map[string]int { return maps.Clone(rt.calls) }

// Global returns globalThis. Only touch it on the loop goroutine once the
// guest is running.
func (rt *Runtime) Global() *Object { return rt.global }

// Module returns the wazero module (e.g. to call //go:wasmexport functions).
func (rt *Runtime) Module() api.Module { return rt.mod }

// Exited reports whether the guest has exited, and its code. Like Stderr,
// call it on the loop goroutine or while no loop method runs.
func (rt *Runtime) Exited() (bool, int) { return rt.exited, rt.code }

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
