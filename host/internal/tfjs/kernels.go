// Package tfjs serves a TensorFlow.js look-alike `tf` namespace to the
// GOOS=js module running under the wazero host, with the arithmetic done by
// the native Go kernels of wasm/ops/native. It implements exactly the op list
// of wasm/ops/ops.go, called the way wasm/jsops calls it, and nothing else:
// the module cannot tell it from tfjs for that list, and any call outside it
// fails loudly instead of silently diverging. The one addition is
// tf.imgembed (fused.go): the optional ops.Fused kernels, under a name no
// tfjs has, which the module uses when it finds them.
//
// kernels.go is the Go half (argument checks, tfjs error behaviour, tensor
// bookkeeping); tf.go and fused.go dress it as JS objects and functions
// through the gojs runtime.
package tfjs

import (
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/ops/native"
)

// ErrOp is wrapped by every error a tf function throws into the module
// (bad arguments, a kernel's shape check, a disposed tensor).
var ErrOp = errors.New("tf")

// Kernels is the tensor bookkeeping behind one `tf` namespace: live tensor
// accounting (tf.memory()) and panic-to-error conversion around the native
// kernels, which panic on misuse as tfjs throws.
type Kernels struct {
	O *native.Ops

	mu      sync.Mutex
	live    map[*native.Tensor]struct{}
	numByte int64
	calls   map[string]int // successful kernel calls by op name
}

// NewKernels wraps o.
func NewKernels(o *native.Ops) *Kernels {
	return &Kernels{O: o, live: map[*native.Tensor]struct{}{}, calls: map[string]int{}}
}

// Calls returns how many times each op ran successfully ("matMul",
// "fused.matMul", "imgembed.linear", ...; tf.tensor is "tensor"): which
// functions a module really uses.
func (k *Kernels) Calls() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.calls)
}

// Memory is tf.memory(): live tensors and their bytes.
type Memory struct {
	NumTensors int
	NumBytes   int64
}

// Memory reports the live tensors.
func (k *Kernels) Memory() Memory {
	k.mu.Lock()
	defer k.mu.Unlock()
	return Memory{NumTensors: len(k.live), NumBytes: k.numByte}
}

func (k *Kernels) track(name string, t *native.Tensor) *native.Tensor {
	k.mu.Lock()
	k.calls[name]++
	k.live[t] = struct{}{}
	k.numByte += 4 * int64(len(t.Data))
	k.mu.Unlock()
	return t
}

// IsLive reports whether t was made here and not yet disposed.
func (k *Kernels) IsLive(t *native.Tensor) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.live[t]
	return ok
}

// Dispose is tf.dispose: disposing twice, or a tensor of another namespace,
// is a no-op, as in tfjs.
func (k *Kernels) Dispose(ts ...*native.Tensor) {
	for _, t := range ts {
		if t == nil {
			continue
		}
		k.mu.Lock()
		_, ok := k.live[t]
		if ok {
			delete(k.live, t)
			k.numByte -= 4 * int64(len(t.Data))
		}
		k.mu.Unlock()
		if ok {
			k.O.Dispose(t)
		}
	}
}

// run calls a kernel, turning its panic into an error (what tfjs would
// throw), and tracks the result.
func (k *Kernels) run(name string, in []*native.Tensor, f func() any) (out *native.Tensor, err error) {
	for i, t := range in {
		if t == nil || !k.IsLive(t) {
			return nil, fmt.Errorf("%w.%s: argument %d: tensor is disposed", ErrOp, name, i)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w.%s: %v", ErrOp, name, r)
		}
	}()
	res := f()
	t, ok := res.(*native.Tensor)
	if !ok || t == nil {
		return nil, fmt.Errorf("%w.%s: kernel returned %T", ErrOp, name, res)
	}
	return k.track(name, t), nil
}

// Tensor is tf.tensor(values, shape, 'float32'). values is kept (callers
// pass a fresh copy: tfjs copies too).
func (k *Kernels) Tensor(values []float32, shape []int) (*native.Tensor, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("%w.tensor: negative dimension in shape [%v]", ErrOp, shape)
		}
		n *= d
	}
	if n != len(values) {
		return nil, fmt.Errorf("%w.tensor: based on the provided shape, [%v], the tensor should have %d values but has %d", ErrOp, shape, n, len(values))
	}
	return k.run("tensor", nil, func() any { return k.O.Tensor(values, shape...) })
}

// Data is t.dataSync(): a copy of the values.
func (k *Kernels) Data(t *native.Tensor) ([]float32, error) {
	if !k.IsLive(t) {
		return nil, fmt.Errorf("%w: Tensor is disposed", ErrOp)
	}
	return k.O.Data(t), nil // row-major even when t is a packed weight
}

