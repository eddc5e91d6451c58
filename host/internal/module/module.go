// Package module holds imgembed's browser WebAssembly module (the Go program
// in wasm/, built GOOS=js GOARCH=wasm -trimpath -ldflags='-s -w'), embedded
// so that the wazero host and `go install .../host/cmd/imgembed@version`
// need no build step and no files next to the binary.
//
// imgembed.wasm is a committed build artefact. `make build` refreshes it
// (it copies js/dist/imgembed.wasm here when they differ); TestEmbeddedIsFresh rebuilds the
// module with the same flags and fails when the committed copy differs from
// the sources, so it cannot go stale silently. To refresh it by hand:
//
//	GOOS=js GOARCH=wasm go build -trimpath -buildvcs=false -ldflags='-s -w' -o host/internal/module/imgembed.wasm ./wasm
//
// (-buildvcs=false keeps the commit hash out of the binary: otherwise the
// committed copy could never equal a build of the commit that holds it.)
package module

import (
	_ "embed"
)

// Wasm is the module's bytes. Do not modify.
//
//go:embed imgembed.wasm
var Wasm []byte

// BuildFlags are the go build flags the embedded module is built with
// (besides GOOS=js GOARCH=wasm), the same as `make build` uses for
// js/dist/imgembed.wasm, so both files are byte-identical.
var BuildFlags = []string{"-trimpath", "-buildvcs=false", "-ldflags=-s -w"}
