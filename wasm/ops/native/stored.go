package native

import (
	"fmt"
	"sync/atomic"

	"github.com/imgembed/imgembed/wasm/ops"
)

// Stored weights: a loaded model's tensors leave the Ops as their values
// in the order the kernels read them (Stored) and come back as views of
// memory the caller maps (View), so a model can be saved once derived and
// mapped again without deriving it (the Go host's compiled-weights cache).

// Stored returns t's values as held, without a copy (the caller must not
// write them), and their layout: 0 for row-major, else the panel layout
// the products read (see prepack.go). The values stay valid until t is
// disposed.
func (o *Ops) Stored(t ops.Tensor) (values []float32, code int32) {
	x := castStored(t, "Stored")
	return x.Data, x.packed.Load()
}

// View returns a tensor of the given shape viewing values, which Stored
// gave with layout code on an Ops of the same kernel (possibly in another
// process). The values are not copied: release, when not nil, is called
// once the tensor and every view of it are disposed; until then the caller
// keeps values unchanged. A layout that this kernel would not read for that
// shape is an error (values saved on another machine's kernel).
func (o *Ops) View(values []float32, shape []int, code int32, release func()) (ops.Tensor, error) {
	n, ok := checkedNumel(shape)
	if !ok || n != len(values) {
		return nil, fmt.Errorf("native.View: shape %v does not hold %d values", shape, len(values))
	}
	if code != 0 {
		if len(shape) != 2 {
			return nil, fmt.Errorf("native.View: panel layout on a tensor of shape %v", shape)
		}
		nr, kc, ok := o.PanelLayout(shape[0], shape[1])
		if !ok || (layout{nr, kc}).code() != code {
			return nil, fmt.Errorf("native.View: layout %#x of [%d, %d] is not this kernel's", code, shape[0], shape[1])
		}
	}
	t := &Tensor{Shape: cloneShape(shape), Data: values}
	if release != nil {
		var once atomic.Bool
		t.buf = &buffer{data: values, foreign: true, unmap: func() {
			if once.CompareAndSwap(false, true) {
				release()
			}
		}}
		t.buf.refs.Store(1)
	}
	t.packed.Store(code)
	return t, nil
}
