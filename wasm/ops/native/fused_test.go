package native

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops"
)

// The fused kernels give their spelling's bits (ops.Fused), on shapes with
// edge tiles, several k-blocks, weights in panels or not, and on 1 and 2
// threads.
func TestFusedLinearIsSpelled(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, threads := range []int{1, 2} {
		o := New(threads)
		for _, sh := range [][3]int{{1, 3, 5}, {7, 33, 17}, {50, 768, 3072}, {50, 3072, 768}, {13, 1100, 130}, {400, 64, 96}} {
			m, k, n := sh[0], sh[1], sh[2]
			a, w, bias, res := randT(o, rng, m, k), randT(o, rng, k, n), randT(o, rng, n), randT(o, rng, m, n)
			for use := range 4 { // the weight is packed into panels after a few uses
				for _, gated := range []bool{false, true} {
					for _, residual := range []ops.Tensor{nil, res} {
						got := o.Linear(a, w, bias, gated, residual)
						want := o.FusedMatMul(a, w, bias)
						if gated {
							want = o.Mul(want, o.Sigmoid(want))
						}
						if residual != nil {
							want = o.Add(residual, want)
						}
						what := fmt.Sprintf("threads=%d %dx%dx%d use %d gated=%v residual=%v", threads, m, k, n, use, gated, residual != nil)
						checkShape(t, what, o.Shape(got), []int{m, n})
						if !slices.Equal(o.Data(got), o.Data(want)) {
							t.Errorf("%s: fused differs from spelled", what)
						}
					}
				}
			}
		}
		// No bias: the product alone.
		a, w := randT(o, rng, 9, 20), randT(o, rng, 20, 40)
		if got, want := o.Linear(a, w, nil, false, nil), o.MatMul(a, w, false, false); !slices.Equal(o.Data(got), o.Data(want)) {
			t.Errorf("threads=%d: Linear without bias differs from MatMul", threads)
		}
		o.Close()
	}
}

func TestFusedNormRowsIsSpelled(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	o := New(2)
	defer o.Close()
	const eps = 1e-5
	epsT := o.Tensor([]float32{eps}, 1)
	for _, sh := range [][]int{{1, 1}, {3, 7}, {50, 768}, {400, 768}, {2, 5, 33}} {
		x := randT(o, rng, sh...)
		got := o.NormRows(x, eps)
		want := o.Mul(x, o.Rsqrt(o.Add(o.Mean(o.Mul(x, x), -1, true), epsT)))
		checkShape(t, fmt.Sprint(sh), o.Shape(got), sh)
		if !slices.Equal(o.Data(got), o.Data(want)) {
			t.Errorf("%v: fused differs from spelled", sh)
		}
	}
}

// spelledAttention is ops.Fused's spelling of Attention, as the ViT graph
// writes it (two depthwise convolutions and the transposes between them).
func spelledAttention(o *Ops, q, k, v ops.Tensor, n, heads int) ops.Tensor {
	d := o.Shape(q)[1]
	hd, tq, tok, ch := d/heads, o.Shape(q)[0]/n, o.Shape(k)[0]/n, n*heads
	x := o.Reshape(o.Transpose(o.Reshape(q, n, tq, heads, hd), 1, 3, 0, 2), 1, tq, hd, ch)
	f := o.Reshape(o.Transpose(o.Reshape(k, n, tok, heads, hd), 3, 0, 2, 1), 1, hd, ch, tok)
	fv := o.Reshape(o.Transpose(o.Reshape(v, n, tok, heads, hd), 1, 0, 2, 3), 1, tok, ch, hd)
	p := o.Softmax(o.Reshape(o.DepthwiseConv2d(x, f), 1, tq, ch, tok))
	c := o.DepthwiseConv2d(o.Transpose(p, 0, 1, 3, 2), fv)
	return o.Reshape(o.Transpose(o.Reshape(c, tq, n, d), 1, 0, 2), n*tq, d)
}

func TestFusedAttentionIsSpelled(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, threads := range []int{1, 2} {
		o := New(threads)
		// images, queries, keys, D, heads
		for _, c := range [][5]int{{1, 50, 50, 768, 12}, {3, 50, 50, 768, 12}, {8, 1, 50, 768, 12}, {2, 5, 7, 12, 3}, {1, 1, 1, 4, 4}} {
			n, tq, tk, d, heads := c[0], c[1], c[2], c[3], c[4]
			q, k, v := randT(o, rng, n*tq, d), randT(o, rng, n*tk, d), randT(o, rng, n*tk, d)
			got := o.Attention(q, k, v, n, heads)
			want := spelledAttention(o, q, k, v, n, heads)
			what := fmt.Sprintf("threads=%d %v", threads, c)
			checkShape(t, what, o.Shape(got), []int{n * tq, d})
			if !slices.Equal(o.Data(got), o.Data(want)) {
				t.Errorf("%s: fused differs from spelled", what)
			}
		}
		o.Close()
	}
}

func TestFusedMisusePanics(t *testing.T) {
	o := New(1)
	defer o.Close()
	a, w := o.Tensor(make([]float32, 6), 2, 3), o.Tensor(make([]float32, 12), 3, 4)
	expectPanic(t, "Linear bias", "bias shape", func() { o.Linear(a, w, o.Tensor(make([]float32, 3), 3), false, nil) })
	expectPanic(t, "Linear residual", "residual shape", func() { o.Linear(a, w, nil, false, o.Tensor(make([]float32, 8), 4, 2)) })
	expectPanic(t, "Linear inner", "", func() { o.Linear(w, a, nil, false, nil) })
	q := o.Tensor(make([]float32, 24), 2, 12)
	expectPanic(t, "Attention heads", "Attention", func() { o.Attention(q, q, q, 1, 5) })
	expectPanic(t, "Attention images", "Attention", func() { o.Attention(q, q, q, 3, 4) })
	expectPanic(t, "NormRows scalar", "rank-0", func() { o.NormRows(o.Tensor([]float32{1}), 1) })
}
