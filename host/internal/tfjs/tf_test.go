package tfjs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
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
	f := fn(c.ns, name)
	for i := range args {
		args[i] = norm(args[i])
	}
	v, err := f.Call(c.ns.Object, args)
	if err != nil {
		panic(err) // jsops panics too (syscall/js turns a throw into a panic)
	}
	return v
}

// fn returns tf's function name: "add", or "fused.matMul" (a function of
// the object tf.fused).
func fn(ns *Namespace, name string) *gojs.Function {
	if holder, rest, ok := strings.Cut(name, "."); ok {
		return ns.Object.Get(holder).(*gojs.Object).Get(rest).(*gojs.Function)
	}
	return ns.Object.Get(name).(*gojs.Function)
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

// jsFused is jsCaller with ops.Fused served by tf.imgembed, called with the
// argument forms of wasm/jsops (null for an absent bias or residual,
// numbers for eps, images and heads).
type jsFused struct{ jsCaller }

var _ ops.Fused = jsFused{}

func orNull(x ops.Tensor) gojs.Value {
	if x == nil {
		return gojs.Null
	}
	return x
}

func (c jsFused) Linear(a, w, bias ops.Tensor, gated bool, residual ops.Tensor) ops.Tensor {
	return c.call("imgembed.linear", a, w, orNull(bias), gated, orNull(residual))
}
func (c jsFused) NormRows(x ops.Tensor, eps float32) ops.Tensor {
	return c.call("imgembed.normRows", x, float64(eps))
}
func (c jsFused) Attention(q, k, v ops.Tensor, images, heads int) ops.Tensor {
	return c.call("imgembed.attention", q, k, v, images, heads)
}

// spelled hides an Ops' fused kernels: the graph spells them with the op
// list.
type spelled struct{ ops.Ops }

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
	w := js.Tensor([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3)
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
		{"imgembed.linear", []gojs.Value{a, a, gojs.Null, false, gojs.Null}, "imgembed.linear"}, // [2,3]@[2,3]
		{"imgembed.linear", []gojs.Value{a, w, "bias", false, gojs.Null}, "argument 2 must be a Tensor"},
		{"imgembed.linear", []gojs.Value{a, w, gojs.Null, 1.0, gojs.Null}, "gated"},
		{"imgembed.linear", []gojs.Value{a, w, gojs.Null, false, gone}, "disposed"},
		{"imgembed.linear", []gojs.Value{a, w, a, false, gojs.Null}, "bias shape"},
		{"imgembed.linear", []gojs.Value{a, w, gojs.Null, true, w}, "residual shape"},
		{"imgembed.linear", []gojs.Value{"a", w}, "argument 0 must be a Tensor"},
		{"imgembed.normRows", []gojs.Value{a}, "eps"},
		{"imgembed.normRows", []gojs.Value{a, "1e-5"}, "eps"},
		{"imgembed.normRows", []gojs.Value{gojs.NewFloat32Array([]float32{1}), 1e-5}, "argument 0 must be a Tensor"},
		{"imgembed.attention", []gojs.Value{a, a, a, 1.0, 4.0}, "imgembed.attention"}, // 3 columns, 4 heads
		{"imgembed.attention", []gojs.Value{a, a, a, 0.0, 1.0}, "images"},
		{"imgembed.attention", []gojs.Value{a, a, a, 1.0, 1.5}, "heads"},
		{"imgembed.attention", []gojs.Value{a, a, nil, 1.0, 1.0}, "argument 2 must be a Tensor"},
		{"imgembed.attention", []gojs.Value{a, a}, "argument 2 must be a Tensor"},
	} {
		_, err := fn(ns, tc.fn).Call(ns.Object, tc.args)
		var ex *gojs.Exception
		if !errors.As(err, &ex) {
			t.Errorf("tf.%s(%v): error %v, want a thrown JS error", tc.fn, tc.args, err)
			continue
		}
		if !strings.Contains(ex.Error(), tc.want) {
			t.Errorf("tf.%s: threw %q, want it to mention %q", tc.fn, ex.Error(), tc.want)
		}
	}
	if m := ns.K.Memory(); m.NumTensors != 2 {
		t.Errorf("failed calls leaked tensors: tf.memory() = %+v, want 2 live", m)
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
	px := randVals(r, 3*3*cfg.ImageSize*cfg.ImageSize)
	// Through tf the graph is spelled with the op list (tfjs) or uses
	// tf.imgembed (what the module does under the host); natively it runs
	// with the fused kernels or spelled. All four give the same bits.
	for _, via := range []struct {
		name string
		o    ops.Ops
	}{{"tf", js}, {"tf.imgembed", jsFused{js}}} {
		mj, mn, ms := load(via.o), load(o), load(spelled{o})
		for _, n := range []int{1, 3} {
			before, calls := ns.K.Memory(), ns.K.Calls()
			gj, err := mj.Forward(px[:n*3*cfg.ImageSize*cfg.ImageSize], n)
			if err != nil {
				t.Fatal(err)
			}
			after, used := ns.K.Memory(), ns.K.Calls()
			for _, m := range []*vit.Model{mn, ms} {
				gn, err := m.Forward(px[:n*3*cfg.ImageSize*cfg.ImageSize], n)
				if err != nil {
					t.Fatal(err)
				}
				for i := range gn {
					for k := range gn[i] {
						if gj[i][k] != gn[i][k] {
							t.Fatalf("%s batch %d image %d component %d: %v through tf, %v native", via.name, n, i, k, gj[i][k], gn[i][k])
						}
					}
				}
			}
			if after != before {
				t.Errorf("%s batch %d: forward leaked tensors: %+v before, %+v after", via.name, n, before, after)
			}
			// Each path calls what it should: 2 layers, 2 norms each plus
			// the pre and final ones.
			fused := map[string]int{"imgembed.attention": 2, "imgembed.normRows": 6, "depthwiseConv2d": 0, "softmax": 0, "rsqrt": 0}
			if via.o == ops.Ops(js) {
				fused = map[string]int{"imgembed.attention": 0, "imgembed.normRows": 0, "imgembed.linear": 0, "depthwiseConv2d": 4, "softmax": 2, "rsqrt": 6}
			}
			for op, want := range fused {
				if got := used[op] - calls[op]; got != want {
					t.Errorf("%s batch %d: %s called %d times, want %d", via.name, n, op, got, want)
				}
			}
		}
		mj.Dispose()
		mn.Dispose()
		ms.Dispose()
		if m := ns.K.Memory(); m.NumTensors != 0 {
			t.Errorf("%s: after Dispose tf.memory() = %+v", via.name, m)
		}
	}
}

// spelledAttention is ops.Fused's spelling of Attention, as the ViT graph
// writes it for a batch (two depthwise convolutions and the transposes
// between them), written here for any ops.Ops.
func spelledAttention(o ops.Ops, q, k, v ops.Tensor, n, heads int) ops.Tensor {
	d := o.Shape(q)[1]
	hd, tq, tok, ch := d/heads, o.Shape(q)[0]/n, o.Shape(k)[0]/n, n*heads
	x := o.Reshape(o.Transpose(o.Reshape(q, n, tq, heads, hd), 1, 3, 0, 2), 1, tq, hd, ch)
	f := o.Reshape(o.Transpose(o.Reshape(k, n, tok, heads, hd), 3, 0, 2, 1), 1, hd, ch, tok)
	fv := o.Reshape(o.Transpose(o.Reshape(v, n, tok, heads, hd), 1, 0, 2, 3), 1, tok, ch, hd)
	p := o.Softmax(o.Reshape(o.DepthwiseConv2d(x, f), 1, tq, ch, tok))
	c := o.DepthwiseConv2d(o.Transpose(p, 0, 1, 3, 2), fv)
	return o.Reshape(o.Transpose(o.Reshape(c, tq, n, d), 1, 0, 2), n*tq, d)
}

// TestFusedMatchSpelling checks tf.imgembed's functions against their
// spelling with tf functions (ops.Fused), through the namespace: same
// shapes, same bits.
func TestFusedMatchSpelling(t *testing.T) {
	o := native.New(2)
	defer o.Close()
	ns := New(o)
	plain := jsCaller{t, ns}
	js := jsFused{plain}
	r := rand.New(rand.NewPCG(7, 8))
	mk := func(shape ...int) ops.Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		return plain.Tensor(randVals(r, n), shape...)
	}
	same := func(what string, got, want ops.Tensor) {
		t.Helper()
		gs, ws := plain.Shape(got), plain.Shape(want)
		if !slices.Equal(gs, ws) {
			t.Fatalf("%s: shape %v, spelled %v", what, gs, ws)
		}
		if gd, wd := plain.Data(got), plain.Data(want); !slices.Equal(gd, wd) {
			for i := range gd {
				if gd[i] != wd[i] {
					t.Fatalf("%s: element %d = %v, spelled %v", what, i, gd[i], wd[i])
				}
			}
		}
	}
	for _, sh := range [][3]int{{1, 3, 5}, {7, 33, 17}, {50, 64, 96}} {
		m, k, n := sh[0], sh[1], sh[2]
		a, w, bias, res := mk(m, k), mk(k, n), mk(n), mk(m, n)
		for use := range 4 { // the kernels pack a weight after a few uses
			for _, b := range []ops.Tensor{nil, bias} {
				for _, gated := range []bool{false, true} {
					for _, residual := range []ops.Tensor{nil, res} {
						got := js.Linear(a, w, b, gated, residual)
						var tmp []ops.Tensor
						var want ops.Tensor
						if b == nil {
							want = plain.MatMul(a, w, false, false)
						} else {
							want = plain.FusedMatMul(a, w, b)
						}
						if gated {
							s := plain.Sigmoid(want)
							tmp = append(tmp, want, s)
							want = plain.Mul(want, s)
						}
						if residual != nil {
							tmp = append(tmp, want)
							want = plain.Add(residual, want)
						}
						same(fmt.Sprintf("linear %v use %d bias=%v gated=%v residual=%v", sh, use, b != nil, gated, residual != nil), got, want)
						plain.Dispose(append(tmp, got, want)...)
					}
				}
			}
		}
		plain.Dispose(a, w, bias, res)
	}
	const eps = 1e-5
	epsT := plain.Tensor([]float32{eps}, 1)
	for _, sh := range [][]int{{1, 1}, {3, 7}, {50, 64}, {2, 5, 33}} {
		x := mk(sh...)
		sq := plain.Mul(x, x)
		mean := plain.Mean(sq, -1, true)
		v := plain.Add(mean, epsT)
		rs := plain.Rsqrt(v)
		want := plain.Mul(x, rs)
		got := js.NormRows(x, eps)
		same(fmt.Sprintf("normRows %v", sh), got, want)
		plain.Dispose(x, sq, mean, v, rs, want, got)
	}
	plain.Dispose(epsT)
	// images, queries, keys, D, heads
	for _, c := range [][5]int{{1, 50, 50, 64, 4}, {3, 50, 50, 64, 4}, {8, 1, 50, 64, 4}, {2, 5, 7, 12, 3}, {1, 1, 1, 4, 4}} {
		n, tq, tk, d, heads := c[0], c[1], c[2], c[3], c[4]
		q, k, v := mk(n*tq, d), mk(n*tk, d), mk(n*tk, d)
		got := js.Attention(q, k, v, n, heads)
		same(fmt.Sprintf("attention %v", c), got, spelledAttention(plain, q, k, v, n, heads))
		plain.Dispose(q, k, v, got)
	}
	if calls := ns.K.Calls(); calls["imgembed.linear"] != 3*4*8 || calls["imgembed.normRows"] != 4 || calls["imgembed.attention"] != 5 {
		t.Errorf("calls %v: want 96 imgembed.linear, 4 normRows, 5 attention", calls)
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
