package weights

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"unsafe"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// The int8 scheme (version 1), as written by Convert with dtype I8:
//
//   - every matrix-product weight (patch embedding, q/k/v/out projections,
//     fc1, fc2, visual projection) is stored as I8 with its own shape; its
//     first dimension is the output channel, the rest flattened is the row;
//   - beside it, "<name>.scale" holds the scales, F32 (F16 also read), shape
//     [out] (one scale per output channel) or [out, groups] (each row cut
//     into groups equal runs, one scale each);
//   - value = int8 * scale of its channel (or group); symmetric, no zero
//     point; the converter writes -127..127 with scale = max|w| / 127;
//   - every other tensor (embeddings, LayerNorm, biases) is F16;
//   - __metadata__ has MetaQuant = QuantInt8 and MetaQuantVersion = "1".
//
// Loaders dequantise each tensor as they create it; nothing else in the
// pipeline knows about the scheme.
const (
	MetaQuant        = "imgembed.quantization"
	MetaQuantVersion = "imgembed.quantization_version"
	MetaQuantGroup   = "imgembed.quantization_group_size"
	QuantInt8        = "int8-symmetric"
	QuantVersion     = "1"
	// ScaleSuffix is appended to a quantised tensor's name to name its
	// scales.
	ScaleSuffix = ".scale"
)

// ErrInvalidQuant: an I8 tensor whose scales are missing, mis-shaped, of
// the wrong dtype or not finite, or a file with I8 tensors that does not
// declare a known quantisation scheme.
var ErrInvalidQuant = errors.New("invalid quantised tensor")

// QuantError names the tensor at fault.
type QuantError struct {
	Tensor string
	Reason string
}

func (e *QuantError) Error() string {
	if e.Tensor == "" {
		return fmt.Sprintf("weights: %s: %s", ErrInvalidQuant, e.Reason)
	}
	return fmt.Sprintf("weights: %s: %s: %s", ErrInvalidQuant, e.Tensor, e.Reason)
}

func (e *QuantError) Unwrap() error { return ErrInvalidQuant }

// ScaleName is the name of the scale tensor of a quantised tensor.
func ScaleName(name string) string { return name + ScaleSuffix }

// IsMatMulWeight reports whether a vision tensor name is one of the weights
// the int8 converter quantises.
func IsMatMulWeight(name string) bool {
	switch {
	case name == keyPatch, name == keyProj:
		return true
	case strings.HasPrefix(name, layerPrefix):
		return strings.HasSuffix(name, "_proj.weight") || strings.HasSuffix(name, "mlp.fc1.weight") || strings.HasSuffix(name, "mlp.fc2.weight")
	}
	return false
}

// Int8Layout describes a validated I8 tensor.
type Int8Layout struct {
	Rows, RowLen int // output channels, elements per channel
	Groups       int // scales per row
	GroupLen     int // RowLen / Groups
	Scale        safetensors.TensorInfo
}

