package opdiff

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/ops/native"
)

const tinyModel = "../../../testdata/models/tiny-f32.safetensors"

func goldenPixels(t *testing.T, size int, names ...string) []float32 {
	t.Helper()
	var out []float32
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("../../../testdata/golden", "pixels-"+itoa(size), n+".png.f32"))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+4 <= len(b); i += 4 {
			out = append(out, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
		}
	}
	return out
}

func itoa(n int) string { return fmtInt(n) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

// runViT loads the tiny model on o and embeds two golden images.
func runViT(t *testing.T, o *Ops) [][]float32 {
	t.Helper()
	m, err := LoadViT(o, tinyModel)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Dispose()
	out, err := m.Forward(goldenPixels(t, 64, "astronaut", "chelsea"), 2)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Two honest implementations (native with 1 and with 2 threads, whose matmul
// may split sums differently) agree within every bound, and every op the
// graph uses is exercised.
func TestHonestImplementationsAgree(t *testing.T) {
	a, b := native.New(1), native.New(2)
	defer a.Close()
	defer b.Close()
	o := New(a, b)
	runViT(t, o)
	if f := o.Failures(); len(f) > 0 {
		t.Fatalf("%d ops outside tolerance, first: %v", len(f), f[0])
	}
	w := o.Worst()
	for _, name := range []string{"Tensor", "MatMul", "FusedMatMul", "Add", "Sub", "Mul", "Sigmoid", "Rsqrt",
		"Softmax", "Mean", "Reshape", "Transpose", "Slice"} {
		if _, ok := w[name]; !ok {
			t.Errorf("op %s never ran through the graph", name)
		}
	}
	if len(o.Records()) < 100 {
		t.Errorf("only %d records", len(o.Records()))
	}
}

// f64 is native with matrix products accumulated in float64 and rounded
// once: a legitimately different implementation, which must stay within
// the MatMul bounds (they must not be too tight).
type f64 struct{ *native.Ops }

func (x f64) MatMul(a, b ops.Tensor, ta, tb bool) ops.Tensor {
	ref := x.Ops.MatMul(a, b, ta, tb)
	defer x.Dispose(ref)
	return x.Tensor(exactProduct(x.Ops, a, b, ta, tb), x.Shape(ref)...)
}

func (x f64) FusedMatMul(a, b, bias ops.Tensor) ops.Tensor {
	p := exactProduct(x.Ops, a, b, false, false)
	bv := x.Data(bias)
	n := len(bv)
	out := make([]float32, len(p))
	for i := range p {
		out[i] = float32(float64(p[i]) + float64(bv[i%n]))
	}
	return x.Tensor(out, x.Shape(a)[0], n)
}

func exactProduct(o *native.Ops, a, b ops.Tensor, ta, tb bool) []float32 {
	sa, sb := o.Shape(a), o.Shape(b)
	da, db := o.Data(a), o.Data(b)
	batch := 1
	if len(sa) == 3 {
		batch, sa, sb = sa[0], sa[1:], sb[1:]
	}
	m, k := sa[0], sa[1]
	if ta {
		m, k = k, m
	}
	n := sb[1]
	if tb {
		n = sb[0]
	}
	out := make([]float32, batch*m*n)
	for bi := 0; bi < batch; bi++ {
		A, B := da[bi*m*k:], db[bi*k*n:]
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var s float64
				for q := 0; q < k; q++ {
					av, bv := A[i*k+q], B[q*n+j]
					if ta {
						av = A[q*m+i]
					}
					if tb {
						bv = B[j*k+q]
					}
					s += float64(av) * float64(bv)
				}
				out[bi*m*n+i*n+j] = float32(s)
			}
		}
	}
	return out
}

func TestFloat64AccumulationWithinMatMulBounds(t *testing.T) {
	a := native.New(1)
	defer a.Close()
	o := New(a, f64{a})
	runViT(t, o)
	if f := o.Failures(); len(f) > 0 {
		t.Fatalf("%d ops outside tolerance, first: %v", len(f), f[0])
	}
	t.Logf("worst per op:\n%s", o.Summary())
	if r := o.Worst()["MatMul"]; r.MaxAbs == 0 {
		t.Errorf("float64 accumulation gave bitwise-equal matmuls: the comparison is not looking (%v)", r)
	}
}

// softmaxOff perturbs Softmax by 1e-4 relative: 25x beyond its bound for
// 17 tokens (2*(17+16) ulp = 3.9e-6).
type softmaxOff struct{ *native.Ops }

func (x softmaxOff) Softmax(t ops.Tensor) ops.Tensor {
	r := x.Ops.Softmax(t)
	defer x.Dispose(r)
	d := append([]float32(nil), x.Data(r)...)
	for i := range d {
		d[i] *= 1 + 1e-4
	}
	return x.Tensor(d, x.Shape(r)...)
}

// transposeOff swaps two output elements of every Transpose.
type transposeOff struct{ *native.Ops }

func (x transposeOff) Transpose(t ops.Tensor, perm ...int) ops.Tensor {
	r := x.Ops.Transpose(t, perm...)
	defer x.Dispose(r)
	d := append([]float32(nil), x.Data(r)...)
	d[0], d[len(d)-1] = d[len(d)-1], d[0]
	return x.Tensor(d, x.Shape(r)...)
}

// matmulOff adds 1e-3 relative error to FusedMatMul only.
type matmulOff struct{ *native.Ops }

func (x matmulOff) FusedMatMul(a, b, bias ops.Tensor) ops.Tensor {
	r := x.Ops.FusedMatMul(a, b, bias)
	defer x.Dispose(r)
	d := append([]float32(nil), x.Data(r)...)
	d[len(d)/2] *= 1 + 1e-3
	return x.Tensor(d, x.Shape(r)...)
}

func TestFaultsAreFoundAndNamed(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    func(*native.Ops) ops.Ops
		op   string
	}{
		{"softmax", func(n *native.Ops) ops.Ops { return softmaxOff{n} }, "Softmax"},
		{"transpose", func(n *native.Ops) ops.Ops { return transposeOff{n} }, "Transpose"},
		{"fused", func(n *native.Ops) ops.Ops { return matmulOff{n} }, "FusedMatMul"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := native.New(1), native.New(1)
			defer a.Close()
			defer b.Close()
			o := New(a, tc.b(b))
			runViT(t, o)
			f := o.Failures()
			if len(f) == 0 {
				t.Fatalf("fault in %s not detected", tc.op)
			}
			for _, r := range f {
				if r.Op != tc.op {
					t.Errorf("resync should confine the failure to %s, also got %v", tc.op, r)
				}
			}
			if !strings.Contains(f[0].String(), tc.op) {
				t.Errorf("report does not name the op: %s", f[0])
			}
		})
	}
}

