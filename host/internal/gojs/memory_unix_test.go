//go:build linux

package gojs

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// mapped reports whether /proc/self/maps has a mapping starting at p.
func mapped(t *testing.T, p uintptr) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), fmt.Sprintf("\n%x-", p)) || strings.HasPrefix(string(b), fmt.Sprintf("%x-", p))
}

// TestReservedMemory: the linear memory grows in place (same address, data
// kept), refuses to grow past its maximum, and is unmapped on Free only
// once no loop method is running.
func TestReservedMemory(t *testing.T) {
	rt := &Runtime{}
	lm := rt.memoryAllocator().Allocate(0, 1<<32)
	m, ok := lm.(*reservedMemory)
	if !ok {
		t.Skipf("no reservation here (%T)", lm)
	}
	b := m.Reallocate(64 << 10)
	if len(b) != 64<<10 {
		t.Fatalf("len %d", len(b))
	}
	b[0], b[len(b)-1] = 1, 2
	base := unsafe.SliceData(b)
	b = m.Reallocate(256 << 20)
	if len(b) != 256<<20 || unsafe.SliceData(b) != base {
		t.Fatalf("grown to %d bytes at %p, want %d at %p", len(b), unsafe.SliceData(b), 256<<20, base)
	}
	if b[0] != 1 || b[64<<10-1] != 2 || b[len(b)-1] != 0 {
		t.Fatal("contents not kept across growth")
	}
	b[len(b)-1] = 3 // the new part is writable
	if m.Reallocate(1<<32+1) != nil {
		t.Fatal("grew past the maximum")
	}
	if b := m.Reallocate(1 << 20); len(b) != 1<<20 || b[0] != 1 {
		t.Fatal("a smaller size after growth")
	}

	p := uintptr(unsafe.Pointer(base))
	if !mapped(t, p) {
		t.Fatal("the reservation is not in /proc/self/maps (the test cannot see an unmap)")
	}
	rt.mu.Lock() // a loop method in progress
	m.Free()
	time.Sleep(50 * time.Millisecond)
	if !mapped(t, p) {
		t.Fatal("unmapped while a loop method was running")
	}
	rt.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for mapped(t, p) {
		if time.Now().After(deadline) {
			t.Fatal("still mapped after the loop method returned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.Free() // twice: nothing
}

func TestHeapMemory(t *testing.T) {
	var h heapMemory
	b := h.Reallocate(10)
	b[9] = 7
	b = h.Reallocate(1000)
	if len(b) != 1000 || b[9] != 7 {
		t.Fatalf("len %d, b[9] %d", len(b), b[9])
	}
	if b = h.Reallocate(5); len(b) != 5 {
		t.Fatalf("len %d", len(b))
	}
}
