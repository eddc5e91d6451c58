//go:build js && wasm

// Package jsops implements ops.Ops by calling TensorFlow.js through
// syscall/js. Only functions of the tf namespace are called (never chained
// tensor methods), because the JS package imports @tensorflow/tfjs-core
// alone, which leaves the chained-op prototype methods out. The calls are
// exactly those listed in wasm/ops/ops.go, so that the wazero host can serve
// the same list.
package jsops

import (
	"fmt"
	"sync"
	"syscall/js"
	"unsafe"

	"github.com/imgembed/imgembed/wasm/ops"
)

// Tensor is the handle jsops returns: the tf.Tensor object and its shape
// (cached, since tensors are immutable and reading .shape costs a JS call
// per dimension).
type Tensor struct {
	v     js.Value
	shape []int
}

// Ops calls the functions of one tf namespace.
type Ops struct {
	tensor, matMul, fusedMatMul, add, sub, mul, sigmoid, rsqrt, softmax,
	mean, reshape, transpose, slice, concat, depthwiseConv2d, dispose js.Value

	float32Array, uint8Array js.Value

	// Set by UseBackend (see there).
	asyncRead        bool
	upload, activate js.Value
}

// Backend says how the tfjs backend that runs the ops wants to be used.
type Backend struct {
	// AsyncRead: Data awaits t.data() instead of calling t.dataSync(), so
	// that a GPU backend's read-back does not block the JS thread. Data
	// then blocks its goroutine, which must not be the one serving JS
	// callbacks (the module's forward worker is fine).
	AsyncRead bool
	// Upload, if a function, is called with every tensor Tensor and FromJS create,
	// right after creating it: tfjs-webgpu keeps the caller's Float32Array
	// until the tensor's first use, and uploading at once lets the caller
	// free the array (the weights are then held by the GPU alone).
	Upload js.Value
	// Activate, if a function, is called (synchronously) by Begin: it makes
	// this model's backend tf's active one, since a page may hold models
	// on two backends and tf has one active backend for all.
	Activate js.Value
}

// UseBackend configures o for b.
func (o *Ops) UseBackend(b Backend) {
	o.asyncRead = b.AsyncRead
	o.upload, o.activate = b.Upload, b.Activate
}

// engine serializes the models of one module over tf's single engine: a
// model's ops run between Begin and end, on its own backend.
var engine sync.Mutex

// Begin takes the tf engine for a sequence of ops (a load or a forward,
// read-back included) and activates o's backend; call end when done. Ops
// of two models never interleave, even when one awaits a GPU read.
func (o *Ops) Begin() (end func()) {
	engine.Lock()
	if o.activate.Type() == js.TypeFunction {
		func() {
			defer func() {
				if r := recover(); r != nil {
					engine.Unlock()
					panic(r)
				}
			}()
			o.activate.Invoke()
		}()
	}
	return engine.Unlock
}

var _ ops.Ops = (*Ops)(nil)

// New returns Ops over tf (the TensorFlow.js namespace object). It returns an
// error naming the first missing function, so a wrongly set-up host fails at
// load time rather than in the middle of a forward pass.
func New(tf js.Value) (*Ops, error) {
	if tf.Type() != js.TypeObject && tf.Type() != js.TypeFunction {
		return nil, fmt.Errorf("jsops: tf is %s, not an object", tf.Type())
	}
	o := &Ops{}
	get := func(holder js.Value, name string) js.Value {
		if holder.Type() != js.TypeObject && holder.Type() != js.TypeFunction {
			return js.Undefined()
		}
		return holder.Get(name)
	}
	fused := tf.Get("fused")
	for _, f := range []struct {
		dst    *js.Value
		holder js.Value
		path   string
		name   string
	}{
		{&o.tensor, tf, "tf", "tensor"},
		{&o.matMul, tf, "tf", "matMul"},
		{&o.fusedMatMul, fused, "tf.fused", "matMul"},
		{&o.add, tf, "tf", "add"},
		{&o.sub, tf, "tf", "sub"},
		{&o.mul, tf, "tf", "mul"},
		{&o.sigmoid, tf, "tf", "sigmoid"},
		{&o.rsqrt, tf, "tf", "rsqrt"},
		{&o.softmax, tf, "tf", "softmax"},
		{&o.mean, tf, "tf", "mean"},
		{&o.reshape, tf, "tf", "reshape"},
		{&o.transpose, tf, "tf", "transpose"},
		{&o.slice, tf, "tf", "slice"},
		{&o.concat, tf, "tf", "concat"},
		{&o.depthwiseConv2d, tf, "tf", "depthwiseConv2d"},
		{&o.dispose, tf, "tf", "dispose"},
	} {
		v := get(f.holder, f.name)
		if v.Type() != js.TypeFunction {
			return nil, fmt.Errorf("jsops: %s.%s is not a function", f.path, f.name)
		}
		*f.dst = v
	}
	o.float32Array = js.Global().Get("Float32Array")
	o.uint8Array = js.Global().Get("Uint8Array")
	return o, nil
}

