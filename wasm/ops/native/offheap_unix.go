//go:build unix

package native

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapFloats maps n zeroed floats of private anonymous memory.
func mapFloats(n int) ([]float32, func(), error) {
	mem, err := unix.Mmap(-1, 0, 4*n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, err
	}
	data := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(mem))), n)
	return data, func() { _ = unix.Munmap(mem) }, nil
}
