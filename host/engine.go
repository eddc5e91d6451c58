package host

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/imgembed/imgembed/host/internal/gojs"
	"github.com/imgembed/imgembed/host/internal/module"
	"github.com/imgembed/imgembed/host/internal/tfjs"
	wapi "github.com/imgembed/imgembed/wasm/api"
	"github.com/imgembed/imgembed/wasm/embed"
	"github.com/imgembed/imgembed/wasm/ops/native"
)

// engine owns one module instance. Every touch of the runtime happens on
// its goroutine (run), one job at a time, because a GOOS=js module has a
// single event loop; callers wait for their job's result or their context,
// whichever comes first.
type engine struct {
	opts  Options
	ops   *native.Ops
	ns    *tfjs.Namespace
	rt    *gojs.Runtime
	sigs  signals
	api   *gojs.Object
	model *gojs.Object

	life   context.Context // ends at close; aborts a busy guest
	cancel context.CancelFunc
	jobs   chan func()
	quit   chan struct{}
	exited chan struct{}
	once   sync.Once
}

// errClosed is returned for calls on a closed Embedder.
var errClosed = &Error{Code: ModelNotLoaded, Message: "the embedder is closed"}

// compileCache is shared by all engines of the process: compiling the
// module (several MB of wasm) is the slow part of starting one.
var (
	compileCacheOnce sync.Once
	compileCache     wazero.CompilationCache
)

func runtimeConfig(cacheDir string) wazero.RuntimeConfig {
	compileCacheOnce.Do(func() {
		// On disk next to the models, so the command starts fast the second
		// time; in memory if the directory is unusable.
		dir := filepath.Join(cacheDir, "wazero")
		if c, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
			compileCache = c
		} else {
			compileCache = wazero.NewCompilationCache()
		}
	})
	// No WithCloseOnContextDone: its checks at every loop header make the
	// module's Go code 4-6x slower (gojs BenchmarkCloseOnContextDone). The
	// module calls the host between steps and throughout a forward pass, and
	// gojs stops the guest at its next import call once the context ends or
	// the runtime is closed; a decode in progress finishes first.
	return wazero.NewRuntimeConfig().WithCloseOnContextDone(false).WithCompilationCache(compileCache)
}

// guestEnv is the module's environment. GOGC=400: once a model is loaded
// the guest's live heap is a few MB (the weights live in the host's tf), so
// with the default GOGC its collector ran about once per forward pass, for
// the ~2 MB each allocates, and the collection and the finalizers of the
// js.Values it frees were ~20 % of the module's own time per forward
// (ForwardBoundary guest-ms/image at batch 1: 8.1-8.7 -> 6.7-6.9). Peak
// RSS measured the same (B/32 load + forward, a 12 MP preprocess, the 18
// photos). GOMEMLIMIT bounds what the larger goal may let a big live heap
// (many large photos in flight) grow to.
var guestEnv = map[string]string{"GOGC": "400", "GOMEMLIMIT": "512MiB"}

