//go:build js && wasm

package main

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall/js"
	"time"
	"unsafe"

	"github.com/imgembed/imgembed/wasm/api"
	"github.com/imgembed/imgembed/wasm/embed"
	"github.com/imgembed/imgembed/wasm/imagefile"
	"github.com/imgembed/imgembed/wasm/jsops"
	"github.com/imgembed/imgembed/wasm/loader"
	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/tokenizer"
	"github.com/imgembed/imgembed/wasm/vit"
	"github.com/imgembed/imgembed/weights"
)

// Error codes of the JS API (ImageEmbeddingsError.code).
const (
	codeModelNotLoaded = api.ModelNotLoaded
	codeInvalidInput   = api.InvalidInput
	codeDownloadFailed = api.DownloadFailed
	codeAborted        = api.Aborted
	codeInvalidModel   = api.InvalidModel
)

// maxImageFileBytes bounds an image fetched from a URL (ImageTooLarge
// beyond it).
const maxImageFileBytes = api.MaxImageFileBytes

// defaultFetchTimeout bounds fetching one image URL (response and whole
// body) unless opts.fetchTimeout says otherwise: forward calls run one at a
// time per model, so a server that never finishes would block every later
// call.
const defaultFetchTimeout = api.DefaultFetchTimeout

// errFetchTimeout is the cause of a fetch that ran out of time; errAborted
// that of a forward call whose signal was aborted.
var (
	errFetchTimeout = errors.New("timed out")
	errAborted      = errors.New("aborted")
)

