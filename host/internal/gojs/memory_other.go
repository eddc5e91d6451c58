//go:build !unix

package gojs

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator: wazero-like growth (no address-space reservation here).
func (rt *Runtime) memoryAllocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(_, _ uint64) experimental.LinearMemory { return &heapMemory{} })
}
