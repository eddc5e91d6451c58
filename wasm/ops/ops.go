// Package ops is the boundary between the CLIP graph (written in Go) and the
// code that does the arithmetic on large tensors.
//
// Every method is named, shaped and behaves like the TensorFlow.js function in
// its comment, because in browsers and Node the implementation is a thin call
// to that function on the global `tf` object (package jsops), and under the
// wazero host the same `tf` functions are served by Go kernels (package
// native). This file is the one place the list is written down: the JS-backed
// implementation calls exactly these functions and the host serves exactly
// these. Add an op here first, then to every implementation and to the
// differential tests. (Fused, at the end, is the one optional extension:
// kernels that do in one pass what the graph otherwise spells.)
//
// Conventions (all implementations):
//   - dtype is always float32; shapes are row-major, like tfjs.
//   - Misuse (shape mismatch, bad axis) panics, as tfjs throws; callers that
//     take untrusted shapes check them first. Graph entry points recover.
//   - Every returned Tensor is new and owned by the caller, who must Dispose
//     it; inputs are never consumed.
//   - Broadcasting in Add, Sub and Mul follows numpy/tfjs rules.
package ops

// Tensor is an opaque handle owned by one Ops implementation.
type Tensor interface{}

// Ops is the op list. Each method documents the tfjs call it stands for.
type Ops interface {
	// Tensor creates a tensor from values:
	// tf.tensor(Float32Array values, shape, 'float32'). The implementation
	// may keep values; the caller must not modify it afterwards.
	// len(values) must equal the product of shape (rank 0 = scalar).
	Tensor(values []float32, shape ...int) Tensor

	// Data reads a tensor back: t.dataSync() (a Float32Array).
	Data(t Tensor) []float32

	// Shape returns t.shape.
	Shape(t Tensor) []int

	// Dispose releases tensors: tf.dispose([...]). Nil entries are ignored.
	Dispose(ts ...Tensor)

	// MatMul is tf.matMul(a, b, transposeA, transposeB) for rank 2, or rank
	// 3 with equal batch size (a batched product).
	MatMul(a, b Tensor, transposeA, transposeB bool) Tensor

	// FusedMatMul is tf.fused.matMul({a, b, bias}): a[m,k] @ b[k,n] + bias[n],
	// rank 2, never transposed (tfjs-wasm computes fused matMul with
	// transposeB wrongly; weights are pre-transposed at load instead).
	FusedMatMul(a, b, bias Tensor) Tensor

	// Add is tf.add(a, b), broadcasting.
	Add(a, b Tensor) Tensor
	// Sub is tf.sub(a, b), broadcasting.
	Sub(a, b Tensor) Tensor
	// Mul is tf.mul(a, b), broadcasting.
	Mul(a, b Tensor) Tensor

	// Sigmoid is tf.sigmoid(x): 1 / (1 + exp(-x)).
	Sigmoid(x Tensor) Tensor
	// Rsqrt is tf.rsqrt(x): 1 / sqrt(x).
	Rsqrt(x Tensor) Tensor
	// Softmax is tf.softmax(x) over the last axis.
	Softmax(x Tensor) Tensor
	// Mean is tf.mean(x, axis, keepDims) over one axis (negative counts from
	// the end).
	Mean(x Tensor, axis int, keepDims bool) Tensor

	// Reshape is tf.reshape(x, shape); at most one -1.
	Reshape(x Tensor, shape ...int) Tensor
	// Transpose is tf.transpose(x, perm), rank <= 4.
	Transpose(x Tensor, perm ...int) Tensor
	// Slice is tf.slice(x, begin, size); a size of -1 means "to the end".
	Slice(x Tensor, begin, size []int) Tensor

	// DepthwiseConv2d is tf.depthwiseConv2d(x, filter, 1, 'valid'): x is
	// [N, H, W, C], filter [FH, FW, C, M] (FH <= H, FW <= W), the result
	// [N, H-FH+1, W-FW+1, C*M] with
	//   out[n, y, x, c*M+m] = sum over dy < FH, dx < FW of
	//                         x[n, y+dy, x+dx, c] * filter[dy, dx, c, m].
	// Stride 1, no padding, no dilation. The graph uses it for attention:
	// with C = heads it is one product per head in a single kernel, which
	// tfjs-wasm runs through XNNPACK's threaded grouped GEMM (its batched
	// matMul is a scalar loop on one thread).
	DepthwiseConv2d(x, filter Tensor) Tensor
}

// LeftWeights is optionally implemented by an Ops whose matrix product
// keeps a packed copy of its right operand for as long as that tensor
// lives. tfjs-wasm does: tf.matMul and tf.fused.matMul run XNNPACK's
// fully-connected operator, created on the first product with a given
// right-hand tensor, packing that operand into it, and cached until the
// tensor is disposed. With weights on the right every weight is held
// twice while serving, so when WeightsLeft reports true the graphs keep
// their activations feature-major ([features, tokens]) and multiply
// W·xᵀ: only activations are packed, and their operators die with them.
type LeftWeights interface {
	WeightsLeft() bool
}

// WeightsLeft reports whether o asks for weights on the left of its
// matrix products (see LeftWeights).
func WeightsLeft(o Ops) bool {
	l, ok := o.(LeftWeights)
	return ok && l.WeightsLeft()
}

// Fused is optionally implemented by an Ops with kernels that do in one
// pass what the graphs otherwise spell with several ops of the list. It is
// not a TensorFlow.js API: the Go kernels (package native) implement it and
// the wazero host serves it to the module; on tfjs the graphs spell it out.
// Each method equals its spelling below up to float rounding (the Go
// kernels give the spelling's bits). Graphs that keep weights on the left
// (LeftWeights) do not use it.
type Fused interface {
	// Linear is y = FusedMatMul(a, w, bias) ([m, k] @ [k, n] + [n]),
	// then y·sigmoid(y) when gated, then y + residual ([m, n]) when
	// residual is not nil.
	Linear(a, w, bias Tensor, gated bool, residual Tensor) Tensor

	// NormRows is x·rsqrt(mean(x², last axis) + eps) for x [R, D]: the
	// LayerNorm of rows whose mean is already 0, without gain and bias.
	// Spelled Mul(x, Rsqrt(Add(Mean(Mul(x, x), -1, true), eps))).
	NormRows(x Tensor, eps float32) Tensor

	// Attention is multi-head attention for images images of T keys and
	// tq queries each, with the scale already in q. The columns of q
	// [images*tq, D], k and v [images*T, D] and the result [images*tq, D]
	// are head-major (column h*hd+e is head h's e-th, hd = D/heads). For
	// image i, head h, query t:
	//   s[j]   = sum over e of q[i*tq+t, h*hd+e] · k[i*T+j, h*hd+e]
	//   out[i*tq+t, h*hd+e] = sum over j of softmax(s)[j] · v[i*T+j, h*hd+e]
	// The graphs otherwise spell it with two DepthwiseConv2d, a Softmax and
	// the transposes between them (with q's and k's columns head-minor,
	// e*heads+h, so that these need fewer transposes).
	Attention(q, k, v Tensor, images, heads int) Tensor
}

// FusedOps returns o's fused kernels, or nil when it has none.
func FusedOps(o Ops) Fused {
	f, _ := o.(Fused)
	return f
}
