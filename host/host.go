// Package host is the Go API (New, Embed, EmbedBatch, EmbedEach, Close) and
// the engine of the `imgembed` command in host/cmd/imgembed. It has two
// engines giving the same embeddings (TestEngineParity: max abs diff
// <= 1e-6):
//
//   - EngineNative (the default) runs the module's own Go packages (loader,
//     imagefile, preprocess, the ViT graph of wasm/vit) compiled natively
//     over the Go kernels (wasm/ops/native), orchestrated by wasm/embed:
//     the images of a call are read and decoded in parallel (up to Threads
//     decodes across all calls) while the previous batch runs through the
//     graph, with a bounded number of rows in flight.
//   - EngineWasm runs imgembed's browser WebAssembly module (the very
//     GOOS=js/GOARCH=wasm binary that ships to browsers and Node) inside
//     wazero, serving the module's `tf` global with the same Go kernels
//     instead of TensorFlow.js: headless conformance of the shipped module,
//     and a sandbox.
//
// For EngineWasm, host/internal/gojs implements the GOOS=js ABI and a small
// JS object model; host/internal/tfjs is the `tf` namespace (exactly the op
// list of wasm/ops/ops.go); this package adds the rest of the environment
// the module needs per wasm/API.md (fetch over net/http and local files with
// Range support and streaming bodies, AbortSignal tied to contexts, an
// on-disk cache adapter). Models given as URLs are fetched by the same
// loader in both engines (Range requests for the vision tensors only) and
// the assembled vision-only file is cached in Options.CacheDir (one cache,
// the same entries for both engines), so the default CLIP ViT-B/32 is
// downloaded once.
//
// The module is embedded in the binary (host/internal/module/imgembed.wasm)
// so that `go install github.com/imgembed/imgembed/host/cmd/imgembed@latest`
// works without a build step. The embedded copy is refreshed by `make build`
// (which copies js/dist/imgembed.wasm there when they differ); to refresh it
// by hand run
//
//	GOOS=js GOARCH=wasm go build -trimpath -buildvcs=false -ldflags='-s -w' -o host/internal/module/imgembed.wasm ./wasm
//
// TestEmbeddedIsFresh in host/internal/module rebuilds the module with those
// flags and fails if the committed copy differs, so it cannot go stale
// silently.
//
// Concurrency: an Embedder is safe for concurrent use. Native engine: calls
// run concurrently; their decodes share Threads slots and their forward
// passes run one at a time (each uses Threads cores). Wasm engine: the
// module has a single event loop, so calls are serialised through one
// goroutine that owns the wazero instance. For throughput across many
// images use EmbedBatch/EmbedEach (forward passes of up to MaxBatch). A
// cancelled context makes the call end with Aborted (the native engine
// stops at once; under wazero a forward pass already running finishes in
// the background and its result is dropped); downloads in progress are
// aborted. Images are read by openImage: regular files only, never more
// than the image size cap.
package host

import (
	"context"
	"encoding/base64"
	"errors"
	"github.com/imgembed/imgembed/weights"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/imgembed/imgembed/wasm/api"
	"github.com/imgembed/imgembed/wasm/embed"
)

