package host

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/imgembed/imgembed/weights/safetensors"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/imgembed/imgembed/wasm/api"
	"github.com/imgembed/imgembed/wasm/embed"
	"github.com/imgembed/imgembed/wasm/loader"
	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/wasm/tokenizer"
	"github.com/imgembed/imgembed/wasm/vit"
	"github.com/imgembed/imgembed/weights"
)

// nativeEngine runs the module's Go packages (loader, imagefile,
// preprocess, vit over the Go kernels) directly, orchestrated by
// wasm/embed: images of one call are decoded in parallel (up to Threads
// across all calls) while the previous batch runs through the graph.
type nativeEngine struct {
	opts   Options
	ops    *native.Ops
	vm     *vit.Model  // nil when loaded without the vision tower
	text   *nativeText // nil when loaded without the text tower
	images embed.Images
	slots  chan struct{} // decodes running at once, all calls together
	// fwd runs one forward pass at a time (the kernels use every thread)
	// and merges the image batches of concurrent calls into one pass.
	fwd *embed.Batcher[float32]

	// unmapCompiled releases the compiled weights the towers view (nil:
	// derived at load).
	unmapCompiled func()

	life   context.Context // cancelled by close, with cause errClosed
	cancel context.CancelCauseFunc
	calls  sync.RWMutex // held for reading by every call; close takes it to free the model
	once   sync.Once
}

func newNativeEngine(o Options) *nativeEngine {
	e := &nativeEngine{opts: o, slots: make(chan struct{}, o.Threads)}
	for range o.Threads {
		e.slots <- struct{}{}
	}
	e.life, e.cancel = context.WithCancelCause(context.Background())
	e.images = embed.Images{
		MaxPixels:      o.MaxPixels,
		MaxDecodeBytes: o.MaxDecodeBytes,
		Fetcher:        &httpImages{client: o.HTTPClient, timeout: fetchTimeout(o.FetchTimeout)},
		Opener:         fileOpener{},
		Threads:        o.Threads,
	}
	return e
}

func fetchTimeout(t time.Duration) time.Duration {
	switch {
	case t == 0:
		return api.DefaultFetchTimeout
	case t < 0:
		return 0
	}
	return t
}