// signalContext returns a context that ends with cause errAborted when the
// AbortSignal sig (if it is one) aborts; stop removes the listener.
func signalContext(sig js.Value) (ctx context.Context, stop func()) {
	if sig.Type() != js.TypeObject {
		return context.Background(), func() {}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	if sig.Get("aborted").Truthy() {
		cancel(errAborted)
		return ctx, func() {}
	}
	if sig.Get("addEventListener").Type() != js.TypeFunction {
		return ctx, func() { cancel(nil) }
	}
	fn := js.FuncOf(func(js.Value, []js.Value) any {
		cancel(errAborted)
		return nil
	})
	if _, err := catch(func() js.Value { return sig.Call("addEventListener", "abort", fn) }); err != nil {
		fn.Release()
		return ctx, func() { cancel(nil) }
	}
	return ctx, func() {
		// JS runs one thing at a time: once removed, fn cannot be called.
		catch(func() js.Value { return sig.Call("removeEventListener", "abort", fn) }) //nolint:errcheck // best effort
		fn.Release()
		cancel(nil)
	}
}

// fetchTimeoutOf reads opts.fetchTimeout (milliseconds; 0: no timeout;
// absent or not a number: the default).
func fetchTimeoutOf(opts js.Value) time.Duration {
	if opts.Type() != js.TypeObject {
		return defaultFetchTimeout
	}
	v := opts.Get("fetchTimeout")
	if v.Type() != js.TypeNumber || v.Float() < 0 || v.Float() != v.Float() {
		return defaultFetchTimeout
	}
	return time.Duration(v.Float() * float64(time.Millisecond))
}

// downloadTimeoutOf reads opts.downloadTimeout (milliseconds without a
// byte of the model download before it fails as stalled; 0: never; absent
// or not a number: the loader's default, 60 s) as a loader StallTimeout.
func downloadTimeoutOf(opts js.Value) time.Duration {
	v := opts.Get("downloadTimeout")
	if v.Type() != js.TypeNumber || v.Float() < 0 || v.Float() != v.Float() {
		return 0
	}
	if v.Float() == 0 {
		return -1
	}
	return time.Duration(v.Float() * float64(time.Millisecond))
}

// model is one loaded graph and the queue of forward calls into it.
type model struct {
	vm       *vit.Model // nil when loaded without the vision tower
	text     *textPart  // nil when loaded without the text tower
	o        *jsops.Ops
	cfg      weights.Config
	images   embed.Images // how image inputs are fetched, decoded and preprocessed
	maxBatch int
	dtype    string
	bytes    int64

	mu       sync.Mutex
	queue    []job
	running  bool
	disposed bool // no new calls accepted
	freed    bool
}

type job struct {
	inputs          js.Value
	text            bool     // a forwardText call
	signal          js.Value // the call's AbortSignal, or undefined
	resolve, reject js.Value
}

// loadModel implements __imgembed.load(opts).
func loadModel(opts js.Value) (any, error) {
	if opts.Type() != js.TypeObject {
		return nil, coded(codeInvalidInput, nil, "load: options object required")
	}
	tf := opts.Get("tf")
	if tf.Type() != js.TypeObject {
		tf = js.Global().Get("tf")
	}
	o, err := jsops.New(tf)
	if err != nil {
		return nil, coded(codeInvalidModel, err, "load: TensorFlow.js is not set up")
	}
	// opts.backend: {asyncRead, upload, activate, weightsLeft, copiesNow} (see
	// jsops.Backend).
	if b := opts.Get("backend"); b.Type() == js.TypeObject {
		o.UseBackend(jsops.Backend{AsyncRead: b.Get("asyncRead").Truthy(), Upload: b.Get("upload"), Activate: b.Get("activate"),
			WeightsLeft: b.Get("weightsLeft").Truthy()})
	}
	fetch := opts.Get("fetch")
	if fetch.Type() != js.TypeFunction {
		fetch = js.Global().Get("fetch")
	}
	var hfConfig []byte
	if c := opts.Get("config"); c.Type() == js.TypeString {
		hfConfig = []byte(c.String())
	}
	env := &jsEnv{fetch: fetch, signal: opts.Get("signal")}
	if !isNode() {
		// Browsers: a chunk of a fetch body is freed by a garbage
		// collection only (detaching it does not free it), so the download
		// is read into buffers of ours, reused (BYOB reads). Node frees a
		// detached chunk at once.
		env.pool = &chunkPool{}
	}
	towers, err := towersOf(opts)
	if err != nil {
		return nil, err
	}
	var tok *tokenizer.Tokenizer
	if towers&loader.Text != 0 {
		if tok, err = tokenizerOf(opts); err != nil { // before any download
			return nil, err
		}
	}

	// A file that changes on the server while it streams (its ETag or
	// size differs between requests) was partly read into the graph: the
	// whole load starts over, once.
	m, err := loadOnce(opts, o, env, hfConfig, towers, tok, nil)
	if loader.Changed(err) && !env.Aborted() {
		m, err = loadOnce(opts, o, env, hfConfig, towers, tok, nil)
	}
	// A cache entry read as a stream that turns out damaged (its digest,
	// checked once every byte has passed, or bytes cut short) was deleted:
	// the model built from it is dropped and the load downloads the file.
	if why, ok := loader.Damaged(err); ok && !env.Aborted() {
		m, err = loadOnce(opts, o, env, hfConfig, towers, tok, why)
	}
	if loader.Changed(err) {
		return nil, coded(codeDownloadFailed, err, "load: %s changed during download (twice)", opts.Get("source").String())
	}
	if err != nil {
		return nil, err
	}
	return m.object(), nil
}

// isNode reports whether the module runs in Node.
func isNode() bool {
	v := js.Global().Get("process")
	return v.Type() == js.TypeObject && v.Get("versions").Type() == js.TypeObject &&
		v.Get("versions").Get("node").Type() == js.TypeString
}

// loadOnce reads the weights of opts.source and builds the graphs from
// them; a URL's tensors are read while they download (loader.Stream).
func loadOnce(opts js.Value, o *jsops.Ops, env *jsEnv, hfConfig []byte, towers loader.Towers, tok *tokenizer.Tokenizer, damaged error) (*model, error) {
	fetch := opts.Get("fetch")
	if fetch.Type() != js.TypeFunction {
		fetch = js.Global().Get("fetch")
	}
	maxBatch := 8
	if b := opts.Get("maxBatch"); b.Type() == js.TypeNumber && b.Int() > 0 {
		maxBatch = b.Int()
	}
	var err error
	var f *loader.File
	var st *loader.Streamed // a download in progress (nil: all bytes here)
	owned := false          // f.Data is ours to free (not the caller's bytes)
	src := opts.Get("source")
	if u8, ok := u8Of(src); ok {
		// Unchecked: the getter's decoder refuses NaN and infinity as it
		// reads each tensor (one pass over the bytes, not two).
		if f, err = loader.OpenUnchecked(jsBytes{u8}, hfConfig, towers); err != nil {
			return nil, coded(loader.CodeOf(err), err, "load")
		}
	} else if src.Type() == js.TypeString {
		if fetch.Type() != js.TypeFunction {
			return nil, coded(codeDownloadFailed, nil, "load: no fetch function")
		}
		lo := loader.Options{Env: env, HFConfig: hfConfig, StallTimeout: downloadTimeoutOf(opts), Towers: towers, DamagedCache: damaged,
			NoRevalidate: opts.Get("revalidate").Type() == js.TypeBoolean && !opts.Get("revalidate").Bool()}
		if isNode() {
			// Node's allocator (glibc malloc) keeps the pages of freed
			// blocks under 32 MiB: parts of 33 MiB and more are mapped on
			// their own and given back as soon as they are freed. (Only
			// when a cache keeps the whole download until it is written:
			// otherwise each tensor's part is freed as soon as it is read,
			// and the next ones reuse its memory.)
			lo.MinPartBytes = 33 << 20
		}
		if c := opts.Get("cache"); c.Type() == js.TypeObject {
			lo.Cache = jsCache{c}
			if c.Get("openWriter").Type() == js.TypeFunction {
				lo.Cache = jsStreamCache{jsCache{c}}
			}
		}
		if p := opts.Get("onProgress"); p.Type() == js.TypeFunction {
			lo.Progress = func(loaded, total int64) {
				catch(func() js.Value { return p.Invoke(loaded, total) }) //nolint:errcheck // a throwing callback must not break the load
			}
		}
		if st, err = loader.Stream(src.String(), lo); err != nil {
			return nil, err // its message names the source
		}
		f, owned = st.File, true
	} else {
		return nil, coded(codeInvalidInput, nil, "load: source must be a URL string or bytes, got %s", src.Type())
	}
	if env.Aborted() {
		if st != nil {
			st.Close()
		}
		return nil, coded(codeAborted, nil, "load aborted")
	}

	// opts.detach says that tf.tensor copies its values (tfjs-wasm does;
	// tfjs-cpu keeps them), so buffers the module made can be freed at once.
	// The getter copies every tensor into Go before tf sees it, so the
	// download's parts (ours) can be freed as they are read, whatever the
	// backend. opts.detach says that tf.tensor copies its values (tfjs-wasm
	// does; tfjs-cpu and the wazero host keep them), so the Float32Arrays
	// the module makes for it may be detached at once.
	detachCopied := opts.Get("detach").Truthy()
	get := tensorGetter(f, st, owned)
	var mo ops.Ops = o
	var stage *staging
	if detachCopied {
		d := detachingOps{Ops: o}
		if b := opts.Get("backend"); b.Type() == js.TypeObject && b.Get("copiesNow").Truthy() {
			// tf.tensor copies the values before it returns (tfjs-wasm;
			// not the Go host's tf, which aliases them until they are
			// detached): one staging array serves every weight.
			stage = &staging{on: true}
			d.stage = stage
		}
		mo = d
	}
	// The wazero host's tf serves fused kernels (tf.imgembed, see
	// jsops.WithFused); on TensorFlow.js mo stays as it is.
	mo = o.WithFused(mo)
	var vm *vit.Model
	var text *textPart
	func() {
		// A low GC target while loading: the Go heap is this module's wasm
		// memory, which never shrinks, and each tensor's read and derived
		// copies die young.
		defer debug.SetGCPercent(debug.SetGCPercent(20))
		defer o.Begin()()
		if towers&loader.Vision != 0 {
			// jsops.Tensor copies Go values into JS: build reuses its buffers.
			vm, err = vit.LoadWith(mo, f.Config, get, vit.LoadOptions{Copies: true})
		}
		if err == nil && towers&loader.Text != 0 {
			if text, err = loadText(mo, f, tok, get); err != nil && vm != nil {
				vm.Dispose()
			}
		}
	}()
	if st != nil {
		if st.Err() != nil {
			// The download failed under the build (the decoder's error
			// may not carry the loader's code).
			err = st.Err()
		}
		if err == nil {
			// Caches the download (when a cache is set), checks a cache
			// entry read as a stream, and reports the end of the download.
			if err = st.Finish(); err != nil {
				if vm != nil {
					vm.Dispose()
				}
				text.dispose()
				vm, text = nil, nil
			}
		} else {
			// (a cache entry that fails the build is damaged: Damaged)
			err = st.Failed(err)
		}
		st.Close()
	}
	stage.done()
	cfg, dtype, weightBytes := f.Config, string(f.DType), f.WeightBytes
	if owned {
		// The weights now live in tf's memory. Free the download buffer
		// now rather than when Go finalizes every js.Value that views it:
		// syscall/js refs live in Go's tiny-object blocks and a neighbour
		// can keep one (and so the whole buffer) alive indefinitely.
		switch d := f.Data.(type) {
		case jsBytes:
			detach(d.v)
		case *loader.Parts: // what the getter has not freed (header, scales)
			for _, b := range d.Buffers() {
				if jb, ok := b.(jsBytes); ok { // not yet released
					detach(jb.v)
				}
			}
		}
	}
	f = nil
	runtime.GC()
	if _, damaged := loader.Damaged(err); damaged || loader.Changed(err) {
		return nil, err
	}
	if code := loader.CodeOf(err); code != "" {
		// Reading the download failed (DownloadFailed, Aborted, or a
		// truncated file: InvalidModel); its message names the source.
		return nil, coded(code, err, "load")
	}
	if err != nil {
		return nil, coded(codeInvalidModel, err, "load: building the graph")
	}
	if env.Aborted() {
		if vm != nil {
			vm.Dispose()
		}
		text.dispose()
		return nil, coded(codeAborted, nil, "load aborted")
	}
	m := &model{vm: vm, text: text, o: o, cfg: cfg, maxBatch: maxBatch, dtype: dtype, bytes: weightBytes,
		images: embed.Images{Size: cfg.ImageSize, Mean: cfg.ImageMean, Std: cfg.ImageStd,
			MaxPixels: limitsOf(opts).MaxPixels, MaxDecodeBytes: limitsOf(opts).MaxDecodeBytes, Fetcher: jsFetcher{fetch, fetchTimeoutOf(opts)}}}
	return m, nil
}

// tensorGetter reads each stored tensor into Go memory with
// weights.Decoder (F32 copied, F16/BF16 converted, int8 dequantised; NaN
// and infinity refused when the file was opened unchecked), for vit and
// textmodel to derive the run-time weights from in Go: tf only ever
// receives finished weights. A streamed download (st) is read through st,
// which fetches each tensor when it is asked for; a downloaded tensor's
// part is freed as soon as it is read, so the download and the weights are
// never both whole.
func tensorGetter(f *loader.File, st *loader.Streamed, freeParts bool) weights.Getter {
	read := func(p []byte, off int64) error { f.Data.CopyTo(p, off); return nil }
	release := func(int64) loader.Buffer { return nil }
	if st != nil {
		read, release = st.Read, st.Release
	} else if parts, ok := f.Data.(*loader.Parts); ok && freeParts {
		release = parts.Release
	}
	dec := weights.NewDecoder(f.Header, read)
	dec.CheckFinite = f.Unchecked
	return func(name string, buf []float32) ([]float32, []int, error) {
		v, shape, err := dec.Get(name, buf)
		if err != nil {
			return nil, nil, err
		}
		// The tensor and, for int8, its scales are read.
		for _, n := range []string{name, weights.ScaleName(name)} {
			if ti, ok := f.Tensor(n); ok && ti.Len() > 0 {
				if b, ok := release(ti.Begin).(jsBytes); ok {
					detach(b.v)
				}
			}
		}
		return v, shape, nil
	}
}

// detachingOps creates tensors from Go values through a Float32Array that
// is detached as soon as tf has copied it (tfjs-wasm does): a syscall/js
// reference can outlive its use in Go's tiny-object blocks and keep a
// whole weight's copy alive.
//
// While loading, stage (when set) keeps one array that every weight
// passes through in turn: a new array per weight (up to 9.4 MB for
// ViT-B/32) would leave its freed memory to the JS engine's allocator,
// which does not give all of it back (glibc keeps blocks under 32 MiB).
type detachingOps struct {
	*jsops.Ops
	stage *staging
}

// staging is a reusable ArrayBuffer for weights on their way to tf.
type staging struct {
	on  bool
	buf js.Value // an ArrayBuffer, or undefined
	n   int      // its bytes
}

// done detaches the staging array: later tensors (forward's inputs) get
// arrays of their own.
func (s *staging) done() {
	if s == nil || !s.on {
		return
	}
	s.on = false
	if s.buf.Type() == js.TypeObject {
		detach(jsUint8Array.New(s.buf))
	}
	s.buf = js.Undefined()
}

func (o detachingOps) Tensor(values []float32, shape ...int) ops.Tensor {
	if s := o.stage; s != nil && s.on && len(values) > 0 {
		if s.n < 4*len(values) {
			s.done()
			s.on = true
			s.buf = jsArrayBuffer.New(4 * len(values))
			s.n = 4 * len(values)
		}
		js.CopyBytesToJS(jsUint8Array.New(s.buf, 0, 4*len(values)), unsafe.Slice((*byte)(unsafe.Pointer(&values[0])), 4*len(values)))
		return o.FromJS(jsFloat32Array.New(s.buf, 0, len(values)), shape...)
	}
	arr := o.Float32Array(values)
	t := o.FromJS(arr, shape...)
	detach(arr)
	return t
}

// object is the JS Model object.
func (m *model) object() js.Value {
	obj := jsObject.New()
	c := jsObject.New()
	if m.vm != nil {
		c.Set("embeddingSize", m.cfg.ProjectionDim)
		c.Set("imageSize", m.cfg.ImageSize)
		c.Set("patchSize", m.cfg.PatchSize)
		c.Set("hiddenSize", m.cfg.HiddenSize)
		c.Set("layers", m.cfg.NumLayers)
		c.Set("heads", m.cfg.NumHeads)
		c.Set("mlpSize", m.cfg.IntermediateSize)
	}
	if m.text != nil {
		tc := m.text.tm.Config()
		c.Set("text", textConfigObject(tc, m.text.logitScale))
		if m.vm == nil {
			c.Set("embeddingSize", tc.ProjectionDim)
		}
	}
	c.Set("dtype", m.dtype)
	c.Set("weightBytes", m.bytes)
	obj.Set("config", c)
	var forward, dispose js.Func
	forward = js.FuncOf(func(_ js.Value, args []js.Value) any {
		in, opts := js.Undefined(), js.Undefined()
		if len(args) > 0 {
			in = args[0]
		}
		if len(args) > 1 {
			opts = args[1]
		}
		return m.enqueue(in, opts, false)
	})
	forwardText := js.FuncOf(func(_ js.Value, args []js.Value) any {
		return m.enqueue(arg(args, 0), arg(args, 1), true)
	})
	dispose = js.FuncOf(func(js.Value, []js.Value) any {
		m.dispose()
		return nil
	})
	obj.Set("forward", forward)
	obj.Set("forwardText", forwardText)
	obj.Set("dispose", dispose)
	return obj
}

// enqueue returns a Promise for the results of inputs; calls run one at a
// time, in call order, on one worker goroutine.
func (m *model) enqueue(inputs, opts js.Value, text bool) js.Value {
	signal := js.Undefined()
	if opts.Type() == js.TypeObject {
		signal = opts.Get("signal")
	}
	exec := js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.disposed {
			reject.Invoke(errorValue(coded(codeModelNotLoaded, nil, "forward: the model was disposed"), codeModelNotLoaded))
			return nil
		}
		if !isInstance(inputs, jsArray) {
			reject.Invoke(errorValue(coded(codeInvalidInput, nil, "forward: inputs must be an Array"), codeInvalidInput))
			return nil
		}
		m.queue = append(m.queue, job{inputs: inputs, text: text, signal: signal, resolve: resolve, reject: reject})
		if !m.running {
			m.running = true
			go m.work()
		}
		return nil
	})
	defer exec.Release()
	return jsPromise.New(exec)
}

