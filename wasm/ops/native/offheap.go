package native

import (
	"sync"
	"unsafe"
)

// Weights outside the Go heap. The garbage collector sets its next target
// at twice the live heap, so with a model's weights (350 MB for ViT-B/32)
// on the heap, up to as much garbage again (decoded photos, per-call
// buffers) accumulates before a collection: a server's RSS settles near
// twice the weights. Tensors made while the Ops is loading (SetLoading)
// are placed in memory mapped from the OS instead; the heap then holds only
// the working set and the collector's target follows that.

// offHeapMin is the smallest tensor (in floats) placed off the heap: a
// mapping costs a page at least, and small tensors do not matter.
const offHeapMin = 16 << 10

// SetLoading turns load mode on or off. While on, Tensor copies (or
// adopts, see AllocConst) its values into memory outside the Go heap, and
// ops allocate their results there too, bypassing the buffer pool: what a
// model builds while loading is its weights. Turn it off before serving so
// per-call activations come from the pool again. Where the OS offers no
// anonymous mappings, load mode changes nothing.
func (o *Ops) SetLoading(on bool) {
	o.loading.Store(on)
	if !on {
		o.consts.Lock()
		for _, l := range o.parked {
			for _, b := range l {
				b.unmap()
			}
		}
		o.parked = nil
		o.consts.Unlock()
	}
}

// constBuffer is newConstBuffer reusing a mapping that a load-time
// temporary gave back (fresh mappings cost a page fault per 4 KB).
func (o *Ops) constBuffer(n int) *buffer {
	o.consts.Lock()
	if l := o.parked[n]; len(l) > 0 {
		b := l[len(l)-1]
		o.parked[n] = l[:len(l)-1]
		o.consts.Unlock()
		return b
	}
	o.consts.Unlock()
	return newConstBuffer(n)
}

// release frees b once no tensor views it: a pooled buffer goes back to
// the pool, a mapping is parked for reuse while loading (load-time
// temporaries: transposes, folds) and unmapped otherwise.
func (o *Ops) release(b *buffer) {
	if b.unmap == nil {
		o.pool.put(b.data)
		return
	}
	if o.loading.Load() && !b.foreign {
		o.consts.Lock()
		if o.parked == nil {
			o.parked = make(map[int][]*buffer)
		}
		o.parked[len(b.data)] = append(o.parked[len(b.data)], b)
		o.consts.Unlock()
		return
	}
	b.unmap()
}

// AllocConst returns n zeroed floats outside the Go heap (on the heap when
// n is small or the OS has no mappings). Passed to Tensor in load mode,
// the slice becomes the tensor's storage without a copy; it is unmapped
// when the last tensor viewing it is disposed, so the caller must not keep
// it. A slice never passed to Tensor is released by Close.
func (o *Ops) AllocConst(n int) []float32 {
	b := newConstBuffer(n)
	if n > 0 {
		o.consts.Lock()
		if o.pending == nil {
			o.pending = make(map[*float32]*buffer)
		}
		o.pending[unsafe.SliceData(b.data)] = b
		o.consts.Unlock()
	}
	return b.data
}

// constTensor is Tensor in load mode: values are adopted when AllocConst
// made them, copied off the heap otherwise.
func (o *Ops) constTensor(values []float32, shape []int) *Tensor {
	o.consts.Lock()
	b, ok := o.pending[unsafe.SliceData(values)]
	if ok && len(b.data) == len(values) {
		delete(o.pending, unsafe.SliceData(values))
	} else {
		ok = false
	}
	o.consts.Unlock()
	if !ok {
		b = o.constBuffer(len(values))
		copy(b.data, values)
	}
	b.refs.Store(1)
	return &Tensor{Shape: shape, Data: b.data, buf: b}
}

// newConstBuffer maps n floats, or allocates them when n is small or
// mapping fails (the weights then live on the heap, as without load mode).
func newConstBuffer(n int) *buffer {
	if n >= offHeapMin {
		if data, unmap, err := mapFloats(n); err == nil {
			return &buffer{data: data, unmap: unmap}
		}
	}
	return &buffer{data: make([]float32, n)}
}

// releasePending unmaps AllocConst slices that never became tensors.
func (o *Ops) releasePending() {
	o.consts.Lock()
	defer o.consts.Unlock()
	for _, b := range o.pending {
		if b.unmap != nil {
			b.unmap()
		}
	}
	o.pending = nil
}

// constState is the part of Ops that load mode needs.
type constState struct {
	consts  sync.Mutex
	pending map[*float32]*buffer // AllocConst slices not yet adopted by Tensor
	parked  map[int][]*buffer    // load-time mappings given back, by length
}
