//go:build unix

package host

import "syscall"

// cpuSeconds is the process's user+system CPU time: benchmarks report it
// beside wall time because the machines they run on are often shared.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