func startEngine(ctx context.Context, o Options) (*engine, error) {
	e := &engine{
		opts:   o,
		ops:    native.New(o.Threads),
		jobs:   make(chan func()),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	e.ns = tfjs.New(e.ops)
	e.life, e.cancel = context.WithCancel(context.Background())
	var stderr io.Writer
	if os.Getenv("IMGEMBED_DEBUG") != "" {
		stderr = os.Stderr
	}
	rt, err := gojs.NewRuntime(e.life, module.Wasm, gojs.Config{
		Stderr:        stderr,
		Stdout:        stderr,
		Args:          []string{"imgembed.wasm"},
		Env:           guestEnv,
		RuntimeConfig: runtimeConfig(o.CacheDir),
		Globals:       map[string]gojs.Value{"tf": e.ns.Object},
	})
	if err != nil {
		e.ops.Close()
		e.cancel()
		return nil, newError(InvalidModel, err, "cannot instantiate the wasm module")
	}
	e.rt = rt
	rt.Global().Set("fetch", fetchFunc(rt, &e.sigs, o.HTTPClient, e.life))
	// Lets the module abort a timed-out image request (not just stop
	// waiting for it), so its goroutine and connection end too.
	rt.Global().Set("AbortController", abortControllerClass())
	go e.run()
	err = e.do(ctx, func() error {
		if err := rt.Start(e.life); err != nil {
			return newError(InvalidModel, err, "the wasm module failed to start")
		}
		api, ok := rt.Global().Get("__imgembed").(*gojs.Object)
		if !ok {
			return newError(InvalidModel, nil, "the wasm module did not register globalThis.__imgembed")
		}
		if v := gojs.ToInt(api.Get("version")); v != wapi.ProtocolVersion {
			return newError(InvalidModel, nil, "the wasm module speaks protocol version %d, this host version %d", v, wapi.ProtocolVersion)
		}
		e.api = api
		return nil
	})
	if err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// run executes jobs until close.
func (e *engine) run() {
	defer close(e.exited)
	for {
		select {
		case job := <-e.jobs:
			job()
		case <-e.quit:
			return
		}
	}
}

// do runs fn on the engine goroutine and waits for it or for ctx. When ctx
// ends first, do returns Aborted at once; fn keeps running to completion
// (the module notices through its AbortSignal where it can) and its result
// is dropped.
func (e *engine) do(ctx context.Context, fn func() error) error {
	done := make(chan error, 1)
	job := func() {
		if ctx.Err() != nil {
			done <- abortedError(ctx, "cancelled before it started")
			return
		}
		done <- fn()
	}
	select {
	case e.jobs <- job:
	case <-ctx.Done():
		return abortedError(ctx, "cancelled while waiting for the module")
	case <-e.quit:
		return errClosed
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		select {
		case err := <-done: // finished at the same moment: keep the result
			return err
		default:
		}
		return abortedError(ctx, "cancelled")
	case <-e.quit:
		return errClosed
	}
}

// close stops the engine: a running job is aborted (the guest is closed
// under it), the model is released with the runtime.
func (e *engine) close() {
	e.once.Do(func() {
		close(e.quit)
		e.cancel()
		if e.rt != nil {
			e.rt.Close(context.Background())
		}
		<-e.exited
		e.ops.Close()
	})
}

// moduleError converts a module rejection ({code, message} Error) or a
// runtime failure into *Error.
func moduleError(err error, fallback Code) *Error {
	if err == nil {
		return nil
	}
	var ex *gojs.Exception
	if errors.As(err, &ex) {
		return codedValue(ex.Value, fallback)
	}
	if errors.Is(err, gojs.ErrClosed) || errors.Is(err, context.Canceled) {
		return &Error{Code: ModelNotLoaded, Message: "the module was stopped: " + err.Error(), Err: err}
	}
	return &Error{Code: fallback, Message: "the wasm module failed: " + err.Error(), Err: err}
}

// codedValue reads {code, message} from a JS error or result entry.
func codedValue(v gojs.Value, fallback Code) *Error {
	code, _ := gojs.GetProperty(v, "code").(string)
	msg, _ := gojs.GetProperty(v, "message").(string)
	if msg == "" {
		msg = gojs.ToString(v)
	}
	c := Code(code)
	if !c.Known() {
		c = fallback
	}
	return &Error{Code: c, Message: msg}
}

// load calls __imgembed.load with the host's fetch, cache, progress and an
// AbortSignal tied to ctx.
func (e *engine) load(ctx context.Context, source, tokenizer string) (Config, error) {
	var cfg Config
	// A low GC target while loading, as the native engine does: the
	// download's parts die as the module reads them, and with the default
	// target they would pile up beside the weights before a collection.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	err := e.do(ctx, func() error {
		sig, release := e.sigs.newSignal(ctx)
		defer release()
		opts := map[string]gojs.Value{
			"source": source,
			"tf":     e.ns.Object,
			"signal": sig,
			// The module may detach the buffers it made tensors from: the
			// download buffer is then freed once the graph is built, rather
			// than pinned by syscall/js refs. tf.tensor keeps the memory
			// it can and copies what is still viewed on detach
			// (tfjs.Namespace.unalias), so nothing is copied twice.
			"detach": true,
		}
		if t := e.opts.towers(); t != nil {
			opts["towers"] = gojs.NewArray(t...)
			opts["tokenizer"] = tokenizer
		}
		if isURL(source) && !e.opts.NoCache {
			opts["cache"] = cacheObject(e.rt, fileCache{dir: e.opts.CacheDir})
		}
		if e.opts.MaxPixels > 0 {
			opts["maxPixels"] = float64(e.opts.MaxPixels)
		}
		if e.opts.MaxDecodeBytes > 0 {
			opts["maxDecodeBytes"] = float64(e.opts.MaxDecodeBytes)
		}
		if e.opts.MaxBatch > 0 {
			opts["maxBatch"] = e.opts.MaxBatch
		}
		switch t := e.opts.FetchTimeout; {
		case t > 0:
			opts["fetchTimeout"] = float64(t) / float64(time.Millisecond)
		case t < 0:
			opts["fetchTimeout"] = 0 // no time-out
		}
		if e.opts.NoRevalidate {
			opts["revalidate"] = false
		}
		switch t := e.opts.DownloadTimeout; {
		case t > 0:
			opts["downloadTimeout"] = float64(t) / float64(time.Millisecond)
		case t < 0:
			opts["downloadTimeout"] = 0 // no time-out
		}
		if p := e.opts.Progress; p != nil {
			opts["onProgress"] = gojs.NewFunc("onProgress", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
				p(int64(gojs.ToNumber(argAt(a, 0))), int64(gojs.ToNumber(argAt(a, 1))))
				return nil, nil
			})
		}
		pr, err := e.rt.Call(e.life, e.api.Get("load"), e.api, gojs.NewObject(opts))
		if err != nil {
			return moduleError(err, InvalidModel)
		}
		v, err := e.rt.Await(e.life, pr)
		if err != nil {
			me := moduleError(err, InvalidModel)
			if me.Code == Aborted && ctx.Err() != nil {
				me.Err = context.Cause(ctx)
			}
			return me
		}
		m, ok := v.(*gojs.Object)
		if !ok {
			return newError(InvalidModel, nil, "load resolved to %s, not a model", gojs.TypeOf(v))
		}
		e.model = m
		// Load-time temporaries (transposes, concatenations) sit in the
		// kernels' buffer pool and the weights' download buffer is garbage
		// now: give both back to the OS rather than carry them for the
		// process's lifetime.
		e.ops.ReleaseBuffers()
		debug.FreeOSMemory()
		c, _ := m.Get("config").(*gojs.Object)
		num := func(k string) int { return gojs.ToInt(c.Get(k)) }
		cfg = Config{
			EmbeddingSize: num("embeddingSize"), ImageSize: num("imageSize"), PatchSize: num("patchSize"),
			HiddenSize: num("hiddenSize"), Layers: num("layers"), Heads: num("heads"), MLPSize: num("mlpSize"),
			DType: gojs.ToString(c.Get("dtype")), WeightBytes: int64(gojs.ToNumber(c.Get("weightBytes"))),
			Text: textConfigOf(c),
		}
		return nil
	})
	if err != nil {
		return Config{}, asError(err, InvalidModel)
	}
	return cfg, nil
}

