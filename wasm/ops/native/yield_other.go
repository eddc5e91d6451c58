//go:build !linux

package native

import "runtime"

// osYield: without sched_yield, yield to other goroutines only.
func osYield() { runtime.Gosched() }
