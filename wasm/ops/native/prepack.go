package native

import (
	"fmt"
	"sync"

	"github.com/imgembed/imgembed/wasm/ops"
)

// Pre-packed right operands. A weight matrix B [K, N] (row-major) that is
// the right operand of rank-2 products again and again is rewritten once
// into the order in which the blocked SGEMM reads it: k-block after
// k-block (rows [k0, k0+kc)), and within one, panel after panel (columns
// [j, j+nr)), each kc x nr panel contiguous. A pass over one k-block is
// then one sequential stream that the hardware prefetcher follows,
// instead of nr floats per row N floats apart (a new 4 KB page every row
// or two at N = 3072), and no product copies panels any more. The packed form REPLACES the row-major data (same length, since
// only N % nr == 0 is packed), so a model's weights never exist twice.
//
// A graph's linear weights arrive packed: its load derives them straight
// into this order (PanelLayout, PanelTensor; derive.Linear.WritePanels).
// Any other tensor is packed on its third use as a right operand (the
// first forward passes run on the row-major data; a product's one-off
// operand, an activation, is never packed). Readers that need row-major values
// (cast: every other op, Data) get an unpacked copy; the tensor itself
// stays packed.
//
// packMu orders packing against products: every rank-2 product holds it
// for reading while it reads B, packing holds it for writing. Other ops
// that read a weight do not take it, so a weight must not be read by
// another op while a product may be packing it (no graph does that: the
// weights are only products' right operands).
var packMu sync.RWMutex

// minPackElems: smaller matrices stay row-major (packing buys nothing
// measurable there).
const minPackElems = 1 << 14

// packedBuffer allocates the storage of a packed copy of t (used when t's
// storage is not the Ops's to rewrite in place: caller-provided values, or
// a buffer other tensors view): outside the Go heap when t's was (load
// mode, offheap.go) or the Ops is loading, else on the heap.
func (o *Ops) packedBuffer(t *Tensor, n int) *buffer {
	if o.loading.Load() || t.buf != nil && t.buf.unmap != nil {
		return o.constBuffer(n)
	}
	return &buffer{data: make([]float32, n)}
}

// layout identifies a panel layout: panel width nr and k-block kc.
type layout struct{ nr, kc int }

func (l layout) code() int32 { return int32(l.nr<<16 | l.kc) }

func layoutOf(code int32) layout { return layout{int(code >> 16), int(code & 0xffff)} }

// kBlock is the k-block the driver uses for depth k with kernel kern: the
// fewest blocks of at most kern.kc, evened out.
func kBlock(kern *gemmKernel, k int) int {
	nkb := (k + kern.kc - 1) / kern.kc
	return (k + nkb - 1) / nkb
}

// packable reports whether b [k, n] can take the panel layout of kernels
// with nr columns.
func packable(k, n, nr int) bool {
	return k > 0 && n > 0 && n%nr == 0 && k*n >= minPackElems
}

// packAfterUses is the use as a right operand on which a tensor is packed.
// Packing rewrites the weights once (~ a copy of them); at batch 8 it saves
// ~5 % of each forward, so a command embedding a few photos (one or two
// forwards) should not pay for it, and a server or a long batch does.
const packAfterUses = 3

// useRHS notes one use of b [k, n] as a rank-2 product's right operand,
// packs it for the current kernel when it has earned it, and returns with
// packMu read-locked (the caller runs the product, then RUnlocks) and
// whether b.Data is in the current kernel's panel layout. others are the
// product's other operands: b is not packed while one of them is b itself
// (they read b.Data as row-major during the product).
func (o *Ops) useRHS(b *Tensor, k, n int, others ...*Tensor) (panels bool) {
	want := layout{kernel.nr, kBlock(&kernel, k)}.code()
	uses := b.rhsUses.Add(1)
	p := b.packed.Load()
	if p != want && packable(k, n, kernel.nr) && (p != 0 || uses >= packAfterUses) && !sharesData(b, others) {
		packMu.Lock()
		if !b.disposed && b.packed.Load() != want {
			o.repack(b, k, n, layoutOf(want))
		}
		packMu.Unlock()
	}
	packMu.RLock()
	return b.packed.Load() == want
}

func sharesData(b *Tensor, others []*Tensor) bool {
	for _, x := range others {
		if x == b || len(x.Data) > 0 && len(b.Data) > 0 && &x.Data[0] == &b.Data[0] {
			return true
		}
	}
	return false
}

