package loader

import (
	"encoding/binary"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// lanes returns a scanner for little-endian floats of size bytes packed in
// uint64 words: each lane's exponent field (mask) plus one unit of it
// (one) carries into the lane's top bit (top) exactly when the exponent
// is all ones (NaN or infinity), and no lane's sum spills into the next.
// The words are OR-ed four at a time; only a hit is located element by
// element. It returns the index of the first non-finite element, or -1.
func lanes(size int, mask, one, top uint64) func(p []byte) int {
	return func(p []byte) int {
		hit := func(w uint64) bool { return (w&mask+one)&top != 0 }
		n := len(p) &^ 31
		for i := 0; i < n; i += 32 {
			a := binary.LittleEndian.Uint64(p[i:])
			b := binary.LittleEndian.Uint64(p[i+8:])
			c := binary.LittleEndian.Uint64(p[i+16:])
			d := binary.LittleEndian.Uint64(p[i+24:])
			if ((a&mask+one)|(b&mask+one)|(c&mask+one)|(d&mask+one))&top != 0 {
				n = i // locate it below
				break
			}
		}
		for i := n; i+8 <= len(p); i += 8 {
			if w := binary.LittleEndian.Uint64(p[i:]); hit(w) {
				for k := 0; k < 8; k += size {
					var lane [8]byte
					copy(lane[:], p[i+k:i+k+size])
					if hit(binary.LittleEndian.Uint64(lane[:])) {
						return (i + k) / size
					}
				}
			}
		}
		// A tail shorter than a word (tensors are whole elements, so only
		// of 2- or 4-byte floats).
		for i := len(p) &^ 7; i+size <= len(p); i += size {
			var lane [8]byte
			copy(lane[:], p[i:i+size])
			if hit(binary.LittleEndian.Uint64(lane[:])) {
				return i / size
			}
		}
		return -1
	}
}

// finiteChunk is how many bytes of a tensor are checked at a time: the
// weights may live outside the Go heap (JS bytes), and the check must not
// hold a second copy of them.
const finiteChunk = 1 << 20

// checkFinite fails with InvalidModel, naming the tensor and the element,
// when a stored floating-point tensor holds a NaN or an infinity: such a
// weight makes every embedding NaN (or a silently wrong unit vector), so it
// is refused at load. Integer tensors (int8 weights) are finite by nature.
// The test is on the exponent bits (all ones), one chunk at a time.
func checkFinite(f *File) error {
	buf := make([]byte, finiteChunk)
	for _, name := range f.Stored {
		t, ok := f.Header.Tensor(name)
		if !ok {
			continue
		}
		size, _ := t.DType.Size()
		var bad func(p []byte) int
		switch t.DType {
		case safetensors.F32:
			bad = lanes(4, 0x7f8000007f800000, 0x0080000000800000, 0x8000000080000000)
		case safetensors.F16:
			bad = lanes(2, 0x7c007c007c007c00, 0x0400040004000400, 0x8000800080008000)
		case safetensors.BF16:
			bad = lanes(2, 0x7f807f807f807f80, 0x0080008000800080, 0x8000800080008000)
		case safetensors.F64:
			bad = lanes(8, 0x7ff0000000000000, 0x0010000000000000, 0x8000000000000000)
		default:
			continue
		}
		step := int64(finiteChunk / size * size)
		for off := t.Begin; off < t.End; off += step {
			var p []byte
			if m, ok := f.Data.(Mem); ok { // Go bytes: no copy needed
				p = m[off:min(off+step, t.End)]
			} else {
				p = buf[:min(step, t.End-off)]
				f.Data.CopyTo(p, off)
			}
			if i := bad(p); i >= 0 {
				return newErr(InvalidModel, nil, "tensor %q holds a non-finite value (NaN or infinity) at element %d", name, (off-t.Begin)/int64(size)+int64(i))
			}
		}
	}
	return nil
}
