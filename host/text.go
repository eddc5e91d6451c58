package host

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/imgembed/imgembed/host/internal/gojs"
	"github.com/imgembed/imgembed/wasm/api"
	"github.com/imgembed/imgembed/wasm/loader"
	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/textmodel"
	"github.com/imgembed/imgembed/wasm/tokenizer"
	"github.com/imgembed/imgembed/weights"
)

// maxTokenizerBytes bounds a tokenizer.json read from disk or the network
// (CLIP's is 2.2 MB).
const maxTokenizerBytes = 64 << 20

// TextConfig describes a loaded text tower (Config.Text).
type TextConfig struct {
	EmbeddingSize int `json:"embeddingSize"`
	HiddenSize    int `json:"hiddenSize"`
	Layers        int `json:"layers"`
	Heads         int `json:"heads"`
	MLPSize       int `json:"mlpSize"`
	VocabSize     int `json:"vocabSize"`
	ContextLength int `json:"contextLength"`
	// LogitScale is exp(logit_scale) from the file (100 for OpenAI CLIP),
	// 0 when the file has none.
	LogitScale float64 `json:"logitScale,omitempty"`
}

// towers is the module's load option for o.
func (o Options) towers() []gojs.Value {
	switch {
	case o.TextOnly:
		return []gojs.Value{"text"}
	case o.Text:
		return []gojs.Value{"vision", "text"}
	}
	return nil
}

// tokenizerSource is where tokenizer.json comes from: Options.Tokenizer,
// else beside the model (same directory or same URL directory).
func tokenizerSource(o Options, model string) (string, error) {
	if o.Tokenizer != "" {
		return o.Tokenizer, nil
	}
	if isURL(model) {
		u, err := url.Parse(model)
		if err != nil {
			return "", newError(InvalidInput, err, "model URL %s", model)
		}
		return u.ResolveReference(&url.URL{Path: "tokenizer.json"}).String(), nil
	}
	return filepath.Join(filepath.Dir(model), "tokenizer.json"), nil
}

// readTokenizer reads tokenizer.json from a local file or an http(s) URL
// (cached in the cache directory like the model).
func readTokenizer(ctx context.Context, o Options, src string) (string, error) {
	if !isURL(src) {
		f, err := os.Open(strings.TrimPrefix(src, "file://"))
		if err != nil {
			return "", newError(DownloadFailed, err, "tokenizer %s", src)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxTokenizerBytes+1))
		if err != nil {
			return "", newError(DownloadFailed, err, "reading tokenizer %s", src)
		}
		if len(b) > maxTokenizerBytes {
			return "", newError(InvalidModel, nil, "tokenizer %s is larger than %d bytes", src, maxTokenizerBytes)
		}
		return string(b), nil
	}
	cache := fileCache{dir: o.CacheDir}
	key := "imgembed-v1 tokenizer " + src
	if !o.NoCache {
		if b, err := cache.get(key); err == nil && b != nil {
			return string(b), nil
		}
	}
	resp, err := doFetch(ctx, o.HTTPClient, src, nil)
	if err != nil {
		return "", newError(DownloadFailed, err, "fetching tokenizer %s", src)
	}
	defer resp.body.Close()
	if resp.status != 200 {
		return "", newError(DownloadFailed, nil, "HTTP status %d for tokenizer %s", resp.status, src)
	}
	b, err := io.ReadAll(io.LimitReader(resp.body, maxTokenizerBytes+1))
	if err != nil {
		return "", newError(DownloadFailed, err, "reading tokenizer %s", src)
	}
	if len(b) > maxTokenizerBytes {
		return "", newError(InvalidModel, nil, "tokenizer %s is larger than %d bytes", src, maxTokenizerBytes)
	}
	if !o.NoCache {
		cache.put(key, b) //nolint:errcheck // loaded all the same
	}
	return string(b), nil
}

// EmbedText returns the unit-length text embeddings of texts, in order, in
// the space of the image embeddings (the model must be loaded with
// Options.Text or TextOnly). Texts longer than 77 tokens are cut as CLIP's
// tokenizer does. The error is the first failure.
func (e *Embedder) EmbedText(ctx context.Context, texts ...string) ([][]float32, error) {
	embs, errs, err := e.EmbedTextBatch(ctx, texts)
	if err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return embs, nil
}

// EmbedTextBatch is EmbedText with per-text results: errs[i] is the error
// of texts[i] (nil when embedded); err is non-nil only when the whole call
// failed.
func (e *Embedder) EmbedTextBatch(ctx context.Context, texts []string) (embs [][]float32, errs []error, err error) {
	if e.cfg.Text == nil {
		return nil, nil, newError(InvalidInput, nil, "the model was loaded without its text tower (Options.Text)")
	}
	if len(texts) == 0 {
		return [][]float32{}, []error{}, nil
	}
	return e.eng.forwardText(ctx, texts)
}

// forwardText runs model.forwardText over texts.
func (e *engine) forwardText(ctx context.Context, texts []string) ([][]float32, []error, error) {
	vals := make([]gojs.Value, len(texts))
	for i, t := range texts {
		vals[i] = t
	}
	return e.call(ctx, "forwardText", vals)
}