// repack rewrites b's data in the panel layout of width nr (from row-major
// or from another panel width). packMu must be held for writing.
func (o *Ops) repack(b *Tensor, k, n int, l layout) {
	src := b.Data
	if old := b.packed.Load(); old != 0 {
		src = make([]float32, len(b.Data))
		unpackPanels(src, b.Data, k, n, layoutOf(old))
	}
	if b.buf != nil && !b.buf.foreign && b.buf.refs.Load() == 1 {
		// b alone views this pooled buffer: rewrite it in place through a
		// temporary copy of the source.
		if &src[0] == &b.Data[0] {
			o.packInPlace(b.Data, k, n, l)
		} else {
			packPanels(b.Data, src, k, n, l)
		}
	} else {
		nb := o.packedBuffer(b, len(b.Data))
		nb.refs.Store(1)
		packPanels(nb.data, src, k, n, l)
		if b.buf != nil && b.buf.refs.Add(-1) == 0 {
			o.release(b.buf)
		}
		b.Data, b.buf = nb.data, nb
	}
	b.packed.Store(l.code())
}

// packPanels writes row-major src [k, n] to dst in layout l (n % l.nr == 0):
// the kc x nr panel at rows k0, columns j starts at k0*n + j*kk (kk = the
// block's depth).
func packPanels(dst, src []float32, k, n int, l layout) {
	pack := packRowsGeneric(l.nr)
	if kernel.nr == l.nr {
		pack = kernel.pack
	}
	for k0 := 0; k0 < k; k0 += l.kc {
		kk := min(l.kc, k-k0)
		for j := 0; j < n; j += l.nr {
			pack(kk, src[k0*n+j:], n, dst[k0*n+j*kk:k0*n+(j+l.nr)*kk])
		}
	}
}

// packInPlace is packPanels with dst and src the same row-major data: a
// k-block's panels fill exactly the range its rows held, so each block goes
// through a copy of its own rows (kc x n floats, not the whole weight: a
// whole-weight copy per weight left ~40 MB of garbage behind the packing
// forward of ViT-B/32).
func (o *Ops) packInPlace(data []float32, k, n int, l layout) {
	tmp := o.pool.get(min(l.kc, k) * n)
	for k0 := 0; k0 < k; k0 += l.kc {
		kk := min(l.kc, k-k0)
		rows := tmp[:kk*n]
		copy(rows, data[k0*n:(k0+kk)*n])
		packPanels(data[k0*n:(k0+kk)*n], rows, kk, n, l)
	}
	o.pool.put(tmp)
}

// unpackPanels is packPanels' inverse.
func unpackPanels(dst, src []float32, k, n int, l layout) {
	for k0 := 0; k0 < k; k0 += l.kc {
		kk := min(l.kc, k-k0)
		for j := 0; j < n; j += l.nr {
			panel := src[k0*n+j*kk : k0*n+(j+l.nr)*kk]
			for p := 0; p < kk; p++ {
				copy(dst[(k0+p)*n+j:(k0+p)*n+j+l.nr], panel[p*l.nr:(p+1)*l.nr])
			}
		}
	}
}

// rowMajor returns x itself, or, when x is packed, a tensor with the same
// shape viewing a row-major copy of its values.
func rowMajor(x *Tensor) *Tensor {
	if x.packed.Load() == 0 {
		return x
	}
	packMu.RLock()
	defer packMu.RUnlock()
	code := x.packed.Load()
	if code == 0 {
		return x
	}
	n := x.Shape[len(x.Shape)-1]
	d := make([]float32, len(x.Data))
	unpackPanels(d, x.Data, len(x.Data)/n, n, layoutOf(code))
	return &Tensor{Shape: x.Shape, Data: d}
}

// PanelLayout implements derive.Panels: the layout in which a product on
// the current kernel reads a weight [k, n] it would pack, so that a
// graph's load can derive its weights straight into it.
func (o *Ops) PanelLayout(k, n int) (nr, kc int, ok bool) {
	l := layout{kernel.nr, kBlock(&kernel, k)}
	if !packable(k, n, l.nr) || l.nr%8 != 0 || l.kc%8 != 0 {
		return 0, 0, false
	}
	return l.nr, l.kc, true
}

// PanelTensor implements derive.Panels: the weight [k, n] from values
// already in PanelLayout(k, n)'s order (a Tensor like any other; Data
// and the ops other than products see it row-major).
func (o *Ops) PanelTensor(values []float32, k, n int) ops.Tensor {
	nr, kc, ok := o.PanelLayout(k, n)
	if !ok {
		panic(fmt.Sprintf("native.PanelTensor: no panel layout for [%d, %d]", k, n))
	}
	t := cast(o.Tensor(values, k, n), "PanelTensor")
	t.packed.Store(layout{nr, kc}.code())
	return t
}
