//go:build js && wasm

package jsops

import (
	"fmt"
	"slices"
	"strings"
	"syscall/js"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops"
)

// TestNoFusedOnTFJS: TensorFlow.js has no tf.imgembed, so the graphs get
// jsops as it is and spell every fused op.
func TestNoFusedOnTFJS(t *testing.T) {
	o, err := New(loadTF(t))
	if err != nil {
		t.Fatal(err)
	}
	if o.HasFused() {
		t.Fatal("HasFused on tfjs")
	}
	if g := o.WithFused(o); g != ops.Ops(o) || ops.FusedOps(g) != nil {
		t.Fatalf("WithFused on tfjs returned %T", g)
	}
}

// fakeHost is tfjs-cpu with a tf.imgembed whose functions compute their
// spelling with tf functions (as ops.Fused documents it) and record how
// they were called, and a tf.fused.matMul that counts its calls.
type fakeHost struct {
	tf    js.Value // the namespace given to New
	plain *Ops     // jsops over tfjs-cpu itself
	calls map[string]int
	args  []string // the last call's arguments, described
	funcs []js.Func
}

func newFakeHost(tb *testing.T, only ...string) *fakeHost {
	tf := loadTF(tb)
	plain, err := New(tf)
	if err != nil {
		tb.Fatal(err)
	}
	h := &fakeHost{plain: plain, calls: map[string]int{}}
	object := js.Global().Get("Object")
	h.tf = object.Call("create", tf)
	describe := func(a []js.Value) []string {
		var out []string
		for _, v := range a {
			switch v.Type() {
			case js.TypeObject:
				if v.Get("shape").Type() == js.TypeObject {
					out = append(out, fmt.Sprint("tensor", h.plain.wrap(v).shape))
					continue
				}
			case js.TypeNumber:
				out = append(out, fmt.Sprint(v.Float()))
				continue
			}
			out = append(out, v.Type().String()+":"+v.String())
		}
		return out
	}
	tensor := func(v js.Value) ops.Tensor {
		if v.IsNull() || v.IsUndefined() {
			return nil
		}
		return h.plain.wrap(v)
	}
	// A Go panic must not unwind a callback (it would leave the Go
	// runtime's event handling stuck): the callback returns tf's error
	// and a JS wrapper throws it, as a tf function would.
	throwing := js.Global().Get("Function").New("impl", "return function (...a) { const r = impl(...a); if (r instanceof Error) throw r; return r; }")
	def := func(holder js.Value, name string, f func(a []js.Value) ops.Tensor) {
		fn := js.FuncOf(func(_ js.Value, a []js.Value) (out any) {
			h.calls[name]++
			h.args = describe(a)
			defer func() {
				if r := recover(); r != nil {
					if e, ok := r.(js.Error); ok {
						out = e.Value
					} else {
						out = js.Global().Get("Error").New(fmt.Sprint(r))
					}
				}
			}()
			return t(f(a)).v
		})
		h.funcs = append(h.funcs, fn)
		holder.Set(name, throwing.Invoke(fn))
	}
	p := h.plain
	fused := object.New()
	def(fused, "matMul", func(a []js.Value) ops.Tensor {
		c := a[0]
		return p.FusedMatMul(tensor(c.Get("a")), tensor(c.Get("b")), tensor(c.Get("bias")))
	})
	h.tf.Set("fused", fused)
	ns := object.New()
	all := map[string]func(a []js.Value) ops.Tensor{
		"linear": func(a []js.Value) ops.Tensor {
			x, w, bias, res := tensor(a[0]), tensor(a[1]), tensor(a[2]), tensor(a[4])
			var y ops.Tensor
			if bias == nil {
				y = p.MatMul(x, w, false, false)
			} else {
				y = p.FusedMatMul(x, w, bias)
			}
			if a[3].Bool() {
				s := p.Sigmoid(y)
				y2 := p.Mul(y, s)
				p.Dispose(y, s)
				y = y2
			}
			if res != nil {
				y2 := p.Add(res, y)
				p.Dispose(y)
				y = y2
			}
			return y
		},
		"normRows": func(a []js.Value) ops.Tensor {
			x := tensor(a[0])
			eps := p.Tensor([]float32{float32(a[1].Float())}, 1)
			sq := p.Mul(x, x)
			m := p.Mean(sq, -1, true)
			v := p.Add(m, eps)
			r := p.Rsqrt(v)
			defer p.Dispose(eps, sq, m, v, r)
			return p.Mul(x, r)
		},
		"attention": func(a []js.Value) ops.Tensor {
			return spelledAttention(p, tensor(a[0]), tensor(a[1]), tensor(a[2]), a[3].Int(), a[4].Int())
		},
	}
	for name, f := range all {
		if len(only) == 0 || slices.Contains(only, name) {
			def(ns, name, f)
		}
	}
	h.tf.Set("imgembed", ns)
	tb.Cleanup(func() {
		for _, f := range h.funcs {
			f.Release()
		}
	})
	return h
}