// textConfigOf reads the module's config.text.
func textConfigOf(c *gojs.Object) *TextConfig {
	t, ok := c.Get("text").(*gojs.Object)
	if !ok {
		return nil
	}
	num := func(k string) int { return gojs.ToInt(t.Get(k)) }
	tc := &TextConfig{
		EmbeddingSize: num("embeddingSize"), HiddenSize: num("hiddenSize"), Layers: num("layers"), Heads: num("heads"),
		MLPSize: num("mlpSize"), VocabSize: num("vocabSize"), ContextLength: num("contextLength"),
	}
	if v := gojs.ToNumber(t.Get("logitScale")); v > 0 { // absent: NaN
		tc.LogitScale = v
	}
	return tc
}

// Text is a text among the sources of EmbedBatch: with a model loaded with
// Options.Text, images and texts may be mixed in one call (results in
// input order).
type Text string

func hasText(srcs []any) bool {
	for _, s := range srcs {
		if _, ok := s.(Text); ok {
			return true
		}
	}
	return false
}

// embedMixed embeds the Text sources through the text tower and the others
// through EmbedBatch, putting the results back in input order.
func (e *Embedder) embedMixed(ctx context.Context, srcs []any) ([][]float32, []error, error) {
	var texts []string
	var ti, ii []int
	var images []any
	for i, s := range srcs {
		if t, ok := s.(Text); ok {
			texts = append(texts, string(t))
			ti = append(ti, i)
		} else {
			images = append(images, s)
			ii = append(ii, i)
		}
	}
	embs := make([][]float32, len(srcs))
	errs := make([]error, len(srcs))
	te, terrs, err := e.EmbedTextBatch(ctx, texts)
	if err != nil {
		return nil, nil, err
	}
	for k, i := range ti {
		embs[i], errs[i] = te[k], terrs[k]
	}
	if len(images) > 0 {
		ie, ierrs, err := e.EmbedBatch(ctx, images)
		if err != nil {
			return nil, nil, err
		}
		for k, i := range ii {
			embs[i], errs[i] = ie[k], ierrs[k]
		}
	}
	return embs, errs, nil
}

// nativeText is the text tower of the native engine: the module's
// tokenizer and graph over the Go kernels.
type nativeText struct {
	tm         *textmodel.Model
	tok        *tokenizer.Tokenizer
	logitScale float64
}

// checkTokenizer refuses a tokenizer whose ids or length the tower cannot
// take.
func checkTokenizer(tok *tokenizer.Tokenizer, cfg weights.TextConfig) error {
	if tok.VocabSize() > cfg.VocabSize {
		return fmt.Errorf("the tokenizer has %d ids, the text tower's vocabulary only %d", tok.VocabSize(), cfg.VocabSize)
	}
	if tok.Length() > cfg.ContextLength {
		return fmt.Errorf("the tokenizer makes %d ids, the text tower has %d positions", tok.Length(), cfg.ContextLength)
	}
	return nil
}

func loadNativeText(o ops.Ops, f *loader.File, tok *tokenizer.Tokenizer, get weights.Getter, threads int) (*nativeText, error) {
	cfg := *f.Text
	if err := checkTokenizer(tok, cfg); err != nil {
		return nil, err
	}
	lo := textmodel.LoadOptions{Threads: threads}
	if n, ok := o.(interface{ AllocConst(int) []float32 }); ok {
		lo.Alloc = n.AllocConst // built off the heap, adopted by Tensor in load mode
	}
	tm, err := textmodel.LoadWith(o, cfg, get, lo)
	if err != nil {
		return nil, err
	}
	t := &nativeText{tm: tm, tok: tok}
	if _, ok := f.Tensor(weights.KeyLogitScale); ok {
		if v, _, err := get(weights.KeyLogitScale, nil); err == nil && len(v) == 1 {
			t.logitScale = math.Exp(float64(v[0]))
		}
	}
	return t, nil
}

func (t *nativeText) config() *TextConfig {
	c := t.tm.Config()
	return &TextConfig{EmbeddingSize: c.ProjectionDim, HiddenSize: c.HiddenSize, Layers: c.NumLayers, Heads: c.NumHeads,
		MLPSize: c.IntermediateSize, VocabSize: c.VocabSize, ContextLength: c.ContextLength, LogitScale: t.logitScale}
}

// forward tokenises texts and runs them through the tower in batches of
// maxBatch, one forward pass at a time (fwd); a cancelled ctx fails the
// texts not yet embedded with Aborted.
func (t *nativeText) forward(ctx context.Context, texts []string, maxBatch int, fwd sync.Locker) ([][]float32, []error, error) {
	out := make([][]float32, len(texts))
	errs := make([]error, len(texts))
	for start := 0; start < len(texts); start += maxBatch {
		end := min(start+maxBatch, len(texts))
		if ctx.Err() != nil {
			for i := start; i < len(texts); i++ {
				errs[i] = abortedError(ctx, "embed text")
			}
			break
		}
		rows := make([][]int32, 0, end-start)
		for _, s := range texts[start:end] {
			rows = append(rows, t.tok.Encode(tokenizer.Cut(s, api.MaxTextBytes)))
		}
		fwd.Lock()
		embs, err := t.tm.Forward(rows, t.tok.EOS())
		fwd.Unlock()
		for k := range rows {
			if err != nil {
				errs[start+k] = newError(InvalidInput, err, "forward")
				continue
			}
			out[start+k] = embs[k]
		}
	}
	return out, errs, nil
}
