package native

import (
	"fmt"
	"math"

	"github.com/imgembed/imgembed/wasm/ops"
)

type binOp uint8

const (
	opAdd binOp = iota
	opSub
	opMul
)

func (op binOp) String() string { return [...]string{"Add", "Sub", "Mul"}[op] }

// Add implements ops.Ops: tf.add, broadcasting.
func (o *Ops) Add(a, b ops.Tensor) ops.Tensor { return o.binary(opAdd, a, b) }

// Sub implements ops.Ops: tf.sub, broadcasting.
func (o *Ops) Sub(a, b ops.Tensor) ops.Tensor { return o.binary(opSub, a, b) }

// Mul implements ops.Ops: tf.mul, broadcasting.
func (o *Ops) Mul(a, b ops.Tensor) ops.Tensor { return o.binary(opMul, a, b) }

// broadcastShape applies numpy rules: shapes are right-aligned and each pair
// of dimensions must be equal or contain a 1.
func broadcastShape(op binOp, a, b []int) []int {
	r := len(a)
	if len(b) > r {
		r = len(b)
	}
	out := make([]int, r)
	for i := 0; i < r; i++ {
		da, db := 1, 1
		if j := len(a) - r + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - r + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			out[i] = da
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		default:
			panic(fmt.Sprintf("native.%s: shapes %v and %v cannot be broadcast", op, a, b))
		}
	}
	return out
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (o *Ops) binary(op binOp, at, bt ops.Tensor) ops.Tensor {
	a, b := cast(at, op.String()), cast(bt, op.String())
	if sameShape(a.Shape, b.Shape) {
		out := o.newTensor(cloneShape(a.Shape))
		n := len(a.Data)
		dst, x, y := out.Data[:n], a.Data[:n], b.Data[:n]
		o.parallelElems(n, func(lo, hi int) { binVV(op, dst[lo:hi], x[lo:hi], y[lo:hi]) })
		return out
	}
	shape := broadcastShape(op, a.Shape, b.Shape)
	out := o.newTensor(shape)
	n := len(out.Data)
	if n == 0 {
		return out
	}
	dst := out.Data[:n]
	if len(b.Data) == 1 && len(a.Data) == n {
		s := b.Data[0]
		o.parallelElems(n, func(lo, hi int) { binVS(op, dst[lo:hi], a.Data[lo:hi], s) })
		return out
	}
	if len(a.Data) == 1 && len(b.Data) == n {
		s := a.Data[0]
		o.parallelElems(n, func(lo, hi int) { binSV(op, dst[lo:hi], s, b.Data[lo:hi]) })
		return out
	}
	// General case: walk output rows (the innermost dimension); in each row
	// each operand is either a contiguous vector or a repeated scalar.
	r := len(shape)
	as, bs := bcastStrides(a.Shape, r), bcastStrides(b.Shape, r)
	last := shape[r-1]
	rows := n / last
	o.parallelRows(rows, last, func(lo, hi int) {
		idx := make([]int, r-1)
		// Position the odometer at row lo.
		rem := lo
		for i := r - 2; i >= 0; i-- {
			idx[i] = rem % shape[i]
			rem /= shape[i]
		}
		for row := lo; row < hi; row++ {
			ao, bo := 0, 0
			for i, v := range idx {
				ao += v * as[i]
				bo += v * bs[i]
			}
			d := dst[row*last : (row+1)*last]
			switch {
			case as[r-1] == 1 && bs[r-1] == 1:
				binVV(op, d, a.Data[ao:ao+last], b.Data[bo:bo+last])
			case as[r-1] == 1:
				binVS(op, d, a.Data[ao:ao+last], b.Data[bo])
			case bs[r-1] == 1:
				binSV(op, d, a.Data[ao], b.Data[bo:bo+last])
			default:
				binVS(op, d[:1], a.Data[ao:ao+1], b.Data[bo])
				for j := 1; j < last; j++ {
					d[j] = d[0]
				}
			}
			for i := r - 2; i >= 0; i-- {
				idx[i]++
				if idx[i] < shape[i] {
					break
				}
				idx[i] = 0
			}
		}
	})
	return out
}

// bcastStrides right-aligns shape to rank r and gives stride 0 to broadcast
// (size-1 or missing) dimensions.
func bcastStrides(shape []int, r int) []int {
	s := make([]int, r)
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		j := r - len(shape) + i
		if shape[i] != 1 {
			s[j] = acc
		}
		acc *= shape[i]
	}
	return s
}

func binVV(op binOp, dst, a, b []float32) {
	a = a[:len(dst)]
	b = b[:len(dst)]
	switch op {
	case opAdd:
		for i := range dst {
			dst[i] = a[i] + b[i]
		}
	case opSub:
		for i := range dst {
			dst[i] = a[i] - b[i]
		}
	case opMul:
		for i := range dst {
			dst[i] = a[i] * b[i]
		}
	}
}

func binVS(op binOp, dst, a []float32, s float32) {
	a = a[:len(dst)]
	switch op {
	case opAdd:
		for i := range dst {
			dst[i] = a[i] + s
		}
	case opSub:
		for i := range dst {
			dst[i] = a[i] - s
		}
	case opMul:
		for i := range dst {
			dst[i] = a[i] * s
		}
	}
}

func binSV(op binOp, dst []float32, s float32, b []float32) {
	b = b[:len(dst)]
	switch op {
	case opAdd:
		for i := range dst {
			dst[i] = s + b[i]
		}
	case opSub:
		for i := range dst {
			dst[i] = s - b[i]
		}
	case opMul:
		for i := range dst {
			dst[i] = s * b[i]
		}
	}
}

// expf is exp for float32 arguments, computed in float64 for accuracy.
func expf(x float32) float32 { return float32(math.Exp(float64(x))) }
