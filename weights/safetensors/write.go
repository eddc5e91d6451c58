package safetensors

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Tensor is one tensor to write: Data holds its little-endian bytes.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Spec describes a tensor whose data will be streamed through a Writer.
type Spec struct {
	Name  string
	DType DType
	Shape []int
}

// Write writes a complete safetensors file. Tensors are laid out in order
// of decreasing element size (stable otherwise), as the reference
// implementation does, so that with the 8-byte-aligned header every tensor
// starts at an offset aligned to its element size: a reader may then view
// it in place as a Float32Array. metadata may be nil.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	sorted := append([]Tensor(nil), tensors...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, _ := sorted[i].DType.Bits()
		b, _ := sorted[j].DType.Bits()
		return a > b
	})
	specs := make([]Spec, len(sorted))
	for i, t := range sorted {
		specs[i] = Spec{t.Name, t.DType, t.Shape}
	}
	sw, err := NewWriter(w, specs, metadata)
	if err != nil {
		return err
	}
	for i, t := range sorted {
		if want := sw.sizes[i]; int64(len(t.Data)) != want {
			return errorf(ErrShapeMismatch, t.Name, "shape %v of %s needs %d bytes, got %d", t.Shape, t.DType, want, len(t.Data))
		}
		if _, err := sw.Write(t.Data); err != nil {
			return err
		}
	}
	return sw.Close()
}

// Writer streams a safetensors file: NewWriter writes the header, then the
// caller writes each tensor's bytes, in the order of the specs, through
// Write (in chunks of any size), and Close checks that every byte arrived.
// Nothing is buffered, so files larger than memory can be produced.
type Writer struct {
	w       io.Writer
	specs   []Spec
	sizes   []int64
	total   int64
	written int64
}

// NewWriter validates the specs, writes the header and returns a Writer
// for the data section. The specs are laid out in the order given.
func NewWriter(w io.Writer, specs []Spec, metadata map[string]string) (*Writer, error) {
	hdr, sizes, err := EncodeHeader(specs, metadata)
	if err != nil {
		return nil, err
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(hdr)))
	if _, err := w.Write(prefix[:]); err != nil {
		return nil, fmt.Errorf("safetensors: writing header: %w", err)
	}
	if _, err := w.Write(hdr); err != nil {
		return nil, fmt.Errorf("safetensors: writing header: %w", err)
	}
	sw := &Writer{w: w, specs: specs, sizes: sizes}
	for _, s := range sizes {
		sw.total += s
	}
	return sw, nil
}

// Write writes data-section bytes; writing more than the specs declare is
// an ErrShapeMismatch.
func (sw *Writer) Write(p []byte) (int, error) {
	if int64(len(p)) > sw.total-sw.written {
		return 0, errorf(ErrShapeMismatch, sw.current(), "writing %d bytes past the declared %d-byte data section", int64(len(p))-(sw.total-sw.written), sw.total)
	}
	n, err := sw.w.Write(p)
	sw.written += int64(n)
	if err != nil {
		return n, fmt.Errorf("safetensors: writing tensor data: %w", err)
	}
	return n, nil
}

// current names the tensor the next data byte belongs to (for errors).
func (sw *Writer) current() string {
	off := sw.written
	for i, s := range sw.sizes {
		if off < s {
			return sw.specs[i].Name
		}
		off -= s
	}
	if len(sw.specs) > 0 {
		return sw.specs[len(sw.specs)-1].Name
	}
	return ""
}

// Close reports ErrTruncated if fewer bytes were written than declared. It
// does not close the underlying writer.
func (sw *Writer) Close() error {
	if sw.written != sw.total {
		return errorf(ErrTruncated, sw.current(), "only %d of %d data bytes written", sw.written, sw.total)
	}
	return nil
}

// EncodeHeader returns the JSON header for specs laid out in order (padded
// with spaces to a multiple of 8 bytes, so the data section starts 8-byte
// aligned) and each tensor's byte size. Metadata keys are written sorted.
func EncodeHeader(specs []Spec, metadata map[string]string) ([]byte, []int64, error) {
	sizes := make([]int64, len(specs))
	seen := make(map[string]struct{}, len(specs))
	b := []byte{'{'}
	if metadata != nil {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, `"__metadata__":{`...)
		for i, k := range keys {
			if !utf8.ValidString(k) || !utf8.ValidString(metadata[k]) {
				return nil, nil, errorf(ErrBadHeader, "__metadata__", "entry %q is not valid UTF-8", k)
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, metadata[k])
		}
		b = append(b, '}')
	}
	var off int64
	for i, s := range specs {
		if s.Name == "__metadata__" {
			return nil, nil, errorf(ErrBadHeader, s.Name, "reserved name")
		}
		if !utf8.ValidString(s.Name) {
			return nil, nil, errorf(ErrBadHeader, s.Name, "name is not valid UTF-8")
		}
		if _, dup := seen[s.Name]; dup {
			return nil, nil, errorf(ErrDuplicateTensor, s.Name, "the name appears twice")
		}
		seen[s.Name] = struct{}{}
		bits, ok := s.DType.Bits()
		if !ok {
			return nil, nil, errorf(ErrUnknownDType, s.Name, "dtype %q", s.DType)
		}
		n, ok := byteSize(s.Shape, bits)
		if !ok {
			return nil, nil, errorf(ErrShapeMismatch, s.Name, "shape %v of %s is invalid or overflows", s.Shape, s.DType)
		}
		sizes[i] = n
		if metadata != nil || i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s.Name)
		b = append(b, `:{"dtype":`...)
		b = appendString(b, string(s.DType))
		b = append(b, `,"shape":[`...)
		for j, d := range s.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(d), 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendInt(b, off, 10)
		b = append(b, ',')
		off += n
		b = strconv.AppendInt(b, off, 10)
		b = append(b, "]}"...)
	}
	b = append(b, '}')
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	if len(b) > MaxHeaderLen {
		return nil, nil, errorf(ErrHeaderTooLarge, "", "header would be %d bytes", len(b))
	}
	return b, sizes, nil
}

// appendString appends s as a JSON string literal.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