func (o *Ops) wrap(v js.Value) *Tensor {
	sh := v.Get("shape")
	n := sh.Length()
	shape := make([]int, n)
	for i := range shape {
		shape[i] = sh.Index(i).Int()
	}
	return &Tensor{v: v, shape: shape}
}

func (o *Ops) wrapShape(v js.Value, shape []int) *Tensor {
	return &Tensor{v: v, shape: shape}
}

func t(x ops.Tensor) *Tensor {
	tt, ok := x.(*Tensor)
	if !ok || tt == nil {
		panic(fmt.Sprintf("jsops: not a jsops tensor: %T", x))
	}
	return tt
}

func intsJS(xs []int) js.Value {
	a := make([]any, len(xs))
	for i, x := range xs {
		a[i] = x
	}
	return js.ValueOf(a)
}

func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Float32Array copies values into a new JS Float32Array with one
// js.CopyBytesToJS (through a Uint8Array over the same, freshly allocated and
// so 4-aligned, buffer).
func (o *Ops) Float32Array(values []float32) js.Value {
	f := o.float32Array.New(len(values))
	if len(values) > 0 {
		u8 := o.uint8Array.New(f.Get("buffer"))
		js.CopyBytesToJS(u8, unsafe.Slice((*byte)(unsafe.Pointer(&values[0])), 4*len(values)))
	}
	return f
}

// Tensor is tf.tensor(Float32Array, shape, 'float32').
func (o *Ops) Tensor(values []float32, shape ...int) ops.Tensor {
	if len(values) != size(shape) {
		panic(fmt.Sprintf("jsops: Tensor: %d values for shape %v", len(values), shape))
	}
	sh := append([]int(nil), shape...)
	return o.wrapShape(o.uploaded(o.tensor.Invoke(o.Float32Array(values), intsJS(sh), "float32")), sh)
}

// uploaded passes v to the backend's upload hook, if any (see Backend).
func (o *Ops) uploaded(v js.Value) js.Value {
	if o.upload.Type() == js.TypeFunction {
		o.upload.Invoke(v)
	}
	return v
}

// FromJS is tf.tensor(arr, shape, 'float32') for a Float32Array that already
// lives in JS (a view of downloaded weights): no copy passes through Go.
func (o *Ops) FromJS(arr js.Value, shape ...int) ops.Tensor {
	if n := arr.Length(); n != size(shape) {
		panic(fmt.Sprintf("jsops: FromJS: %d values for shape %v", n, shape))
	}
	sh := append([]int(nil), shape...)
	return o.wrapShape(o.uploaded(o.tensor.Invoke(arr, intsJS(sh), "float32")), sh)
}

// Data is t.dataSync(), or await t.data() when the backend reads
// asynchronously (UseBackend), copied to Go with one js.CopyBytesToGo. A
// failed read (a lost GPU device) panics with the JS error, as a throwing
// dataSync would.
func (o *Ops) Data(x ops.Tensor) []float32 {
	var f js.Value
	if o.asyncRead {
		f = await(t(x).v.Call("data"))
	} else {
		f = t(x).v.Call("dataSync")
	}
	n := f.Length()
	out := make([]float32, n)
	if n == 0 {
		return out
	}
	u8 := o.uint8Array.New(f.Get("buffer"), f.Get("byteOffset"), 4*n)
	js.CopyBytesToGo(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*n), u8)
	return out
}

// Shape returns t.shape (a copy).
func (o *Ops) Shape(x ops.Tensor) []int { return append([]int(nil), t(x).shape...) }

// Dispose is tf.dispose([...]).
func (o *Ops) Dispose(ts ...ops.Tensor) {
	a := make([]any, 0, len(ts))
	for _, x := range ts {
		if x == nil {
			continue
		}
		tt, ok := x.(*Tensor)
		if !ok || tt == nil {
			continue
		}
		a = append(a, tt.v)
	}
	if len(a) > 0 {
		o.dispose.Invoke(a)
	}
}

