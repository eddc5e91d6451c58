//go:build js && wasm

package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"syscall/js"
	"testing"
)

// These tests drive the module's API objects directly under Node
// (go_js_wasm_exec) with TensorFlow.js's synchronous cpu backend from the
// repository's node_modules; the wasm backend, the npm package and HTTP
// loading are covered by js/test.

func loadTF(t *testing.T) js.Value {
	t.Helper()
	req := js.Global().Get("require")
	if req.Type() != js.TypeFunction {
		t.Skip("no require: not running under Node")
	}
	nm := filepath.Join("..", "node_modules", "@tensorflow")
	abs, err := filepath.Abs(nm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Skipf("no node_modules (run npm ci): %v", err)
	}
	tf := req.Invoke(filepath.Join(abs, "tfjs-core"))
	req.Invoke(filepath.Join(abs, "tfjs-backend-cpu"))
	tf.Call("setBackend", "cpu")
	return tf
}

func jsBytesOf(b []byte) js.Value {
	u8 := jsUint8Array.New(len(b))
	js.CopyBytesToJS(u8, b)
	return u8
}

func readTestdata(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{"..", "testdata"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func goFloats(f js.Value) []float32 {
	n := f.Length()
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(f.Index(i).Float())
	}
	return out
}

func TestLoadForwardErrors(t *testing.T) {
	tf := loadTF(t)
	opts := jsObject.New()
	opts.Set("tf", tf)
	opts.Set("source", jsBytesOf(readTestdata(t, "models", "tiny-f16.safetensors")))
	v, err := run(func() (any, error) { return loadModel(opts) })
	if err != nil {
		t.Fatal(err)
	}
	model := v.(js.Value)
	cfg := model.Get("config")
	if cfg.Get("embeddingSize").Int() != 32 || cfg.Get("dtype").String() != "F16" || cfg.Get("imageSize").Int() != 64 {
		t.Fatalf("config %v", js.Global().Get("JSON").Call("stringify", cfg))
	}

	var golden map[string][]float32
	if err := json.Unmarshal(readTestdata(t, "golden", "embed-tiny-f16.json"), &golden); err != nil {
		t.Fatal(err)
	}
	png := readTestdata(t, "images", "chelsea.png")
	inputs := jsArray.New()
	inputs.Call("push", jsBytesOf(png))
	inputs.Call("push", jsBytesOf([]byte("not an image")))
	inputs.Call("push", 7)
	inputs.Call("push", jsBytesOf(png[:100]))
	res, err := await(model.Call("forward", inputs))
	if err != nil {
		t.Fatal(err)
	}
	if res.Length() != 4 {
		t.Fatalf("%d results", res.Length())
	}
	e := goFloats(res.Index(0))
	want := golden["images/chelsea.png"]
	var dot float64
	for i := range want {
		dot += float64(e[i]) * float64(want[i])
	}
	if dot < 0.9999 || math.IsNaN(dot) {
		t.Fatalf("cosine %v", dot)
	}
	for i, code := range map[int]string{1: "UnsupportedImageFormat", 2: "InvalidInput", 3: "CorruptImage"} {
		if got := res.Index(i).Get("code").String(); got != code {
			t.Errorf("input %d: code %s, want %s (%s)", i, got, code, res.Index(i).Get("message"))
		}
	}

	before := tf.Call("memory").Get("numTensors").Int()
	model.Call("dispose")
	if after := tf.Call("memory").Get("numTensors").Int(); after >= before || after != 0 {
		t.Errorf("numTensors %d after dispose (before %d)", after, before)
	}
	_, err = await(model.Call("forward", jsArray.New()))
	if err == nil {
		t.Fatal("forward after dispose succeeded")
	}
	if code := err.(*jsThrown).v.Get("code").String(); code != string(codeModelNotLoaded) {
		t.Fatalf("code %s", code)
	}
}

func TestLoadRejects(t *testing.T) {
	tf := loadTF(t)
	for name, src := range map[string]js.Value{
		"garbage":   jsBytesOf([]byte("hello, world, this is not a model")),
		"truncated": jsBytesOf(readTestdata(t, "models", "tiny-f32.safetensors")[:5000]),
		"number":    js.ValueOf(3),
	} {
		opts := jsObject.New()
		opts.Set("tf", tf)
		opts.Set("source", src)
		_, err := run(func() (any, error) { return loadModel(opts) })
		want := codeInvalidModel
		if name == "number" {
			want = codeInvalidInput
		}
		if got := codeOf(err, ""); got != want {
			t.Errorf("%s: code %q (%v), want %s", name, got, err, want)
		}
	}
	opts := jsObject.New()
	opts.Set("tf", jsObject.New()) // not tfjs
	opts.Set("source", jsBytesOf(readTestdata(t, "models", "tiny-f32.safetensors")))
	if _, err := run(func() (any, error) { return loadModel(opts) }); codeOf(err, "") != codeInvalidModel {
		t.Errorf("bad tf: %v", err)
	}
}

func TestPreprocessAPI(t *testing.T) {
	opts := jsObject.New()
	opts.Set("size", 64)
	v, err := run(func() (any, error) {
		return preprocessAPI(jsBytesOf(readTestdata(t, "images", "coffee.png")), opts)
	})
	if err != nil {
		t.Fatal(err)
	}
	got := goFloats(v.(js.Value))
	raw := readTestdata(t, "golden", "pixels-64", "coffee.png.f32")
	if len(got)*4 != len(raw) {
		t.Fatalf("%d values, golden %d bytes", len(got), len(raw))
	}
	var sum float64
	for i := range got {
		w := math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
		sum += math.Abs(float64(got[i] - w))
	}
	// Mean |diff| below 0.05 of an 8-bit level (1/255/std ≈ 0.0146).
	if mean := sum / float64(len(got)); mean > 0.05*0.0146 {
		t.Fatalf("mean abs diff %v", mean)
	}
	bad := jsObject.New()
	bad.Set("size", 0)
	if _, err := run(func() (any, error) { return preprocessAPI(jsBytesOf([]byte{1}), bad) }); codeOf(err, "") != codeInvalidInput {
		t.Fatalf("size 0: %v", err)
	}
}
