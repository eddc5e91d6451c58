package tfjs

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/imgembed/imgembed/host/internal/gojs"
	"github.com/imgembed/imgembed/wasm/ops/native"
)

// Namespace is one `tf` object and the tensors it made.
type Namespace struct {
	K *Kernels
	// Object is the value to install as the `tf` global (or pass as
	// load's opts.tf).
	Object *gojs.Object

	tensorClass *gojs.Function
	mu          sync.Mutex
	handles     map[*gojs.Object]*native.Tensor
	nextID      int
}

// New builds the `tf` namespace over the native kernels o.
func New(o *native.Ops) *Namespace {
	ns := &Namespace{K: NewKernels(o), handles: map[*gojs.Object]*native.Tensor{}}
	ns.tensorClass = gojs.NewClass("Tensor", func([]gojs.Value) (gojs.Value, error) {
		return nil, &gojs.Exception{Value: gojs.NewTypeError("Tensor: use tf.tensor()")}
	})
	p := ns.tensorClass.Prototype
	p.Method("dataSync", func(this gojs.Value, _ []gojs.Value) (gojs.Value, error) {
		t, err := ns.tensor(this, "dataSync", 0)
		if err != nil {
			return nil, err
		}
		d, err := ns.K.Data(t)
		if err != nil {
			return nil, throw(err)
		}
		return gojs.NewFloat32Array(d), nil
	})
	p.Method("dispose", func(this gojs.Value, _ []gojs.Value) (gojs.Value, error) {
		ns.dispose(this)
		return nil, nil
	})

	tf := gojs.NewObject(nil)
	tf.Set("version", gojs.NewObject(map[string]gojs.Value{"tfjs-core": "imgembed-host"}))
	tf.Method("tensor", ns.jsTensor)
	tf.Method("matMul", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		x, y, err := ns.two(a, "matMul")
		if err != nil {
			return nil, err
		}
		return ns.result(ns.K.MatMul(x, y, gojs.Truthy(arg(a, 2)), gojs.Truthy(arg(a, 3))))
	})
	fused := gojs.NewObject(nil)
	fused.Method("matMul", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		cfg, ok := arg(a, 0).(*gojs.Object)
		if !ok {
			return nil, typeError("tf.fused.matMul: argument must be an object {a, b, bias}")
		}
		for _, k := range cfg.Keys() {
			switch k {
			case "a", "b", "bias":
			default:
				// transposeA/B, activation, preluActivationWeights...: not in
				// the op list (tfjs-wasm gets transposeB wrong); refuse
				// rather than compute something else.
				if cfg.Get(k) != nil && cfg.Get(k) != false {
					return nil, typeError("tf.fused.matMul: option " + k + " is not supported by this host")
				}
			}
		}
		x, err := ns.tensor(cfg.Get("a"), "fused.matMul", 0)
		if err != nil {
			return nil, err
		}
		y, err := ns.tensor(cfg.Get("b"), "fused.matMul", 1)
		if err != nil {
			return nil, err
		}
		if cfg.Get("bias") == nil {
			return nil, typeError("tf.fused.matMul: bias is required by this host")
		}
		b, err := ns.tensor(cfg.Get("bias"), "fused.matMul", 2)
		if err != nil {
			return nil, err
		}
		return ns.result(ns.K.FusedMatMul(x, y, b))
	})
	tf.Set("fused", fused)
	for _, name := range []string{"add", "sub", "mul"} {
		tf.Method(name, func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
			x, y, err := ns.two(a, name)
			if err != nil {
				return nil, err
			}
			return ns.result(ns.K.Binary(name, x, y))
		})
	}
	for _, name := range []string{"sigmoid", "rsqrt", "softmax"} {
		tf.Method(name, func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
			x, err := ns.tensor(arg(a, 0), name, 0)
			if err != nil {
				return nil, err
			}
			if name == "softmax" {
				if d := arg(a, 1); d != nil && gojs.ToInt(d) != -1 {
					return nil, typeError("tf.softmax: only the last axis (dim -1) is supported by this host")
				}
			}
			return ns.result(ns.K.Unary(name, x))
		})
	}
	tf.Method("mean", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		x, err := ns.tensor(arg(a, 0), "mean", 0)
		if err != nil {
			return nil, err
		}
		ax, ok := arg(a, 1).(float64)
		if !ok || ax != math.Trunc(ax) {
			// tf.mean(x) over all axes or a list of axes: not in the op list.
			return nil, typeError("tf.mean: axis must be one integer on this host")
		}
		return ns.result(ns.K.Mean(x, int(ax), gojs.Truthy(arg(a, 2))))
	})
	tf.Method("reshape", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		x, err := ns.tensor(arg(a, 0), "reshape", 0)
		if err != nil {
			return nil, err
		}
		sh, err := ints(arg(a, 1), "tf.reshape: shape")
		if err != nil {
			return nil, err
		}
		return ns.result(ns.K.Reshape(x, sh))
	})
	tf.Method("transpose", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		x, err := ns.tensor(arg(a, 0), "transpose", 0)
		if err != nil {
			return nil, err
		}
		var perm []int
		if p := arg(a, 1); p != nil {
			if perm, err = ints(p, "tf.transpose: perm"); err != nil {
				return nil, err
			}
		} else { // tfjs default: reverse the axes
			perm = make([]int, len(x.Shape))
			for i := range perm {
				perm[i] = len(perm) - 1 - i
			}
		}
		return ns.result(ns.K.Transpose(x, perm))
	})
	tf.Method("slice", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		x, err := ns.tensor(arg(a, 0), "slice", 0)
		if err != nil {
			return nil, err
		}
		begin, err := ints(arg(a, 1), "tf.slice: begin")
		if err != nil {
			return nil, err
		}
		size, err := ints(arg(a, 2), "tf.slice: size")
		if err != nil {
			return nil, err
		}
		return ns.result(ns.K.Slice(x, begin, size))
	})
	tf.Method("depthwiseConv2d", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		x, y, err := ns.two(a, "depthwiseConv2d")
		if err != nil {
			return nil, err
		}
		// Only what the op list uses: stride 1, 'valid', default NHWC and
		// dilations; anything else would silently compute something else.
		if s, ok := arg(a, 2).(float64); !ok || s != 1 {
			return nil, typeError("tf.depthwiseConv2d: only strides 1 is supported by this host")
		}
		if p, ok := arg(a, 3).(string); !ok || p != "valid" {
			return nil, typeError("tf.depthwiseConv2d: only pad 'valid' is supported by this host")
		}
		if len(a) > 4 {
			return nil, typeError("tf.depthwiseConv2d: dataFormat, dilations and rounding are not supported by this host")
		}
		return ns.result(ns.K.DepthwiseConv2d(x, y))
	})
	tf.Method("dispose", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		for _, v := range a {
			ns.dispose(v)
		}
		return nil, nil
	})
	tf.Method("memory", func(gojs.Value, []gojs.Value) (gojs.Value, error) {
		m := ns.K.Memory()
		return gojs.NewObject(map[string]gojs.Value{
			"numTensors": m.NumTensors, "numBytes": float64(m.NumBytes),
			"numDataBuffers": m.NumTensors, "unreliable": false,
		}), nil
	})
	tf.Method("getBackend", func(gojs.Value, []gojs.Value) (gojs.Value, error) { return "wasm", nil })
	tf.Set("imgembed", ns.fusedObject())
	tf.Freeze()
	ns.Object = tf
	return ns
}

