package tfjs

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/host/internal/gojs"
	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/wasm/vit"
	"github.com/imgembed/imgembed/weights"
)

// jsCaller is an ops.Ops that calls the namespace the way wasm/jsops calls
// tfjs (same functions, same argument forms: Float32Array values, JS arrays
// for shapes, {a, b, bias} for fused.matMul, an array for tf.dispose), so the
// differential test below checks the boundary, not just the kernels.
type jsCaller struct {
	t  testing.TB
	ns *Namespace
}

func (c jsCaller) call(name string, args ...gojs.Value) gojs.Value {
	c.t.Helper()
	var f *gojs.Function
	if rest, ok := strings.CutPrefix(name, "fused."); ok {
		f = c.ns.Object.Get("fused").(*gojs.Object).Get(rest).(*gojs.Function)
	} else {
		f = c.ns.Object.Get(name).(*gojs.Function)
	}
	for i := range args {
		args[i] = norm(args[i])
	}
	v, err := f.Call(c.ns.Object, args)
	if err != nil {
		panic(err) // jsops panics too (syscall/js turns a throw into a panic)
	}
	return v
}

func norm(v gojs.Value) gojs.Value {
	switch x := v.(type) {
	case []int:
		a := make([]gojs.Value, len(x))
		for i, d := range x {
			a[i] = float64(d)
		}
		return gojs.NewArray(a...)
	case int:
		return float64(x)
	}
	return v
}

func (c jsCaller) Tensor(values []float32, shape ...int) ops.Tensor {
	return c.call("tensor", gojs.NewFloat32Array(append([]float32(nil), values...)), shape, "float32")
}

func (c jsCaller) Data(t ops.Tensor) []float32 {
	o := t.(*gojs.Object)
	f := o.Get("dataSync").(*gojs.Function)
	v, err := f.Call(o, nil)
	if err != nil {
		panic(err)
	}
	return append([]float32(nil), v.(*gojs.TypedArray).Float32s()...)
}

func (c jsCaller) Shape(t ops.Tensor) []int {
	a := t.(*gojs.Object).Get("shape").(*gojs.Array)
	out := make([]int, len(a.Elems))
	for i, e := range a.Elems {
		out[i] = int(e.(float64))
	}
	return out
}

func (c jsCaller) Dispose(ts ...ops.Tensor) {
	a := make([]gojs.Value, 0, len(ts))
	for _, t := range ts {
		if t != nil {
			a = append(a, t)
		}
	}
	c.call("dispose", gojs.NewArray(a...))
}

func (c jsCaller) MatMul(a, b ops.Tensor, ta, tb bool) ops.Tensor {
	return c.call("matMul", a, b, ta, tb)
}
func (c jsCaller) FusedMatMul(a, b, bias ops.Tensor) ops.Tensor {
	return c.call("fused.matMul", gojs.NewObject(map[string]gojs.Value{"a": a, "b": b, "bias": bias}))
}
func (c jsCaller) Add(a, b ops.Tensor) ops.Tensor  { return c.call("add", a, b) }
func (c jsCaller) Sub(a, b ops.Tensor) ops.Tensor  { return c.call("sub", a, b) }
func (c jsCaller) Mul(a, b ops.Tensor) ops.Tensor  { return c.call("mul", a, b) }
func (c jsCaller) Sigmoid(x ops.Tensor) ops.Tensor { return c.call("sigmoid", x) }
func (c jsCaller) Rsqrt(x ops.Tensor) ops.Tensor   { return c.call("rsqrt", x) }
func (c jsCaller) Softmax(x ops.Tensor) ops.Tensor { return c.call("softmax", x) }
func (c jsCaller) Mean(x ops.Tensor, axis int, keep bool) ops.Tensor {
	return c.call("mean", x, axis, keep)
}
func (c jsCaller) Reshape(x ops.Tensor, shape ...int) ops.Tensor {
	return c.call("reshape", x, shape)
}
func (c jsCaller) Transpose(x ops.Tensor, perm ...int) ops.Tensor {
	return c.call("transpose", x, perm)
}
func (c jsCaller) Slice(x ops.Tensor, begin, size []int) ops.Tensor {
	return c.call("slice", x, begin, size)
}