// spelledAttention is ops.Fused's spelling of Attention for a batch, as the
// ViT graph writes it (temporaries disposed).
func spelledAttention(o ops.Ops, q, k, v ops.Tensor, n, heads int) ops.Tensor {
	var tmp []ops.Tensor
	defer func() { o.Dispose(tmp...) }()
	kt := func(x ops.Tensor) ops.Tensor { tmp = append(tmp, x); return x }
	d := o.Shape(q)[1]
	hd, tq, tok, ch := d/heads, o.Shape(q)[0]/n, o.Shape(k)[0]/n, n*heads
	x := kt(o.Reshape(kt(o.Transpose(kt(o.Reshape(q, n, tq, heads, hd)), 1, 3, 0, 2)), 1, tq, hd, ch))
	f := kt(o.Reshape(kt(o.Transpose(kt(o.Reshape(k, n, tok, heads, hd)), 3, 0, 2, 1)), 1, hd, ch, tok))
	fv := kt(o.Reshape(kt(o.Transpose(kt(o.Reshape(v, n, tok, heads, hd)), 1, 0, 2, 3)), 1, tok, ch, hd))
	p := kt(o.Softmax(kt(o.Reshape(kt(o.DepthwiseConv2d(x, f)), 1, tq, ch, tok))))
	c := kt(o.DepthwiseConv2d(kt(o.Transpose(p, 0, 1, 3, 2)), fv))
	return o.Reshape(kt(o.Transpose(kt(o.Reshape(c, tq, n, d)), 1, 0, 2)), n*tq, d)
}

// counted is a wrapper of an Ops (as the module's detachingOps is) that
// counts the tensors it creates.
type counted struct {
	*Ops
	tensors *int
}

func (c counted) Tensor(values []float32, shape ...int) ops.Tensor {
	*c.tensors++
	return c.Ops.Tensor(values, shape...)
}

