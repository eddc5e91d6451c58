//go:build unix

package gojs

import (
	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// reservedMemory is a linear memory in one reserved address range: PROT_NONE
// (no commit charge, no pages) beyond what the guest has grown to, read-write
// below. Growing is an mprotect; the memory never moves. wazero checks every
// access against the current length, so the reserved part is never touched.
type reservedMemory struct {
	rt        *Runtime
	mem       []byte // the whole reservation
	committed int    // bytes made accessible
}

// memoryAllocator reserves each memory up to its maximum, or falls back to
// heapMemory when the reservation fails (e.g. an address-space limit).
func (rt *Runtime) memoryAllocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(_, maxBytes uint64) experimental.LinearMemory {
		if maxBytes == 0 || maxBytes > 1<<32 || uint64(int(maxBytes)) != maxBytes {
			return &heapMemory{}
		}
		mem, err := unix.Mmap(-1, 0, int(maxBytes), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
		if err != nil {
			return &heapMemory{}
		}
		return &reservedMemory{rt: rt, mem: mem}
	})
}

func (m *reservedMemory) Reallocate(size uint64) []byte {
	if m.mem == nil || size > uint64(len(m.mem)) {
		return nil
	}
	n := int(size)
	if n > m.committed {
		// Wasm pages are 64 KiB, a multiple of the OS page.
		if err := unix.Mprotect(m.mem[m.committed:n], unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return nil // the guest sees memory.grow fail
		}
		m.committed = n
	}
	return m.mem[:n:n]
}

// Free unmaps the range once no guest code can run any more (wazero frees
// the memory when the module closes, which Close may do while the guest
// runs).
func (m *reservedMemory) Free() {
	mem := m.mem
	if mem == nil {
		return
	}
	m.mem = nil
	m.rt.afterGuest(func() { unix.Munmap(mem) })
}
