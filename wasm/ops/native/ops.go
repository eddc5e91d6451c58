// Package native implements ops.Ops with Go kernels. It is what the wazero
// host serves as the `tf` global and what native tests and benchmarks of
// the CLIP graph run on, so its semantics follow TensorFlow.js exactly as
// documented in package ops.
//
// Matrix products (>90% of a ViT forward) use a blocked SGEMM: A packed in
// strips, B (weights, [K,N] row-major) read in place or packed per panel,
// and a register-tiled micro-kernel chosen at run time: AVX-512 (10x32
// tile) or AVX2+FMA (6x16) assembly on amd64 (golang.org/x/sys/cpu), a
// portable Go kernel elsewhere (arm64, GOOS=js). Sigmoid, Softmax's exp and
// the elementwise ops have SIMD loops on amd64 with Go fallbacks.
//
// Large ops are split across New(threads) goroutines (a persistent worker
// pool; small ops stay on the calling goroutine). Output buffers come from
// a pool keyed by capacity and go back to it on Dispose; a model's weights,
// made in load mode, live outside the Go heap (SetLoading). Reshape shares
// its input's buffer (reference counted), as in tfjs.
package native

import (
	"fmt"
	"math"
	"runtime"
	"sync/atomic"

	"github.com/imgembed/imgembed/wasm/ops"
)

// Tensor is the handle type this implementation returns through ops.Tensor
// (always as *Tensor). Shape is row-major; Data has exactly prod(Shape)
// elements (1 for a rank-0 scalar). Tensors are immutable once created: every
// op returns a new one, which lets the host wrap them without copying.
// One exception to row-major Data: a matrix used again and again as a
// product's right operand (a weight) is rewritten in the SGEMM's panel
// layout (prepack.go); read values through Ops.Data, not Data.
type Tensor struct {
	Shape []int
	Data  []float32

	// buf is set when Data came from the Ops buffer pool: it counts the
	// tensors sharing Data (Reshape shares, as in tfjs) so the last Dispose
	// recycles it. Caller-provided values (buf == nil) are never recycled.
	buf *buffer
	// disposed makes use after Dispose panic (as tfjs throws) instead of
	// silently reading a recycled buffer.
	disposed bool

	// packed is non-zero when Data holds a rank-2 matrix in an SGEMM
	// panel layout (prepack.go: layout.code); rhsUses counts its uses as
	// a product's right operand.
	packed  atomic.Int32
	rhsUses atomic.Int32
}

// buffer is a pooled allocation shared by the tensors that view it.
type buffer struct {
	refs atomic.Int32
	data []float32
	// unmap, when set, returns data (mapped outside the Go heap in load
	// mode) to the OS instead of the pool.
	unmap func()
	// foreign: data is the caller's (View), never reused nor rewritten.
	foreign bool
}

// Ops is the pure Go op list. It is safe for concurrent use.
type Ops struct {
	threads int
	workers *workerPool
	pool    bufPool
	loading atomic.Bool // see SetLoading
	constState
}

var _ ops.Ops = (*Ops)(nil)

// New returns an Ops that uses up to threads goroutines for large kernels;
// threads <= 0 means runtime.GOMAXPROCS(0).
func New(threads int) *Ops {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	o := &Ops{threads: threads}
	if threads > 1 {
		o.workers = newWorkerPool(threads - 1)
	}
	return o
}

// Threads reports how many goroutines large kernels use.
func (o *Ops) Threads() int { return o.threads }

// Close stops the worker goroutines and drops the buffer pool. The Ops
// must not be used afterwards (nor concurrently with Close). Dropping an
// Ops without Close leaks threads-1 idle goroutines.
func (o *Ops) Close() {
	if o.workers != nil {
		o.workers.close()
		o.workers = nil
	}
	o.ReleaseBuffers()
	o.releasePending()
	o.SetLoading(false) // unmaps parked mappings
}

// ReleaseBuffers drops the recycled buffers (up to poolMaxBytes) so the GC
// can return them, e.g. after a model is disposed. Tensors stay valid.
func (o *Ops) ReleaseBuffers() { o.pool.release() }

func cast(t ops.Tensor, op string) *Tensor { return rowMajor(castStored(t, op)) }

