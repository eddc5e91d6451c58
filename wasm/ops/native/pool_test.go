package native

import (
	"testing"
	"unsafe"
)

func TestPoolReusesLargerBuffers(t *testing.T) {
	var p bufPool
	big := p.get(8 * 4096)
	p.put(big)
	// Half the size (batch 4 after batch 8) reuses the parked buffer.
	half := p.get(4 * 4096)
	if len(half) != 4*4096 {
		t.Fatalf("len %d, want %d", len(half), 4*4096)
	}
	if unsafe.SliceData(half) != unsafe.SliceData(big) {
		t.Error("a request for half a parked buffer's size allocated anew")
	}
	if p.bytes != 0 {
		t.Errorf("pool bytes %d after taking its only buffer", p.bytes)
	}
	p.put(half) // parked again by its capacity
	if p.bytes != 4*8*4096 {
		t.Errorf("pool bytes %d, want %d", p.bytes, 4*8*4096)
	}
	// Less than half: not worth holding twice the memory; a fresh buffer.
	small := p.get(4096 - 1)
	if unsafe.SliceData(small) == unsafe.SliceData(big) {
		t.Error("a request for under half a parked buffer took it")
	}
	// Larger than anything parked: fresh.
	if huge := p.get(16 * 4096); unsafe.SliceData(huge) == unsafe.SliceData(big) {
		t.Error("a larger request took a smaller buffer")
	}
}
