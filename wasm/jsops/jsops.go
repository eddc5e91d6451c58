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
	"slices"
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
	mean, reshape, transpose, slice, depthwiseConv2d, dispose js.Value

	float32Array, uint8Array js.Value

	// fusedArg is the one config object every fused.matMul call gets, its
	// a, b and bias replaced each time (tf reads it during the call): a
	// fresh object per call cost a JS object, its syscall/js finalizer and
	// a map walk, ~70 times a forward.
	fusedArg js.Value

	// shapes caches the JS arrays made for shapes, permutations and slice
	// bounds (tf copies what it keeps of them): the same few recur in
	// every layer, and each made afresh costs len+1 calls into JS.
	shapes map[intsKey]js.Value

	// fused holds tf.imgembed's functions when tf serves them (see
	// WithFused); nil on TensorFlow.js.
	fused *fusedFns

	// Set by UseBackend (see there).
	asyncRead, weightsLeft bool
	upload, activate       js.Value
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
	// WeightsLeft: the backend's matMul keeps a packed copy of its right
	// operand while that tensor lives (tfjs-wasm's XNNPACK operator
	// cache), so the graphs put weights on the left (ops.LeftWeights).
	WeightsLeft bool
}

// UseBackend configures o for b.
func (o *Ops) UseBackend(b Backend) {
	o.asyncRead, o.weightsLeft = b.AsyncRead, b.WeightsLeft
	o.upload, o.activate = b.Upload, b.Activate
}

// WeightsLeft implements ops.LeftWeights (Backend.WeightsLeft).
func (o *Ops) WeightsLeft() bool { return o.weightsLeft }

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
	var err error
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
		{&o.depthwiseConv2d, tf, "tf", "depthwiseConv2d"},
		{&o.dispose, tf, "tf", "dispose"},
	} {
		v := get(f.holder, f.name)
		if v.Type() != js.TypeFunction {
			return nil, fmt.Errorf("jsops: %s.%s is not a function", f.path, f.name)
		}
		*f.dst = v
	}
	if o.fused, err = fusedOf(tf); err != nil {
		return nil, err
	}
	o.float32Array = js.Global().Get("Float32Array")
	o.uint8Array = js.Global().Get("Uint8Array")
	o.fusedArg = js.ValueOf(map[string]any{})
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

// checkShapes makes every shape jsops infers in Go be compared with the
// one tf reports (tests set it).
var checkShapes = false

// result wraps an op's output with the shape inferred in Go (ok) rather
// than reading .shape back (2 + rank calls into JS, which cost more than
// the op's bookkeeping on a small model). The op itself has already checked
// its arguments, so inference only restates tf's rules for valid input;
// when it cannot (!ok), the shape is read from JS.
func (o *Ops) result(v js.Value, shape []int, ok bool) *Tensor {
	if !ok {
		return o.wrap(v)
	}
	if checkShapes {
		if got := o.wrap(v).shape; !slices.Equal(got, shape) {
			panic(fmt.Sprintf("jsops: inferred shape %v, tf says %v", shape, got))
		}
	}
	return &Tensor{v: v, shape: shape}
}

// broadcast is tf's (numpy's) broadcast of two shapes.
func broadcast(a, b []int) ([]int, bool) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 1; i <= n; i++ {
		da, db := 1, 1
		if i <= len(a) {
			da = a[len(a)-i]
		}
		if i <= len(b) {
			db = b[len(b)-i]
		}
		switch {
		case da == db, db == 1:
			out[n-i] = da
		case da == 1:
			out[n-i] = db
		default:
			return nil, false
		}
	}
	return out, true
}

// matMulShape is tf.matMul's output shape: broadcast batch dimensions, then
// [m, n].
func matMulShape(a, b []int, ta, tb bool) ([]int, bool) {
	ra, rb := len(a), len(b)
	if ra < 2 || rb < 2 {
		return nil, false
	}
	m, n := a[ra-2], b[rb-1]
	if ta {
		m = a[ra-1]
	}
	if tb {
		n = b[rb-2]
	}
	batch, ok := broadcast(a[:ra-2], b[:rb-2])
	if !ok {
		return nil, false
	}
	return append(batch, m, n), true
}

func normAxis(axis, rank int) (int, bool) {
	if axis < 0 {
		axis += rank
	}
	return axis, axis >= 0 && axis < rank
}

// intsKey identifies a short list of ints (shapes are rank <= 4 here).
type intsKey struct {
	n int
	v [6]int
}

