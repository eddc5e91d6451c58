package loader

import (
	"github.com/imgembed/imgembed/weights"
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
		if err := checkFiniteTensor(f, name, buf); err != nil {
			return err
		}
	}
	return nil
}

// checkFiniteTensor is checkFinite for one tensor (buf: a finiteChunk
// scratch buffer).
func checkFiniteTensor(f *File, name string, buf []byte) error {
	t, ok := f.Header.Tensor(name)
	if !ok {
		return nil
	}
	size, _ := t.DType.Size()
	switch t.DType {
	case safetensors.F32, safetensors.F16, safetensors.BF16, safetensors.F64:
	default:
		return nil
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
		if i := weights.NonFinite(t.DType, p); i >= 0 {
			return newErr(InvalidModel, nil, "%s", &weights.NonFiniteError{Tensor: name, Element: (off-t.Begin)/int64(size) + int64(i)})
		}
	}
	return nil
}