// Options configure New. The zero value loads CLIP ViT-B/32 from Hugging
// Face into the user cache.
type Options struct {
	// Engine runs the model natively (EngineNative, the default) or as the
	// shipped .wasm module under wazero (EngineWasm).
	Engine Engine
	// Model is a local safetensors file, an http(s) URL of one (downloaded
	// once into CacheDir), or a Hugging Face id "org/name[@revision]" that
	// is not a local file (its model.safetensors; HF_ENDPOINT names a
	// mirror). Default DefaultModel.
	Model string
	// CacheDir holds downloaded models (the vision tensors only, as the
	// module assembles them), wazero's compiled code and the native
	// engine's compiled weights (see NoCache). Default
	// os.UserCacheDir()/imgembed.
	CacheDir string
	// NoCache makes a URL model load from the network every time, never
	// reading or writing the model cache, and a local model file derive its
	// weights at every load, never reading or writing its compiled weights
	// (CacheDir/compiled, native engine).
	NoCache bool
	// MaxBatch is how many images go through the graph in one forward pass
	// (EmbedBatch splits larger calls). Default 8.
	MaxBatch int
	// Threads for the tensor kernels. Default runtime.NumCPU().
	Threads int
	// Progress, if set, is called while the model loads with the bytes
	// loaded so far and the total (monotonic; the last call is (total,
	// total); a cached model reports one call). It runs on the module's
	// event loop: keep it quick.
	Progress func(loaded, total int64)
	// HTTPClient for model downloads. Default http.DefaultClient.
	HTTPClient *http.Client
	// MaxPixels bounds width*height of input images; larger images fail
	// with ImageTooLarge after the module has read only their header.
	// 0 means the module's default (100 megapixels).
	MaxPixels int64
	// MaxDecodeBytes is the memory budget for decoding one input image,
	// estimated from its header before decoding (wasm/imagefile budget.go);
	// over it the image fails with ImageTooLarge. 0 means the default,
	// 1 GiB.
	MaxDecodeBytes int64
	// FetchTimeout bounds each image URL download (response and body
	// together); a download that takes longer fails with DownloadFailed
	// and its request is cancelled. 0 means the module's default (30 s),
	// a negative value no time-out.
	FetchTimeout time.Duration
	// Text also loads the text tower of a whole-CLIP model (in the same
	// download: only the needed tensors are fetched), for EmbedText.
	// TextOnly loads the text tower alone.
	Text, TextOnly bool
	// Tokenizer is the text tower's tokenizer.json: a local file or an
	// http(s) URL. Default: tokenizer.json beside the model (same
	// directory or URL directory).
	Tokenizer string
	// DownloadTimeout fails a model download with DownloadFailed
	// ("stalled") when no byte arrives for this long (waiting for a
	// response or between body chunks). 0 means the default (60 s), a
	// negative value no time-out.
	DownloadTimeout time.Duration
	// NoRevalidate uses a cached model without asking its server whether
	// it changed. By default a cache hit costs one conditional request
	// (If-None-Match; 304 and no body while unchanged; a failed request
	// keeps the copy).
	NoRevalidate bool
}

// Engine selects how the model runs.
type Engine string

const (
	// EngineNative runs the module's Go packages (decode, EXIF,
	// Pillow-exact preprocessing, the ViT graph) compiled natively over
	// the Go kernels: the fastest path. Images are decoded in parallel
	// (up to Threads) while the previous batch runs through the graph.
	EngineNative Engine = "native"
	// EngineWasm runs the very .wasm module that ships to browsers under
	// wazero (headless conformance, sandboxing).
	EngineWasm Engine = "wasm"
)

// backend is an engine: the native one or the wazero one.
type backend interface {
	load(ctx context.Context, source, tokenizer string) (Config, error)
	// each embeds inputs, reporting each result in input order; an error
	// is returned only when the whole call failed.
	each(ctx context.Context, inputs []embed.Input, emit func(int, embed.Result)) error
	preprocess(ctx context.Context, in embed.Input, size int) ([]float32, error)
	forwardText(ctx context.Context, texts []string) ([][]float32, []error, error)
	close()
}

func newBackend(ctx context.Context, o Options) (backend, error) {
	switch o.Engine {
	case EngineNative:
		return newNativeEngine(o), nil
	case EngineWasm:
		e, err := startEngine(ctx, o)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
	return nil, newError(InvalidInput, nil, "unknown engine %q (want %q or %q)", o.Engine, EngineNative, EngineWasm)
}

// Config describes the loaded model; the same fields as the JS package's
// m.config.
type Config struct {
	EmbeddingSize int    `json:"embeddingSize"`
	ImageSize     int    `json:"imageSize"`
	PatchSize     int    `json:"patchSize"`
	HiddenSize    int    `json:"hiddenSize"`
	Layers        int    `json:"layers"`
	Heads         int    `json:"heads"`
	MLPSize       int    `json:"mlpSize"`
	DType         string `json:"dtype"`
	WeightBytes   int64  `json:"weightBytes"`
	// Text is the text tower's configuration when it was loaded.
	Text *TextConfig `json:"text,omitempty"`
}

// Embedder computes CLIP image embeddings. Create it with New; Close it when
// done.
type Embedder struct {
	eng backend
	cfg Config
}

// New starts the module under wazero and has it load the model: a local
// file, or a URL whose vision tensors the module downloads (Range requests)
// unless they are in the cache. ctx bounds the whole load, including the
// download; cancelling it aborts the download. Errors are *Error
// (DownloadFailed, InvalidModel, Aborted, InvalidInput).
func New(ctx context.Context, o Options) (*Embedder, error) {
	o = withDefaults(o)
	if o.MaxPixels < 0 {
		return nil, newError(InvalidInput, nil, "MaxPixels %d is negative", o.MaxPixels)
	}
	if err := ctx.Err(); err != nil {
		return nil, abortedError(ctx, "load")
	}
	source, err := resolveModel(o.Model)
	if err != nil {
		return nil, err
	}
	var tokenizer string
	if o.Text || o.TextOnly {
		src, err := tokenizerSource(o, source)
		if err != nil {
			return nil, err
		}
		if tokenizer, err = readTokenizer(ctx, o, src); err != nil {
			return nil, err
		}
	}
	eng, err := newBackend(ctx, o)
	if err != nil {
		return nil, err
	}
	cfg, err := eng.load(ctx, source, tokenizer)
	if err != nil {
		eng.close()
		// The loader's message names the source and, when no answer came at
		// all, suggests being offline.
		return nil, err
	}
	return &Embedder{eng: eng, cfg: cfg}, nil
}

func withDefaults(o Options) Options {
	if o.CacheDir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			d = os.TempDir()
		}
		o.CacheDir = filepath.Join(d, "imgembed")
	}
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.Engine == "" {
		o.Engine = EngineNative
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = api.DefaultMaxBatch
	}
	return o
}

