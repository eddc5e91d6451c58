package native

import (
	"fmt"

	"github.com/imgembed/imgembed/wasm/ops"
)

var _ ops.Fused = (*Ops)(nil)

// Linear implements ops.Fused: the product's epilogue gates and adds the
// residual on each block of the output while it is in cache.
func (o *Ops) Linear(at, wt, biasT ops.Tensor, gated bool, residualT ops.Tensor) ops.Tensor {
	a, w := cast(at, "Linear"), castStored(wt, "Linear")
	if len(a.Shape) != 2 {
		panic(fmt.Sprintf("native.Linear: need rank-2 tensors, got %v and %v", a.Shape, w.Shape))
	}
	_, m, k, n := mmDims("Linear", a, w, false, false)
	job := gemmJob{gated: gated}
	var others []*Tensor
	if biasT != nil {
		b := cast(biasT, "Linear")
		if len(b.Data) != n || !(len(b.Shape) == 1 || len(b.Shape) == 2 && b.Shape[0] == 1) {
			panic(fmt.Sprintf("native.Linear: bias shape %v, want [%d] or [1, %d]", b.Shape, n, n))
		}
		job.bias, others = b.Data, append(others, b)
	}
	if residualT != nil {
		r := cast(residualT, "Linear")
		if len(r.Shape) != 2 || r.Shape[0] != m || r.Shape[1] != n {
			panic(fmt.Sprintf("native.Linear: residual shape %v, want [%d, %d]", r.Shape, m, n))
		}
		job.residual, others = r.Data, append(others, r)
	}
	out := o.newTensor([]int{m, n})
	o.product(out, a, w, m, k, n, job, others...)
	return out
}

// gate sets x to x·sigmoid(x) with Mul(x, Sigmoid(x))'s arithmetic (quick
// GELU, its 1.702 folded into the weights); tmp holds len(x) floats.
func gate(x, tmp []float32) {
	s := tmp[:len(x)]
	sigmoid(s, x)
	binVV(opMul, x, x, s)
}

// NormRows implements ops.Fused with the arithmetic of its spelling, one
// pass per row.
func (o *Ops) NormRows(xt ops.Tensor, eps float32) ops.Tensor {
	x := cast(xt, "NormRows")
	if len(x.Shape) == 0 {
		panic("native.NormRows: rank-0 tensor has no last axis")
	}
	out := o.newTensor(cloneShape(x.Shape))
	d := x.Shape[len(x.Shape)-1]
	if d == 0 || len(x.Data) == 0 {
		return out
	}
	rows := len(x.Data) / d
	inv := 1 / float32(d)
	o.parallelRows(rows, 4*d, func(lo, hi int) {
		sq := getScratch(d)
		defer scratch.Put(sq)
		for r := lo; r < hi; r++ {
			src, dst := x.Data[r*d:(r+1)*d], out.Data[r*d:(r+1)*d]
			binVV(opMul, *sq, src, src)
			binVS(opMul, dst, src, rsqrt(sum(*sq)*inv+eps))
		}
	})
	return out
}

// Attention implements ops.Fused. Each (image, head) pair is one chunk of
// work: its queries and keys are gathered into two small matrices, the
// scores are one product, the softmax writes the probabilities, and the
// context is a second product written into the head's columns of the
// result. The
// products are those of the spelling's two DepthwiseConv2d (same shapes,
// same kernel), so the result has the spelling's bits.
func (o *Ops) Attention(qt, kt, vt ops.Tensor, images, heads int) ops.Tensor {
	q, k, v := cast(qt, "Attention"), cast(kt, "Attention"), cast(vt, "Attention")
	if len(q.Shape) != 2 || len(k.Shape) != 2 || len(v.Shape) != 2 || images < 1 || heads < 1 ||
		q.Shape[1] != k.Shape[1] || v.Shape[1] != k.Shape[1] || k.Shape[0] != v.Shape[0] ||
		q.Shape[0]%images != 0 || k.Shape[0]%images != 0 || k.Shape[1]%heads != 0 {
		panic(fmt.Sprintf("native.Attention: q %v, k %v, v %v for %d images of %d heads", q.Shape, k.Shape, v.Shape, images, heads))
	}
	d := q.Shape[1]
	hd, tq, tk := d/heads, q.Shape[0]/images, k.Shape[0]/images
	out := o.newTensor([]int{q.Shape[0], d})
	if len(out.Data) == 0 || tk == 0 || hd == 0 {
		clear(out.Data)
		return out
	}
	// The scores' rows are padded to whole panels of the kernel (kh's
	// extra columns are 0), so their product has no edge tiles; the
	// softmax reads the tk real columns and writes them compactly for the
	// context product. A column's sum does not depend on the others, so
	// the bits are the spelling's.
	nr := kernel.nr
	tkp := (tk + nr - 1) / nr * nr
	per := 2*tq*hd*tkp + 2*tq*tk*hd + (tq+2*tk)*hd
	o.parallelFor(images*heads, per, func(lo, hi int) {
		buf := getScratch(tq*hd + hd*tkp + tq*tkp + tq*tk + tk*hd + tq*hd)
		defer scratch.Put(buf)
		b := *buf
		take := func(n int) []float32 { s := b[:n:n]; b = b[n:]; return s }
		qh, kh, s, p, vh, ctx := take(tq*hd), take(hd*tkp), take(tq*tkp), take(tq*tk), take(tk*hd), take(tq*hd)
		for e := range hd {
			clear(kh[e*tkp+tk : (e+1)*tkp])
		}
		for c := lo; c < hi; c++ {
			i, h := c/heads, c%heads
			// qh[t][e] = q[i*tq+t, h*hd+e]; kh[e][j] = k[i*tk+j, h*hd+e].
			for t := range tq {
				copy(qh[t*hd:(t+1)*hd], q.Data[(i*tq+t)*d+h*hd:])
			}
			for j := range tk {
				row := k.Data[(i*tk+j)*d+h*hd:][:hd:hd]
				for e, x := range row {
					kh[e*tkp+j] = x
				}
			}
			o.gemm(gemmJob{c: s, a: qh, b: kh, m: tq, k: hd, n: tkp}, 1)
			for t := range tq {
				softmaxRow(s[t*tkp:t*tkp+tk], p[t*tk:(t+1)*tk])
			}
			// vh[j][e] = v[i*tk+j, h*hd+e].
			for j := range tk {
				copy(vh[j*hd:(j+1)*hd], v.Data[(i*tk+j)*d+h*hd:])
			}
			o.gemm(gemmJob{c: ctx, a: p, b: vh, m: tq, k: tk, n: hd}, 1)
			for t := range tq {
				copy(out.Data[(i*tq+t)*d+h*hd:(i*tq+t)*d+(h+1)*hd], ctx[t*hd:(t+1)*hd])
			}
		}
	})
	return out
}