// dispose handles tf.dispose's argument forms: a tensor, an array of
// tensors (nested), or an object whose values are tensors; anything else is
// ignored, as tfjs does.
func (ns *Namespace) dispose(v gojs.Value) {
	switch x := v.(type) {
	case *gojs.Array:
		for _, e := range x.Elems {
			ns.dispose(e)
		}
	case *gojs.Object:
		ns.mu.Lock()
		t, ok := ns.handles[x]
		if ok {
			delete(ns.handles, x)
		}
		ns.mu.Unlock()
		if ok {
			ns.K.Dispose(t)
			x.Set("isDisposedInternal", true)
			return
		}
		if x.Class() == nil {
			for _, k := range x.Keys() {
				if o, ok := x.Get(k).(*gojs.Object); ok && o.Class() == ns.tensorClass {
					ns.dispose(o)
				}
			}
		}
	}
}

func arg(a []gojs.Value, i int) gojs.Value {
	if i < len(a) {
		return a[i]
	}
	return nil
}

func typeError(msg string) error { return &gojs.Exception{Value: gojs.NewTypeError(msg)} }

// throw turns a kernel error into the Error tfjs would throw.
func throw(err error) error { return &gojs.Exception{Value: gojs.NewError(err.Error())} }

// tensor resolves a tensor argument.
func (ns *Namespace) tensor(v gojs.Value, op string, i int) (*native.Tensor, error) {
	o, ok := v.(*gojs.Object)
	if ok {
		ns.mu.Lock()
		t, live := ns.handles[o]
		ns.mu.Unlock()
		if live {
			return t, nil
		}
		if o.Class() == ns.tensorClass {
			return nil, throw(fmt.Errorf("%w.%s: argument %d: Tensor is disposed", ErrOp, op, i))
		}
	}
	return nil, typeError(fmt.Sprintf("tf.%s: argument %d must be a Tensor but got %s", op, i, gojs.TypeOf(v)))
}

func (ns *Namespace) two(a []gojs.Value, op string) (*native.Tensor, *native.Tensor, error) {
	x, err := ns.tensor(arg(a, 0), op, 0)
	if err != nil {
		return nil, nil, err
	}
	y, err := ns.tensor(arg(a, 1), op, 1)
	if err != nil {
		return nil, nil, err
	}
	return x, y, nil
}

