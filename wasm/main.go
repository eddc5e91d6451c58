//go:build js && wasm

// Command imgembed is the WebAssembly module: it exposes the API described in
// wasm/API.md on globalThis.__imgembed and then waits for calls. The work is
// done by plain-Go packages (loader, imagefile, preprocess, vit) and the
// TensorFlow.js-backed ops (jsops); this package only adapts them to JS.
package main

import (
	"syscall/js"

	"github.com/imgembed/imgembed/wasm/api"
)

// protocolVersion is __imgembed.version (wasm/API.md).
const protocolVersion = api.ProtocolVersion

func main() {
	api := jsObject.New()
	api.Set("version", protocolVersion)
	api.Set("load", js.FuncOf(func(_ js.Value, args []js.Value) any {
		opts := arg(args, 0)
		return promise(codeInvalidModel, func() (any, error) { return loadModel(opts) })
	}))
	api.Set("preprocess", js.FuncOf(func(_ js.Value, args []js.Value) any {
		input, opts := arg(args, 0), arg(args, 1)
		return promise(codeInvalidInput, func() (any, error) { return preprocessAPI(input, opts) })
	}))
	js.Global().Set("__imgembed", api)
	select {} // keep the callbacks alive
}

func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}