// CheckInt8 validates the I8 tensor name of h against the scheme: the file
// declares it, and the scale tensor exists with a float dtype and a shape
// [rows] or [rows, groups] that divides the rows evenly.
func CheckInt8(h *safetensors.Header, name string) (Int8Layout, error) {
	var l Int8Layout
	t, ok := h.Tensor(name)
	if !ok {
		return l, &QuantError{Tensor: name, Reason: "missing"}
	}
	if t.DType != safetensors.I8 {
		return l, &QuantError{Tensor: name, Reason: fmt.Sprintf("dtype %s, not I8", t.DType)}
	}
	if q := h.Metadata[MetaQuant]; q != QuantInt8 {
		if q == "" {
			return l, &QuantError{Tensor: name, Reason: fmt.Sprintf("I8 tensor in a file whose __metadata__ has no %q", MetaQuant)}
		}
		return l, &QuantError{Tensor: name, Reason: fmt.Sprintf("unknown quantisation scheme %q (want %q)", q, QuantInt8)}
	}
	if v := h.Metadata[MetaQuantVersion]; v != QuantVersion {
		return l, &QuantError{Tensor: name, Reason: fmt.Sprintf("quantisation version %q (this reader knows %q)", v, QuantVersion)}
	}
	if len(t.Shape) == 0 || t.Shape[0] <= 0 {
		return l, &QuantError{Tensor: name, Reason: fmt.Sprintf("shape %v has no output channels", t.Shape)}
	}
	l.Rows = t.Shape[0]
	l.RowLen = int(t.NumElements()) / l.Rows
	s, ok := h.Tensor(ScaleName(name))
	if !ok {
		return l, &QuantError{Tensor: name, Reason: fmt.Sprintf("no scale tensor %q", ScaleName(name))}
	}
	if s.DType != safetensors.F32 && s.DType != safetensors.F16 {
		return l, &QuantError{Tensor: ScaleName(name), Reason: fmt.Sprintf("dtype %s (want F32 or F16)", s.DType)}
	}
	switch {
	case len(s.Shape) == 1 && s.Shape[0] == l.Rows:
		l.Groups = 1
	case len(s.Shape) == 2 && s.Shape[0] == l.Rows && s.Shape[1] > 0 && l.RowLen%s.Shape[1] == 0:
		l.Groups = s.Shape[1]
	default:
		return l, &QuantError{Tensor: ScaleName(name), Reason: fmt.Sprintf("shape %v (want [%d] or [%d, G] with G dividing %d)", s.Shape, l.Rows, l.Rows, l.RowLen)}
	}
	if l.RowLen == 0 {
		l.GroupLen = 1
	} else {
		l.GroupLen = l.RowLen / l.Groups
	}
	l.Scale = s
	return l, nil
}

// NeededTensors returns names plus the scale tensor of each I8 tensor among
// them: what a loader must read to build those tensors.
func NeededTensors(h *safetensors.Header, names []string) []string {
	out := append([]string(nil), names...)
	for _, n := range names {
		if t, ok := h.Tensor(n); ok && t.DType == safetensors.I8 {
			if _, ok := h.Tensor(ScaleName(n)); ok {
				out = append(out, ScaleName(n))
			}
		}
	}
	return out
}

// QuantizeInt8 quantises vals (rows x rowLen, row-major) with groups scales
// per row: scale = max|w| / 127 over the group, q = round(w / scale). q
// receives one byte per value and scales rows*groups values. A non-finite
// weight is an error (it would poison its whole group).
func QuantizeInt8(vals []float32, rows, groups int, q []byte, scales []float32) error {
	if rows <= 0 || groups <= 0 || len(vals)%rows != 0 || (len(vals)/rows)%groups != 0 {
		return fmt.Errorf("weights: quantise: %d values as %d rows of %d groups", len(vals), rows, groups)
	}
	if len(q) != len(vals) || len(scales) != rows*groups {
		return fmt.Errorf("weights: quantise: buffers of %d and %d for %d values, %d scales", len(q), len(scales), len(vals), rows*groups)
	}
	glen := len(vals) / rows / groups
	for g := range scales {
		run := vals[g*glen : (g+1)*glen]
		var m float64
		for i, v := range run {
			a := math.Abs(float64(v))
			if math.IsNaN(a) || math.IsInf(a, 0) {
				return fmt.Errorf("weights: quantise: value %d is %g: %w", g*glen+i, v, ErrOutOfRange)
			}
			m = max(m, a)
		}
		s := float32(m / 127)
		scales[g] = s
		out := q[g*glen : (g+1)*glen]
		if s == 0 {
			clear(out)
			continue
		}
		inv := 1 / float64(s)
		for i, v := range run {
			r := math.Round(float64(v) * inv)
			out[i] = byte(int8(max(-127, min(127, r))))
		}
	}
	return nil
}

// Decoder reads tensors of a safetensors file as float32: F32, F16, BF16
// and F64 converted, I8 dequantised with its scales (CheckInt8). It works a
// chunk at a time, so a loader can write each tensor straight into the
// memory that will hold it, whatever the tensor's size. It is the one
// decoding path of every loader (browser module, wazero host, native).
type Decoder struct {
	h    *safetensors.Header
	read func(p []byte, off int64) error
	// Chunk is the number of elements decoded at a time (default 256 Ki).
	Chunk int
	// CheckFinite (set by NewDecoder) fails a decode with *NonFiniteError
	// when a float tensor holds a NaN or an infinity, checked on the bytes
	// as they are read; clear it when the file was checked before (a
	// loader.File that is not Unchecked).
	CheckFinite bool
	// Threads reads (and checks) a large F32 tensor in this many pieces
	// at once (default 1); read must then be safe for concurrent use.
	Threads int
	raw     []byte
	vals    []float32
	scratch []float32 // Get's storage
}

