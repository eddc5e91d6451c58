package native

import (
	"fmt"
	"math"
	"slices"

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

func (o *Ops) binary(op binOp, at, bt ops.Tensor) ops.Tensor {
	a, b := cast(at, op.String()), cast(bt, op.String())
	if slices.Equal(a.Shape, b.Shape) {
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
			nextRow(idx, shape)
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

// Vector prefixes of the elementwise loops, set on amd64 with AVX: each
// does a prefix of its loop and returns its length.
var (
	vecVV  = func(op binOp, dst, a, b []float32) int { return 0 }
	vecVS  = func(op binOp, dst, a []float32, s float32) int { return 0 }
	vecSV  = func(op binOp, dst []float32, s float32, b []float32) int { return 0 }
	vecSum = func(a []float32) (float32, int) { return 0, 0 }
)

func binVV(op binOp, dst, a, b []float32) {
	a = a[:len(dst)]
	b = b[:len(dst)]
	k := vecVV(op, dst, a, b)
	dst, a, b = dst[k:], a[k:], b[k:]
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
	k := vecVS(op, dst, a, s)
	dst, a = dst[k:], a[k:]
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
	k := vecSV(op, dst, s, b)
	dst, b = dst[k:], b[k:]
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

// sigmoidVec computes a prefix of dst = sigmoid(src) with SIMD where the
// CPU has it and returns the prefix length (0 = do it all in Go).
var sigmoidVec = func(dst, src []float32) int { return 0 }

// expShiftVec writes a prefix of dst = exp(src - shift) with SIMD where the
// CPU has it, returning the prefix's sum and length.
var expShiftVec = func(dst, src []float32, shift float32) (float32, int) { return 0, 0 }

// expf is a float32 exp accurate to about 2 ulp (Cephes expf): x = n ln2 + r
// with |r| <= ln2/2, a degree-6 polynomial for e^r, then 2^n through the
// exponent bits. math.Exp in float64 costs several times more, and Sigmoid
// (quick GELU) and Softmax call this millions of times per forward.
func expf(x float32) float32 {
	const (
		maxX  = 88.72283905206835 // ln(MaxFloat32)
		minX  = -103.97207708     // below this e^x rounds to 0 in float32
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
		magic = 12582912 // 1.5 * 2^23: adding it rounds to an integer
	)
	if !(x < maxX) { // also NaN
		if x != x {
			return x
		}
		return float32(math.Inf(1))
	}
	if x < minX {
		return 0
	}
	t := float32(x*log2e) + magic
	n := int32(math.Float32bits(t)&0x7fffff) - 0x400000
	fn := t - magic
	r := x - fn*ln2hi
	r = r - fn*ln2lo
	z := r * r
	y := float32(1.9875691500e-4)
	y = y*r + 1.3981999507e-3
	y = y*r + 8.3334519073e-3
	y = y*r + 4.1665795894e-2
	y = y*r + 1.6666665459e-1
	y = y*r + 5.0000001201e-1
	y = y*z + r + 1
	// Scale by 2^n in two steps so n down to -150 (denormal results) and
	// up to 128 do not overflow the exponent field.
	if n < -126 {
		return y * math.Float32frombits(uint32(n+127+64)<<23) * 0x1p-64
	}
	if n > 127 {
		return y * 2 * math.Float32frombits(uint32(n-1+127)<<23)
	}
	return y * math.Float32frombits(uint32(n+127)<<23)
}

// sum adds a's elements (vector prefix where available, then the tail).
func sum(a []float32) float32 {
	s, k := vecSum(a)
	for _, v := range a[k:] {
		s += v
	}
	return s
}
