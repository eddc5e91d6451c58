package native

import (
	"fmt"

	"github.com/imgembed/imgembed/wasm/ops"
)

// mmDims checks shapes for tf.matMul and returns batch, m, k, n.
func mmDims(op string, a, b *Tensor, ta, tb bool) (batch, m, k, n int) {
	ra, rb := len(a.Shape), len(b.Shape)
	if ra != rb || (ra != 2 && ra != 3) {
		panic(fmt.Sprintf("native.%s: need two rank-2 or two rank-3 tensors, got %v and %v", op, a.Shape, b.Shape))
	}
	batch = 1
	if ra == 3 {
		if a.Shape[0] != b.Shape[0] {
			panic(fmt.Sprintf("native.%s: batch sizes differ: %v and %v", op, a.Shape, b.Shape))
		}
		batch = a.Shape[0]
	}
	m, k = a.Shape[ra-2], a.Shape[ra-1]
	if ta {
		m, k = k, m
	}
	kb, nb := b.Shape[rb-2], b.Shape[rb-1]
	if tb {
		kb, nb = nb, kb
	}
	if k != kb {
		panic(fmt.Sprintf("native.%s: inner dimensions differ: %v (transposeA=%v) and %v (transposeB=%v)", op, a.Shape, ta, b.Shape, tb))
	}
	return batch, m, k, nb
}

// MatMul implements ops.Ops: tf.matMul(a, b, transposeA, transposeB).
func (o *Ops) MatMul(at, bt ops.Tensor, transposeA, transposeB bool) ops.Tensor {
	a, b := cast(at, "MatMul"), castStored(bt, "MatMul")
	batch, m, k, n := mmDims("MatMul", a, b, transposeA, transposeB)
	var shape []int
	if len(a.Shape) == 3 {
		shape = []int{batch, m, n}
	} else {
		shape = []int{m, n}
	}
	out := o.newTensor(shape)
	if len(shape) == 2 && !transposeB {
		o.product(out, a, b, m, k, n, gemmJob{ta: transposeA})
		return out
	}
	b = rowMajor(b)
	o.matmul(out.Data, a.Data, b.Data, batch, m, k, n, transposeA, transposeB, nil)
	return out
}

// FusedMatMul implements ops.Ops: tf.fused.matMul({a, b, bias}), rank 2.
func (o *Ops) FusedMatMul(at, bt, biasT ops.Tensor) ops.Tensor {
	a, b, bias := cast(at, "FusedMatMul"), castStored(bt, "FusedMatMul"), cast(biasT, "FusedMatMul")
	if len(a.Shape) != 2 {
		panic(fmt.Sprintf("native.FusedMatMul: need rank-2 tensors, got %v and %v", a.Shape, b.Shape))
	}
	_, m, k, n := mmDims("FusedMatMul", a, b, false, false)
	// tfjs broadcasts the bias against [m, n]; a row ([n] or [1, n]) is
	// what a linear layer has.
	if len(bias.Data) != n || !(len(bias.Shape) == 1 || len(bias.Shape) == 2 && bias.Shape[0] == 1) {
		panic(fmt.Sprintf("native.FusedMatMul: bias shape %v, want [%d] or [1, %d]", bias.Shape, n, n))
	}
	out := o.newTensor([]int{m, n})
	o.product(out, a, b, m, k, n, gemmJob{bias: bias.Data}, bias)
	return out
}

// product runs out = a @ b (rank 2, b not transposed) with job's bias,
// epilogue and ta on all threads, b read in the panel layout when it is
// a weight used again and again (useRHS). others are the job's other
// operands, which b must not be packed under.
func (o *Ops) product(out, a, b *Tensor, m, k, n int, job gemmJob, others ...*Tensor) {
	panels := o.useRHS(b, k, n, append(others, a)...)
	if b.packed.Load() != 0 && !panels {
		// packed for another kernel and not repacked (b is also A)
		packMu.RUnlock()
		b = rowMajor(b)
		packMu.RLock()
	}
	defer packMu.RUnlock()
	job.c, job.a, job.b, job.m, job.k, job.n, job.bPanels = out.Data, a.Data, b.Data, m, k, n, panels
	o.gemm(job, o.threads)
}

// matmul writes c[batch,m,n] = op(a) @ op(b) (+ bias[n] if non-nil).
// Small per-item products in a batch (attention heads) are spread over the
// threads one item each; large ones use every thread inside the product.
func (o *Ops) matmul(c, a, b []float32, batch, m, k, n int, ta, tb bool, bias []float32) {
	job := func(bi int) gemmJob {
		return gemmJob{
			c: c[bi*m*n : (bi+1)*m*n], a: a[bi*m*k : (bi+1)*m*k], b: b[bi*k*n : (bi+1)*k*n],
			m: m, k: k, n: n, ta: ta, tb: tb, bias: bias,
		}
	}
	// Small items each go to one thread (parallelFor shares them out);
	// large ones use every thread inside the product.
	per := 2 * m * n * k
	if batch > 1 && o.threads > 1 && per < 1<<24 && batch*per >= 1<<20 {
		o.parallelFor(batch, per, func(lo, hi int) {
			for bi := lo; bi < hi; bi++ {
				o.gemm(job(bi), 1)
			}
		})
		return
	}
	for bi := 0; bi < batch; bi++ {
		o.gemm(job(bi), o.threads)
	}
}
