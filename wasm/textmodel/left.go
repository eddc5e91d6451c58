package textmodel

import (
	"github.com/imgembed/imgembed/wasm/internal/derive"
	"github.com/imgembed/imgembed/wasm/ops"
)

// The graph with weights on the left, for backends whose matrix product
// keeps a packed copy of its right operand (ops.LeftWeights: tfjs-wasm;
// see package vit's left.go). Activations are feature-major, xᵀ
// [D, n*seq], and every linear layer is W·xᵀ plus a bias column. The
// attention products (activations on both sides) are forward's.

func (m *Model) forwardLeft(t *tape, ids [][]int32, at []int, seq int) ops.Tensor {
	o, cfg := m.o, m.cfg
	n := len(ids)
	d, heads := cfg.HiddenSize, cfg.NumHeads
	hd := d / heads
	rows := n * seq

	ht := &tape{o: o}
	defer ht.free()
	h := ht.k(o.Tensor(derive.Transpose(m.embed(ids, at, seq), rows, d), d, rows))
	mask := t.k(o.Tensor(causalMask(seq), seq, seq))

	lt := &tape{o: o}
	defer lt.free()
	for i := range m.layers {
		l := &m.layers[i]
		a := m.layerNormLeft(lt, h)
		qkv := m.linearLeft(lt, l.qkvW, l.qkvB, a) // [3D, rows]: Q, K, V rows (head, e)
		part := func(j int) ops.Tensor {
			s := lt.k(o.Slice(qkv, []int{j * d, 0}, []int{d, rows}))
			s = lt.k(o.Transpose(lt.k(o.Reshape(s, heads, hd, n, seq)), 2, 0, 3, 1)) // [n, H, seq, hd]
			return lt.k(o.Reshape(s, n*heads, seq, hd))
		}
		q, k, v := part(0), part(1), part(2)
		scores := lt.k(o.MatMul(q, k, false, true))
		scores = lt.k(o.Add(scores, mask))
		probs := lt.k(o.Softmax(scores))
		ctx := lt.k(o.MatMul(probs, v, false, false))
		ctx = lt.k(o.Transpose(lt.k(o.Reshape(ctx, n, heads, seq, hd)), 1, 3, 0, 2)) // [H, hd, n, seq]
		ctx = lt.k(o.Reshape(ctx, d, rows))
		h1 := lt.k(o.Add(h, m.linearLeft(lt, l.outW, l.outB, ctx)))

		b := m.layerNormLeft(lt, h1)
		f := m.linearLeft(lt, l.fc1W, l.fc1B, b)
		gate := lt.k(o.Sigmoid(lt.k(o.Mul(f, m.geluK))))
		g := lt.k(o.Mul(f, gate))
		next := o.Add(h1, m.linearLeft(lt, l.fc2W, l.fc2B, g))
		ht.free() // the previous h
		h = ht.k(next)
		lt.free()
	}

	// Each row's EOS column: h [D, n*seq] times a one-hot [n*seq, n].
	sel := make([]float32, rows*n)
	for i := range n {
		sel[(i*seq+at[i])*n+i] = 1
	}
	pooled := t.k(o.MatMul(h, t.k(o.Tensor(sel, rows, n)), false, false))
	pooled = m.layerNormLeft(t, pooled)
	return m.linearLeft(t, m.projW, m.projB, pooled)
}

// linearLeft is w·x + bias: a weight [out, in], x [in, cols], a bias
// column [out, 1] (a separate Add: fused matMul adds along columns).
func (m *Model) linearLeft(t *tape, w, bias, x ops.Tensor) ops.Tensor {
	return t.k(m.o.Add(t.k(m.o.MatMul(w, x, false, false)), bias))
}

// layerNormLeft is layerNorm over the rows of a feature-major x [D, R].
func (m *Model) layerNormLeft(t *tape, x ops.Tensor) ops.Tensor {
	o := m.o
	mean := t.k(o.Mean(x, 0, true))
	dev := t.k(o.Sub(x, mean))
	variance := t.k(o.Mean(t.k(o.Mul(dev, dev)), 0, true))
	inv := t.k(o.Rsqrt(t.k(o.Add(variance, m.eps))))
	return t.k(o.Mul(dev, inv))
}
