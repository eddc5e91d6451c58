package gojs

import "github.com/tetratelabs/wazero/experimental"

// The guest's linear memory. wazero's default grows it by append: every
// memory.grow past the capacity allocates a larger Go slice, copies the
// whole memory into it and leaves the old one to the host's collector. A
// Go guest grows its heap 4 MB at a time, so a guest that decodes a 12 MP
// photo (~170 MB) or loads a model copies several times its final size,
// faults in every new slice's pages, and holds old and new at once (the
// host's peak RSS). On Unix the memory is instead one address range
// reserved up front for the module's maximum (4 GiB for Go) and made
// accessible as it grows (memory_unix.go): it never moves and costs no
// memory until touched.

// heapMemory is the fallback LinearMemory (where reserving address space is
// not possible): wazero's own growth, a Go slice grown with headroom.
type heapMemory struct{ buf []byte }

func (h *heapMemory) Reallocate(size uint64) []byte {
	n := int(size)
	if n <= cap(h.buf) {
		h.buf = h.buf[:n]
		return h.buf
	}
	nb := make([]byte, n, max(n, cap(h.buf)+cap(h.buf)/4))
	copy(nb, h.buf)
	h.buf = nb
	return nb
}

func (h *heapMemory) Free() { h.buf = nil }

var _ experimental.LinearMemory = (*heapMemory)(nil)

// afterGuest runs fn once no loop method is in progress, so that no guest
// code runs during or after it: now if none is, else on a goroutine that
// waits for the current one to return (Close may be called while the guest
// runs; it stops at its next import call).
func (rt *Runtime) afterGuest(fn func()) {
	if rt.mu.TryLock() {
		defer rt.mu.Unlock()
		fn()
		return
	}
	go func() {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		fn()
	}()
}
