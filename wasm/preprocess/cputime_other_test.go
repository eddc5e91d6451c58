//go:build unix && !js

package preprocess

import "syscall"

// cpuNanos is the process's user+system CPU time, so benchmarks can report
// CPU time per op: wall time on a shared, oversubscribed machine says little.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
