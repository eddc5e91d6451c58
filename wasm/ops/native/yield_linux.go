package native

import "syscall"

// osYield lets another runnable thread of the machine use this CPU (a
// spinning worker on a shared machine), returning at once when none is
// waiting.
func osYield() { syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