// NewDecoder decodes tensors of h whose bytes read returns (absolute file
// offsets, as in h's TensorInfo).
func NewDecoder(h *safetensors.Header, read func(p []byte, off int64) error) *Decoder {
	return &Decoder{h: h, read: read, Chunk: 256 << 10, CheckFinite: true}
}

// A Getter reads the stored tensors a graph is built from: the named
// tensor's values (row-major float32) and its stored shape. When cap(buf)
// holds the tensor's elements they are written to buf[:n]; otherwise they
// are in the getter's own storage, valid until its next call without such
// a buf (callers copy what they keep; a call that fills the caller's buf
// leaves the getter's storage alone). Decoder.Get is one.
type Getter func(name string, buf []float32) ([]float32, []int, error)

// GetInto calls get and, when buf can hold the tensor but get returned
// other storage (a getter that ignores buf), copies the values into buf:
// the caller may then transform buf in place without touching the
// getter's storage.
func GetInto(get Getter, name string, buf []float32) ([]float32, []int, error) {
	v, shape, err := get(name, buf)
	if err != nil || len(v) == 0 || cap(buf) < len(v) {
		return v, shape, err
	}
	if dst := buf[:len(v)]; &dst[0] != &v[0] {
		copy(dst, v)
		v = dst
	}
	return v, shape, nil
}

// MemoryGetter is a Getter over tensors held in memory (name to values,
// and their shapes). A tensor missing from either map is an error.
func MemoryGetter(ts map[string][]float32, shapes map[string][]int) Getter {
	return func(name string, buf []float32) ([]float32, []int, error) {
		v, ok := ts[name]
		shape, ok2 := shapes[name]
		if !ok || !ok2 {
			return nil, nil, fmt.Errorf("no tensor %s", name)
		}
		if cap(buf) >= len(v) {
			buf = buf[:len(v)]
		} else {
			buf = make([]float32, len(v))
		}
		copy(buf, v)
		return buf, shape, nil
	}
}

// Get is a Getter over the decoder: values outside buf live in one scratch
// slice, reused (and grown to the largest tensor asked for).
func (d *Decoder) Get(name string, buf []float32) ([]float32, []int, error) {
	t, ok := d.h.Tensor(name)
	if !ok {
		return nil, nil, &safetensors.NotFoundError{Name: name}
	}
	n := int(t.NumElements())
	if cap(buf) < n {
		if cap(d.scratch) < n {
			d.scratch = nil // let the old one go before allocating
			d.scratch = make([]float32, n)
		}
		buf = d.scratch
	}
	buf = buf[:n]
	if _, err := d.Into(name, buf); err != nil {
		return nil, nil, err
	}
	return buf, t.Shape, nil
}

// Into decodes the named tensor into dst, which must hold exactly its
// elements. F32 on a little-endian machine is read straight into dst (one
// read, no chunk buffer).
func (d *Decoder) Into(name string, dst []float32) (safetensors.TensorInfo, error) {
	t, ok := d.h.Tensor(name)
	if !ok {
		return t, &safetensors.NotFoundError{Name: name}
	}
	if n := t.NumElements(); int64(len(dst)) != n {
		return t, fmt.Errorf("weights: %s: %d values into a buffer of %d", name, n, len(dst))
	}
	if len(dst) == 0 {
		return t, nil
	}
	switch t.DType {
	case safetensors.F32:
		if littleEndian {
			return t, d.readF32(t, dst)
		}
	case safetensors.F16, safetensors.BF16, safetensors.F64:
	case safetensors.I8:
		scales, l, err := d.scales(name)
		if err != nil {
			return t, err
		}
		return t, d.pieces(t, dst, func(k int, raw []byte, first int, out []float32) error {
			if err := safetensors.DequantizeInt8(raw, scales, l.GroupLen, first, out); err != nil {
				return fmt.Errorf("weights: %s: %w", name, err)
			}
			return nil
		})
	default:
		return d.Decode(name, nil) // its error
	}
	return t, d.pieces(t, dst, func(_ int, raw []byte, first int, out []float32) error {
		if d.CheckFinite {
			if j := NonFinite(t.DType, raw); j >= 0 {
				return &NonFiniteError{Tensor: name, Element: int64(first + j)}
			}
		}
		if err := safetensors.DecodeFloat32(t.DType, raw, out); err != nil {
			return fmt.Errorf("weights: %s: %w", name, err)
		}
		return nil
	})
}

