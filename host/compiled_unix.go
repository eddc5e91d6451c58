//go:build unix

package host

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// mappable: compiled weights are mapped from their file (compiled.go).
const mappable = true

// mapFile maps size bytes of f privately: pages are read from the page
// cache as they are touched, and a write (none is made) would stay private.
func mapFile(f *os.File, size int64) ([]byte, func(), error) {
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, err
	}
	return mem, func() { _ = unix.Munmap(mem) }, nil
}

// fileIdentity names the file behind st beyond its path (device and inode).
func fileIdentity(st os.FileInfo) string {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", s.Dev, s.Ino)
	}
	return ""
}
