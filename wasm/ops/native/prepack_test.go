package native

import (
	"math/rand"
	"testing"

	"github.com/imgembed/imgembed/wasm/internal/derive"
)

// TestPrepackedRHS uses one weight as a product's right operand several
// times: it is packed on its packAfterUses-th use, every product equals the float64
// reference, and readers (Data, other ops, Reshape) still see row-major
// values.
func TestPrepackedRHS(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, threads := range []int{1, 2} {
		for _, pooled := range []bool{false, true} {
			o := New(threads)
			const m, k, n = 13, 600, 256
			w := randT(o, rng, k, n)
			want := append([]float32(nil), w.Data...)
			if pooled {
				// An op's result: pooled storage, packed in place.
				w2 := o.Add(w, o.Tensor([]float32{0}, 1)).(*Tensor)
				o.Dispose(w)
				w = w2
			}
			bias := randT(o, rng, n)
			for use := 1; use <= 3; use++ {
				a := randT(o, rng, m, k)
				got := o.FusedMatMul(a, w, bias).(*Tensor)
				checkClose(t, "FusedMatMul", got.Data, refGemm(a.Data, want, m, k, n, false, false, bias.Data), gemmTol(k))
				if packed := w.packed.Load() != 0; packed != (2*use-1 >= packAfterUses) {
					t.Fatalf("use %d: packed %v", use, packed)
				}
				got2 := o.MatMul(a, w, false, false).(*Tensor)
				checkClose(t, "MatMul", got2.Data, refGemm(a.Data, want, m, k, n, false, false, nil), gemmTol(k))
			}
			if w.packed.Load() == 0 {
				t.Fatalf("weight not packed after repeated use")
			}
			if got := o.Data(w); !equalF32(got, want) {
				t.Fatalf("Data of a packed weight is not its row-major values")
			}
			r := o.Reshape(w, n, k).(*Tensor)
			if !equalF32(r.Data, want) {
				t.Fatalf("Reshape of a packed weight is not row-major")
			}
			s := o.Add(w, o.Tensor([]float32{1}, 1)).(*Tensor)
			for i := range want {
				if s.Data[i] != want[i]+1 {
					t.Fatalf("Add on a packed weight: [%d] = %v, want %v", i, s.Data[i], want[i]+1)
				}
			}
			// Transposed use reads row-major values too.
			a := randT(o, rng, m, n)
			tr := o.MatMul(a, w, false, true).(*Tensor)
			checkClose(t, "MatMul transposeB", tr.Data, refGemm(a.Data, want, m, n, k, false, true, nil), gemmTol(n))
			o.Dispose(w, r, s)
			o.Close()
		}
	}
}