// pieces decodes tensor t into dst with conv, a chunk of raw bytes at a
// time, in up to Threads pieces at once (each with its own chunk buffer;
// pieces of at least 256 Ki elements). The error reported is the first
// piece's, so a bad element found is the first in the tensor.
func (d *Decoder) pieces(t safetensors.TensorInfo, dst []float32, conv func(piece int, raw []byte, first int, out []float32) error) error {
	size, _ := t.DType.Size()
	chunk := max(1, d.Chunk)
	n := len(dst)
	pieces := max(1, min(d.Threads, n/(256<<10)))
	return inPieces(pieces, func(k int) error {
		lo, hi := n*k/pieces, n*(k+1)/pieces
		var raw []byte
		if pieces == 1 {
			if cap(d.raw) < chunk*size {
				d.raw = make([]byte, chunk*8)
			}
			raw = d.raw
		} else {
			raw = make([]byte, min(chunk, hi-lo)*size)
		}
		for i := lo; i < hi; i += chunk {
			m := min(chunk, hi-i)
			r := raw[:m*size]
			if err := d.read(r, t.Begin+int64(i*size)); err != nil {
				return readError(t.Name, err)
			}
			if err := conv(k, r, i, dst[i:i+m]); err != nil {
				return err
			}
		}
		return nil
	})
}

// readF32 reads F32 tensor t straight into dst, in up to Threads pieces
// at once (pieces of at least 1 MiB), checking each for NaN and infinity
// as it arrives; the first bad element in the tensor is the one reported.
func (d *Decoder) readF32(t safetensors.TensorInfo, dst []float32) error {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst))
	pieces := max(1, min(d.Threads, len(dst)/(256<<10)))
	return inPieces(pieces, func(k int) error {
		lo, hi := len(dst)*k/pieces, len(dst)*(k+1)/pieces
		p := b[4*lo : 4*hi]
		if err := d.read(p, t.Begin+int64(4*lo)); err != nil {
			return readError(t.Name, err)
		}
		if d.CheckFinite {
			if i := NonFinite(t.DType, p); i >= 0 {
				return &NonFiniteError{Tensor: t.Name, Element: int64(lo + i)}
			}
		}
		return nil
	})
}

// readError is a failed read of tensor name's bytes.
func readError(name string, err error) error {
	return &safetensors.FormatError{Tensor: name, Reason: "reading data: " + err.Error(), Err: safetensors.ErrTruncated}
}

