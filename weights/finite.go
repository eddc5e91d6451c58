package weights

import (
	"encoding/binary"
	"fmt"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// NonFiniteError reports a NaN or an infinity in a stored floating-point
// tensor: such a weight makes every embedding NaN (or a silently wrong
// unit vector), so loaders refuse it.
type NonFiniteError struct {
	Tensor  string
	Element int64
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("tensor %q holds a non-finite value (NaN or infinity) at element %d", e.Tensor, e.Element)
}

// NonFinite returns the index of the first NaN or infinity among the
// little-endian values of dtype dt in p, or -1 (also for integer dtypes,
// finite by nature). The test is on the exponent bits (all ones), eight
// bytes at a time.
func NonFinite(dt safetensors.DType, p []byte) int {
	switch dt {
	case safetensors.F32:
		return lanes(p, 4, 0x7f8000007f800000, 0x0080000000800000, 0x8000000080000000)
	case safetensors.F16:
		return lanes(p, 2, 0x7c007c007c007c00, 0x0400040004000400, 0x8000800080008000)
	case safetensors.BF16:
		return lanes(p, 2, 0x7f807f807f807f80, 0x0080008000800080, 0x8000800080008000)
	case safetensors.F64:
		return lanes(p, 8, 0x7ff0000000000000, 0x0010000000000000, 0x8000000000000000)
	}
	return -1
}

// lanes scans little-endian floats of size bytes packed in uint64 words:
// each lane's exponent field (mask) plus one unit of it (one) carries into
// the lane's top bit (top) exactly when the exponent is all ones (NaN or
// infinity), and no lane's sum spills into the next. The words are OR-ed
// four at a time; only a hit is located element by element.
func lanes(p []byte, size int, mask, one, top uint64) int {
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
	// A tail shorter than a word (tensors are whole elements, so only of 2-
	// or 4-byte floats).
	for i := len(p) &^ 7; i+size <= len(p); i += size {
		var lane [8]byte
		copy(lane[:], p[i:i+size])
		if hit(binary.LittleEndian.Uint64(lane[:])) {
			return i / size
		}
	}
	return -1
}
