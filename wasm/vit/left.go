package vit

import (
	"slices"

	"github.com/imgembed/imgembed/wasm/internal/derive"
	"github.com/imgembed/imgembed/wasm/ops"
)

// The graph with weights on the left, for backends whose matrix product
// keeps a packed copy of its right operand (ops.LeftWeights: tfjs-wasm,
// whose XNNPACK fully-connected operator is cached per right-hand tensor,
// which held a second copy of every weight while serving). Activations are
// feature-major, xᵀ [D, n*T] (column i*T+t is image i's token t), and every
// linear layer is W·xᵀ [out, in]·[in, rows] + a bias column: the packed
// operand is the activation, whose operator is freed with it.
//
// The arithmetic is forward's (same folds, same centred residual stream);
// only the layout differs. LayerNorm statistics are means over axis 0.
// Attention runs the same two depthwise convolutions, with channels
// head-major (c = h*n + i) so that the keys need no transpose.

func (m *Model) forwardLeft(t *tape, pixels []float32, n int) ops.Tensor {
	o, cfg := m.o, m.cfg
	d := cfg.HiddenSize
	tok := cfg.Patches() + 1
	rows := n * tok

	// As in forward, only the residual stream h outlives a stage.
	st := &tape{o: o} // the current stage's temporaries
	defer st.free()
	ht := &tape{o: o} // h
	defer ht.free()
	kt := &tape{o: o} // a layer's h1, from its attention to its end
	defer kt.free()

	x := st.k(o.Tensor(patchifyT(pixels, n, cfg.ImageSize, cfg.PatchSize), 3*cfg.PatchSize*cfg.PatchSize+1, rows))
	h := st.k(o.MatMul(m.embedW, x, false, false)) // [D, rows]
	h = st.k(o.Reshape(h, d, n, tok))
	h = st.k(o.Add(h, m.pos))
	h = st.k(o.Reshape(h, d, rows))
	h = m.layerNormLeft(st, h)
	h = st.k(o.Add(st.k(o.Mul(h, m.preG)), m.preB))
	h = ht.k(o.Sub(h, st.k(o.Mean(h, 0, true))))
	st.free()

	last := len(m.layers) - 1
	for i := range m.layers {
		l := &m.layers[i]
		a := m.layerNormLeft(st, h)
		aq := a
		if i == last {
			aq = m.clsCols(st, a, n)
			h = m.clsCols(st, h, n)
		}
		ctx := m.attentionLeft(st, l, a, aq, n)
		h1 := kt.k(o.Add(h, m.linearLeft(kt, l.outW, l.outB, ctx)))
		st.free() // the attention's temporaries, before the MLP makes its own

		b := m.layerNormLeft(st, h1)
		f := m.linearLeft(st, l.fc1W, l.fc1B, b) // 1.702·(W1 b + b1)
		g := st.k(o.Mul(f, st.k(o.Sigmoid(f))))
		next := o.Add(h1, m.linearLeft(st, l.fc2W, l.fc2B, g))
		ht.free() // the previous h
		h = ht.k(next)
		st.free()
		kt.free()
	}

	pooled := m.layerNormLeft(st, h) // [D, n]: the class tokens
	return m.linearLeft(t, m.projW, m.projB, pooled)
}

// linearLeft is w·x + bias for a weight [out, in], x [in, rows] and a bias
// column [out, 1] (nil: none). tfjs-wasm's fused matMul adds its bias
// along the columns, so the bias is a separate (broadcast) Add.
func (m *Model) linearLeft(t *tape, w, bias, x ops.Tensor) ops.Tensor {
	y := t.k(m.o.MatMul(w, x, false, false))
	if bias == nil {
		return y
	}
	return t.k(m.o.Add(y, bias))
}

// attentionWeightsLeft derives K's, V's and the output projection's
// weights for the left layout, with two biases fewer (each costs an Add
// here, where fused matMul cannot add them): K's bias adds qᵢ·b_k to every
// score of query i, which the softmax over keys cancels, so it is dropped;
// V's bias reaches every context row unchanged (each row of
// probabilities sums to 1), so it is folded into the output projection's
// bias as W_out·b_v.
func (m *Model) attentionWeightsLeft(b *derive.Builder, l *layer, key func(string) string, k, v, out derive.Linear) {
	d := m.cfg.HiddenSize
	w, _ := b.Derive(key("self_attn.k_proj"), k, true)
	l.kW = b.O.Tensor(w, d, d)
	w, bias := b.Derive(key("self_attn.v_proj"), v, true)
	vb := slices.Clone(bias)
	l.vW = b.O.Tensor(w, d, d)
	w, bias = b.Derive(key("self_attn.out_proj"), out, true)
	for c := range d { // w is [out, in]; the context's rows are V's
		var s float64
		for i, x := range w[c*d : (c+1)*d] {
			s += float64(x) * float64(vb[i])
		}
		bias[c] += float32(s)
	}
	l.outW, l.outB = b.PairShaped(w, []int{d, d}, bias, []int{d, 1})
}