func (m *model) work() {
	for {
		m.mu.Lock()
		if len(m.queue) == 0 {
			m.running = false
			if m.disposed && !m.freed {
				m.free()
			}
			m.mu.Unlock()
			return
		}
		j := m.queue[0]
		m.queue = m.queue[1:]
		m.mu.Unlock()
		ctx, stop := signalContext(j.signal)
		v, err := run(func() (any, error) {
			if j.text {
				return m.forwardText(ctx, j.inputs), nil
			}
			return m.forward(ctx, j.inputs), nil
		})
		stop()
		if err != nil {
			j.reject.Invoke(errorValue(err, codeInvalidInput))
			continue
		}
		j.resolve.Invoke(v)
	}
}

func (m *model) dispose() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.disposed = true
	if !m.running && !m.freed {
		m.free()
	}
}

// free disposes the tensors and drops the references the model holds: the
// forward and dispose functions cannot be released (a JS call to a released
// js.Func kills the Go program), so they keep m reachable for good.
func (m *model) free() {
	m.freed = true
	if m.vm != nil {
		m.vm.Dispose()
	}
	m.text.dispose()
	m.vm, m.text, m.o = nil, nil, nil
	m.images.Fetcher = nil
}

// forward embeds every input through wasm/embed's pipeline (the same
// orchestration as the native engine); failures are per input. Once ctx
// ends (the call's signal aborted) the inputs not yet embedded fail with
// Aborted and their fetches are aborted.
func (m *model) forward(ctx context.Context, inputs js.Value) js.Value {
	n := inputs.Length()
	out := jsArray.New(n)
	if m.vm == nil {
		for i := 0; i < n; i++ {
			out.SetIndex(i, errorObject(coded(codeInvalidInput, nil, "this model was loaded without its vision tower"), codeInvalidInput))
		}
		return out
	}
	ins := make([]embed.Input, n)
	for i := range ins {
		ins[i] = inputOf(inputs.Index(i))
	}
	t := m.images.Tower(func(_ context.Context, rows []float32, n int) ([][]float32, error) {
		defer m.o.Begin()()
		embs, err := m.vm.Forward(rows, n)
		if err != nil {
			return nil, coded(codeInvalidInput, err, "forward")
		}
		return embs, nil
	})
	t.MaxBatch = m.maxBatch
	// One decode at a time: the module has one thread, and each decode
	// holds a whole image. URL inputs are fetched a window ahead (their
	// bodies stay in JS until decoded), so that a call with many URLs does
	// not wait for each in turn nor hold every image's bytes at once.
	t.Workers, t.Window = 1, max(m.maxBatch, 4)
	t.Check = func(emb []float32) error {
		if err := vit.CheckEmbedding(emb); err != nil {
			return coded(codeInvalidModel, err, "forward")
		}
		return nil
	}
	t.Each(ctx, ins, func(i int, r embed.Result) {
		if r.Err != nil {
			out.SetIndex(i, errorObject(r.Err, codeInvalidInput))
			return
		}
		out.SetIndex(i, m.o.Float32Array(r.Embedding))
	})
	return out
}

