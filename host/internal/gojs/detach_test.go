package gojs

import (
	"errors"
	"runtime"
	"testing"
	"time"
)

// thrownName is the name of the JS error in err ("" if none).
func thrownName(err error) string {
	var ex *Exception
	if !errors.As(err, &ex) {
		return ""
	}
	return ToString(GetProperty(ex.Value, "name"))
}

func TestTransfer(t *testing.T) {
	rt := &Runtime{}
	buf := NewArrayBuffer([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	f32, err := NewTypedArray(Float32, buf, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	var hooked []byte
	buf.OnDetach(func(old []byte) { hooked = old })

	nb, err := rt.Invoke(GetProperty(buf, "transfer"), buf)
	if err != nil {
		t.Fatal(err)
	}
	moved := nb.(*ArrayBuffer)
	if b := moved.Bytes(); len(b) != 8 || b[7] != 8 {
		t.Errorf("transfer() kept %v", b)
	}
	if &hooked[0] != &moved.Bytes()[0] {
		t.Error("OnDetach hook did not get the buffer's memory")
	}
	if !buf.Detached() || buf.Bytes() != nil || GetProperty(buf, "byteLength") != 0.0 || GetProperty(buf, "detached") != true {
		t.Errorf("source not detached: byteLength %v", GetProperty(buf, "byteLength"))
	}
	if f32.Len() != 0 || f32.Bytes() != nil || len(f32.Float32s()) != 0 || GetProperty(f32, "byteOffset") != 0.0 ||
		GetProperty(f32, "byteLength") != 0.0 || GetProperty(f32, "0") != nil {
		t.Errorf("view of a detached buffer: length %d", f32.Len())
	}
	sub, err := rt.Invoke(GetProperty(f32, "subarray"), f32, 0)
	if err != nil || sub.(*TypedArray).Len() != 0 {
		t.Errorf("subarray of a detached view: %v, %v", sub, err)
	}
	for what, call := range map[string]func() error{
		"transfer": func() error { _, err := rt.Invoke(GetProperty(buf, "transfer"), buf, 0); return err },
		"slice":    func() error { _, err := rt.Invoke(GetProperty(buf, "slice"), buf); return err },
		"view":     func() error { _, err := rt.Construct(typedArrayClasses[Uint8], buf); return err },
	} {
		if name := thrownName(call()); name != "TypeError" {
			t.Errorf("%s on a detached buffer threw %q, want TypeError", what, name)
		}
	}

	// transfer(n) cuts or zero-extends.
	short, _ := rt.Invoke(GetProperty(moved, "transfer"), moved, 2)
	if b := short.(*ArrayBuffer).Bytes(); len(b) != 2 || b[1] != 2 || !moved.Detached() {
		t.Errorf("transfer(2) = %v", b)
	}
	long, _ := rt.Invoke(GetProperty(short, "transfer"), short, 4)
	if b := long.(*ArrayBuffer).Bytes(); len(b) != 4 || b[1] != 2 || b[3] != 0 {
		t.Errorf("transfer(4) = %v", b)
	}
	zero, _ := rt.Invoke(GetProperty(long, "transfer"), long, 0)
	if GetProperty(zero, "byteLength") != 0.0 || GetProperty(zero, "detached") != false {
		t.Error("transfer(0) must return an empty live buffer")
	}
}

func TestStructuredCloneTransfer(t *testing.T) {
	rt := &Runtime{}
	sc := rt.newGlobals().Get("structuredClone")
	opts := func(bufs ...Value) *Object { return NewObject(map[string]Value{"transfer": NewArray(bufs...)}) }

	a, b := NewArrayBuffer(make([]byte, 16)), NewArrayBuffer([]byte{9})
	// A value that cannot be cloned throws before anything is detached.
	if _, err := rt.Invoke(sc, nil, NewObject(nil), opts(a)); thrownName(err) != "DataCloneError" || a.Detached() {
		t.Errorf("cloning an object: %v, detached %v", err, a.Detached())
	}
	if _, err := rt.Invoke(sc, nil, nil, opts(a, a)); thrownName(err) != "DataCloneError" || a.Detached() {
		t.Errorf("duplicate transfer: %v", err)
	}
	if _, err := rt.Invoke(sc, nil, nil, opts(NewObject(nil))); thrownName(err) != "DataCloneError" {
		t.Errorf("transferring a non-buffer: %v", err)
	}
	v, err := rt.Invoke(sc, nil, b, opts(a, b))
	if err != nil {
		t.Fatal(err)
	}
	if nb, ok := v.(*ArrayBuffer); !ok || nb == b || len(nb.Bytes()) != 1 || nb.Bytes()[0] != 9 {
		t.Errorf("structuredClone(buf, {transfer: [buf]}) = %v", v)
	}
	if !a.Detached() || !b.Detached() {
		t.Error("transferred buffers must be detached")
	}
	if v, err := rt.Invoke(sc, nil, "s"); v != "s" || err != nil {
		t.Errorf("structuredClone of a string: %v, %v", v, err)
	}
}

// TestDetachReleasesMemory checks the point of detaching: the buffer's
// memory becomes garbage even though the buffer and a view of it stay
// referenced (as a guest's syscall/js ref can keep them).
func TestDetachReleasesMemory(t *testing.T) {
	const size = 64 << 20
	buf, freed := bigBuffer(size)
	view := NewUint8Array(nil)
	view.buf = buf
	view.length = size

	gcUntil := func(cond func() bool) bool {
		for range 10 {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
			if cond() {
				return true
			}
		}
		return false
	}
	var before runtime.MemStats
	if gcUntil(func() bool { return len(freed) > 0 }) {
		t.Fatal("memory freed while the buffer still held it")
	}
	runtime.ReadMemStats(&before)

	(&Runtime{}).Invoke(GetProperty(buf, "transfer"), buf, 0) //nolint:errcheck // checked below
	if !buf.Detached() || view.Len() != 0 {
		t.Fatal("not detached")
	}
	if !gcUntil(func() bool { return len(freed) > 0 }) {
		t.Fatal("the detached buffer's memory was not freed")
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if int64(before.HeapAlloc)-int64(after.HeapAlloc) < size/2 {
		t.Errorf("heap %d -> %d MiB after detaching %d MiB", before.HeapAlloc>>20, after.HeapAlloc>>20, size>>20)
	}
	runtime.KeepAlive(buf)
	runtime.KeepAlive(view)
}

// bigBuffer returns a buffer of size bytes and a channel that receives when
// its memory is collected.
func bigBuffer(size int) (*ArrayBuffer, chan struct{}) {
	data := make([]byte, size)
	data[size-1] = 1
	freed := make(chan struct{}, 1)
	runtime.AddCleanup(&data[0], func(ch chan struct{}) { ch <- struct{}{} }, freed)
	return NewArrayBuffer(data), freed
}
