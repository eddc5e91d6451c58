package main

import (
	"os"
	"runtime/debug"
	"runtime/metrics"

	"github.com/imgembed/imgembed/host"
)

// heapHeadroom is how much more than it holds once the model is loaded the
// Go runtime may map (a soft limit, debug.SetMemoryLimit): enough for a
// batch of 8 ViT-B/32 activations (~35 MB), the rows waiting for it and an
// image being decoded. See RATIONALE.md, "The command's memory limit".
const heapHeadroom = 48 << 20

// minHeapLimit floors the limit: loaded from compiled weights (mapped, not
// the runtime's), the runtime holds only a few MB after the load, and a
// limit of that plus heapHeadroom sat at the working set itself (a 12 MP
// photo decoded beside a batch's activations): 55-80 collections over 18
// photos instead of 13, 3-5 % more CPU.
const minHeapLimit = 64 << 20

// boundAfterLoad is set by main: tests that call run in-process (with
// several models loaded at once) keep the runtime's default pacing.
var boundAfterLoad bool

// boundHeap sets the runtime's soft memory limit to what it holds now plus
// heapHeadroom, unless the user chose one (GOMEMLIMIT). Called once the
// model is loaded: the native engine's weights live outside the Go heap,
// so what the collector then paces is the working memory, which by default
// it lets grow to twice its live size. Not for the wasm engine, whose
// guest memory and tensors are on the heap and keep growing: bounded, the
// collector ran back to back (CPU +20-80 % over 18 photos).
func boundHeap(engine host.Engine) {
	if !boundAfterLoad || os.Getenv("GOMEMLIMIT") != "" || (engine != "" && engine != host.EngineNative) {
		return
	}
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	held := s[0].Value.Uint64() - s[1].Value.Uint64()
	debug.SetMemoryLimit(max(int64(held)+heapHeadroom, minHeapLimit))
}