// MatMul is tf.matMul(a, b, transposeA, transposeB).
func (k *Kernels) MatMul(a, b *native.Tensor, ta, tb bool) (*native.Tensor, error) {
	return k.run("matMul", []*native.Tensor{a, b}, func() any { return k.O.MatMul(a, b, ta, tb) })
}

// FusedMatMul is tf.fused.matMul({a, b, bias}).
func (k *Kernels) FusedMatMul(a, b, bias *native.Tensor) (*native.Tensor, error) {
	return k.run("fused.matMul", []*native.Tensor{a, b, bias}, func() any { return k.O.FusedMatMul(a, b, bias) })
}

// Binary is tf.add / tf.sub / tf.mul.
func (k *Kernels) Binary(name string, a, b *native.Tensor) (*native.Tensor, error) {
	var f func() any
	switch name {
	case "add":
		f = func() any { return k.O.Add(a, b) }
	case "sub":
		f = func() any { return k.O.Sub(a, b) }
	case "mul":
		f = func() any { return k.O.Mul(a, b) }
	default:
		return nil, fmt.Errorf("%w.%s: not a binary op", ErrOp, name)
	}
	return k.run(name, []*native.Tensor{a, b}, f)
}

// Unary is tf.sigmoid / tf.rsqrt / tf.softmax.
func (k *Kernels) Unary(name string, x *native.Tensor) (*native.Tensor, error) {
	var f func() any
	switch name {
	case "sigmoid":
		f = func() any { return k.O.Sigmoid(x) }
	case "rsqrt":
		f = func() any { return k.O.Rsqrt(x) }
	case "softmax":
		f = func() any { return k.O.Softmax(x) }
	default:
		return nil, fmt.Errorf("%w.%s: not a unary op", ErrOp, name)
	}
	return k.run(name, []*native.Tensor{x}, f)
}

// Mean is tf.mean(x, axis, keepDims).
func (k *Kernels) Mean(x *native.Tensor, axis int, keepDims bool) (*native.Tensor, error) {
	return k.run("mean", []*native.Tensor{x}, func() any { return k.O.Mean(x, axis, keepDims) })
}

// Reshape is tf.reshape(x, shape).
func (k *Kernels) Reshape(x *native.Tensor, shape []int) (*native.Tensor, error) {
	return k.run("reshape", []*native.Tensor{x}, func() any { return k.O.Reshape(x, shape...) })
}

// Transpose is tf.transpose(x, perm).
func (k *Kernels) Transpose(x *native.Tensor, perm []int) (*native.Tensor, error) {
	return k.run("transpose", []*native.Tensor{x}, func() any { return k.O.Transpose(x, perm...) })
}

// Slice is tf.slice(x, begin, size).
func (k *Kernels) Slice(x *native.Tensor, begin, size []int) (*native.Tensor, error) {
	return k.run("slice", []*native.Tensor{x}, func() any { return k.O.Slice(x, begin, size) })
}

// DepthwiseConv2d is tf.depthwiseConv2d(x, filter, 1, 'valid').
func (k *Kernels) DepthwiseConv2d(x, filter *native.Tensor) (*native.Tensor, error) {
	return k.run("depthwiseConv2d", []*native.Tensor{x, filter}, func() any { return k.O.DepthwiseConv2d(x, filter) })
}

// Linear is tf.imgembed.linear(a, w, bias, gated, residual) (ops.Fused's
// Linear); bias and residual may be nil.
func (k *Kernels) Linear(a, w, bias *native.Tensor, gated bool, residual *native.Tensor) (*native.Tensor, error) {
	in := []*native.Tensor{a, w}
	var b, r ops.Tensor // untyped nil when absent, as the kernel expects
	if bias != nil {
		in, b = append(in, bias), bias
	}
	if residual != nil {
		in, r = append(in, residual), residual
	}
	return k.run("imgembed.linear", in, func() any { return k.O.Linear(a, w, b, gated, r) })
}

// NormRows is tf.imgembed.normRows(x, eps) (ops.Fused's NormRows).
func (k *Kernels) NormRows(x *native.Tensor, eps float32) (*native.Tensor, error) {
	return k.run("imgembed.normRows", []*native.Tensor{x}, func() any { return k.O.NormRows(x, eps) })
}

// Attention is tf.imgembed.attention(q, k, v, images, heads) (ops.Fused's
// Attention).
func (k *Kernels) Attention(q, kk, v *native.Tensor, images, heads int) (*native.Tensor, error) {
	return k.run("imgembed.attention", []*native.Tensor{q, kk, v}, func() any { return k.O.Attention(q, kk, v, images, heads) })
}
