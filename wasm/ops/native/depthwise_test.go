package native

import (
	"fmt"
	"math/rand"
	"testing"
)

// refDepthwise is tf.depthwiseConv2d(x, f, 1, 'valid') in float64, written
// straight from the definition in package ops.
func refDepthwise(x, f *Tensor) []float64 {
	n, h, w, c := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	fh, fw, m := f.Shape[0], f.Shape[1], f.Shape[3]
	oh, ow := h-fh+1, w-fw+1
	out := make([]float64, n*oh*ow*c*m)
	for b := 0; b < n; b++ {
		for y := 0; y < oh; y++ {
			for xx := 0; xx < ow; xx++ {
				for ci := 0; ci < c; ci++ {
					for mi := 0; mi < m; mi++ {
						var s float64
						for dy := 0; dy < fh; dy++ {
							for dx := 0; dx < fw; dx++ {
								s += float64(x.Data[((b*h+y+dy)*w+xx+dx)*c+ci]) * float64(f.Data[((dy*fw+dx)*c+ci)*m+mi])
							}
						}
						out[(((b*oh+y)*ow+xx)*c+ci)*m+mi] = s
					}
				}
			}
		}
	}
	return out
}

func TestDepthwiseConv2d(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, threads := range []int{1, 3} {
		o := New(threads)
		for _, tc := range []struct{ x, f []int }{
			{[]int{1, 1, 1, 1}, []int{1, 1, 1, 1}},
			{[]int{2, 5, 6, 3}, []int{2, 6, 3, 4}},
			{[]int{1, 4, 4, 2}, []int{3, 2, 2, 1}},
			{[]int{3, 7, 5, 4}, []int{1, 1, 4, 5}},
			// the attention shapes of ViT-B/32: scores, then context
			{[]int{1, 50, 64, 12}, []int{1, 64, 12, 50}},
			{[]int{1, 50, 50, 12}, []int{1, 50, 12, 64}},
		} {
			x, f := randT(o, rng, tc.x...), randT(o, rng, tc.f...)
			got := o.DepthwiseConv2d(x, f).(*Tensor)
			oh, ow := tc.x[1]-tc.f[0]+1, tc.x[2]-tc.f[1]+1
			what := fmt.Sprintf("threads=%d x=%v f=%v", threads, tc.x, tc.f)
			checkShape(t, what, got.Shape, []int{tc.x[0], oh, ow, tc.x[3] * tc.f[3]})
			checkClose(t, what, got.Data, refDepthwise(x, f), gemmTol(tc.f[0]*tc.f[1]))
			o.Dispose(got)
		}
		a := randT(o, rng, 1, 3, 3, 2)
		expectPanic(t, "channels", "want [N,H,W,C]", func() { o.DepthwiseConv2d(a, randT(o, rng, 1, 1, 3, 1)) })
		expectPanic(t, "filter too big", "want [N,H,W,C]", func() { o.DepthwiseConv2d(a, randT(o, rng, 4, 1, 2, 1)) })
		expectPanic(t, "rank", "want [N,H,W,C]", func() { o.DepthwiseConv2d(randT(o, rng, 3, 3, 2), a) })
		o.Close()
	}
}