// castStored is cast without the row-major guarantee: Data may be packed.
func castStored(t ops.Tensor, op string) *Tensor {
	x, ok := t.(*Tensor)
	if !ok || x == nil {
		panic(fmt.Sprintf("native.%s: tensor is %T, not *native.Tensor", op, t))
	}
	if x.disposed {
		panic(fmt.Sprintf("native.%s: tensor %v is disposed", op, x.Shape))
	}
	return x
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// checkedNumel is numel for caller-supplied shapes: it reports false when a
// dimension is negative or the product overflows an int, which numel would
// wrap (e.g. [1<<32, 1<<32] to 0) into a size that matches a short slice.
func checkedNumel(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

func cloneShape(s []int) []int { return append(make([]int, 0, len(s)), s...) }

// newTensor returns a tensor whose Data may hold garbage (from the pool).
func (o *Ops) newTensor(shape []int) *Tensor {
	if o.loading.Load() {
		b := o.constBuffer(numel(shape))
		b.refs.Store(1)
		return &Tensor{Shape: shape, Data: b.data, buf: b}
	}
	b := &buffer{data: o.pool.get(numel(shape))}
	b.refs.Store(1)
	return &Tensor{Shape: shape, Data: b.data, buf: b}
}

// Tensor implements ops.Ops: tf.tensor(values, shape).
func (o *Ops) Tensor(values []float32, shape ...int) ops.Tensor {
	n, ok := checkedNumel(shape)
	if !ok {
		panic(fmt.Sprintf("native.Tensor: bad shape %v (negative dimension or too many elements)", shape))
	}
	if n != len(values) {
		panic(fmt.Sprintf("native.Tensor: shape %v needs %d values, got %d", shape, n, len(values)))
	}
	if o.loading.Load() {
		return o.constTensor(values, cloneShape(shape))
	}
	return &Tensor{Shape: cloneShape(shape), Data: values}
}

// Data implements ops.Ops: t.dataSync(). It returns a copy, so a later
// Dispose (which may recycle the buffer) cannot change what the caller holds.
func (o *Ops) Data(t ops.Tensor) []float32 {
	x := cast(t, "Data")
	return append([]float32(nil), x.Data...)
}

// Shape implements ops.Ops: t.shape (a copy).
func (o *Ops) Shape(t ops.Tensor) []int { return cloneShape(castStored(t, "Shape").Shape) }

// Dispose implements ops.Ops: tf.dispose. A buffer this Ops allocated goes
// back to the pool when the last tensor viewing it is disposed; disposing a
// tensor twice is harmless.
func (o *Ops) Dispose(ts ...ops.Tensor) {
	for _, t := range ts {
		if t == nil {
			continue
		}
		x, ok := t.(*Tensor)
		if !ok || x == nil {
			panic(fmt.Sprintf("native.Dispose: tensor is %T, not *native.Tensor", t))
		}
		if x.disposed {
			continue
		}
		if x.buf != nil && x.buf.refs.Add(-1) == 0 {
			o.release(x.buf)
		}
		x.Data, x.buf, x.disposed = nil, nil, true
	}
}

// Sigmoid implements ops.Ops: tf.sigmoid.
func (o *Ops) Sigmoid(t ops.Tensor) ops.Tensor {
	x := cast(t, "Sigmoid")
	out := o.newTensor(cloneShape(x.Shape))
	src, dst := x.Data, out.Data[:len(x.Data)]
	o.parallelElems(len(src), func(lo, hi int) { sigmoid(dst[lo:hi], src[lo:hi]) })
	return out
}

// sigmoid sets dst = 1 / (1 + e^-src): a vector prefix, then Go.
func sigmoid(dst, src []float32) {
	src = src[:len(dst)]
	for i := sigmoidVec(dst, src); i < len(dst); i++ {
		dst[i] = 1 / (1 + expf(-src[i]))
	}
}

// rsqrt is Rsqrt's arithmetic for one value.
func rsqrt(v float32) float32 { return float32(1 / math.Sqrt(float64(v))) }

// Rsqrt implements ops.Ops: tf.rsqrt.
func (o *Ops) Rsqrt(t ops.Tensor) ops.Tensor {
	x := cast(t, "Rsqrt")
	out := o.newTensor(cloneShape(x.Shape))
	src, dst := x.Data, out.Data[:len(x.Data)]
	for i, v := range src {
		dst[i] = rsqrt(v)
	}
	return out
}

// Softmax implements ops.Ops: tf.softmax over the last axis, subtracting the
// row maximum first so large logits do not overflow.
func (o *Ops) Softmax(t ops.Tensor) ops.Tensor {
	x := cast(t, "Softmax")
	if len(x.Shape) == 0 {
		panic("native.Softmax: rank-0 tensor has no last axis")
	}
	out := o.newTensor(cloneShape(x.Shape))
	n := x.Shape[len(x.Shape)-1]
	if n == 0 || len(x.Data) == 0 {
		return out
	}
	rows := len(x.Data) / n
	src, dst := x.Data, out.Data[:len(x.Data)]
	o.parallelRows(rows, n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			softmaxRow(src[r*n:(r+1)*n], dst[r*n:(r+1)*n])
		}
	})
	return out
}

func softmaxRow(src, dst []float32) {
	dst = dst[:len(src)]
	m := src[0]
	for _, v := range src[1:] {
		if v > m {
			m = v
		}
	}
	sum, k := expShiftVec(dst, src, m)
	for i := k; i < len(src); i++ {
		e := expf(src[i] - m)
		dst[i] = e
		sum += e
	}
	binVS(opMul, dst, dst, 1/sum)
}

