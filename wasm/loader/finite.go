package loader

import (
	"encoding/binary"

	"github.com/imgembed/imgembed/weights/safetensors"
)

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
			bad = func(p []byte) int {
				for i := 0; i+4 <= len(p); i += 4 {
					if binary.LittleEndian.Uint32(p[i:])&0x7f800000 == 0x7f800000 {
						return i / 4
					}
				}
				return -1
			}
		case safetensors.F16:
			bad = func(p []byte) int {
				for i := 0; i+2 <= len(p); i += 2 {
					if binary.LittleEndian.Uint16(p[i:])&0x7c00 == 0x7c00 {
						return i / 2
					}
				}
				return -1
			}
		case safetensors.BF16:
			bad = func(p []byte) int {
				for i := 0; i+2 <= len(p); i += 2 {
					if binary.LittleEndian.Uint16(p[i:])&0x7f80 == 0x7f80 {
						return i / 2
					}
				}
				return -1
			}
		case safetensors.F64:
			bad = func(p []byte) int {
				for i := 0; i+8 <= len(p); i += 8 {
					if binary.LittleEndian.Uint64(p[i:])&0x7ff0000000000000 == 0x7ff0000000000000 {
						return i / 8
					}
				}
				return -1
			}
		default:
			continue
		}
		step := int64(finiteChunk / size * size)
		for off := t.Begin; off < t.End; off += step {
			p := buf[:min(step, t.End-off)]
			f.Data.CopyTo(p, off)
			if i := bad(p); i >= 0 {
				return newErr(InvalidModel, nil, "tensor %q holds a non-finite value (NaN or infinity) at element %d", name, (off-t.Begin)/int64(size)+int64(i))
			}
		}
	}
	return nil
}