// inPieces runs piece(0..n-1), on n goroutines when n > 1, and returns the
// error of the lowest-numbered piece that failed (pieces are in file
// order, so that is the first bad place in the tensor).
func inPieces(n int, piece func(k int) error) error {
	if n == 1 {
		return piece(0)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[k] = piece(k) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// littleEndian: float32 in memory has the file's byte order.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Decode calls emit with consecutive runs of the named tensor's values
// (elements [off, off+len(vals))); vals is reused after emit returns.
func (d *Decoder) Decode(name string, emit func(off int, vals []float32) error) (safetensors.TensorInfo, error) {
	t, ok := d.h.Tensor(name)
	if !ok {
		return t, &safetensors.NotFoundError{Name: name}
	}
	n := int(t.NumElements())
	chunk := max(1, d.Chunk)
	size, _ := t.DType.Size()
	var scales []float32
	var l Int8Layout
	switch t.DType {
	case safetensors.I8:
		var err error
		if scales, l, err = d.scales(name); err != nil {
			return t, err
		}
	case safetensors.F32, safetensors.F16, safetensors.BF16, safetensors.F64:
		return t, d.decodePlain(t, d.CheckFinite, emit)
	default:
		return t, &safetensors.FormatError{Tensor: name, Reason: "dtype " + string(t.DType) + " cannot be read as float32", Err: safetensors.ErrUnsupportedDType}
	}
	if cap(d.raw) < chunk {
		d.raw = make([]byte, chunk*8)
	}
	if cap(d.vals) < chunk {
		d.vals = make([]float32, chunk)
	}
	for i := 0; i < n; i += chunk {
		k := min(chunk, n-i)
		r, v := d.raw[:k*size], d.vals[:k]
		if err := d.read(r, t.Begin+int64(i)); err != nil {
			return t, readError(name, err)
		}
		if err := safetensors.DequantizeInt8(r, scales, l.GroupLen, i, v); err != nil {
			return t, fmt.Errorf("weights: %s: %w", name, err)
		}
		if err := emit(i, v); err != nil {
			return t, err
		}
	}
	return t, nil
}

// scales reads and vets the scales of I8 tensor name.
func (d *Decoder) scales(name string) ([]float32, Int8Layout, error) {
	l, err := CheckInt8(d.h, name)
	if err != nil {
		return nil, l, err
	}
	scales := make([]float32, l.Rows*l.Groups)
	// Scales are vetted below (a NaN scale is a malformed quantisation,
	// ErrInvalidQuant), not by the finite check.
	if err := d.decodePlain(l.Scale, false, func(off int, v []float32) error { copy(scales[off:], v); return nil }); err != nil {
		return nil, l, err
	}
	for i, s := range scales {
		if !(s >= 0) || math.IsInf(float64(s), 0) {
			return nil, l, &QuantError{Tensor: ScaleName(name), Reason: fmt.Sprintf("scale %d is %g (want finite, >= 0)", i, s)}
		}
	}
	return scales, l, nil
}

func (d *Decoder) decodePlain(t safetensors.TensorInfo, finite bool, emit func(off int, vals []float32) error) error {
	n := int(t.NumElements())
	chunk := max(1, d.Chunk)
	size, _ := t.DType.Size()
	if cap(d.raw) < chunk*8 {
		d.raw = make([]byte, chunk*8)
	}
	if cap(d.vals) < chunk {
		d.vals = make([]float32, chunk)
	}
	for i := 0; i < n; i += chunk {
		k := min(chunk, n-i)
		r, v := d.raw[:k*size], d.vals[:k]
		if err := d.read(r, t.Begin+int64(i*size)); err != nil {
			return readError(t.Name, err)
		}
		if finite {
			if j := NonFinite(t.DType, r); j >= 0 {
				return &NonFiniteError{Tensor: t.Name, Element: int64(i + j)}
			}
		}
		if err := safetensors.DecodeFloat32(t.DType, r, v); err != nil {
			return fmt.Errorf("weights: %s: %w", t.Name, err)
		}
		if err := emit(i, v); err != nil {
			return err
		}
	}
	return nil
}

// Float32 returns the named tensor as a new float32 slice.
func (d *Decoder) Float32(name string) ([]float32, safetensors.TensorInfo, error) {
	t, ok := d.h.Tensor(name)
	if !ok {
		return nil, t, &safetensors.NotFoundError{Name: name}
	}
	out := make([]float32, t.NumElements())
	if _, err := d.Decode(name, func(off int, v []float32) error { copy(out[off:], v); return nil }); err != nil {
		return nil, t, err
	}
	return out, t, nil
}

// quantGroupsOf returns how many scales per row a group size gives for a
// row of rowLen elements (0: one per row).
func quantGroupsOf(rowLen, groupSize int) (int, error) {
	if groupSize <= 0 || groupSize >= rowLen {
		return 1, nil
	}
	if rowLen%groupSize != 0 {
		return 0, fmt.Errorf("weights: convert: group size %d does not divide rows of %d", groupSize, rowLen)
	}
	return rowLen / groupSize, nil
}