// value is an input as the module takes it: bytes (a path is read here,
// through openImage), a URL for the module to fetch, or {pixels}.
func value(in embed.Input) (gojs.Value, error) {
	switch {
	case in.Err != nil:
		return nil, in.Err
	case in.Pixels != nil:
		return gojs.NewObject(map[string]gojs.Value{"pixels": gojs.NewFloat32Array(in.Pixels)}), nil
	case in.URL != "":
		return in.URL, nil
	case in.Path != "":
		b, err := openImage(in.Path)
		if err != nil {
			return nil, err
		}
		return gojs.NewUint8Array(b), nil
	}
	return gojs.NewUint8Array(in.Bytes), nil
}

// each runs the inputs through model.forward in one call (the module
// batches and fetches ahead itself).
func (e *engine) each(ctx context.Context, inputs []embed.Input, emit func(int, embed.Result)) error {
	vals := make([]gojs.Value, 0, len(inputs))
	var idx []int
	res := make([]embed.Result, len(inputs))
	for i, in := range inputs {
		v, err := value(in)
		if err != nil {
			res[i].Err = asError(err, InvalidInput)
			continue
		}
		vals = append(vals, v)
		idx = append(idx, i)
	}
	if len(vals) > 0 {
		out, errs, err := e.call(ctx, "forward", vals)
		if err != nil {
			return err
		}
		for k, i := range idx {
			res[i] = embed.Result{Embedding: out[k], Err: errs[k]}
		}
	}
	for i, r := range res {
		emit(i, r)
	}
	return nil
}

