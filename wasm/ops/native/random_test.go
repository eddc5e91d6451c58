package native

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops"
)

// TestRandomShapes runs the shape-manipulating ops and broadcasting on
// random shapes of rank 0..4 against the index-by-index references.
func TestRandomShapes(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	o := New(2)
	defer o.Close()
	randShape := func(r int) []int {
		s := make([]int, r)
		for i := range s {
			s[i] = 1 + rng.Intn(6)
			if rng.Intn(8) == 0 {
				s[i] = 20 + rng.Intn(40) // long rows for the SIMD paths
			}
		}
		return s
	}
	for it := 0; it < 300; it++ {
		// Broadcasting: derive b's shape from a's by dropping leading
		// dimensions and setting some to 1 (either side).
		a := randShape(rng.Intn(5))
		b := append([]int(nil), a[rng.Intn(len(a)+1):]...)
		for i := range b {
			if rng.Intn(3) == 0 {
				b[i] = 1
			}
		}
		if rng.Intn(2) == 0 {
			a, b = b, a
		}
		x, y := randT(o, rng, a...), randT(o, rng, b...)
		for _, op := range []binOp{opAdd, opSub, opMul} {
			var got ops.Tensor
			switch op {
			case opAdd:
				got = o.Add(x, y)
			case opSub:
				got = o.Sub(x, y)
			default:
				got = o.Mul(x, y)
			}
			shape, want := refBinary(op, x, y)
			name := fmt.Sprintf("%v %v %v", op, a, b)
			checkShape(t, name, got.(*Tensor).Shape, shape)
			checkClose(t, name, got.(*Tensor).Data, want, 1e-6)
			o.Dispose(got)
		}

		// Transpose with a random permutation, checked element by element.
		perm := rng.Perm(len(a))
		tr := o.Transpose(x, perm...).(*Tensor)
		in := stridesOf(a)
		idx := make([]int, len(a))
		for i, v := range tr.Data {
			rem := i
			for d := len(a) - 1; d >= 0; d-- {
				idx[d] = rem % tr.Shape[d]
				rem /= tr.Shape[d]
			}
			off := 0
			for d, p := range perm {
				off += idx[d] * in[p]
			}
			if v != x.Data[off] {
				t.Fatalf("transpose %v perm %v: [%d] = %v, want %v", a, perm, i, v, x.Data[off])
			}
		}

		// Slice a random box (sizes sometimes -1) and compare.
		begin, size := make([]int, len(a)), make([]int, len(a))
		for d, n := range a {
			begin[d] = rng.Intn(n)
			size[d] = rng.Intn(n-begin[d]) + 1
			if rng.Intn(4) == 0 {
				size[d] = -1
			}
		}
		sl := o.Slice(x, begin, size).(*Tensor)
		for i, v := range sl.Data {
			rem, off := i, 0
			for d := len(a) - 1; d >= 0; d-- {
				off += (begin[d] + rem%sl.Shape[d]) * in[d]
				rem /= sl.Shape[d]
			}
			if v != x.Data[off] {
				t.Fatalf("slice %v begin %v size %v: [%d] = %v, want %v", a, begin, size, i, v, x.Data[off])
			}
		}
		o.Dispose(x, y, tr, sl)
	}
}
