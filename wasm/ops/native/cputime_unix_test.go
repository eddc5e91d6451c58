//go:build unix

package native

import "syscall"

// cpuSeconds is the process's user+system CPU time. Benchmarks report
// throughput per CPU-second beside wall-clock throughput because this
// machine is shared: wall time includes time spent descheduled.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