// TestFusedServed: with tf.imgembed present, WithFused adds ops.Fused and
// each fused op is one call of its function with jsops's argument forms;
// FusedMatMul goes through tf.imgembed.linear; the wrapped Ops' other
// methods and its ops.LeftWeights answer are kept.
func TestFusedServed(t *testing.T) {
	h := newFakeHost(t)
	o, err := New(h.tf)
	if err != nil {
		t.Fatal(err)
	}
	checkShapes = true
	defer func() { checkShapes = false }()
	if !o.HasFused() {
		t.Fatal("tf.imgembed not found")
	}
	made := 0
	g := o.WithFused(counted{o, &made})
	f := ops.FusedOps(g)
	if f == nil {
		t.Fatalf("WithFused returned %T, no ops.Fused", g)
	}
	if ops.WeightsLeft(g) {
		t.Fatal("WeightsLeft without the backend asking")
	}
	o.UseBackend(Backend{WeightsLeft: true})
	if !ops.WeightsLeft(g) {
		t.Fatal("WithFused lost WeightsLeft")
	}
	o.UseBackend(Backend{})
	numTensors := func() int { return h.tf.Call("memory").Get("numTensors").Int() }
	before := numTensors()

	p := h.plain
	var all []ops.Tensor
	k := func(x ops.Tensor) ops.Tensor { all = append(all, x); return x }
	off := 0
	vals := func(n int) []float32 { // different values each time
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(((i+off)*7)%11)/5 - 1
		}
		off++
		return v
	}
	a := k(g.Tensor(vals(6), 2, 3))
	w := k(g.Tensor(vals(12), 3, 4))
	bias := k(g.Tensor(vals(4), 4))
	res := k(g.Tensor(vals(8), 2, 4))
	if made != 4 {
		t.Fatalf("%d tensors made through the wrapped Ops, want 4", made)
	}
	check := func(what string, got ops.Tensor, want []float32, shape []int, fn string, args string) {
		t.Helper()
		if h.calls[fn] != 1 {
			t.Fatalf("%s: %v calls, want one of %s", what, h.calls, fn)
		}
		clear(h.calls)
		if d := strings.Join(h.args, " "); d != args {
			t.Errorf("%s: called with %s, want %s", what, d, args)
		}
		eqShape(t, what, g.Shape(got), shape...)
		near(t, what, g.Data(got), want)
	}
	spelledLinear := func(bias ops.Tensor, gated bool, res ops.Tensor) []float32 {
		var y ops.Tensor
		if bias == nil {
			y = k(p.MatMul(a, w, false, false))
		} else {
			y = k(p.FusedMatMul(a, w, bias))
		}
		if gated {
			y = k(p.Mul(y, k(p.Sigmoid(y))))
		}
		if res != nil {
			y = k(p.Add(res, y))
		}
		return p.Data(y)
	}
	for _, b := range []ops.Tensor{nil, bias} {
		for _, gated := range []bool{false, true} {
			for _, r := range []ops.Tensor{nil, res} {
				what := fmt.Sprintf("linear bias=%v gated=%v residual=%v", b != nil, gated, r != nil)
				args := "tensor[2 3] tensor[3 4] "
				if b != nil {
					args += "tensor[4] "
				} else {
					args += "null:<null> "
				}
				args += fmt.Sprintf("boolean:<boolean: %v> ", gated)
				if r != nil {
					args += "tensor[2 4]"
				} else {
					args += "null:<null>"
				}
				check(what, k(f.Linear(a, w, b, gated, r)), spelledLinear(b, gated, r), []int{2, 4}, "linear", args)
			}
		}
	}
	// Shapes tf gets wrong are its to report: the error comes from the call.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("linear of mismatched shapes did not panic")
			}
		}()
		f.Linear(w, a, nil, false, nil)
	}()
	clear(h.calls)
	check("fused.matMul", k(g.FusedMatMul(a, w, bias)), spelledLinear(bias, false, nil), []int{2, 4}, "linear",
		"tensor[2 3] tensor[3 4] tensor[4] boolean:<boolean: false> null:<null>")

	x := k(g.Tensor(vals(10), 2, 5))
	want := func() []float32 {
		eps := k(p.Tensor([]float32{1e-3}, 1))
		return p.Data(k(p.Mul(x, k(p.Rsqrt(k(p.Add(k(p.Mean(k(p.Mul(x, x)), -1, true)), eps)))))))
	}()
	check("normRows", k(f.NormRows(x, 1e-3)), want, []int{2, 5}, "normRows", fmt.Sprint("tensor[2 5] ", float64(float32(1e-3))))

	for _, c := range [][5]int{{1, 3, 3, 4, 2}, {2, 1, 3, 6, 3}} {
		n, tq, tk, d, heads := c[0], c[1], c[2], c[3], c[4]
		q, kk, v := k(g.Tensor(vals(n*tq*d), n*tq, d)), k(g.Tensor(vals(n*tk*d), n*tk, d)), k(g.Tensor(vals(n*tk*d), n*tk, d))
		want := p.Data(k(spelledAttention(p, q, kk, v, n, heads)))
		check(fmt.Sprint("attention ", c), k(f.Attention(q, kk, v, n, heads)), want, []int{n * tq, d}, "attention",
			fmt.Sprintf("tensor[%d %d] tensor[%d %d] tensor[%d %d] %d %d", n*tq, d, n*tk, d, n*tk, d, n, heads))
	}

	if got := numTensors(); got != before+len(all) {
		t.Fatalf("numTensors %d, want %d", got, before+len(all))
	}
	g.Dispose(all...)
	if got := numTensors(); got != before {
		t.Fatalf("after Dispose numTensors %d, want %d", got, before)
	}
}

// TestFusedPartial: a tf.imgembed without all of its functions is a host
// set up wrongly: New names the missing one.
func TestFusedPartial(t *testing.T) {
	h := newFakeHost(t, "linear", "attention")
	_, err := New(h.tf)
	if err == nil || !strings.Contains(err.Error(), "tf.imgembed.normRows") {
		t.Fatalf("New with tf.imgembed missing normRows: %v", err)
	}
}