// limitsOf reads opts.maxPixels and opts.maxDecodeBytes (0 or absent:
// imagefile's defaults).
func limitsOf(opts js.Value) imagefile.Options {
	var o imagefile.Options
	if opts.Type() != js.TypeObject {
		return o
	}
	if v := opts.Get("maxPixels"); v.Type() == js.TypeNumber && v.Float() > 0 {
		o.MaxPixels = int64(v.Float())
	}
	if v := opts.Get("maxDecodeBytes"); v.Type() == js.TypeNumber && v.Float() > 0 {
		o.MaxDecodeBytes = int64(v.Float())
	}
	return o
}

func intField(v js.Value, name string) int {
	f := v.Get(name)
	if f.Type() != js.TypeNumber {
		return 0
	}
	return f.Int()
}

// preprocessAPI implements __imgembed.preprocess(input, opts).
func preprocessAPI(input, opts js.Value) (any, error) {
	size := 0
	mean, std := weights.DefaultImageMean, weights.DefaultImageStd
	fetch := js.Global().Get("fetch")
	if opts.Type() == js.TypeObject {
		size = intField(opts, "size")
		if f := opts.Get("fetch"); f.Type() == js.TypeFunction {
			fetch = f
		}
		for _, t := range []struct {
			name string
			dst  *[3]float32
		}{{"mean", &mean}, {"std", &std}} {
			a := opts.Get(t.name)
			if a.Type() != js.TypeObject {
				continue
			}
			if a.Length() != 3 {
				return nil, coded(codeInvalidInput, nil, "preprocess: %s must have 3 values", t.name)
			}
			for i := 0; i < 3; i++ {
				t.dst[i] = float32(a.Index(i).Float())
			}
		}
	}
	if size <= 0 || size > api.MaxPreprocessSize {
		return nil, coded(codeInvalidInput, nil, "preprocess: size must be in 1..%d, got %d", api.MaxPreprocessSize, size)
	}
	im := embed.Images{Size: size, Mean: mean, Std: std, MaxPixels: limitsOf(opts).MaxPixels, MaxDecodeBytes: limitsOf(opts).MaxDecodeBytes,
		Fetcher: jsFetcher{fetch, fetchTimeoutOf(opts)}, NoPixels: true}
	dst := make([]float32, im.RowLen())
	if err := im.Prepare(context.Background(), inputOf(input), dst); err != nil {
		return nil, err
	}
	return float32Array(dst), nil
}

// float32Array copies v into a new Float32Array.
func float32Array(v []float32) js.Value {
	f := jsFloat32Array.New(len(v))
	if len(v) > 0 {
		js.CopyBytesToJS(jsUint8Array.New(f.Get("buffer")), unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
	}
	return f
}