// result wraps a kernel's output as a Tensor object (or throws its error).
func (ns *Namespace) result(t *native.Tensor, err error) (gojs.Value, error) {
	if err != nil {
		return nil, throw(err)
	}
	return ns.wrap(t), nil
}

func (ns *Namespace) wrap(t *native.Tensor) *gojs.Object {
	shape := make([]gojs.Value, len(t.Shape))
	for i, d := range t.Shape {
		shape[i] = float64(d)
	}
	ns.mu.Lock()
	ns.nextID++
	id := ns.nextID
	ns.mu.Unlock()
	o := gojs.NewObject(map[string]gojs.Value{
		"shape": gojs.NewArray(shape...),
		"dtype": "float32",
		"size":  float64(len(t.Data)),
		"rank":  float64(len(t.Shape)),
		"id":    float64(id),
	})
	o.SetClass(ns.tensorClass)
	ns.mu.Lock()
	ns.handles[o] = t
	ns.mu.Unlock()
	return o
}

// unalias runs when an ArrayBuffer that tf.tensor kept is detached, with
// the memory the buffer held. When live tensors still view a small part of
// it (less than half: biases that a load kept while it transformed the rest
// of a weights file), those values are copied so that the rest can be
// freed; tensors that shared memory (a reshape) share the copy. When they
// view most of it (a converted tensor's own array) they keep it: copying
// would only add to the peak.
func (ns *Namespace) unalias(old []byte) {
	if len(old) == 0 {
		return
	}
	lo := uintptr(unsafe.Pointer(&old[0]))
	hi := lo + uintptr(len(old))
	type span struct {
		p *float32
		n int
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	var in []*native.Tensor
	used := map[span][]float32{}
	bytes := 0
	for _, t := range ns.handles {
		if len(t.Data) == 0 {
			continue
		}
		if p := uintptr(unsafe.Pointer(&t.Data[0])); p < lo || p >= hi {
			continue
		}
		in = append(in, t)
		if k := (span{&t.Data[0], len(t.Data)}); used[k] == nil {
			used[k] = t.Data
			bytes += 4 * len(t.Data)
		}
	}
	if 2*bytes >= len(old) {
		return
	}
	for k, d := range used {
		used[k] = append([]float32(nil), d...)
	}
	for _, t := range in {
		t.Data = used[span{&t.Data[0], len(t.Data)}]
	}
}

// ints reads a JS array of integers (a shape, a permutation, ...).
func ints(v gojs.Value, what string) ([]int, error) {
	switch x := v.(type) {
	case *gojs.Array:
		out := make([]int, len(x.Elems))
		for i, e := range x.Elems {
			f, ok := e.(float64)
			if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<40 {
				return nil, typeError(fmt.Sprintf("%s[%d] is %s, not an integer", what, i, gojs.ToString(e)))
			}
			out[i] = int(f)
		}
		return out, nil
	case *gojs.TypedArray:
		out := make([]int, x.Len())
		for i := range out {
			out[i] = int(x.At(i))
		}
		return out, nil
	}
	return nil, typeError(what + " must be an array of integers")
}

// jsTensor is tf.tensor(values, shape, dtype). Like tfjs's cpu backend it
// keeps an aligned Float32Array's memory instead of copying it (tfjs-wasm
// copies; both are tfjs): copying every weight at load would add a copy of
// each to the peak. The module never writes to an array it gave to
// tf.tensor (wasm/API.md, "Memory ownership"), and when it detaches the
// array's buffer (load's `detach` option) unalias copies what live tensors
// still view of it, so to the module tf.tensor behaves as if it had copied.
// Misaligned views and plain arrays are copied.
func (ns *Namespace) jsTensor(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
	if d := arg(a, 2); d != nil && d != "float32" {
		return nil, typeError(fmt.Sprintf("tf.tensor: dtype %s is not supported by this host (float32 only)", gojs.ToString(d)))
	}
	var vals []float32
	switch x := arg(a, 0).(type) {
	case *gojs.TypedArray:
		if x.Kind() != gojs.Float32 {
			return nil, typeError("tf.tensor: values must be a Float32Array on this host, got " + x.Kind().String())
		}
		b := x.Bytes()
		if len(b) > 0 && uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
			vals = x.Float32s()
			x.Buffer().OnDetach(ns.unalias)
		} else {
			vals = make([]float32, x.Len())
			for i := range vals {
				vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		}
	case *gojs.Array:
		vals = make([]float32, len(x.Elems))
		for i, e := range x.Elems {
			vals[i] = float32(gojs.ToNumber(e))
		}
	case float64:
		vals = []float32{float32(x)}
	default:
		return nil, typeError("tf.tensor: values must be a Float32Array, an array or a number")
	}
	var shape []int
	if s := arg(a, 1); s != nil {
		var err error
		if shape, err = ints(s, "tf.tensor: shape"); err != nil {
			return nil, err
		}
	} else if _, scalar := arg(a, 0).(float64); !scalar {
		shape = []int{len(vals)}
	}
	return ns.result(ns.K.Tensor(vals, shape))
}