// layerNormLeft is layerNorm for feature-major x [D, R] (columns centred).
func (m *Model) layerNormLeft(t *tape, x ops.Tensor) ops.Tensor {
	o := m.o
	variance := t.k(o.Add(t.k(o.Mean(t.k(o.Mul(x, x)), 0, true)), m.epsB)) // [1, R]
	return t.k(o.Mul(x, t.k(o.Rsqrt(variance))))
}

// clsCols returns the class-token columns [D, n] of n images' tokens
// x [D, n*T].
func (m *Model) clsCols(t *tape, x ops.Tensor, n int) ops.Tensor {
	o, d, tok := m.o, m.cfg.HiddenSize, m.cfg.Patches()+1
	if n == 1 {
		return t.k(o.Slice(x, []int{0, 0}, []int{d, 1}))
	}
	c := t.k(o.Slice(t.k(o.Reshape(x, d, n, tok)), []int{0, 0, 0}, []int{d, n, 1}))
	return t.k(o.Reshape(c, d, n))
}

// attentionLeft is attention for feature-major a [D, n*T] and queries aq
// (a, or the class columns [D, n]); it returns the context [D, n*tq] with
// rows in (head, e) order, for the output projection.
//
// Q's and K's rows are head-minor (row e*H + h), V's head-major (h*hd + e),
// so as 4-d tensors Q is [hd, H, n, tq], K [hd, H, n, T], V [H, hd, n, T].
// With channel c = h*n + i:
//   - scores: depthwiseConv2d(x [1, tq, hd, c] = Q permuted (3, 0, 1, 2),
//     filter [1, hd, c, T] = K as it is): [1, tq, 1, c*T];
//   - context: depthwiseConv2d(Pᵀ [1, tq, T, c], filter [1, T, c, hd] = V
//     permuted (3, 0, 2, 1)): [tq, H, n, hd], permuted (1, 3, 2, 0) to
//     [H, hd, n, tq].
func (m *Model) attentionLeft(t *tape, l *layer, a, aq ops.Tensor, n int) ops.Tensor {
	o, cfg := m.o, m.cfg
	d, heads := cfg.HiddenSize, cfg.NumHeads
	hd := d / heads
	tok := cfg.Patches() + 1
	tq := o.Shape(aq)[1] / n
	ch := n * heads
	// As in attention: Q and K freed once the scores exist, V once the
	// context does.
	qk, vt := &tape{o: o}, &tape{o: o}
	defer qk.free()
	defer vt.free()
	q := m.linearLeft(qk, l.qW, l.qB, aq) // scale folded in
	k := m.linearLeft(qk, l.kW, l.kB, a)
	v := m.linearLeft(vt, l.vW, l.vB, a)
	x := m.permute(qk, q, []int{hd, heads, n, tq}, 3, 0, 1, 2)
	x = qk.k(o.Reshape(x, 1, tq, hd, ch))
	f := qk.k(o.Reshape(k, 1, hd, ch, tok))
	fv := m.permute(vt, v, []int{heads, hd, n, tok}, 3, 0, 2, 1)
	fv = vt.k(o.Reshape(fv, 1, tok, ch, hd))
	s := t.k(o.DepthwiseConv2d(x, f))
	qk.free()
	p := t.k(o.Softmax(t.k(o.Reshape(s, 1, tq, ch, tok))))
	pT := t.k(o.Transpose(p, 0, 1, 3, 2)) // [1, tq, T, c]
	c := t.k(o.DepthwiseConv2d(pT, fv))   // [1, tq, 1, c*hd]
	vt.free()
	ctx := m.permute(t, c, []int{tq, heads, n, hd}, 1, 3, 2, 0)
	return t.k(o.Reshape(ctx, d, n*tq))
}

// permute is x, read with the given shape, transposed by perm; a reshape
// when perm moves only axes of length 1 (the order of the values stays).
func (m *Model) permute(t *tape, x ops.Tensor, shape []int, perm ...int) ops.Tensor {
	o := m.o
	x = t.k(o.Reshape(x, shape...))
	var kept []int // the axes longer than 1, in their new order
	out := make([]int, len(perm))
	for i, p := range perm {
		out[i] = shape[p]
		if shape[p] > 1 {
			kept = append(kept, p)
		}
	}
	if slices.IsSorted(kept) {
		return t.k(o.Reshape(x, out...))
	}
	return t.k(o.Transpose(x, perm...))
}

// patchifyT is patchify transposed: the token matrix [3*p*p+1, n*T], one
// column per token.
func patchifyT(pixels []float32, n, s, p int) []float32 {
	grid := s / p
	k := 3 * p * p
	tok := grid*grid + 1
	rows := n * tok
	out := make([]float32, (k+1)*rows)
	for i := range n {
		img := pixels[i*3*s*s : (i+1)*3*s*s]
		out[k*rows+i*tok] = 1 // selects the class embedding
		for c := range 3 {
			for ky := range p {
				for kx := range p {
					dst := out[((c*p+ky)*p+kx)*rows+i*tok+1:][: grid*grid : grid*grid]
					for gy := range grid {
						src := img[c*s*s+(gy*p+ky)*s+kx:]
						row := dst[gy*grid : (gy+1)*grid]
						for gx := range row {
							row[gx] = src[gx*p]
						}
					}
				}
			}
		}
	}
	return out
}