// Without resync the same fault spreads to later ops: what Resync is for.
func TestWithoutResyncErrorsPropagate(t *testing.T) {
	a, b := native.New(1), native.New(1)
	defer a.Close()
	defer b.Close()
	o := New(a, softmaxOff{b})
	o.Resync = false
	runViT(t, o)
	others := 0
	for _, r := range o.Failures() {
		if r.Op != "Softmax" {
			others++
		}
	}
	if others == 0 {
		t.Fatal("expected downstream ops to differ without resync")
	}
}

func TestShapeMismatchIsAFailure(t *testing.T) {
	a, b := native.New(1), native.New(1)
	defer a.Close()
	defer b.Close()
	o := New(a, reshapeOff{b})
	x := o.Tensor([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	o.Reshape(x, 3, 2)
	f := o.Failures()
	if len(f) != 1 || f[0].Op != "Reshape" || f[0].ShapeB == nil {
		t.Fatalf("got %v", f)
	}
}

type reshapeOff struct{ *native.Ops }

func (x reshapeOff) Reshape(t ops.Tensor, shape ...int) ops.Tensor {
	return x.Ops.Reshape(t, 6)
}

func TestRecordJSON(t *testing.T) {
	r := Record{Op: "Add", Ratio: math.Inf(1), MaxAbs: 1}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, `"within":false`) || !strings.Contains(s, `"op":"Add"`) || !strings.Contains(s, `"ratio":1.79`) {
		t.Fatalf("got %s", s)
	}
}