// ints returns xs as a JS array, cached for short lists.
func (o *Ops) ints(xs []int) js.Value {
	if len(xs) > len(intsKey{}.v) {
		return intsJS(xs)
	}
	k := intsKey{n: len(xs)}
	copy(k.v[:], xs)
	if v, ok := o.shapes[k]; ok {
		return v
	}
	v := intsJS(xs)
	if o.shapes == nil {
		o.shapes = map[intsKey]js.Value{}
	}
	if len(o.shapes) < 1024 { // bounded: slice offsets grow with the batch
		o.shapes[k] = v
	}
	return v
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
	return o.wrapShape(o.uploaded(o.tensor.Invoke(o.Float32Array(values), o.ints(sh), "float32")), sh)
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
	return o.wrapShape(o.uploaded(o.tensor.Invoke(arr, o.ints(sh), "float32")), sh)
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

// Dispose is tf.dispose(t) for each tensor: one call each costs less than
// building a JS array of them (an object with its finalizer, a call per
// element) when, as in the graphs, they are few.
func (o *Ops) Dispose(ts ...ops.Tensor) {
	for _, x := range ts {
		if tt, ok := x.(*Tensor); ok && tt != nil {
			o.dispose.Invoke(tt.v)
		}
	}
}

// MatMul is tf.matMul(a, b, transposeA, transposeB).
func (o *Ops) MatMul(a, b ops.Tensor, transposeA, transposeB bool) ops.Tensor {
	x, y := t(a), t(b)
	v := o.matMul.Invoke(x.v, y.v, transposeA, transposeB)
	sh, ok := matMulShape(x.shape, y.shape, transposeA, transposeB)
	return o.result(v, sh, ok)
}

// FusedMatMul is tf.fused.matMul({a, b, bias}).
func (o *Ops) FusedMatMul(a, b, bias ops.Tensor) ops.Tensor {
	x, y := t(a), t(b)
	arg := o.fusedArg
	arg.Set("a", x.v)
	arg.Set("b", y.v)
	arg.Set("bias", t(bias).v)
	v := o.fusedMatMul.Invoke(arg)
	sh, ok := matMulShape(x.shape, y.shape, false, false)
	return o.result(v, sh, ok)
}

// Add is tf.add(a, b).
func (o *Ops) Add(a, b ops.Tensor) ops.Tensor { return o.binary(o.add, a, b) }

// Sub is tf.sub(a, b).
func (o *Ops) Sub(a, b ops.Tensor) ops.Tensor { return o.binary(o.sub, a, b) }

// Mul is tf.mul(a, b).
func (o *Ops) Mul(a, b ops.Tensor) ops.Tensor { return o.binary(o.mul, a, b) }

func (o *Ops) binary(f js.Value, a, b ops.Tensor) ops.Tensor {
	x, y := t(a), t(b)
	v := f.Invoke(x.v, y.v)
	sh, ok := broadcast(x.shape, y.shape)
	return o.result(v, sh, ok)
}

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
	xx := t(x)
	v := o.mean.Invoke(xx.v, axis, keepDims)
	ax, ok := normAxis(axis, len(xx.shape))
	if !ok {
		return o.wrap(v)
	}
	sh := append([]int(nil), xx.shape...)
	if keepDims {
		sh[ax] = 1
	} else {
		sh = slices.Delete(sh, ax, ax+1)
	}
	return o.result(v, sh, true)
}

// Reshape is tf.reshape(x, shape).
func (o *Ops) Reshape(x ops.Tensor, shape ...int) ops.Tensor {
	xx := t(x)
	v := o.reshape.Invoke(xx.v, o.ints(shape))
	sh := append([]int(nil), shape...)
	if i := slices.Index(sh, -1); i >= 0 {
		if rest := -size(sh); rest > 0 {
			sh[i] = size(xx.shape) / rest
		}
	}
	return o.result(v, sh, size(sh) == size(xx.shape))
}

// Transpose is tf.transpose(x, perm).
func (o *Ops) Transpose(x ops.Tensor, perm ...int) ops.Tensor {
	xx := t(x)
	v := o.transpose.Invoke(xx.v, o.ints(perm))
	if len(perm) != len(xx.shape) {
		return o.wrap(v)
	}
	sh := make([]int, len(perm))
	for i, p := range perm {
		if p < 0 || p >= len(xx.shape) {
			return o.wrap(v)
		}
		sh[i] = xx.shape[p]
	}
	return o.result(v, sh, true)
}

// Slice is tf.slice(x, begin, size).
func (o *Ops) Slice(x ops.Tensor, begin, size []int) ops.Tensor {
	xx := t(x)
	v := o.slice.Invoke(xx.v, o.ints(begin), o.ints(size))
	// tf fills a short begin with 0 and a short size (or a -1) with the
	// rest of the dimension.
	sh := make([]int, len(xx.shape))
	for i, d := range xx.shape {
		b, s := 0, -1
		if i < len(begin) {
			b = begin[i]
		}
		if i < len(size) {
			s = size[i]
		}
		if s == -1 {
			s = d - b
		}
		sh[i] = s
	}
	return o.result(v, sh, len(begin) <= len(sh) && len(size) <= len(sh))
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