// resolveModel checks Options.Model: a URL is passed to the module as is
// (it fetches only the vision tensors' byte ranges and caches the result);
// a local file must exist.
func resolveModel(m string) (string, error) {
	if m == "" {
		return DefaultModel, nil
	}
	if isURL(m) {
		return m, nil
	}
	p := strings.TrimPrefix(m, "file://")
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		// "org/name[@revision]" that is not a local file: a Hugging Face id.
		if u, ok := weights.HubFile(m, "model.safetensors"); ok {
			return u, nil
		}
		return "", &Error{Code: DownloadFailed, Message: "model file " + p + " does not exist", Err: err}
	}
	if err != nil {
		return "", newError(DownloadFailed, err, "model file %s", p)
	}
	if !st.Mode().IsRegular() {
		return "", newError(InvalidModel, nil, "model %s is not a regular file", p)
	}
	return p, nil
}

// Config returns the loaded model's configuration.
func (e *Embedder) Config() Config { return e.cfg }

// Embed returns the unit-length embedding of one image. src is the encoded
// image as []byte, an io.Reader, a path of a local file, or a URL string
// (http(s), file: or data:). Errors are *Error with the JS package's codes.
func (e *Embedder) Embed(ctx context.Context, src any) ([]float32, error) {
	embs, errs, err := e.EmbedBatch(ctx, []any{src})
	if err != nil {
		return nil, err
	}
	if errs[0] != nil {
		return nil, errs[0]
	}
	return embs[0], nil
}

// EmbedPixels embeds one image that is already preprocessed: 3 x S x S
// float32 CHW, normalised as CLIPImageProcessor does, S = Config().ImageSize.
func (e *Embedder) EmbedPixels(ctx context.Context, pixels []float32) ([]float32, error) {
	var res embed.Result
	if pixels == nil {
		pixels = []float32{}
	}
	err := e.eng.each(ctx, []embed.Input{{Pixels: pixels}}, func(_ int, r embed.Result) { res = r })
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Embedding, nil
}

// EmbedBatch embeds several images, in forward passes of up to MaxBatch;
// with the native engine the next images are decoded (in parallel, up to
// Threads) while a batch runs. The results are in input order; a source
// that fails (unreadable, not an image, too large) has a nil embedding and
// an *Error at its index of errs while the others are still embedded. err
// is non-nil only when the whole call failed (context cancelled, embedder
// closed, module failure); then both slices are nil.
func (e *Embedder) EmbedBatch(ctx context.Context, srcs []any) (embs [][]float32, errs []error, err error) {
	if hasText(srcs) {
		return e.embedMixed(ctx, srcs)
	}
	embs = make([][]float32, len(srcs))
	errs = make([]error, len(srcs))
	err = e.EmbedEach(ctx, srcs, func(i int, emb []float32, err error) {
		embs[i], errs[i] = emb, err
	})
	if err != nil {
		return nil, nil, err
	}
	if ctx.Err() != nil {
		for _, ie := range errs {
			if errors.Is(ie, ErrAborted) {
				return nil, nil, abortedError(ctx, "embed batch")
			}
		}
	}
	return embs, errs, nil
}

// EmbedEach is EmbedBatch reporting each result through fn as soon as it
// is known, in input order, on the calling goroutine (the command prints
// as it goes). Sources that fail have a nil embedding and an *Error.
func (e *Embedder) EmbedEach(ctx context.Context, srcs []any, fn func(i int, emb []float32, err error)) error {
	if ctx.Err() != nil {
		return abortedError(ctx, "embed")
	}
	inputs := make([]embed.Input, len(srcs))
	for i, s := range srcs {
		in, err := readSource(s)
		if err != nil {
			in = embed.Input{Err: err}
		}
		inputs[i] = in
	}
	return e.eng.each(ctx, inputs, func(i int, r embed.Result) {
		if r.Err != nil {
			fn(i, nil, asError(r.Err, InvalidInput))
			return
		}
		fn(i, r.Embedding, nil)
	})
}

