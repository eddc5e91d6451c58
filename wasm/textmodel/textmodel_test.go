package textmodel

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/wasm/tokenizer"
	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

var testdata = filepath.Join("..", "..", "testdata")

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func openModel(t testing.TB, name string) *Model {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(testdata, "models", name+".safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := LoadFile(native.New(0), f, nil)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	t.Cleanup(m.Dispose)
	return m
}

// compare checks got against want with the project's tolerances.
func compare(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var dot, maxAbs float64
	for i := range got {
		dot += float64(got[i]) * float64(want[i])
		maxAbs = max(maxAbs, math.Abs(float64(got[i]-want[i])))
	}
	if dot < 0.99999 || maxAbs > 1e-4 {
		t.Errorf("%s: cos %.7f, max abs %.2g", what, dot, maxAbs)
	}
}

// TestGolden runs the golden ids one at a time and all 20 in one batch.
func TestGolden(t *testing.T) {
	m := openModel(t, "tiny-fullclip-f32")
	var ids map[string][]int32
	var golden map[string][]float32
	readJSON(t, "golden/text-tokens.json", &ids)
	readJSON(t, "golden/embed-text-tiny-fullclip-f32.json", &golden)
	if len(golden) != 20 {
		t.Fatalf("%d golden embeddings", len(golden))
	}
	var texts []string
	var rows [][]int32
	for text := range golden {
		texts = append(texts, text)
		rows = append(rows, ids[text])
		out, err := m.Forward([][]int32{ids[text]}, 1213)
		if err != nil {
			t.Fatal(err)
		}
		compare(t, text, out[0], golden[text])
	}
	out, err := m.Forward(rows, 1213)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		compare(t, "batch: "+text, out[i], golden[text])
	}
}

// TestTokenizerToEmbedding: text -> Go tokenizer -> tower matches the golden.
func TestTokenizerToEmbedding(t *testing.T) {
	m := openModel(t, "tiny-fullclip-f32")
	data, err := os.ReadFile(filepath.Join(testdata, "tokenizer", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tokenizer.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string][]float32
	readJSON(t, "golden/embed-text-tiny-fullclip-f32.json", &golden)
	for text, want := range golden {
		out, err := m.Forward([][]int32{tk.Encode(text)}, tk.EOS())
		if err != nil {
			t.Fatal(err)
		}
		compare(t, text, out[0], want)
	}
}

func TestConfig(t *testing.T) {
	m := openModel(t, "tiny-fullclip-f32")
	want := weights.TextConfig{HiddenSize: 64, NumLayers: 2, NumHeads: 2, IntermediateSize: 256, VocabSize: 1214,
		ContextLength: 77, ProjectionDim: 32, LayerNormEps: 1e-5, Activation: "quick_gelu"}
	if m.Config() != want {
		t.Errorf("config %+v, want %+v", m.Config(), want)
	}
}

func TestNoTextTower(t *testing.T) {
	f, err := safetensors.Open(filepath.Join(testdata, "models", "tiny-f32.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = LoadFile(native.New(0), f, nil)
	if !errors.Is(err, weights.ErrNoTextTower) || !strings.Contains(err.Error(), weights.KeyTokenEmbedding) {
		t.Errorf("vision-only file: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	m := openModel(t, "tiny-fullclip-f32")
	for name, rows := range map[string][][]int32{
		"none":          nil,
		"no eos":        {{1212, 320, 518}},
		"out of range":  {{1212, 5000, 1213}},
		"negative":      {{1212, -1, 1213}},
		"eos too late":  {append(make([]int32, 77), 1213)},
		"one bad batch": {{1212, 1213}, {1212, 1214, 1213}},
	} {
		if _, err := m.Forward(rows, 1213); !errors.Is(err, ErrInput) {
			t.Errorf("%s: %v, want ErrInput", name, err)
		}
	}
	// Still usable.
	if _, err := m.Forward([][]int32{{1212, 1213}}, 1213); err != nil {
		t.Error(err)
	}
}

// TestLoadTablesIntoOwnMemory: the embedding tables are read into memory
// the model owns (a getter's buffer would be reused) and never reach the
// backend.
func TestLoadTablesIntoOwnMemory(t *testing.T) {
	f, err := safetensors.Open(filepath.Join(testdata, "models", "tiny-fullclip-f32.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := weights.TextConfigFrom(f.Header, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := native.New(0)
	dec := weights.NewDecoder(f.Header, f.ReadAt)
	var scratch []float32
	get := func(name string, buf []float32) ([]float32, []int, error) {
		v, shape, err := dec.Get(name, buf)
		if err == nil && (name == weights.KeyTokenEmbedding || name == weights.KeyTextPosition) && (cap(buf) < len(v) || &v[0] != &buf[0]) {
			t.Errorf("table %s was not read into the caller's buffer", name)
		}
		if err == nil && cap(buf) < len(v) {
			// Own storage: scribble over the previous values, as a getter
			// that reuses its buffer would.
			for i := range scratch {
				scratch[i] = float32(math.NaN())
			}
			scratch = v
		}
		return v, shape, err
	}
	m, err := Load(o, cfg, get)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Dispose()
	var ids map[string][]int32
	var golden map[string][]float32
	readJSON(t, "golden/text-tokens.json", &ids)
	readJSON(t, "golden/embed-text-tiny-fullclip-f32.json", &golden)
	out, err := m.Forward([][]int32{ids["a photo of a cat"]}, 1213)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "a photo of a cat", out[0], golden["a photo of a cat"])

	short := func(name string, buf []float32) ([]float32, []int, error) {
		if name == weights.KeyTokenEmbedding {
			return make([]float32, 10), []int{10}, nil
		}
		return dec.Get(name, buf)
	}
	if _, err := Load(o, cfg, short); !errors.Is(err, ErrUnsupported) {
		t.Errorf("short table: %v", err)
	}
}
