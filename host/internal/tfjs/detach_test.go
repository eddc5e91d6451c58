package tfjs

import (
	"slices"
	"testing"
	"unsafe"

	"github.com/imgembed/imgembed/host/internal/gojs"
	"github.com/imgembed/imgembed/wasm/ops/native"
)

// detach detaches buf as the module does (ArrayBuffer.prototype.transfer(0)).
func detach(t *testing.T, buf *gojs.ArrayBuffer) {
	t.Helper()
	tr := gojs.GetProperty(buf, "transfer").(*gojs.Function)
	if _, err := tr.Call(buf, []gojs.Value{0.0}); err != nil || !buf.Detached() {
		t.Fatalf("transfer: %v", err)
	}
}

func inside(d []float32, mem []byte) bool {
	p := uintptr(unsafe.Pointer(&d[0]))
	lo := uintptr(unsafe.Pointer(&mem[0]))
	return p >= lo && p < lo+uintptr(len(mem))
}

// TestDetachUnaliases checks load's detach contract on this host: tensors
// made from views of a buffer keep their values when it is detached, and
// the few still alive get their own memory so the buffer's can be freed.
func TestDetachUnaliases(t *testing.T) {
	o := native.New(1)
	defer o.Close()
	ns := New(o)
	js := jsCaller{t, ns}

	// A "download buffer" of 1024 floats: a big tensor that is disposed
	// (transformed) and a small one that a reshape keeps alive.
	vals := make([]float32, 1024)
	for i := range vals {
		vals[i] = float32(i)
	}
	file := gojs.NewFloat32Array(vals)
	buf := file.Buffer()
	mem := buf.Bytes()
	big, _ := gojs.NewTypedArray(gojs.Float32, buf, 0, 1000)
	small, _ := gojs.NewTypedArray(gojs.Float32, buf, 4*1000, 4)
	tb := js.call("tensor", big, []int{1000})
	ts := js.call("tensor", small, []int{4})
	if !inside(ns.handles[ts.(*gojs.Object)].Data, mem) {
		t.Fatal("an aligned view was copied (the test needs it kept)")
	}
	kept := js.call("reshape", ts, []int{2, 2})
	js.call("dispose", tb)
	detach(t, buf)
	for _, v := range []gojs.Value{ts, kept} {
		d := ns.handles[v.(*gojs.Object)].Data
		if inside(d, mem) {
			t.Error("a live tensor still views the detached buffer's memory")
		}
		if got := js.Data(v); !slices.Equal(got, []float32{1000, 1001, 1002, 1003}) {
			t.Errorf("values after detach: %v", got)
		}
	}
	if a, b := ns.handles[ts.(*gojs.Object)].Data, ns.handles[kept.(*gojs.Object)].Data; &a[0] != &b[0] {
		t.Error("a tensor and its reshape should share the copy")
	}

	// A converted tensor's own array: the tensor uses all of it, so
	// detaching keeps the memory rather than copying it.
	own := gojs.NewFloat32Array([]float32{5, 6, 7})
	tc := js.call("tensor", own, []int{3})
	ownMem := own.Bytes()
	detach(t, own.Buffer())
	if d := ns.handles[tc.(*gojs.Object)].Data; !inside(d, ownMem) || !slices.Equal(js.Data(tc), []float32{5, 6, 7}) {
		t.Error("a tensor that uses its whole buffer should keep it")
	}
}