// Preprocess runs CLIP preprocessing (decode, EXIF orientation,
// Pillow-exact bicubic resize, centre crop, normalisation with CLIP's mean
// and std) and returns 3 x size x size float32 CHW.
func (e *Embedder) Preprocess(ctx context.Context, src any, size int) ([]float32, error) {
	return preprocessWith(ctx, e.eng, src, size)
}

// Close releases the model. Calls in flight fail with ModelNotLoaded (or
// Aborted if their context ended first); Close is idempotent.
func (e *Embedder) Close() error {
	e.eng.close()
	return nil
}

// Preprocessor runs the preprocessing without loading a model (the
// `imgembed preprocess` command).
type Preprocessor struct{ eng backend }

// NewPreprocessor starts an engine without a model. Only Engine, Threads,
// CacheDir, MaxPixels, FetchTimeout and HTTPClient of o are used.
func NewPreprocessor(ctx context.Context, o Options) (*Preprocessor, error) {
	o = withDefaults(o)
	eng, err := newBackend(ctx, o)
	if err != nil {
		return nil, err
	}
	return &Preprocessor{eng: eng}, nil
}

// Preprocess is Embedder.Preprocess.
func (p *Preprocessor) Preprocess(ctx context.Context, src any, size int) ([]float32, error) {
	return preprocessWith(ctx, p.eng, src, size)
}

// Close stops the engine.
func (p *Preprocessor) Close() error {
	p.eng.close()
	return nil
}

func preprocessWith(ctx context.Context, eng backend, src any, size int) ([]float32, error) {
	if size < 1 {
		return nil, newError(InvalidInput, nil, "size %d must be positive", size)
	}
	in, err := readSource(src)
	if err != nil {
		return nil, err
	}
	return eng.preprocess(ctx, in, size)
}

// readSource resolves an image source: bytes, a reader (read here, bounded
// by the image size cap), a local path or file: URL (read by the engine
// through openImage: regular files only), an http(s) URL (fetched by the
// engine), a data: URL (decoded here).
func readSource(src any) (embed.Input, error) {
	switch s := src.(type) {
	case []byte:
		return embed.Input{Bytes: s}, nil
	case string:
		switch {
		case s == "":
			return embed.Input{}, newError(InvalidInput, nil, "empty path")
		case isURL(s):
			return embed.Input{URL: s}, nil
		case strings.HasPrefix(s, "data:"):
			b, err := decodeDataURL(s)
			if err != nil {
				return embed.Input{}, newError(InvalidInput, err, "bad data: URL")
			}
			return embed.Input{Bytes: b, Name: "data: URL"}, nil
		}
		path := s
		if strings.HasPrefix(s, "file:") {
			u, err := url.Parse(s)
			if err != nil {
				return embed.Input{}, newError(InvalidInput, err, "bad file: URL %q", s)
			}
			path = u.Path
		}
		return embed.Input{Path: path}, nil
	case io.Reader:
		b, err := io.ReadAll(io.LimitReader(s, api.MaxImageFileBytes+1))
		if err != nil {
			return embed.Input{}, newError(InvalidInput, err, "reading image")
		}
		if len(b) > api.MaxImageFileBytes {
			return embed.Input{}, newError(ImageTooLarge, nil, "the image is larger than %d bytes", int64(api.MaxImageFileBytes))
		}
		return embed.Input{Bytes: b}, nil
	case nil:
		return embed.Input{}, newError(InvalidInput, nil, "nil image source")
	default:
		return embed.Input{}, newError(InvalidInput, nil, "unsupported image source type %T (want []byte, io.Reader, or a path or URL string)", src)
	}
}

// decodeDataURL decodes "data:[<mediatype>][;base64],<data>".
func decodeDataURL(s string) ([]byte, error) {
	meta, payload, ok := strings.Cut(strings.TrimPrefix(s, "data:"), ",")
	if !ok {
		return nil, errors.New("no comma")
	}
	if strings.HasSuffix(meta, ";base64") {
		return base64.StdEncoding.DecodeString(strings.TrimRight(payload, "\n"))
	}
	p, err := url.PathUnescape(payload)
	return []byte(p), err
}