// MatMul is tf.matMul(a, b, transposeA, transposeB).
func (o *Ops) MatMul(a, b ops.Tensor, transposeA, transposeB bool) ops.Tensor {
	return o.wrap(o.matMul.Invoke(t(a).v, t(b).v, transposeA, transposeB))
}

// FusedMatMul is tf.fused.matMul({a, b, bias}).
func (o *Ops) FusedMatMul(a, b, bias ops.Tensor) ops.Tensor {
	arg := map[string]any{"a": t(a).v, "b": t(b).v, "bias": t(bias).v}
	return o.wrap(o.fusedMatMul.Invoke(arg))
}

// Add is tf.add(a, b).
func (o *Ops) Add(a, b ops.Tensor) ops.Tensor { return o.wrap(o.add.Invoke(t(a).v, t(b).v)) }

// Sub is tf.sub(a, b).
func (o *Ops) Sub(a, b ops.Tensor) ops.Tensor { return o.wrap(o.sub.Invoke(t(a).v, t(b).v)) }

// Mul is tf.mul(a, b).
func (o *Ops) Mul(a, b ops.Tensor) ops.Tensor { return o.wrap(o.mul.Invoke(t(a).v, t(b).v)) }

// Sigmoid is tf.sigmoid(x).
func (o *Ops) Sigmoid(x ops.Tensor) ops.Tensor {
	xx := t(x)
	return o.wrapShape(o.sigmoid.Invoke(xx.v), xx.shape)
}

// Rsqrt is tf.rsqrt(x).
func (o *Ops) Rsqrt(x ops.Tensor) ops.Tensor {
	xx := t(x)
	return o.wrapShape(o.rsqrt.Invoke(xx.v), xx.shape)
}

// Softmax is tf.softmax(x) (last axis).
func (o *Ops) Softmax(x ops.Tensor) ops.Tensor {
	xx := t(x)
	return o.wrapShape(o.softmax.Invoke(xx.v), xx.shape)
}

// Mean is tf.mean(x, axis, keepDims).
func (o *Ops) Mean(x ops.Tensor, axis int, keepDims bool) ops.Tensor {
	return o.wrap(o.mean.Invoke(t(x).v, axis, keepDims))
}

// Reshape is tf.reshape(x, shape).
func (o *Ops) Reshape(x ops.Tensor, shape ...int) ops.Tensor {
	return o.wrap(o.reshape.Invoke(t(x).v, intsJS(shape)))
}

// Transpose is tf.transpose(x, perm).
func (o *Ops) Transpose(x ops.Tensor, perm ...int) ops.Tensor {
	return o.wrap(o.transpose.Invoke(t(x).v, intsJS(perm)))
}

// Slice is tf.slice(x, begin, size).
func (o *Ops) Slice(x ops.Tensor, begin, size []int) ops.Tensor {
	return o.wrap(o.slice.Invoke(t(x).v, intsJS(begin), intsJS(size)))
}

// Concat is tf.concat(xs, axis).
func (o *Ops) Concat(xs []ops.Tensor, axis int) ops.Tensor {
	a := make([]any, len(xs))
	for i, x := range xs {
		a[i] = t(x).v
	}
	return o.wrap(o.concat.Invoke(a, axis))
}

// await blocks the calling goroutine until the promise p settles and
// returns its value; a rejection panics with a js.Error.
func await(p js.Value) js.Value {
	type result struct {
		v  js.Value
		ok bool
	}
	ch := make(chan result, 1)
	arg := func(a []js.Value) js.Value {
		if len(a) == 0 {
			return js.Undefined()
		}
		return a[0]
	}
	ok := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- result{arg(a), true}; return nil })
	bad := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- result{arg(a), false}; return nil })
	p.Call("then", ok, bad)
	r := <-ch
	ok.Release()
	bad.Release()
	if !r.ok {
		if r.v.Type() != js.TypeObject {
			r.v = js.Global().Get("Error").New(fmt.Sprintf("rejected with %s", r.v.String()))
		}
		panic(js.Error{Value: r.v})
	}
	return r.v
}

// DepthwiseConv2d is tf.depthwiseConv2d(x, filter, 1, 'valid').
func (o *Ops) DepthwiseConv2d(x, filter ops.Tensor) ops.Tensor {
	return o.wrap(o.depthwiseConv2d.Invoke(t(x).v, t(filter).v, 1, "valid"))
}
