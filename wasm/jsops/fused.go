//go:build js && wasm

package jsops

import (
	"fmt"
	"syscall/js"

	"github.com/imgembed/imgembed/wasm/ops"
)

// fusedName is the property of tf that holds the fused kernels of
// ops.Fused where a host serves them (the wazero host: host/internal/tfjs,
// FusedName). TensorFlow.js has no such property, so there nothing
// changes: the graphs spell every fused op with tf functions.
const fusedName = "imgembed"

// fusedFns are tf.imgembed's functions:
//
//	linear(a, w, bias, gated, residual)  ops.Fused.Linear (bias, residual may be null)
//	normRows(x, eps)                     ops.Fused.NormRows
//	attention(q, k, v, images, heads)    ops.Fused.Attention
type fusedFns struct{ linear, normRows, attention js.Value }

// fusedOf finds tf.imgembed's functions: nil when tf has no such object
// (TensorFlow.js), an error naming the missing function when it has only
// some of them (a host set up wrongly fails at load time).
func fusedOf(tf js.Value) (*fusedFns, error) {
	ns := tf.Get(fusedName)
	if ns.Type() != js.TypeObject {
		return nil, nil
	}
	f := &fusedFns{}
	for _, fn := range []struct {
		dst  *js.Value
		name string
	}{{&f.linear, "linear"}, {&f.normRows, "normRows"}, {&f.attention, "attention"}} {
		v := ns.Get(fn.name)
		if v.Type() != js.TypeFunction {
			return nil, fmt.Errorf("jsops: tf.%s.%s is not a function", fusedName, fn.name)
		}
		*fn.dst = v
	}
	return f, nil
}

// HasFused reports whether tf serves the fused kernels (tf.imgembed).
func (o *Ops) HasFused() bool { return o.fused != nil }

// WithFused returns what the graphs should run on: base (o itself, or a
// wrapper of o whose tensors are o's), extended with ops.Fused when tf
// serves the fused kernels, or base itself when it does not. The
// extension keeps base's ops.LeftWeights answer.
//
// It also runs FusedMatMul as tf.imgembed.linear(a, b, bias, false, null):
// the same kernel (the host's fused.matMul and linear without epilogue are
// one product), in one call into JS instead of four (fused.matMul's config
// object takes three property sets).
func (o *Ops) WithFused(base ops.Ops) ops.Ops {
	if o.fused == nil {
		return base
	}
	return fusedOps{Ops: base, o: o}
}

// fusedOps is an ops.Ops with ops.Fused served by tf.imgembed.
type fusedOps struct {
	ops.Ops
	o *Ops
}

var (
	_ ops.Fused       = fusedOps{}
	_ ops.LeftWeights = fusedOps{}
)

// WeightsLeft implements ops.LeftWeights as the wrapped Ops does.
func (f fusedOps) WeightsLeft() bool { return ops.WeightsLeft(f.Ops) }

// orNull is x's JS value, or null for a nil tensor.
func orNull(x ops.Tensor) js.Value {
	if x == nil {
		return js.Null()
	}
	return t(x).v
}

// linearShape is [m, n] for a [m, k] and w [k, n] (ok false otherwise: the
// shape is then read from JS, after tf has thrown for anything invalid).
func linearShape(a, w []int) ([]int, bool) {
	if len(a) != 2 || len(w) != 2 {
		return nil, false
	}
	return []int{a[0], w[1]}, true
}

// Linear implements ops.Fused: tf.imgembed.linear(a, w, bias, gated, residual).
func (f fusedOps) Linear(a, w, bias ops.Tensor, gated bool, residual ops.Tensor) ops.Tensor {
	x, y := t(a), t(w)
	v := f.o.fused.linear.Invoke(x.v, y.v, orNull(bias), gated, orNull(residual))
	sh, ok := linearShape(x.shape, y.shape)
	return f.o.result(v, sh, ok)
}

// FusedMatMul is tf.imgembed.linear(a, b, bias, false, null) (see WithFused).
func (f fusedOps) FusedMatMul(a, b, bias ops.Tensor) ops.Tensor {
	return f.Linear(a, b, t(bias), false, nil)
}

// NormRows implements ops.Fused: tf.imgembed.normRows(x, eps).
func (f fusedOps) NormRows(x ops.Tensor, eps float32) ops.Tensor {
	xx := t(x)
	return f.o.wrapShape(f.o.fused.normRows.Invoke(xx.v, float64(eps)), xx.shape)
}

// Attention implements ops.Fused: tf.imgembed.attention(q, k, v, images, heads).
func (f fusedOps) Attention(q, k, v ops.Tensor, images, heads int) ops.Tensor {
	qq := t(q)
	r := f.o.fused.attention.Invoke(qq.v, t(k).v, t(v).v, images, heads)
	return f.o.result(r, qq.shape, len(qq.shape) == 2)
}
