package native

import (
	"fmt"

	"github.com/imgembed/imgembed/wasm/ops"
)

// DepthwiseConv2d implements ops.Ops: tf.depthwiseConv2d(x, filter, 1,
// 'valid'). Each channel is one matrix product (its input patches, im2col,
// times its [FH*FW, M] filter), all channels of an image in one batched
// matmul.
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
	// b[ci][t][m] = filter[t][ci][m], t = dy*FW + dx.
	for t := 0; t < k; t++ {
		for ci := 0; ci < c; ci++ {
			copy(b[(ci*k+t)*mult:(ci*k+t+1)*mult], f.Data[(t*c+ci)*mult:(t*c+ci+1)*mult])
		}
	}
	for bi := 0; bi < n; bi++ {
		// a[ci][pi][t] = x[bi, y+dy, x+dx, ci], pi = y*OW + x.
		for y := 0; y < oh; y++ {
			for xx := 0; xx < ow; xx++ {
				pi := y*ow + xx
				for dy := 0; dy < fh; dy++ {
					for dx := 0; dx < fw; dx++ {
						src := x.Data[((bi*h+y+dy)*w+xx+dx)*c:][:c]
						t := dy*fw + dx
						for ci, v := range src {
							a[(ci*p+pi)*k+t] = v
						}
					}
				}
			}
		}
		o.matmul(tmp, a, b, c, p, k, mult, false, false, nil)
		// out[bi, pi, ci*M + m] = tmp[ci][pi][m].
		dst := out.Data[bi*p*c*mult : (bi+1)*p*c*mult]
		for ci := 0; ci < c; ci++ {
			for pi := 0; pi < p; pi++ {
				copy(dst[(pi*c+ci)*mult:(pi*c+ci+1)*mult], tmp[(ci*p+pi)*mult:(ci*p+pi+1)*mult])
			}
		}
	}
	return out
}
