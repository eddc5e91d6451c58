package textmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops"
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
	return openModelOn(t, native.New(0), name)
}

// leftOps asks the graph for weights on the left (ops.LeftWeights), as
// tfjs-wasm does.
type leftOps struct{ ops.Ops }

func (leftOps) WeightsLeft() bool { return true }

func openModelOn(t testing.TB, o ops.Ops, name string) *Model {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(testdata, "models", name+".safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := LoadFile(o, f, nil)
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

// TestGolden runs the golden ids one at a time and all 20 in one batch,
// with the weights on the right (the default) and on the left.
func TestGolden(t *testing.T) {
	for _, o := range []ops.Ops{native.New(0), leftOps{native.New(0)}} {
		t.Run(fmt.Sprint("left=", ops.WeightsLeft(o)), func(t *testing.T) { testGolden(t, openModelOn(t, o, "tiny-fullclip-f32")) })
	}
}

func testGolden(t *testing.T, m *Model) {
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

// counting tracks the live tensors of an Ops.
type counting struct {
	ops.Ops
	live int
}

func (c *counting) k(t ops.Tensor) ops.Tensor { c.live++; return t }
func (c *counting) Tensor(v []float32, s ...int) ops.Tensor {
	return c.k(c.Ops.Tensor(v, s...))
}
func (c *counting) Dispose(ts ...ops.Tensor) {
	for _, t := range ts {
		if t != nil {
			c.live--
		}
	}
	c.Ops.Dispose(ts...)
}
func (c *counting) MatMul(a, b ops.Tensor, ta, tb bool) ops.Tensor {
	return c.k(c.Ops.MatMul(a, b, ta, tb))
}
func (c *counting) FusedMatMul(a, b, bias ops.Tensor) ops.Tensor {
	return c.k(c.Ops.FusedMatMul(a, b, bias))
}
func (c *counting) Add(a, b ops.Tensor) ops.Tensor  { return c.k(c.Ops.Add(a, b)) }
func (c *counting) Sub(a, b ops.Tensor) ops.Tensor  { return c.k(c.Ops.Sub(a, b)) }
func (c *counting) Mul(a, b ops.Tensor) ops.Tensor  { return c.k(c.Ops.Mul(a, b)) }
func (c *counting) Sigmoid(x ops.Tensor) ops.Tensor { return c.k(c.Ops.Sigmoid(x)) }
func (c *counting) Rsqrt(x ops.Tensor) ops.Tensor   { return c.k(c.Ops.Rsqrt(x)) }
func (c *counting) Softmax(x ops.Tensor) ops.Tensor { return c.k(c.Ops.Softmax(x)) }
func (c *counting) Mean(x ops.Tensor, axis int, keep bool) ops.Tensor {
	return c.k(c.Ops.Mean(x, axis, keep))
}
func (c *counting) Reshape(x ops.Tensor, s ...int) ops.Tensor { return c.k(c.Ops.Reshape(x, s...)) }
func (c *counting) Transpose(x ops.Tensor, p ...int) ops.Tensor {
	return c.k(c.Ops.Transpose(x, p...))
}
func (c *counting) Slice(x ops.Tensor, b, s []int) ops.Tensor { return c.k(c.Ops.Slice(x, b, s)) }
func (c *counting) DepthwiseConv2d(x, f ops.Tensor) ops.Tensor {
	return c.k(c.Ops.DepthwiseConv2d(x, f))
}

// TestForwardFreesEverything: a forward pass leaves exactly the model's
// tensors alive, in both layouts.
func TestForwardFreesEverything(t *testing.T) {
	var ids map[string][]int32
	readJSON(t, "golden/text-tokens.json", &ids)
	var rows [][]int32
	for _, r := range ids {
		rows = append(rows, r)
		if len(rows) == 3 {
			break
		}
	}
	for _, left := range []bool{false, true} {
		c := &counting{Ops: native.New(1)}
		var o ops.Ops = c
		if left {
			o = leftOps{c}
		}
		m := openModelOn(t, o, "tiny-fullclip-f32")
		kept := c.live
		if _, err := m.Forward(rows, 1213); err != nil {
			t.Fatal(err)
		}
		if c.live != kept {
			t.Errorf("left=%v: %d live tensors after a forward, want the model's %d", left, c.live, kept)
		}
		m.Dispose()
		if c.live != 0 {
			t.Errorf("left=%v: %d live tensors after Dispose", left, c.live)
		}
	}
}
