package native

import (
	"fmt"

	"github.com/imgembed/imgembed/wasm/ops"
)

// DepthwiseConv2d implements ops.Ops: tf.depthwiseConv2d(x, filter, 1,
// 'valid'). Each channel is one matrix product (its input patches, im2col,
// times its [FH*FW, M] filter); the channels are shared among the threads.
func (o *Ops) DepthwiseConv2d(xt, ft ops.Tensor) ops.Tensor {
	x, f := cast(xt, "DepthwiseConv2d"), cast(ft, "DepthwiseConv2d")
	if len(x.Shape) != 4 || len(f.Shape) != 4 || x.Shape[3] != f.Shape[2] ||
		f.Shape[0] < 1 || f.Shape[1] < 1 || f.Shape[0] > x.Shape[1] || f.Shape[1] > x.Shape[2] {
		panic(fmt.Sprintf("native.DepthwiseConv2d: x %v and filter %v: want [N,H,W,C] and [FH,FW,C,M] with FH <= H, FW <= W", x.Shape, f.Shape))
	}
	n, h, w, c := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	fh, fw, mult := f.Shape[0], f.Shape[1], f.Shape[3]
	oh, ow := h-fh+1, w-fw+1
	p, k := oh*ow, fh*fw
	out := o.newTensor([]int{n, oh, ow, c * mult})
	if len(out.Data) == 0 {
		return out
	}
	a, b, tmp := o.pool.get(c*p*k), o.pool.get(c*k*mult), o.pool.get(c*p*mult)
	defer func() { o.pool.put(a); o.pool.put(b); o.pool.put(tmp) }()
	// Channels are independent: each is one chunk of work (its filter,
	// im2col and product per image), so the attention's 12 heads per
	// image spread over the threads with one hand-off per convolution.
	o.parallelFor(c, 2*p*k*mult+2*p*k, func(lo, hi int) {
		for ci := lo; ci < hi; ci++ {
			// b[ci][t][m] = filter[t][ci][m], t = dy*FW + dx.
			bc := b[ci*k*mult : (ci+1)*k*mult]
			for t := 0; t < k; t++ {
				copy(bc[t*mult:(t+1)*mult], f.Data[(t*c+ci)*mult:(t*c+ci+1)*mult])
			}
			ac, tc := a[ci*p*k:(ci+1)*p*k], tmp[ci*p*mult:(ci+1)*p*mult]
			for bi := 0; bi < n; bi++ {
				// ac[pi][t] = x[bi, y+dy, x+dx, ci], pi = y*OW + x.
				for y := 0; y < oh; y++ {
					for xx := 0; xx < ow; xx++ {
						row := ac[(y*ow+xx)*k : (y*ow+xx+1)*k]
						for dy := 0; dy < fh; dy++ {
							src := x.Data[((bi*h+y+dy)*w+xx)*c+ci:]
							for dx, t := 0, dy*fw; dx < fw; dx, t = dx+1, t+1 {
								row[t] = src[dx*c]
							}
						}
					}
				}
				o.gemm(gemmJob{c: tc, a: ac, b: bc, m: p, k: k, n: mult}, 1)
				// out[bi, pi, ci*M + m] = tc[pi][m].
				dst := out.Data[bi*p*c*mult : (bi+1)*p*c*mult]
				for pi := 0; pi < p; pi++ {
					copy(dst[(pi*c+ci)*mult:(pi*c+ci+1)*mult], tc[pi*mult:(pi+1)*mult])
				}
			}
		}
	})
	return out
}