// call runs the model's method (forward or forwardText) over vals: one
// embedding or one typed error per value, or one error for the whole call.
func (e *engine) call(ctx context.Context, method string, vals []gojs.Value) ([][]float32, []error, error) {
	out := make([][]float32, len(vals))
	errs := make([]error, len(vals))
	err := e.do(ctx, func() error {
		if e.model == nil {
			return newError(ModelNotLoaded, nil, "no model loaded")
		}
		pr, err := e.rt.Call(e.life, e.model.Get(method), e.model, gojs.NewArray(vals...))
		if err != nil {
			return moduleError(err, InvalidInput)
		}
		v, err := e.rt.Await(e.life, pr)
		if err != nil {
			return moduleError(err, InvalidInput)
		}
		arr, ok := v.(*gojs.Array)
		if !ok || len(arr.Elems) != len(vals) {
			return newError(InvalidModel, nil, "%s resolved to %s, not %d results", method, gojs.ToString(v), len(vals))
		}
		for i, r := range arr.Elems {
			if ta, ok := r.(*gojs.TypedArray); ok && ta.Kind() == gojs.Float32 {
				out[i] = append([]float32(nil), float32s(ta)...)
				continue
			}
			errs[i] = codedValue(r, InvalidInput)
		}
		return nil
	})
	if err != nil {
		return nil, nil, asError(err, InvalidInput)
	}
	return out, errs, nil
}

// float32s reads a Float32Array, aligned or not.
func float32s(t *gojs.TypedArray) []float32 {
	b := t.Bytes()
	out := make([]float32, t.Len())
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// preprocess calls __imgembed.preprocess(bytes, {size}).
func (e *engine) preprocess(ctx context.Context, in embed.Input, size int) ([]float32, error) {
	v, err := value(in)
	if err != nil {
		return nil, asError(err, InvalidInput)
	}
	var out []float32
	err = e.do(ctx, func() error {
		opts := map[string]gojs.Value{"size": size}
		if e.opts.MaxPixels > 0 {
			opts["maxPixels"] = float64(e.opts.MaxPixels)
		}
		if e.opts.MaxDecodeBytes > 0 {
			opts["maxDecodeBytes"] = float64(e.opts.MaxDecodeBytes)
		}
		pr, err := e.rt.Call(e.life, e.api.Get("preprocess"), e.api, v, gojs.NewObject(opts))
		if err != nil {
			return moduleError(err, InvalidInput)
		}
		v, err := e.rt.Await(e.life, pr)
		if err != nil {
			return moduleError(err, InvalidInput)
		}
		ta, ok := v.(*gojs.TypedArray)
		if !ok || ta.Kind() != gojs.Float32 {
			return newError(InvalidModel, nil, "preprocess resolved to %s, not a Float32Array", gojs.ToString(v))
		}
		out = float32s(ta)
		return nil
	})
	if err != nil {
		return nil, asError(err, InvalidInput)
	}
	return out, nil
}