// TestPrepackKernelSwitch repacks a weight for another kernel's panel width.
func TestPrepackKernelSwitch(t *testing.T) {
	names := KernelNames()
	rng := rand.New(rand.NewSource(8))
	o := New(1)
	defer o.Close()
	const m, k, n = 7, 500, 512
	w := randT(o, rng, k, n)
	want := append([]float32(nil), w.Data...)
	for round := 0; round < 2; round++ {
		for _, name := range names {
			restore := UseKernel(name)
			for use := 0; use < packAfterUses; use++ {
				a := randT(o, rng, m, k)
				got := o.MatMul(a, w, false, false).(*Tensor)
				checkClose(t, name, got.Data, refGemm(a.Data, want, m, k, n, false, false, nil), gemmTol(k))
			}
			if l := layoutOf(w.packed.Load()); l.nr != kernel.nr || l.kc != kBlock(&kernel, k) {
				t.Fatalf("%s: packed as %+v, kernel has nr %d kc %d", name, l, kernel.nr, kBlock(&kernel, k))
			}
			restore()
		}
	}
	if !equalF32(o.Data(w), want) {
		t.Fatal("values changed after repacking")
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPrepackInPlace: a weight made in load mode (the native engine's
// weights, off the heap where the OS allows) is packed in its own storage,
// so packing adds no second copy of the weights.
func TestPrepackInPlace(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	o := New(1)
	defer o.Close()
	const m, k, n = 5, 300, 128
	v := make([]float32, k*n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	o.SetLoading(true)
	w := o.Tensor(append([]float32(nil), v...), k, n).(*Tensor)
	o.SetLoading(false)
	before := &w.Data[0]
	for use := 0; use < 3; use++ {
		a := randT(o, rng, m, k)
		got := o.MatMul(a, w, false, false).(*Tensor)
		checkClose(t, "MatMul", got.Data, refGemm(a.Data, v, m, k, n, false, false, nil), gemmTol(k))
	}
	if w.packed.Load() == 0 {
		t.Fatal("weight not packed")
	}
	if &w.Data[0] != before {
		t.Fatal("packing a load-mode weight moved it to new storage")
	}
	if !equalF32(o.Data(w), v) {
		t.Fatal("values changed")
	}
	o.Dispose(w)
}

// TestPrepackSelfProduct: a matrix multiplied by itself is never packed
// under the product that reads it as A too.
func TestPrepackSelfProduct(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	for _, pooled := range []bool{false, true} {
		o := New(2)
		const n = 192
		w := randT(o, rng, n, n)
		if pooled {
			w2 := o.Add(w, o.Tensor([]float32{0}, 1)).(*Tensor)
			o.Dispose(w)
			w = w2
		}
		want := refGemm(w.Data, w.Data, n, n, n, false, false, nil)
		for use := 0; use < 3; use++ {
			got := o.MatMul(w, w, false, false).(*Tensor)
			checkClose(t, "w @ w", got.Data, want, gemmTol(n))
			bias := o.Tensor(make([]float32, n), n)
			got2 := o.FusedMatMul(w, w, bias).(*Tensor)
			checkClose(t, "fused w @ w", got2.Data, want, gemmTol(n))
		}
		// Once packed by another product, w @ w still reads it right.
		a := randT(o, rng, 3, n)
		for i := 0; i < 2; i++ {
			o.MatMul(a, w, false, false)
		}
		if w.packed.Load() == 0 {
			t.Fatal("not packed by a product with another A")
		}
		got := o.MatMul(w, w, false, false).(*Tensor)
		checkClose(t, "w @ w after packing", got.Data, want, gemmTol(n))
		o.Close()
	}
}

// TestDerivedPanels: a weight derived straight into PanelLayout's order
// (derive.Linear.WritePanels, as the graphs' load does on this backend)
// gives the products and the row-major values of the same weight derived
// row-major, on every kernel, in load mode and not.
func TestDerivedPanels(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	kerns := append([]gemmKernel{genericKernel}, kernels()...)
	for _, kern := range kerns {
		saved := kernel
		kernel = kern
		for _, loading := range []bool{false, true} {
			o := New(2)
			const m, k, n = 50, 768, 512
			l := derive.Linear{W: make([]float32, n*k), B: make([]float32, n), Out: n, In: k, Scale: 0.25, Threads: 2}
			for i := range l.W {
				l.W[i] = float32(rng.NormFloat64())
			}
			rowMajor, bias := make([]float32, k*n), make([]float32, n)
			l.Write(rowMajor, n, 0, bias)
			nr, kc, ok := o.PanelLayout(k, n)
			if !ok {
				t.Fatalf("%s: no panel layout for [%d, %d]", kern.name, k, n)
			}
			panels := make([]float32, k*n)
			l.WritePanels(panels, nr, kc, make([]float32, n))
			o.SetLoading(loading)
			w := o.PanelTensor(panels, k, n)
			o.SetLoading(false)
			b := o.Tensor(bias, n)
			a := randT(o, rng, m, k)
			got := o.FusedMatMul(a, w, b).(*Tensor)
			checkClose(t, kern.name+" FusedMatMul", got.Data, refGemm(a.Data, rowMajor, m, k, n, false, false, bias), gemmTol(k))
			if !equalF32(o.Data(w), rowMajor) {
				t.Fatalf("%s: Data of a derived panel weight is not its row-major values", kern.name)
			}
			o.Dispose(w, b, a, got)
			o.Close()
		}
		kernel = saved
	}
}
