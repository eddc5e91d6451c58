package host

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var tokenizerPath = filepath.Join(testdataDir, "tokenizer", "tokenizer.json")

func checkText(t *testing.T, golden map[string][]float64, text string, got []float32) {
	t.Helper()
	want := golden[text]
	if len(got) != len(want) {
		t.Fatalf("%q: %d values, want %d", text, len(got), len(want))
	}
	var dot, maxAbs float64
	for i := range got {
		dot += float64(got[i]) * want[i]
		maxAbs = max(maxAbs, abs(float64(got[i])-want[i]))
	}
	if dot < 0.99999 || maxAbs > 1e-4 {
		t.Errorf("%q: cos %.7f, max abs %.2g", text, dot, maxAbs)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestEmbedText: one whole-CLIP file, both towers: texts vs the text golden,
// images vs the image golden, through the same Embedder.
func TestEmbedText(t *testing.T) {
	for _, eng := range []Engine{EngineNative, EngineWasm} {
		t.Run(string(eng), func(t *testing.T) { testEmbedText(t, eng) })
	}
}

func testEmbedText(t *testing.T, eng Engine) {
	ctx := context.Background()
	e, err := New(ctx, Options{Engine: eng, Model: modelPath("tiny-fullclip-f32"), Tokenizer: tokenizerPath, Text: true, CacheDir: testCache(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if c := e.Config(); c.Text == nil || c.Text.Heads != 2 || c.Text.VocabSize != 1214 || c.ImageSize != 64 || c.Text.LogitScale < 99.99 || c.Text.LogitScale > 100.01 {
		t.Fatalf("config %+v text %+v", c, c.Text)
	}
	golden := goldenEmbeddings(t, "text-tiny-fullclip-f32")
	var texts []string
	for text := range golden {
		texts = append(texts, text)
	}
	embs, err := e.EmbedText(ctx, texts...)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		checkText(t, golden, text, embs[i])
	}
	img := goldenEmbeddings(t, "tiny-fullclip-f32")
	emb, err := e.Embed(ctx, filepath.Join(testdataDir, "images", "chelsea.png"))
	if err != nil {
		t.Fatal(err)
	}
	var dot float64
	for i := range emb {
		dot += float64(emb[i]) * img["images/chelsea.png"][i]
	}
	if dot < 0.9999 {
		t.Errorf("image after text: cos %v", dot)
	}
	// Images and texts mixed in one call, results in input order.
	mixed, errs, err := e.EmbedBatch(ctx, []any{Text(texts[0]), filepath.Join(testdataDir, "images", "chelsea.png"), Text(texts[1]), "nope.png"})
	if err != nil {
		t.Fatal(err)
	}
	checkText(t, golden, texts[0], mixed[0])
	checkText(t, golden, texts[1], mixed[2])
	if errs[0] != nil || errs[1] != nil || errs[2] != nil || errs[3] == nil || mixed[3] != nil {
		t.Errorf("mixed errors %v", errs)
	}
	var dotMixed float64
	for i := range mixed[1] {
		dotMixed += float64(mixed[1][i]) * img["images/chelsea.png"][i]
	}
	if dotMixed < 0.9999 {
		t.Errorf("image in a mixed call: cos %v", dotMixed)
	}
	// A 1 MB text is cut, not an error.
	long := strings.Repeat("the quick brown fox jumps over the lazy dog ", 24000)
	if _, err := e.EmbedText(ctx, long); err != nil {
		t.Errorf("1 MB text: %v", err)
	}
	if got, err := e.EmbedText(ctx); err != nil || len(got) != 0 {
		t.Errorf("no texts: %v %v", got, err)
	}
}

// TestTextOnlyBeside: TextOnly with tokenizer.json found beside the model
// (a URL directory), no image tower.
func TestTextOnlyBeside(t *testing.T) {
	for _, eng := range []Engine{EngineNative, EngineWasm} {
		t.Run(string(eng), func(t *testing.T) { testTextOnlyBeside(t, eng) })
	}
}

func testTextOnlyBeside(t *testing.T, eng Engine) {
	model, err := os.ReadFile(modelPath("tiny-fullclip-f32"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(tokenizerPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/m/model.safetensors":
			http.ServeContent(w, r, "model.safetensors", time.Time{}, bytes.NewReader(model))
		case "/m/tokenizer.json":
			w.Write(tok)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	e, err := New(ctx, Options{Engine: eng, Model: srv.URL + "/m/model.safetensors", TextOnly: true, NoCache: true, CacheDir: testCache(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	golden := goldenEmbeddings(t, "text-tiny-fullclip-f32")
	embs, err := e.EmbedText(ctx, "a photo of a cat")
	if err != nil {
		t.Fatal(err)
	}
	checkText(t, golden, "a photo of a cat", embs[0])
	if _, err := e.Embed(ctx, filepath.Join(testdataDir, "images", "chelsea.png")); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("image on a text-only model: %v", err)
	}
}

func TestTextErrors(t *testing.T) {
	for _, eng := range []Engine{EngineNative, EngineWasm} {
		t.Run(string(eng), func(t *testing.T) { testTextErrors(t, eng) })
	}
}

func testTextErrors(t *testing.T, eng Engine) {
	ctx := context.Background()
	dir := t.TempDir()
	bad := filepath.Join(dir, "tokenizer.json")
	os.WriteFile(bad, []byte(`{"model": {"type": "WordPiece", "vocab": {}}}`), 0o644)
	for name, c := range map[string]struct {
		o    Options
		code error
		msg  string
	}{
		"no text tower":       {Options{Model: modelPath("tiny-f32"), Tokenizer: tokenizerPath, TextOnly: true}, ErrInvalidModel, "token_embedding"},
		"malformed tokenizer": {Options{Model: modelPath("tiny-fullclip-f32"), Tokenizer: bad, Text: true}, ErrInvalidModel, "tokenizer"},
		"missing tokenizer":   {Options{Model: modelPath("tiny-fullclip-f32"), Tokenizer: filepath.Join(dir, "nope.json"), Text: true}, ErrDownloadFailed, "nope.json"},
	} {
		c.o.CacheDir, c.o.Engine = testCache(t), eng
		_, err := New(ctx, c.o)
		if !errors.Is(err, c.code) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v", name, err)
		}
	}
	e, err := New(ctx, Options{Engine: eng, Model: modelPath("tiny-f32"), CacheDir: testCache(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.EmbedText(ctx, "a cat"); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("EmbedText on an image-only model: %v", err)
	}
}

// TestTextEngineParity: the native engine's text embeddings equal the
// module's (wazero) to float rounding.
func TestTextEngineParity(t *testing.T) {
	ctx := context.Background()
	texts := []string{"a photo of a cat", "", "東京の猫", strings.Repeat("long text ", 200)}
	var got [2][][]float32
	for k, eng := range []Engine{EngineNative, EngineWasm} {
		e, err := New(ctx, Options{Engine: eng, Model: modelPath("tiny-fullclip-f32"), Tokenizer: tokenizerPath, TextOnly: true, CacheDir: testCache(t)})
		if err != nil {
			t.Fatal(err)
		}
		if got[k], err = e.EmbedText(ctx, texts...); err != nil {
			t.Fatal(err)
		}
		e.Close()
	}
	for i := range texts {
		for j := range got[0][i] {
			if d := abs(float64(got[0][i][j] - got[1][i][j])); d > 1e-6 {
				t.Fatalf("%q [%d]: native %v, wasm %v", texts[i], j, got[0][i][j], got[1][i][j])
			}
		}
	}
}
