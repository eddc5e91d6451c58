package loader

import (
	"crypto/sha256"
	"fmt"
	"sort"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// Parts is the Data of a downloaded File: the header, then the tensors in
// buffers of their own (one per tensor, or consecutive tensors together:
// Options.MinPartBytes), at consecutive offsets, so that a loader can free
// each part as soon as its tensors are in the tensors that hold them (the
// file is never one allocation), and a cache can write the parts one after
// the other.
type Parts struct {
	bufs  []Buffer
	offs  []int64 // absolute start of each part
	users []int   // tensors of each part not yet released
	done  map[int64]bool
	n     int64
}

// Len is the length of the whole file.
func (p *Parts) Len() int64 { return p.n }

// Buffers returns the parts in file order.
func (p *Parts) Buffers() []Buffer { return p.bufs }

// Part returns the part holding absolute offset off and off's offset in it.
func (p *Parts) Part(off int64) (Buffer, int64) {
	i := sort.Search(len(p.offs), func(i int) bool { return p.offs[i] > off }) - 1
	if i < 0 {
		return nil, 0
	}
	return p.bufs[i], off - p.offs[i]
}

// CopyTo copies [off, off+len(dst)) across parts.
func (p *Parts) CopyTo(dst []byte, off int64) {
	for len(dst) > 0 {
		b, at := p.Part(off)
		k := min(int64(len(dst)), b.Len()-at)
		if k <= 0 {
			panic(fmt.Sprintf("loader: Parts.CopyTo: %d bytes past the end at %d", len(dst), off))
		}
		b.CopyTo(dst[:k], at)
		dst, off = dst[k:], off+k
	}
}

// Release marks the tensor that starts at absolute offset off as read
// (its values are in the model now). When every tensor of its part is, the
// part is dropped, so that the garbage collector can reclaim it, and
// returned (for a host that frees memory explicitly); otherwise Release
// returns nil. Reading a dropped part panics. Releasing a tensor twice
// counts once.
func (p *Parts) Release(off int64) Buffer {
	i := sort.Search(len(p.offs), func(i int) bool { return p.offs[i] > off }) - 1
	if i < 0 || p.done[off] {
		return nil
	}
	if _, gone := p.bufs[i].(released); gone {
		return nil
	}
	if p.done == nil {
		p.done = make(map[int64]bool)
	}
	p.done[off] = true
	if p.users[i]--; p.users[i] > 0 {
		return nil
	}
	b := p.bufs[i]
	p.bufs[i] = released{b.Len()}
	return b
}

// released stands for a part given back by Release.
type released struct{ n int64 }

func (r released) Len() int64                     { return r.n }
func (r released) CopyTo([]byte, int64)           { panic("loader: reading a released part") }
func (r released) Put(int64, Bytes, int64, int64) { panic("loader: writing a released part") }
func (r released) PutGo(int64, []byte)            { panic("loader: writing a released part") }

func (p *Parts) add(b Buffer, users int) {
	p.bufs = append(p.bufs, b)
	p.users = append(p.users, users)
	p.offs = append(p.offs, p.n)
	p.n += b.Len()
}

// Subber is an optional Bytes method: a view of [from, to) without a copy
// (a subarray in JS), so that a Digester can hash it.
type Subber interface {
	Sub(from, to int64) Bytes
}

// Sub is m[from:to].
func (m Mem) Sub(from, to int64) Bytes { return m[from:to] }

// window is a read-only view of [from, to) of b, for Bytes without Sub.
type window struct {
	b        Bytes
	from, to int64
}

func (w window) Len() int64                   { return w.to - w.from }
func (w window) CopyTo(dst []byte, off int64) { w.b.CopyTo(dst, w.from+off) }

// sub returns [from, to) of b: the part itself for Parts (ranges are whole
// parts), a Sub view where b has one, else a window.
func sub(b Bytes, from, to int64) Bytes {
	if p, ok := b.(*Parts); ok {
		if part, at := p.Part(from); part != nil && at == 0 && part.Len() == to-from {
			return part
		}
	}
	if s, ok := b.(Subber); ok {
		return s.Sub(from, to)
	}
	return window{b, from, to}
}

// fileDigest is the integrity digest of a file whose header is h: the
// SHA-256 of the concatenated SHA-256s of its header ([0, DataStart), read
// as it is) and of each tensor's bytes in file order. Hashing range by
// range lets the host hash each part natively (crypto.subtle cannot hash
// in pieces) and a file in parts be hashed without joining them.
func fileDigest(c Cache, b Bytes, h *safetensors.Header) ([32]byte, error) {
	ranges := [][2]int64{{0, h.DataStart}}
	ts := append([]safetensors.TensorInfo(nil), h.Tensors...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Begin < ts[j].Begin })
	for _, t := range ts {
		if t.End > t.Begin {
			ranges = append(ranges, [2]int64{t.Begin, t.End})
		}
	}
	outer := sha256.New()
	for _, r := range ranges {
		sum, err := digest(c, sub(b, r[0], r[1]))
		if err != nil {
			return [32]byte{}, err
		}
		outer.Write(sum[:])
	}
	var sum [32]byte
	outer.Sum(sum[:0])
	return sum, nil
}

// zeroed reads b with the 64 bytes at at as ASCII '0'.
type zeroed struct {
	b  Bytes
	at int64
}

func (z zeroed) Len() int64 { return z.b.Len() }
func (z zeroed) CopyTo(dst []byte, off int64) {
	z.b.CopyTo(dst, off)
	for i := max(z.at, off); i < min(z.at+64, off+int64(len(dst))); i++ {
		dst[i-off] = '0'
	}
}

// lazyPart stands for a part not allocated yet (a streamed download
// allocates each part when its first byte arrives).
type lazyPart struct{ n int64 }

func (l lazyPart) Len() int64                     { return l.n }
func (l lazyPart) CopyTo([]byte, int64)           { panic("loader: reading a part that never received bytes") }
func (l lazyPart) Put(int64, Bytes, int64, int64) { panic("loader: writing a lazy part") }
func (l lazyPart) PutGo(int64, []byte)            { panic("loader: writing a lazy part") }
