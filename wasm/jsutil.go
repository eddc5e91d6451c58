//go:build js && wasm

package main

import (
	"context"
	"fmt"
	"syscall/js"

	"github.com/imgembed/imgembed/wasm/api"
)

var (
	jsObject            = js.Global().Get("Object")
	jsArray             = js.Global().Get("Array")
	jsPromise           = js.Global().Get("Promise")
	jsError             = js.Global().Get("Error")
	jsUint8Array        = js.Global().Get("Uint8Array")
	jsUint8ClampedArray = js.Global().Get("Uint8ClampedArray")
	jsFloat32Array      = js.Global().Get("Float32Array")
	jsArrayBuffer       = js.Global().Get("ArrayBuffer")

	// noop swallows the rejection of promises whose outcome does not
	// matter (reader.cancel()), so Node reports no unhandled rejection.
	noop = js.FuncOf(func(js.Value, []js.Value) any { return nil })
)

// coded makes an *api.Error (the message, then the cause's text).
func coded(code api.Code, err error, format string, args ...any) *api.Error {
	return api.New(code, err, format, args...)
}

// jsThrown is a JS exception or promise rejection reason.
type jsThrown struct {
	v    js.Value
	name string
	msg  string
}

func (e *jsThrown) Error() string {
	if e.name != "" {
		return e.name + ": " + e.msg
	}
	return e.msg
}

func thrown(v js.Value) *jsThrown {
	e := &jsThrown{v: v}
	switch v.Type() {
	case js.TypeObject, js.TypeFunction:
		if n := v.Get("name"); n.Type() == js.TypeString {
			e.name = n.String()
		}
		if m := v.Get("message"); m.Type() == js.TypeString {
			e.msg = m.String()
		} else {
			e.msg = js.Global().Get("String").Invoke(v).String()
		}
	case js.TypeString:
		e.msg = v.String()
	default:
		e.msg = js.Global().Get("String").Invoke(v).String()
	}
	return e
}

// catch runs f, turning a JS exception (syscall/js panics with js.Error)
// into an error.
func catch(f func() js.Value) (v js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(js.Error); ok {
				err = thrown(e.Value)
				return
			}
			if e, ok := r.(error); ok {
				err = e
				return
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	return f(), nil
}

func isThenable(v js.Value) bool {
	return v.Type() == js.TypeObject && v.Get("then").Type() == js.TypeFunction
}

// await blocks the calling goroutine until p settles. It must not run on
// the goroutine that serves JS callbacks, only on goroutines of the module's
// own (promise()'s, the forward worker and its prefetches). A non-thenable
// is returned as is.
func await(p js.Value) (js.Value, error) {
	return awaitCtx(context.Background(), p)
}

// awaitCtx is await that gives up when ctx ends (a fetch timeout), returning
// ctx's cause. The callbacks handed to then() stay registered until p
// settles (a released js.Func called from JS kills the Go program), so a
// goroutine releases them then.
func awaitCtx(ctx context.Context, p js.Value) (js.Value, error) {
	if !isThenable(p) {
		return p, nil
	}
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	arg := func(a []js.Value) js.Value {
		if len(a) == 0 {
			return js.Undefined()
		}
		return a[0]
	}
	ok := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- result{v: arg(a)}; return nil })
	bad := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- result{err: thrown(arg(a))}; return nil })
	release := func() {
		ok.Release()
		bad.Release()
	}
	if _, err := catch(func() js.Value { return p.Call("then", ok, bad) }); err != nil {
		release()
		return js.Undefined(), err
	}
	select {
	case r := <-ch:
		release()
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			<-ch
			release()
		}()
		return js.Undefined(), context.Cause(ctx)
	}
}

// promise returns a JS Promise settled by f, which runs in a new goroutine
// (so it may await). An error becomes a rejection with an Error whose code
// is the error's code, or fallback.
func promise(fallback api.Code, f func() (any, error)) js.Value {
	exec := js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			v, err := run(f)
			if err != nil {
				reject.Invoke(errorValue(err, fallback))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	defer exec.Release() // the executor runs synchronously inside new Promise
	return jsPromise.New(exec)
}

// run calls f, converting a panic into an error.
func run(f func() (any, error)) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			if je, ok := r.(js.Error); ok {
				err = fmt.Errorf("internal error: %w", thrown(je.Value))
			} else {
				err = fmt.Errorf("internal error: %v", r)
			}
		}
	}()
	return f()
}

// codeOf returns the API code of err, or fallback.
func codeOf(err error, fallback api.Code) api.Code {
	if c := api.CodeOf(err); c != "" {
		return c
	}
	return fallback
}

// errorValue makes a JS Error with .code; its message does not repeat the
// code.
func errorValue(err error, fallback api.Code) js.Value {
	e := jsError.New(api.MessageOf(err))
	e.Set("code", string(codeOf(err, fallback)))
	return e
}

// errorObject is the per-input failure {code, message}.
func errorObject(err error, fallback api.Code) js.Value {
	o := jsObject.New()
	o.Set("code", string(codeOf(err, fallback)))
	o.Set("message", api.MessageOf(err))
	return o
}

func isInstance(v, ctor js.Value) bool {
	return v.Type() == js.TypeObject && ctor.Type() == js.TypeFunction && v.InstanceOf(ctor)
}

// u8Of returns v as a Uint8Array when it is one (or a Uint8ClampedArray or
// an ArrayBuffer: a view over it).
func u8Of(v js.Value) (js.Value, bool) {
	switch {
	case isInstance(v, jsUint8Array):
		return v, true
	case isInstance(v, jsUint8ClampedArray):
		return jsUint8Array.New(v.Get("buffer"), v.Get("byteOffset"), v.Get("byteLength")), true
	case isInstance(v, jsArrayBuffer):
		return jsUint8Array.New(v), true
	}
	return js.Undefined(), false
}

// goBytes copies a Uint8Array into the Go heap.
func goBytes(u8 js.Value) []byte {
	b := make([]byte, u8.Get("length").Int())
	js.CopyBytesToGo(b, u8)
	return b
}
