package loader

// Mem is a Buffer in the Go heap, for native use and tests.
type Mem []byte

// Len is len(m).
func (m Mem) Len() int64 { return int64(len(m)) }

// CopyTo copies m[off:off+len(dst)] into dst.
func (m Mem) CopyTo(dst []byte, off int64) { copy(dst, m[off:]) }

// Put copies src[from:to] (src must be Mem) to m[at:].
func (m Mem) Put(at int64, src Bytes, from, to int64) {
	s, ok := src.(Mem)
	if !ok {
		buf := make([]byte, to-from)
		src.CopyTo(buf, from)
		copy(m[at:], buf)
		return
	}
	copy(m[at:], s[from:to])
}

// PutGo copies p to m[at:].
func (m Mem) PutGo(at int64, p []byte) { copy(m[at:], p) }
