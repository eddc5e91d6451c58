package tfjs

import (
	"fmt"
	"math"

	"github.com/imgembed/imgembed/host/internal/gojs"
	"github.com/imgembed/imgembed/wasm/ops/native"
)

// FusedName is the property of the `tf` object that holds the fused
// kernels of ops.Fused. They are not TensorFlow.js functions: the name is
// the project's, so that no tfjs version can have it, and wasm/jsops uses
// them only when it finds them there (feature detection). Each is one call
// where its spelling in tf functions is several:
//
//	tf.imgembed.linear(a, w, bias, gated, residual)  ops.Fused.Linear; bias and
//	                                                 residual may be null or undefined
//	tf.imgembed.normRows(x, eps)                     ops.Fused.NormRows
//	tf.imgembed.attention(q, k, v, images, heads)    ops.Fused.Attention
//
// Arguments of the wrong type throw a TypeError, a kernel's shape check an
// Error (wrapping ErrOp), as the tf functions do.
const FusedName = "imgembed"

func (ns *Namespace) fusedObject() *gojs.Object {
	f := gojs.NewObject(nil)
	f.Method("linear", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		x, w, err := ns.two(a, "imgembed.linear")
		if err != nil {
			return nil, err
		}
		bias, err := ns.optional(arg(a, 2), "imgembed.linear", 2)
		if err != nil {
			return nil, err
		}
		gated, ok := arg(a, 3).(bool)
		if !ok && arg(a, 3) != nil {
			return nil, typeError("tf.imgembed.linear: argument 3 (gated) must be a boolean but got " + gojs.TypeOf(arg(a, 3)))
		}
		res, err := ns.optional(arg(a, 4), "imgembed.linear", 4)
		if err != nil {
			return nil, err
		}
		return ns.result(ns.K.Linear(x, w, bias, gated, res))
	})
	f.Method("normRows", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		x, err := ns.tensor(arg(a, 0), "imgembed.normRows", 0)
		if err != nil {
			return nil, err
		}
		eps, ok := arg(a, 1).(float64)
		if !ok {
			return nil, typeError("tf.imgembed.normRows: argument 1 (eps) must be a number but got " + gojs.TypeOf(arg(a, 1)))
		}
		return ns.result(ns.K.NormRows(x, float32(eps)))
	})
	f.Method("attention", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		var qkv [3]*native.Tensor
		for i := range qkv {
			t, err := ns.tensor(arg(a, i), "imgembed.attention", i)
			if err != nil {
				return nil, err
			}
			qkv[i] = t
		}
		images, err := count(arg(a, 3), "tf.imgembed.attention: argument 3 (images)")
		if err != nil {
			return nil, err
		}
		heads, err := count(arg(a, 4), "tf.imgembed.attention: argument 4 (heads)")
		if err != nil {
			return nil, err
		}
		return ns.result(ns.K.Attention(qkv[0], qkv[1], qkv[2], images, heads))
	})
	f.Freeze()
	return f
}

// optional resolves a tensor argument that may be null or undefined (nil).
func (ns *Namespace) optional(v gojs.Value, op string, i int) (*native.Tensor, error) {
	if v == nil || v == gojs.Null {
		return nil, nil
	}
	return ns.tensor(v, op, i)
}

// count reads a positive integer argument.
func count(v gojs.Value, what string) (int, error) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 1 || f > 1<<31 {
		return 0, typeError(fmt.Sprintf("%s must be a positive integer but got %s", what, gojs.ToString(v)))
	}
	return int(f), nil
}
