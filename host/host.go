// Package host runs imgembed's browser WebAssembly module (the very
// GOOS=js/GOARCH=wasm binary that ships to browsers and Node) inside a Go
// program with wazero, serving the module's `tf` global with native Go
// kernels (wasm/ops/native) instead of TensorFlow.js. It is the Go API
// (New, Embed, EmbedBatch, Close) and the engine of the `imgembed` command
// in host/cmd/imgembed.
//
// Layers: host/internal/gojs implements the GOOS=js ABI and a small JS
// object model; host/internal/tfjs is the `tf` namespace (exactly the op
// list of wasm/ops/ops.go); this package adds the rest of the environment
// the module needs per wasm/API.md (fetch over net/http and local files with
// Range support and streaming bodies, AbortSignal tied to contexts, an
// on-disk cache adapter) and the Go API. Models given as URLs are fetched by
// the module itself (Range requests for the vision tensors only) and the
// assembled vision-only file is cached in Options.CacheDir, so the default
// CLIP ViT-B/32 is downloaded once.
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
// Concurrency: an Embedder is safe for concurrent use. The module has a
// single event loop, so calls are serialised through one goroutine that
// owns the wazero instance (calls run one at a time, in arrival order); the
// tensor kernels inside a forward pass use Options.Threads cores. For
// throughput across many images use EmbedBatch (one forward pass per batch
// of up to MaxBatch images) or several Embedders. A cancelled context makes
// the waiting call return Aborted at once; a forward pass already running in
// the module finishes in the background and its result is dropped, and a
// download in progress is aborted through the module's AbortSignal.
package host

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Options configure New. The zero value loads CLIP ViT-B/32 from Hugging
// Face into the user cache.
type Options struct {
	// Model is a local safetensors file or an http(s) URL of one (downloaded
	// once into CacheDir). Default DefaultModel.
	Model string
	// CacheDir holds downloaded models (the vision tensors only, as the
	// module assembles them) and wazero's compiled code. Default
	// os.UserCacheDir()/imgembed.
	CacheDir string
	// NoCache makes a URL model load from the network every time, never
	// reading or writing the model cache.
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
	eng *engine
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
	eng, err := startEngine(ctx, o)
	if err != nil {
		return nil, err
	}
	cfg, err := eng.load(ctx, source, tokenizer)
	if err != nil {
		eng.close()
		if ae := asError(err, DownloadFailed); isURL(source) && ae.Code == DownloadFailed {
			// Only a request that got no answer at all suggests being
			// offline; otherwise the cause says what the server did.
			if strings.Contains(ae.Message, errFetch.Error()) {
				return nil, &Error{Code: DownloadFailed, Err: err, Message: fmt.Sprintf("cannot download the model from %s (offline, or the host is unreachable?); pass a local safetensors file as the model to run without network. Cause: %s", source, ae.Message)}
			}
			return nil, &Error{Code: DownloadFailed, Err: err, Message: fmt.Sprintf("cannot download the model from %s: %s", source, ae.Message)}
		}
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
// image as []byte, an io.Reader, or a string path of a local file (PNG,
// JPEG, GIF, BMP or WebP). Errors are *Error with the JS package's codes.
func (e *Embedder) Embed(ctx context.Context, src any) ([]float32, error) {
	in, err := e.read(src)
	if err != nil {
		return nil, err
	}
	out, errs, err := e.eng.forward(ctx, []input{in})
	if err != nil {
		return nil, err
	}
	if errs[0] != nil {
		return nil, errs[0]
	}
	return out[0], nil
}

// EmbedPixels embeds one image that is already preprocessed: 3 x S x S
// float32 CHW, normalised as CLIPImageProcessor does, S = Config().ImageSize.
func (e *Embedder) EmbedPixels(ctx context.Context, pixels []float32) ([]float32, error) {
	out, errs, err := e.eng.forward(ctx, []input{{pixels: pixels}})
	if err != nil {
		return nil, err
	}
	if errs[0] != nil {
		return nil, errs[0]
	}
	return out[0], nil
}

// EmbedBatch embeds several images; the module runs them through the graph
// in batches of up to 8. The results are in input order; a source that fails
// (unreadable, not an image, too large) has a nil embedding and an *Error at
// its index of errs while the others are still embedded. err is non-nil only
// when the whole call failed (context cancelled, embedder closed, module
// failure); then both slices are nil. Cancellation is checked between
// sources while they are read and before the module starts.
func (e *Embedder) EmbedBatch(ctx context.Context, srcs []any) (embs [][]float32, errs []error, err error) {
	if hasText(srcs) {
		return e.embedMixed(ctx, srcs)
	}
	errs = make([]error, len(srcs))
	embs = make([][]float32, len(srcs))
	var ins []input
	var idx []int
	for i, s := range srcs {
		if ctx.Err() != nil {
			return nil, nil, abortedError(ctx, "embed batch")
		}
		in, rerr := e.read(s)
		if rerr != nil {
			errs[i] = rerr
			continue
		}
		ins = append(ins, in)
		idx = append(idx, i)
	}
	if len(ins) == 0 {
		return embs, errs, nil
	}
	out, oerrs, err := e.eng.forward(ctx, ins)
	if err != nil {
		return nil, nil, err
	}
	for j, i := range idx {
		embs[i] = out[j]
		if oerrs[j] != nil {
			errs[i] = oerrs[j]
		}
	}
	return embs, errs, nil
}

// Preprocess runs the module's CLIP preprocessing (decode, EXIF orientation,
// Pillow-exact bicubic resize, centre crop, normalisation with CLIP's mean
// and std) and returns 3 x size x size float32 CHW.
func (e *Embedder) Preprocess(ctx context.Context, src any, size int) ([]float32, error) {
	return preprocessWith(ctx, e.eng, src, size)
}

// Close stops the module and releases its memory. Calls in flight fail with
// ModelNotLoaded (or Aborted if their context ended first); Close is
// idempotent.
func (e *Embedder) Close() error {
	e.eng.close()
	return nil
}

// Preprocessor runs the module's preprocessing without loading a model
// (the `imgembed preprocess` command).
type Preprocessor struct{ eng *engine }

// NewPreprocessor starts the module. Only Threads, CacheDir and MaxPixels of
// o are used.
func NewPreprocessor(ctx context.Context, o Options) (*Preprocessor, error) {
	o = withDefaults(o)
	eng, err := startEngine(ctx, o)
	if err != nil {
		return nil, err
	}
	return &Preprocessor{eng: eng}, nil
}

// Preprocess is Embedder.Preprocess.
func (p *Preprocessor) Preprocess(ctx context.Context, src any, size int) ([]float32, error) {
	return preprocessWith(ctx, p.eng, src, size)
}

// Close stops the module.
func (p *Preprocessor) Close() error {
	p.eng.close()
	return nil
}

func preprocessWith(ctx context.Context, eng *engine, src any, size int) ([]float32, error) {
	if size < 1 {
		return nil, newError(InvalidInput, nil, "size %d must be positive", size)
	}
	in, err := readSource(src)
	if err != nil {
		return nil, err
	}
	return eng.preprocess(ctx, in, size)
}

// read resolves src.
func (e *Embedder) read(src any) (input, error) { return readSource(src) }

// readSource resolves an image source: bytes, a reader, a local path, or a
// URL string (http(s) URLs are fetched by the module through the host's
// fetch, as in the JS package; file: and data: URLs are read here).
func readSource(src any) (input, error) {
	switch s := src.(type) {
	case []byte:
		return input{data: s}, nil
	case string:
		switch {
		case s == "":
			return input{}, newError(InvalidInput, nil, "empty path")
		case isURL(s):
			return input{url: s}, nil
		case strings.HasPrefix(s, "data:"):
			b, err := decodeDataURL(s)
			if err != nil {
				return input{}, newError(InvalidInput, err, "bad data: URL")
			}
			return input{data: b}, nil
		}
		path := s
		if strings.HasPrefix(s, "file:") {
			u, err := url.Parse(s)
			if err != nil {
				return input{}, newError(InvalidInput, err, "bad file: URL %q", s)
			}
			path = u.Path
		}
		b, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return input{}, &Error{Code: InvalidInput, Message: "cannot read " + s + ": no such file", Err: err}
			}
			return input{}, newError(InvalidInput, err, "cannot read %s", s)
		}
		return input{data: b}, nil
	case io.Reader:
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(s); err != nil {
			return input{}, newError(InvalidInput, err, "reading image")
		}
		return input{data: buf.Bytes()}, nil
	case nil:
		return input{}, newError(InvalidInput, nil, "nil image source")
	default:
		return input{}, newError(InvalidInput, nil, "unsupported image source type %T (want []byte, io.Reader, or a path or URL string)", src)
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
