package native

import (
	"fmt"

	"github.com/imgembed/imgembed/wasm/ops"
)

// Transpose implements ops.Ops: tf.transpose(x, perm). tfjs documents rank
// <= 4 for the wasm backend; this implementation accepts any rank.
func (o *Ops) Transpose(t ops.Tensor, perm ...int) ops.Tensor {
	x := cast(t, "Transpose")
	r := len(x.Shape)
	if len(perm) == 0 && r > 0 {
		// tf.transpose without perm reverses the axes.
		perm = make([]int, r)
		for i := range perm {
			perm[i] = r - 1 - i
		}
	}
	if len(perm) != r {
		panic(fmt.Sprintf("native.Transpose: perm %v does not match rank of %v", perm, x.Shape))
	}
	seen := make([]bool, r)
	for _, p := range perm {
		if p < 0 || p >= r || seen[p] {
			panic(fmt.Sprintf("native.Transpose: perm %v is not a permutation of 0..%d", perm, r-1))
		}
		seen[p] = true
	}
	shape := make([]int, r)
	for i, p := range perm {
		shape[i] = x.Shape[p]
	}
	out := o.newTensor(shape)
	n := len(out.Data)
	if n == 0 || r == 0 {
		copy(out.Data, x.Data)
		return out
	}
	in := stridesOf(x.Shape)
	// src stride for each output dimension.
	st := make([]int, r)
	for i, p := range perm {
		st[i] = in[p]
	}
	dst := out.Data[:n]
	src := x.Data
	last := shape[r-1]
	lastStride := st[r-1]
	o.parallelRows(n/last, last, func(lo, hi int) {
		// The odometer at row lo: row lo's index over the leading dims.
		idx := make([]int, r-1)
		for i, rem := r-2, lo; i >= 0; i-- {
			idx[i] = rem % shape[i]
			rem /= shape[i]
		}
		for row := lo; row < hi; row++ {
			s := 0
			for i, v := range idx {
				s += v * st[i]
			}
			d := dst[row*last : (row+1)*last]
			if lastStride == 1 {
				copy(d, src[s:s+last])
			} else {
				for j := range d {
					d[j] = src[s]
					s += lastStride
				}
			}
			nextRow(idx, shape)
		}
	})
	return out
}

// nextRow advances idx, an odometer over shape's leading dimensions (all but
// the last), to the next row.
func nextRow(idx, shape []int) {
	for i := len(shape) - 2; i >= 0; i-- {
		idx[i]++
		if idx[i] < shape[i] {
			return
		}
		idx[i] = 0
	}
}