func (c jsCaller) DepthwiseConv2d(x, f ops.Tensor) ops.Tensor {
	return c.call("depthwiseConv2d", x, f, 1, "valid")
}

var _ ops.Ops = jsCaller{}

func randVals(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// TestOpsMatchNative runs every op of the list through the namespace and
// directly on native kernels: results must be bit-identical (same kernels),
// shapes equal, and every tensor disposed at the end.
func TestOpsMatchNative(t *testing.T) {
	o := native.New(2)
	defer o.Close()
	ns := New(o)
	js := jsCaller{t, ns}
	r := rand.New(rand.NewPCG(3, 4))
	type pair struct{ j, n ops.Tensor }
	var all []pair
	mk := func(shape ...int) pair {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := randVals(r, n)
		p := pair{js.Tensor(v, shape...), o.Tensor(append([]float32(nil), v...), shape...)}
		all = append(all, p)
		return p
	}
	check := func(name string, p pair) {
		t.Helper()
		all = append(all, p)
		gs, ws := js.Shape(p.j), o.Shape(p.n)
		if len(gs) != len(ws) {
			t.Fatalf("%s: shape %v, want %v", name, gs, ws)
		}
		for i := range gs {
			if gs[i] != ws[i] {
				t.Fatalf("%s: shape %v, want %v", name, gs, ws)
			}
		}
		gd, wd := js.Data(p.j), o.Data(p.n)
		for i := range wd {
			if gd[i] != wd[i] {
				t.Fatalf("%s: element %d = %v, want %v", name, i, gd[i], wd[i])
			}
		}
	}
	a, b := mk(5, 7), mk(7, 3)
	bt := mk(3, 7)
	bias := mk(3)
	check("matMul", pair{js.MatMul(a.j, b.j, false, false), o.MatMul(a.n, b.n, false, false)})
	check("matMul transposeB", pair{js.MatMul(a.j, bt.j, false, true), o.MatMul(a.n, bt.n, false, true)})
	q, k := mk(4, 6, 8), mk(4, 6, 8)
	check("batched matMul", pair{js.MatMul(q.j, k.j, false, true), o.MatMul(q.n, k.n, false, true)})
	check("fused.matMul", pair{js.FusedMatMul(a.j, b.j, bias.j), o.FusedMatMul(a.n, b.n, bias.n)})
	x, row, s := mk(2, 3, 4), mk(4), mk()
	for _, f := range []struct {
		name string
		j, n func(a, b ops.Tensor) ops.Tensor
	}{{"add", js.Add, o.Add}, {"sub", js.Sub, o.Sub}, {"mul", js.Mul, o.Mul}} {
		check(f.name, pair{f.j(x.j, row.j), f.n(x.n, row.n)})
		check(f.name+" scalar", pair{f.j(x.j, s.j), f.n(x.n, s.n)})
		check(f.name+" same", pair{f.j(x.j, x.j), f.n(x.n, x.n)})
	}
	check("sigmoid", pair{js.Sigmoid(x.j), o.Sigmoid(x.n)})
	sq := pair{js.Mul(x.j, x.j), o.Mul(x.n, x.n)}
	all = append(all, sq)
	check("rsqrt", pair{js.Rsqrt(sq.j), o.Rsqrt(sq.n)})
	check("softmax", pair{js.Softmax(x.j), o.Softmax(x.n)})
	check("mean keep", pair{js.Mean(x.j, -1, true), o.Mean(x.n, -1, true)})
	check("mean axis 1", pair{js.Mean(x.j, 1, false), o.Mean(x.n, 1, false)})
	check("reshape", pair{js.Reshape(x.j, 6, -1), o.Reshape(x.n, 6, -1)})
	check("transpose", pair{js.Transpose(x.j, 2, 0, 1), o.Transpose(x.n, 2, 0, 1)})
	check("slice", pair{js.Slice(x.j, []int{0, 1, 1}, []int{2, -1, 2}), o.Slice(x.n, []int{0, 1, 1}, []int{2, -1, 2})})
	img, filt := mk(2, 5, 6, 3), mk(2, 6, 3, 4)
	check("depthwiseConv2d", pair{js.DepthwiseConv2d(img.j, filt.j), o.DepthwiseConv2d(img.n, filt.n)})

	for _, p := range all {
		js.Dispose(p.j)
		o.Dispose(p.n)
	}
	if m := ns.K.Memory(); m.NumTensors != 0 || m.NumBytes != 0 {
		t.Fatalf("after disposing everything tf.memory() = %+v", m)
	}
}

// TestThrows checks that misuse throws a JS error (as tfjs does) instead of
// crashing the host, and that the error names the function.
func TestThrows(t *testing.T) {
	o := native.New(1)
	defer o.Close()
	ns := New(o)
	js := jsCaller{t, ns}
	a := js.Tensor([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	gone := js.Tensor([]float32{1}, 1)
	js.Dispose(gone)
	fn := func(name string) *gojs.Function {
		if rest, ok := strings.CutPrefix(name, "fused."); ok {
			return ns.Object.Get("fused").(*gojs.Object).Get(rest).(*gojs.Function)
		}
		return ns.Object.Get(name).(*gojs.Function)
	}
	shape := func(d ...int) gojs.Value { return norm(d) }
	for _, tc := range []struct {
		fn   string
		args []gojs.Value
		want string
	}{
		{"matMul", []gojs.Value{a, a}, "matMul"},
		{"depthwiseConv2d", []gojs.Value{a, a, 1.0, "valid"}, "depthwiseConv2d"},
		{"depthwiseConv2d", []gojs.Value{a, a, 2.0, "valid"}, "strides 1"},
		{"depthwiseConv2d", []gojs.Value{a, a, 1.0, "same"}, "'valid'"},
		{"add", []gojs.Value{a, "x"}, "must be a Tensor"},
		{"add", []gojs.Value{a, gone}, "disposed"},
		{"reshape", []gojs.Value{a, shape(4, 4)}, "reshape"},
		{"reshape", []gojs.Value{a, "nope"}, "shape"},
		{"tensor", []gojs.Value{gojs.NewFloat32Array([]float32{1, 2}), shape(3)}, "should have 3 values"},
		{"tensor", []gojs.Value{gojs.NewFloat32Array([]float32{1}), shape(1), "int32"}, "dtype"},
		{"transpose", []gojs.Value{a, shape(0, 0)}, "transpose"},
		{"slice", []gojs.Value{a, shape(0, 2), shape(2, 2)}, "slice"},
		{"mean", []gojs.Value{a}, "axis"},
		{"fused.matMul", []gojs.Value{gojs.NewObject(map[string]gojs.Value{"a": a, "b": a, "bias": a, "transposeB": true})}, "transposeB"},
	} {
		_, err := fn(tc.fn).Call(ns.Object, tc.args)
		var ex *gojs.Exception
		if !errors.As(err, &ex) {
			t.Errorf("tf.%s(%v): error %v, want a thrown JS error", tc.fn, tc.args, err)
			continue
		}
		if !strings.Contains(ex.Error(), tc.want) {
			t.Errorf("tf.%s: threw %q, want it to mention %q", tc.fn, ex.Error(), tc.want)
		}
	}
	if m := ns.K.Memory(); m.NumTensors != 1 {
		t.Errorf("failed calls leaked tensors: tf.memory() = %+v, want 1 live", m)
	}
	// dataSync on a disposed tensor throws too.
	ds := gone.(*gojs.Object).Get("dataSync").(*gojs.Function)
	if _, err := ds.Call(gone, nil); err == nil {
		t.Error("dataSync on a disposed tensor did not throw")
	}
}

// TestTensorMemory checks tf.tensor's memory semantics: an aligned
// Float32Array is kept, not copied (as tfjs's cpu backend does; the module
// is told through load's detach option), misaligned views are copied, and
// dataSync returns a fresh array each time.
func TestTensorMemory(t *testing.T) {
	o := native.New(1)
	defer o.Close()
	ns := New(o)
	js := jsCaller{t, ns}
	src := gojs.NewFloat32Array([]float32{1, 2, 3})
	v := js.call("tensor", src, []int{3})
	if h := ns.handles[v.(*gojs.Object)]; &h.Data[0] != &src.Float32s()[0] {
		t.Error("an aligned Float32Array was copied")
	}
	d := js.Data(v)
	d[1] = 42
	if js.Data(v)[1] != 2 {
		t.Fatal("dataSync result aliases the tensor")
	}
	buf := gojs.NewArrayBuffer(make([]byte, 21))
	u8, err := gojs.NewTypedArray(gojs.Uint8, buf, 1, 20)
	if err != nil {
		t.Fatal(err)
	}
	copy(u8.Bytes(), []byte{0, 0, 0x80, 0x3f}) // 1.0 at byte 1 of the buffer
	// A Float32Array at an odd address cannot be made in JS, but a host
	// must not crash on one: build it over the misaligned Uint8Array's bytes.
	mis, err := gojs.NewTypedArray(gojs.Float32, gojs.NewArrayBuffer(u8.Bytes()), 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	w := js.call("tensor", mis, []int{5})
	if got := js.Data(w)[0]; got != 1 {
		t.Fatalf("misaligned view read as %v, want 1", got)
	}
}

// TestGraphMatchesNative runs the whole CLIP graph (package vit) through the
// namespace and on native kernels directly: the embeddings must be
// identical, and loading plus forward must leave only the model's tensors.
func TestGraphMatchesNative(t *testing.T) {
	cfg := weights.Config{HiddenSize: 64, NumLayers: 2, NumHeads: 4, IntermediateSize: 128,
		PatchSize: 8, ImageSize: 32, ProjectionDim: 16, LayerNormEps: 1e-5, Activation: "quick_gelu"}
	r := rand.New(rand.NewPCG(5, 6))
	shapes := weights.VisionTensors(cfg)
	vals := map[string][]float32{}
	for name, sh := range shapes {
		n := 1
		for _, d := range sh {
			n *= d
		}
		v := randVals(r, n)
		for i := range v {
			v[i] *= 0.05
		}
		vals[name] = v
	}
	o := native.New(2)
	defer o.Close()
	ns := New(o)
	js := jsCaller{t, ns}
	load := func(x ops.Ops) *vit.Model {
		m, err := vit.Load(x, cfg, func(name string, _ []float32) ([]float32, []int, error) {
			return vals[name], shapes[name], nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	mj, mn := load(js), load(o)
	px := randVals(r, 3*3*cfg.ImageSize*cfg.ImageSize)
	before := ns.K.Memory()
	gj, err := mj.Forward(px, 3)
	if err != nil {
		t.Fatal(err)
	}
	gn, err := mn.Forward(px, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range gn {
		for k := range gn[i] {
			if gj[i][k] != gn[i][k] {
				t.Fatalf("image %d component %d: %v through tf, %v native", i, k, gj[i][k], gn[i][k])
			}
		}
	}
	if after := ns.K.Memory(); after != before {
		t.Errorf("forward leaked tensors: %+v before, %+v after", before, after)
	}
	mj.Dispose()
	mn.Dispose()
	if m := ns.K.Memory(); m.NumTensors != 0 {
		t.Errorf("after Dispose tf.memory() = %+v", m)
	}
}

// BenchmarkCallOverhead is the host-side cost of one tf call on a tiny
// tensor (argument checks, bookkeeping, the result object), without the
// wasm ABI crossing.
func BenchmarkCallOverhead(b *testing.B) {
	o := native.New(1)
	defer o.Close()
	ns := New(o)
	js := jsCaller{b, ns}
	x := js.Tensor([]float32{1, 2, 3, 4}, 2, 2)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		y := js.Add(x, x)
		js.Dispose(y)
	}
}
