package native

import (
	"runtime"
	"testing"
	"unsafe"
)

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestLoadingKeepsWeightsOffHeap(t *testing.T) {
	o := New(2)
	defer o.Close()
	const n = 4 << 20 // 16 MB
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(i % 7)
	}
	o.SetLoading(true)
	w := o.Tensor(vals, 1024, n/1024).(*Tensor)
	tr := o.Transpose(w, 1, 0).(*Tensor) // an op's result in load mode: off the heap too
	o.SetLoading(false)
	vals = nil
	if w.buf == nil || w.buf.unmap == nil || tr.buf == nil || tr.buf.unmap == nil {
		if _, _, err := mapFloats(offHeapMin); err == nil {
			t.Fatal("tensors made in load mode are not mapped although mapping works")
		}
		t.Skip("no anonymous mappings on this OS")
	}
	if h := heapAlloc(); h > 16<<20 {
		t.Errorf("heap holds %d MB with two 16 MB tensors off the heap", h>>20)
	}
	// A reshape shares the mapping and keeps it alive past the original.
	r := o.Reshape(w, n)
	o.Dispose(w)
	if got := o.Data(o.Reshape(r, n)); got[8] != 1 || got[n-1] != float32((n-1)%7) {
		t.Errorf("reshape after the original's dispose reads %v, %v", got[8], got[n-1])
	}
	if tr.Data[1] != float32((n/1024)%7) {
		t.Errorf("transpose[0,1] = %v", tr.Data[1])
	}
	o.Dispose(r, tr)
	// After load mode, results come from the pool again.
	x := o.Mul(o.Tensor([]float32{1, 2}, 2), o.Tensor([]float32{3}, 1)).(*Tensor)
	if x.buf == nil || x.buf.unmap != nil {
		t.Errorf("a result made after load mode is not a pooled buffer")
	}
}

func TestAllocConstIsAdopted(t *testing.T) {
	o := New(1)
	defer o.Close()
	o.SetLoading(true)
	defer o.SetLoading(false)
	a := o.AllocConst(offHeapMin)
	a[3] = 5
	ta := o.Tensor(a, offHeapMin).(*Tensor)
	if unsafe.SliceData(ta.Data) != unsafe.SliceData(a) {
		t.Error("Tensor copied an AllocConst slice instead of adopting it")
	}
	if ta.Data[3] != 5 {
		t.Errorf("adopted data[3] = %v", ta.Data[3])
	}
	// Adopted once: a second Tensor over the same slice must copy, or two
	// tensors would unmap one mapping twice.
	tb := o.Tensor(a, offHeapMin).(*Tensor)
	if unsafe.SliceData(tb.Data) == unsafe.SliceData(a) {
		t.Error("the same AllocConst slice was adopted twice")
	}
	o.Dispose(ta, tb)
	_ = o.AllocConst(offHeapMin) // never adopted: Close unmaps it
	if _, _, err := mapFloats(offHeapMin); err == nil && len(o.pending) != 1 {
		t.Errorf("pending = %d", len(o.pending))
	}
}

// TestLoadingReusesTemporaries: a mapping a load-time temporary gives back
// is reused by the next result of its size (no fresh page faults), and
// unmapped when load mode ends.
func TestLoadingReusesTemporaries(t *testing.T) {
	if _, _, err := mapFloats(offHeapMin); err != nil {
		t.Skip("no anonymous mappings on this OS")
	}
	o := New(1)
	defer o.Close()
	o.SetLoading(true)
	x := o.Tensor(make([]float32, offHeapMin), offHeapMin).(*Tensor)
	tmp := o.Sigmoid(x).(*Tensor)
	first := unsafe.SliceData(tmp.Data)
	o.Dispose(tmp)
	again := o.Sigmoid(x).(*Tensor)
	if unsafe.SliceData(again.Data) != first {
		t.Error("a load-time temporary's mapping was not reused")
	}
	o.Dispose(again)
	if len(o.parked[offHeapMin]) != 1 {
		t.Errorf("parked %d mappings, want 1", len(o.parked[offHeapMin]))
	}
	o.SetLoading(false)
	if o.parked != nil {
		t.Errorf("parked mappings left after load mode: %d sizes", len(o.parked))
	}
	o.Dispose(x)
}
