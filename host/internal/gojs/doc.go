// Package gojs runs a GOOS=js GOARCH=wasm module in wazero: it implements
// the `gojs` import module (the sp-based ABI of Go 1.26's
// $(go env GOROOT)/lib/wasm/wasm_exec.js) and a small JavaScript realm in Go,
// so the very .wasm that ships to browsers runs server-side with host values
// written in Go.
//
// # JS values in Go
//
// A Value is a Go value of one of a few types (see Value): nil is undefined,
// Null is null, bool, float64, string, and pointers for objects: *Object,
// *Function, *Array, *TypedArray, *ArrayBuffer, *Promise. Host functions are
// *Function made with NewFunc (a returned error is thrown into JS) and
// classes with NewClass (for `new X(...)` and instanceof). Typed arrays wrap
// Go memory without copying (NewUint8Array, NewFloat32Array, Float32s).
// Unknown properties read as undefined.
//
// ArrayBuffers can be detached as in JS, with ArrayBuffer.prototype.transfer
// or structuredClone's transfer list: the buffer drops its Go slice (its
// views read as empty), so the memory is freed even while guest refs keep
// the buffer itself alive. Go code that aliased the memory registers
// ArrayBuffer.OnDetach to copy what it still needs.
//
// The guest refers to JS values by ids in a reference-counted table that
// follows wasm_exec.js exactly: the same value always gets the same id,
// ids 0-6 are predefined and never freed, finalizeRef (run by the guest's
// garbage collector) releases them.
//
// # Running
//
//	rt, err := gojs.NewRuntime(ctx, wasm, gojs.Config{Stdout: os.Stdout, Stderr: os.Stderr,
//		Globals: map[string]gojs.Value{"tf": tfObject}})
//	err = rt.Start(ctx)                             // main runs until it first waits
//	api := rt.Global().Get("myAPI").(*gojs.Object)  // registered by the guest
//	p, err := rt.Call(ctx, api.Get("load"), api, opts)
//	v, err := rt.Await(ctx, p)                      // event loop until p settles
//	code, err := rt.Wait(ctx)                       // or: event loop until exit
//
// The event loop runs microtasks (promise reactions), host callbacks posted
// from other goroutines (Post, Async, Go) and timers (the guest's
// scheduleTimeoutEvent, JS setTimeout) on a real clock or, with
// Config.VirtualClock, a clock that jumps to the next timer when idle. It
// tells "waiting" (a timer or host work is pending) from "finished" (the
// guest called wasmExit: the exit code) from "deadlock" (nothing pending
// could ever make progress: ErrDeadlock; Wait lets the guest print its
// goroutine dump first, as Node does).
//
// A guest panic ends the guest with code 2 and returns a *PanicError with
// the guest's stderr. Cancelling the context of a loop method while the loop
// only waits returns ctx.Err() and leaves the guest usable; cancelling it
// while guest code runs aborts the module (errors match ErrClosed and
// ctx.Err()).
//
// # Concurrency
//
// A Runtime is single-threaded like a JS realm. Guest code, host Funcs,
// promise reactions and posted callbacks all run on the goroutine that is
// inside one of the loop methods (Start, Wait, Run, Call, Await, Poll); those
// methods are serialised by a mutex, so concurrent callers take turns. A host
// Func must not call those methods (it would deadlock): it uses Invoke,
// Construct, NewPromise and returns a *Promise instead. Other goroutines may
// only use Post, Async, Go's work function, and Close.
package gojs