// load reads the model: a local file through a ReaderAt, tensor by tensor;
// a URL through the same loader, Range requests and on-disk cache as the
// module uses (so both engines share the cache entries).
func (e *nativeEngine) load(ctx context.Context, source, tokenizerJSON string) (Config, error) {
	towers := loader.Vision
	var tok *tokenizer.Tokenizer
	if e.opts.Text || e.opts.TextOnly {
		towers |= loader.Text
		if e.opts.TextOnly {
			towers = loader.Text
		}
		var err error
		if tok, err = tokenizer.Parse([]byte(tokenizerJSON)); err != nil {
			return Config{}, newError(InvalidModel, err, "tokenizer.json")
		}
	}
	// A low GC target while loading: the download's parts, each tensor's
	// decoded copy and build's per-layer temporaries die young, and with the
	// default target the heap runs to twice the weights before a collection
	// (ViT-B/32 F32: peak 2.26x the F32 weights at 100, 1.27x at 10;
	// make bench-mem). The setting is process-wide and restored after.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	var f *loader.File
	var cc *compiledCache // the model file's compiled weights
	var files []*os.File
	defer func() {
		for _, fh := range files {
			fh.Close()
		}
	}()
	var lo loader.Options
	if isURL(source) {
		lo = loader.Options{Env: &goEnv{ctx: ctx, client: e.opts.HTTPClient}, Progress: e.opts.Progress, StallTimeout: e.opts.DownloadTimeout, Towers: towers, NoRevalidate: e.opts.NoRevalidate}
		if !e.opts.NoCache {
			lo.Cache = &diskCache{fc: fileCache{dir: e.opts.CacheDir}, opened: &files}
		}
		if !e.opts.NoCache {
			// A download cache entry is a local file: it has compiled
			// weights like one, and when they exist the entry's tensors
			// need neither the NaN scan nor the digest (load's CRCs
			// check what is used instead).
			lo.Vouched = func(b loader.Bytes) bool {
				cc = compiledFor(e.opts.CacheDir, b, lo.HFConfig, towers)
				return cc != nil && cc.present()
			}
		}
		var err error
		if f, err = loader.Load(source, lo); err != nil {
			if ctx.Err() != nil {
				return Config{}, abortedError(ctx, "load")
			}
			return Config{}, api.As(err, InvalidModel)
		}
		if !f.FromCache {
			// A download, just written to the cache: its entry gets
			// compiled weights now, so that the next load maps them.
			cc = nil
			if !e.opts.NoCache {
				if fh, err := os.Open(fileCache{dir: e.opts.CacheDir}.path(loader.CacheKeyFor(source, towers))); err == nil {
					files = append(files, fh)
					cc, _ = newCompiledCache(e.opts.CacheDir, fh.Name(), fh, f)
				}
			}
		}
	} else {
		fh, err := os.Open(source)
		if err != nil {
			return Config{}, newError(DownloadFailed, err, "cannot open the model file %s", source)
		}
		files = append(files, fh)
		st, err := fh.Stat()
		if err != nil {
			return Config{}, newError(DownloadFailed, err, "model file %s", source)
		}
		fb := &fileBytes{f: fh, size: st.Size()}
		// Unchecked: the decoder refuses NaN and infinity as it reads
		// each tensor, so the file is read once.
		if f, err = loader.OpenUnchecked(fb, nil, towers); err == nil && fb.err != nil {
			err = fb.err
		}
		if err != nil {
			return Config{}, newError(InvalidModel, err, "%s", source)
		}
		if !e.opts.NoCache {
			cc, _ = newCompiledCache(e.opts.CacheDir, source, fh, f)
		}
	}
	e.ops = native.New(e.opts.Threads)
	var vm *vit.Model
	if cc != nil {
		// A miss or an unusable entry: derived below, then saved (not
		// when the cache's file system cannot map it: it would not be
		// used either).
		ct, unmap, err := cc.load(e.ops, f, e.opts.Threads)
		if err == nil && ct.text != nil {
			if err = checkTokenizer(tok, *f.Text); err != nil {
				ct.dispose()
				unmap()
				e.ops.Close()
				return Config{}, newError(InvalidModel, err, "%s", source)
			}
			e.text = &nativeText{tm: ct.text, tok: tok, logitScale: ct.logitScale}
		}
		if err == nil {
			vm, e.unmapCompiled = ct.vision, unmap
		}
		if err == nil || errors.Is(err, errUnmappable) {
			cc = nil
		}
		if err != nil && f.Vouched {
			// Its tensors were not checked: load again, checking them.
			for _, fh := range files {
				fh.Close()
			}
			files = files[:0]
			lo.Vouched = nil
			if f, err = loader.Load(source, lo); err != nil {
				e.ops.Close()
				if ctx.Err() != nil {
					return Config{}, abortedError(ctx, "load")
				}
				return Config{}, api.As(err, InvalidModel)
			}
		}
	}
	read := func(p []byte, off int64) error { return readAt(f.Data, p, off) }
	dec := weights.NewDecoder(f.Header, read)
	// The weights are copied off the heap (load mode) while the download's
	// parts die on it; nothing else allocates much, so the collector would
	// not run and the parts would stay beside their copies: give them back
	// every so often.
	var dropped int64
	drop := func(n int64) {
		if dropped += n; dropped >= 16<<20 {
			dropped = 0
			debug.FreeOSMemory()
		}
	}
	dec.CheckFinite = f.Unchecked
	dec.Threads = e.opts.Threads // large F32 tensors read and checked in pieces at once
	// get hands vit/textmodel each stored tensor as float32 values, which
	// they derive the run-time weights from in Go (weights.Getter).
	get := func(name string, buf []float32) ([]float32, []int, error) {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if v, info, ok := f32View(f, name); ok {
			// A downloaded F32 tensor's own part, viewed in place (no
			// decoded copy beside it; the graphs read through
			// weights.GetInto, which copies it into buf); released to the
			// GC once read.
			drop(info.Len())
			return v, info.Shape, nil
		}
		v, shape, err := dec.Get(name, buf)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", name, err)
		}
		if p, ok := f.Data.(*loader.Parts); ok {
			// The download's copy of this tensor (and of its int8 scales)
			// is no longer needed.
			for _, n := range []string{name, weights.ScaleName(name)} {
				if info, ok := f.Tensor(n); ok && info.Len() > 0 {
					p.Release(info.Begin)
					drop(info.Len())
				}
			}
		}
		return v, shape, nil
	}
	var err error
	// The weights go outside the Go heap (see native.Ops.SetLoading), so
	// the collector's target follows the working set, not the model.
	e.ops.SetLoading(true)
	defer e.ops.SetLoading(false)
	fromEntry := e.unmapCompiled != nil
	if towers&loader.Vision != 0 && !fromEntry {
		// AllocConst: each derived weight is built in off-heap memory that
		// the tensor adopts (no copy).
		vm, err = vit.LoadWith(e.ops, f.Config, get, vit.LoadOptions{Threads: e.opts.Threads, Alloc: e.ops.AllocConst})
	}
	if err == nil && towers&loader.Text != 0 && !fromEntry {
		if e.text, err = loadNativeText(e.ops, f, tok, get, e.opts.Threads); err != nil && vm != nil {
			vm.Dispose()
		}
	}
	if err != nil {
		e.ops.Close()
		if ctx.Err() != nil {
			return Config{}, abortedError(ctx, "load")
		}
		return Config{}, newError(InvalidModel, err, "building the graph from %s", source)
	}
	e.vm = vm
	if cc != nil {
		// Best effort: a full disk or a read-only cache costs the next
		// load its derivation, nothing else.
		ct := compiledTowers{vision: vm}
		if e.text != nil {
			ct.text, ct.logitScale = e.text.tm, e.text.logitScale
		}
		_ = cc.save(e.ops, ct, e.opts.Threads)
	}
	cfg, dtype, weightBytes := f.Config, f.DType, f.WeightBytes
	e.images.Size, e.images.Mean, e.images.Std = cfg.ImageSize, cfg.ImageMean, cfg.ImageStd
	e.fwd = embed.NewBatcher[float32](e.opts.MaxBatch, e.images.RowLen())
	// Load-time temporaries and the download buffer are garbage now.
	f = nil
	e.ops.ReleaseBuffers()
	debug.FreeOSMemory()
	c := Config{
		EmbeddingSize: cfg.ProjectionDim, ImageSize: cfg.ImageSize, PatchSize: cfg.PatchSize,
		HiddenSize: cfg.HiddenSize, Layers: cfg.NumLayers, Heads: cfg.NumHeads, MLPSize: cfg.IntermediateSize,
		DType: string(dtype), WeightBytes: weightBytes,
	}
	if e.text != nil {
		c.Text = e.text.config()
		if vm == nil {
			c.EmbeddingSize = c.Text.EmbeddingSize
		}
	}
	return c, nil
}

