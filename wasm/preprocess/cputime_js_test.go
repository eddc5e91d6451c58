//go:build js

package preprocess

import "syscall/js"

// cpuNanos is the process's user+system CPU time (Node's
// process.cpuUsage), so benchmarks can report CPU time per op: wall time
// on a shared, oversubscribed machine says little.
func cpuNanos() int64 {
	p := js.Global().Get("process")
	if p.IsUndefined() {
		return 0
	}
	u := p.Call("cpuUsage")
	return int64(u.Get("user").Float()+u.Get("system").Float()) * 1000
}