// Mean implements ops.Ops: tf.mean(x, axis, keepDims) over one axis.
func (o *Ops) Mean(t ops.Tensor, axis int, keepDims bool) ops.Tensor {
	x := cast(t, "Mean")
	r := len(x.Shape)
	ax := axis
	if ax < 0 {
		ax += r
	}
	if ax < 0 || ax >= r {
		panic(fmt.Sprintf("native.Mean: axis %d out of range for shape %v", axis, x.Shape))
	}
	outer := numel(x.Shape[:ax])
	n := x.Shape[ax]
	inner := numel(x.Shape[ax+1:])
	var shape []int
	if keepDims {
		shape = cloneShape(x.Shape)
		shape[ax] = 1
	} else {
		shape = append(cloneShape(x.Shape[:ax]), x.Shape[ax+1:]...)
	}
	out := o.newTensor(shape)
	dst := out.Data[:outer*inner]
	src := x.Data
	inv := 1 / float32(n)
	if inner == 1 {
		// Reducing the last axis (LayerNorm): one contiguous row per output.
		for i := 0; i < outer; i++ {
			dst[i] = sum(src[i*n:(i+1)*n]) * inv
		}
		return out
	}
	for i := 0; i < outer; i++ {
		acc := dst[i*inner : (i+1)*inner]
		for j := range acc {
			acc[j] = 0
		}
		for k := 0; k < n; k++ {
			row := src[(i*n+k)*inner : (i*n+k+1)*inner]
			for j, v := range row {
				acc[j] += v
			}
		}
		for j := range acc {
			acc[j] *= inv
		}
	}
	return out
}

// Reshape implements ops.Ops: tf.reshape with at most one -1. Like tfjs, the
// result shares the input's data (tensors are immutable), so it costs no
// copy; the buffer is recycled when both are disposed.
func (o *Ops) Reshape(t ops.Tensor, shape ...int) ops.Tensor {
	x := cast(t, "Reshape")
	shape = cloneShape(shape)
	infer := -1
	known := 1
	for i, d := range shape {
		switch {
		case d == -1:
			if infer >= 0 {
				panic(fmt.Sprintf("native.Reshape: more than one -1 in %v", shape))
			}
			infer = i
		case d < 0:
			panic(fmt.Sprintf("native.Reshape: bad dimension %d in %v", d, shape))
		case d != 0 && known > math.MaxInt/d:
			panic(fmt.Sprintf("native.Reshape: shape %v has too many elements", shape))
		default:
			known *= d
		}
	}
	if infer >= 0 {
		if known == 0 || len(x.Data)%known != 0 {
			panic(fmt.Sprintf("native.Reshape: cannot reshape %v into %v", x.Shape, shape))
		}
		shape[infer] = len(x.Data) / known
	} else if known != len(x.Data) {
		panic(fmt.Sprintf("native.Reshape: cannot reshape %v (%d values) into %v", x.Shape, len(x.Data), shape))
	}
	if x.buf != nil {
		x.buf.refs.Add(1)
	}
	return &Tensor{Shape: shape, Data: x.Data, buf: x.buf}
}

// Slice implements ops.Ops: tf.slice(x, begin, size), size -1 = to the end.
func (o *Ops) Slice(t ops.Tensor, begin, size []int) ops.Tensor {
	x := cast(t, "Slice")
	r := len(x.Shape)
	if len(begin) != r || len(size) != r {
		panic(fmt.Sprintf("native.Slice: begin %v / size %v do not match rank of %v", begin, size, x.Shape))
	}
	shape := make([]int, r)
	for i := range shape {
		b, s := begin[i], size[i]
		if s == -1 {
			s = x.Shape[i] - b
		}
		// b > dim first: b+s could overflow.
		if b < 0 || s < 0 || b > x.Shape[i] || s > x.Shape[i]-b {
			panic(fmt.Sprintf("native.Slice: begin %v size %v out of bounds for %v", begin, size, x.Shape))
		}
		shape[i] = s
	}
	out := o.newTensor(shape)
	if len(out.Data) == 0 {
		return out
	}
	if r == 0 {
		copy(out.Data, x.Data)
		return out
	}
	strides := stridesOf(x.Shape)
	// Copy runs of the innermost dimension.
	last := shape[r-1]
	idx := make([]int, r-1)
	dst := out.Data
	for off := 0; off < len(dst); off += last {
		s := begin[r-1]
		for i, v := range idx {
			s += (begin[i] + v) * strides[i]
		}
		copy(dst[off:off+last], x.Data[s:s+last])
		nextRow(idx, shape)
	}
	return out
}

func stridesOf(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}