// call runs fn with a context that also ends when the engine closes; an
// Aborted error caused by the close becomes ModelNotLoaded.
func (e *nativeEngine) call(ctx context.Context, fn func(ctx context.Context) error) error {
	if !e.calls.TryRLock() {
		return errClosed
	}
	defer e.calls.RUnlock()
	if e.life.Err() != nil {
		return errClosed
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(e.life, func() { cancel(errEngineClosed) })
	defer stop()
	return fn(ctx)
}

var errEngineClosed = errors.New("the embedder is closed")

func closedAware(err error) error {
	if err != nil && errors.Is(err, errEngineClosed) {
		return &Error{Code: ModelNotLoaded, Message: "the embedder is closed", Err: err}
	}
	return err
}

func (e *nativeEngine) tower() *embed.Tower[embed.Input, float32] {
	t := e.images.Tower(func(_ context.Context, rows []float32, n int) ([][]float32, error) {
		out, err := e.vm.Forward(rows, n)
		if err != nil {
			return nil, newError(InvalidInput, err, "forward")
		}
		return out, nil
	})
	t.MaxBatch = e.opts.MaxBatch
	t.Workers = e.opts.Threads
	t.Window = max(e.opts.Threads, 4)
	t.Slots, t.Batcher = e.slots, e.fwd
	t.Check = func(out []float32) error {
		if err := vit.CheckEmbedding(out); err != nil {
			return newError(InvalidModel, err, "forward")
		}
		return nil
	}
	return t
}

func (e *nativeEngine) each(ctx context.Context, inputs []embed.Input, emit func(int, embed.Result)) error {
	return e.call(ctx, func(ctx context.Context) error {
		if e.vm == nil && e.text != nil { // TextOnly: as the module answers
			for i := range inputs {
				emit(i, embed.Result{Err: newError(InvalidInput, nil, "this model was loaded without its vision tower")})
			}
			return nil
		}
		if e.vm == nil {
			return newError(ModelNotLoaded, nil, "no model loaded")
		}
		e.tower().Each(ctx, inputs, func(i int, r embed.Result) {
			r.Err = closedAware(r.Err)
			emit(i, r)
		})
		return nil
	})
}

func (e *nativeEngine) preprocess(ctx context.Context, in embed.Input, size int) ([]float32, error) {
	if size > api.MaxPreprocessSize {
		return nil, newError(InvalidInput, nil, "preprocess: size must be in 1..%d, got %d", api.MaxPreprocessSize, size)
	}
	var out []float32
	err := e.call(ctx, func(ctx context.Context) error {
		im := e.images
		im.Size, im.NoPixels = size, true
		im.Mean, im.Std = weights.DefaultImageMean, weights.DefaultImageStd
		out = make([]float32, im.RowLen())
		select {
		case <-e.slots:
			defer func() { e.slots <- struct{}{} }()
		case <-ctx.Done():
			return abortedError(ctx, "preprocess")
		}
		if err := im.Prepare(ctx, in, out); err != nil {
			return api.As(err, InvalidInput)
		}
		return nil
	})
	if err != nil {
		return nil, closedAware(err)
	}
	return out, nil
}

func (e *nativeEngine) forwardText(ctx context.Context, texts []string) ([][]float32, []error, error) {
	var out [][]float32
	var errs []error
	err := e.call(ctx, func(ctx context.Context) error {
		if e.text == nil {
			return newError(ModelNotLoaded, nil, "no text tower loaded")
		}
		var err error
		out, errs, err = e.text.forward(ctx, texts, e.opts.MaxBatch, e.fwd)
		return err
	})
	if err != nil {
		return nil, nil, closedAware(err)
	}
	return out, errs, nil
}

func (e *nativeEngine) close() {
	e.once.Do(func() {
		e.cancel(errEngineClosed)
		e.calls.Lock() // waits for calls in flight (they end with the context)
		if e.vm != nil {
			e.vm.Dispose()
			e.vm = nil
		}
		if e.text != nil {
			e.text.tm.Dispose()
			e.text = nil
		}
		if e.unmapCompiled != nil {
			e.unmapCompiled() // after the towers viewing it
		}
		if e.ops != nil {
			e.ops.Close()
		}
	})
}

// f32View returns the named F32 tensor of a download as a view of its own
// part (little-endian hosts, aligned part; the part is then released from
// the file, owned by the tensor alone).
func f32View(f *loader.File, name string) ([]float32, safetensors.TensorInfo, bool) {
	p, ok := f.Data.(*loader.Parts)
	info, found := f.Tensor(name)
	if !ok || !found || info.DType != safetensors.F32 || info.Len() == 0 || !littleEndian {
		return nil, info, false
	}
	part, at := p.Part(info.Begin)
	m, ok := part.(loader.Mem)
	if !ok || at < 0 || at+info.Len() > int64(len(m)) || uintptr(unsafe.Pointer(&m[at]))%4 != 0 {
		return nil, info, false
	}
	p.Release(info.Begin)
	return unsafe.Slice((*float32)(unsafe.Pointer(&m[at])), info.Len()/4), info, true
}

// littleEndian: float32 in memory has the file's byte order.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// readAt reads from a loader.Bytes, reporting a file's read error.
func readAt(b loader.Bytes, p []byte, off int64) error {
	if fb, ok := b.(*fileBytes); ok {
		_, err := fb.f.ReadAt(p, off)
		return err
	}
	b.CopyTo(p, off)
	return nil
}

// fileBytes is loader.Bytes over a file; CopyTo cannot fail, so the first
// read error is kept in err (and the bytes left zero).
type fileBytes struct {
	f    *os.File
	size int64
	err  error
}

func (b *fileBytes) Len() int64 { return b.size }

func (b *fileBytes) CopyTo(dst []byte, off int64) {
	if _, err := b.f.ReadAt(dst, off); err != nil && b.err == nil {
		b.err = err
	}
}

// goEnv is loader.Env over net/http (and local files, as the module's fetch
// hook): chunks and buffers in the Go heap.
type goEnv struct {
	ctx    context.Context
	client *http.Client
}

func (g *goEnv) Aborted() bool { return g.ctx.Err() != nil }

func (g *goEnv) Alloc(n int64) (loader.Buffer, error) {
	if n < 0 || n > 1<<40 {
		return nil, fmt.Errorf("cannot allocate %d bytes", n)
	}
	return loader.Mem(make([]byte, n)), nil
}

func (g *goEnv) Fetch(url string, r loader.Request) (*loader.Response, error) {
	hdr := map[string]string{}
	for k, v := range map[string]string{"Range": r.Range, "If-Range": r.IfRange, "If-Match": r.IfMatch, "If-None-Match": r.IfNoneMatch} {
		if v != "" {
			hdr[k] = v
		}
	}
	// The stall timer ends the request when nothing arrives for r.Stall;
	// each chunk resets it.
	ctx, cancel := context.WithCancelCause(g.ctx)
	var timer *time.Timer
	if r.Stall > 0 {
		timer = time.AfterFunc(r.Stall, func() { cancel(loader.ErrStalled) })
	}
	resp, err := doFetch(ctx, g.client, url, hdr)
	if err != nil {
		if context.Cause(ctx) == loader.ErrStalled {
			err = fmt.Errorf("%w: no response within %v", loader.ErrStalled, r.Stall)
		}
		cancel(nil)
		return nil, err
	}
	return &loader.Response{Status: resp.status, Header: resp.header.Get,
		Body: &goBody{r: resp.body, ctx: ctx, cancel: cancel, timer: timer, stall: r.Stall}}, nil
}

// goBody streams a response body in chunks of up to 1 MiB.
type goBody struct {
	r      io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer // nil: no stall limit
	stall  time.Duration
	done   bool
}

func (b *goBody) Next() (loader.Bytes, error) {
	if b.done {
		return nil, io.EOF
	}
	if b.timer != nil {
		b.timer.Reset(b.stall)
	}
	buf := make([]byte, 1<<20)
	n, err := io.ReadAtLeast(b.r, buf, 1)
	if n > 0 {
		return loader.Mem(buf[:n]), nil
	}
	stalled := context.Cause(b.ctx) == loader.ErrStalled
	b.Close()
	switch {
	case stalled:
		return nil, fmt.Errorf("%w: no bytes for %v", loader.ErrStalled, b.stall)
	case err == nil || err == io.ErrUnexpectedEOF:
		return nil, io.EOF
	}
	return nil, err
}

func (b *goBody) Close() {
	if !b.done {
		b.done = true
		if b.timer != nil {
			b.timer.Stop()
		}
		b.r.Close()
		b.cancel(nil)
	}
}

// diskCache is loader.Cache over the same files as the wasm engine's cache
// (fileCache). A hit is read through the file, not into memory; the files
// opened stay open until the model is built.
type diskCache struct {
	fc     fileCache
	opened *[]*os.File
}

func (c *diskCache) Get(key string) loader.Bytes {
	f, err := os.Open(c.fc.path(key))
	if err != nil {
		return nil
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil
	}
	*c.opened = append(*c.opened, f)
	return &fileBytes{f: f, size: st.Size()}
}

func (c *diskCache) Delete(key string) { c.fc.remove(key) } //nolint:errcheck // best effort

// Digest hashes b (a cached file or a download) in native Go.
func (c *diskCache) Digest(b loader.Bytes) ([32]byte, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < b.Len(); {
		p := buf[:min(int64(len(buf)), b.Len()-off)]
		if err := readAt(b, p, off); err != nil {
			return [32]byte{}, err
		}
		h.Write(p)
		off += int64(len(p))
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}

func (c *diskCache) Put(key string, b loader.Bytes) {
	switch b := b.(type) {
	case loader.Mem:
		c.fc.put(key, b) //nolint:errcheck // a failed put only costs a later download
	case *loader.Parts: // a download: header and tensors, written in turn
		parts := make([][]byte, 0, len(b.Buffers()))
		for _, p := range b.Buffers() {
			m, ok := p.(loader.Mem)
			if !ok {
				return
			}
			parts = append(parts, m)
		}
		c.fc.putParts(key, parts) //nolint:errcheck // as above
	}
}

// httpImages fetches image URLs for the native engine: the same limits and
// messages as the module's fetch of image URLs.
type httpImages struct {
	client  *http.Client
	timeout time.Duration // 0: none
}

var errTimedOut = errors.New("timed out")

func (h *httpImages) Fetch(ctx context.Context, url string) (embed.Body, error) {
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, h.timeout, errTimedOut)
		defer cancel()
	}
	fail := func(err error, format string, args ...any) error {
		switch context.Cause(ctx) {
		case errTimedOut:
			return newError(DownloadFailed, errTimedOut, "fetching %s: no complete response within %v", url, h.timeout)
		case nil:
			return newError(DownloadFailed, err, format, args...)
		}
		return abortedError(ctx, "fetching "+url)
	}
	r, err := doFetch(ctx, h.client, url, nil)
	if err != nil {
		return nil, fail(err, "fetching %s", url)
	}
	defer r.body.Close()
	if r.status < 200 || r.status > 299 {
		return nil, newError(DownloadFailed, nil, "HTTP status %d for %s", r.status, url)
	}
	if r.header.Get("Content-Encoding") == "" {
		if n, err := strconv.ParseInt(r.header.Get("Content-Length"), 10, 64); err == nil && n > api.MaxImageFileBytes {
			return nil, newError(ImageTooLarge, nil, "%s is %d bytes, more than the limit of %d", url, n, int64(api.MaxImageFileBytes))
		}
	}
	b, err := io.ReadAll(io.LimitReader(r.body, api.MaxImageFileBytes+1))
	if err != nil {
		return nil, fail(err, "reading %s", url)
	}
	if len(b) > api.MaxImageFileBytes {
		return nil, newError(ImageTooLarge, nil, "the image file is larger than %d bytes", int64(api.MaxImageFileBytes))
	}
	return embed.GoBody(b), nil
}
