package safetensors

import (
	"cmp"
	"encoding/binary"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxHeaderLen is the largest header accepted, as in the reference
// implementation (100 MB). Real checkpoints use a few hundred kilobytes.
const MaxHeaderLen = 100 << 20

// maxDepth bounds the nesting of JSON values in unknown fields. The format
// itself needs depth 3; anything deeper is skipped up to this limit and then
// rejected, so hostile nesting costs neither stack nor memory.
const maxDepth = 32

// TensorInfo describes one tensor. Begin and End are ABSOLUTE file offsets
// (header included), so data is file[Begin:End].
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	Begin int64
	End   int64
}

// NumElements is the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Len is the tensor's byte length, End-Begin.
func (t TensorInfo) Len() int64 { return t.End - t.Begin }

// Header is a parsed and validated safetensors header.
type Header struct {
	Metadata  map[string]string // the __metadata__ object; nil if absent
	Tensors   []TensorInfo      // sorted by Begin
	DataStart int64             // 8 + header length: where tensor data begins

	byName []int32 // indexes into Tensors, sorted by name
}

// Tensor returns the tensor called name.
func (h *Header) Tensor(name string) (TensorInfo, bool) {
	if h.byName != nil {
		i, ok := slices.BinarySearchFunc(h.byName, name, func(j int32, name string) int {
			return strings.Compare(h.Tensors[j].Name, name)
		})
		if !ok {
			return TensorInfo{}, false
		}
		return h.Tensors[h.byName[i]], true
	}
	for _, t := range h.Tensors { // a Header built by hand
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// Names returns the tensor names in file order.
func (h *Header) Names() []string {
	out := make([]string, len(h.Tensors))
	for i, t := range h.Tensors {
		out[i] = t.Name
	}
	return out
}

// HeaderLen decodes the 8-byte header-length prefix. It rejects lengths
// above MaxHeaderLen (ErrHeaderTooLarge) and prefixes that are plainly text,
// such as an HTML error page or an SVG served instead of the model
// (ErrNotSafetensors). The caller must still check that the header fits in
// the file (ParseHeader does, given the file size).
func HeaderLen(first8 []byte) (int64, error) {
	if len(first8) == 0 {
		return 0, errorf(ErrNotSafetensors, "", "empty file")
	}
	if len(first8) < 8 {
		if looksText(first8) {
			return 0, errorf(ErrNotSafetensors, "", "file is %d bytes of text %q", len(first8), first8)
		}
		return 0, errorf(ErrTruncated, "", "file is %d bytes, shorter than the 8-byte header length", len(first8))
	}
	n := binary.LittleEndian.Uint64(first8[:8])
	if n <= MaxHeaderLen {
		if n < 2 {
			return 0, errorf(ErrNotSafetensors, "", "header length %d cannot hold a JSON object", n)
		}
		return int64(n), nil
	}
	// Eight printable bytes are >= 0x2020202020202020 as a length: never a
	// real header, always some text file.
	if looksText(first8[:8]) {
		return 0, errorf(ErrNotSafetensors, "", "it starts with the text %q", first8[:8])
	}
	if kind := otherFormat(first8); kind != "" {
		return 0, errorf(ErrNotSafetensors, "", "it looks like %s", kind)
	}
	return 0, errorf(ErrHeaderTooLarge, "", "header length %d exceeds the %d-byte limit", n, MaxHeaderLen)
}

// otherFormat names the format of a file commonly picked by mistake as
// the model (an image, a PyTorch or GGUF checkpoint, an archive), from its
// first bytes; "" if none matches.
func otherFormat(b []byte) string {
	for _, f := range []struct{ magic, kind string }{
		{"\x89PNG", "a PNG image"},
		{"\xff\xd8\xff", "a JPEG image"},
		{"GIF8", "a GIF image"},
		{"RIFF", "a RIFF file (a WebP image?)"},
		{"II*\x00", "a TIFF image"},
		{"MM\x00*", "a TIFF image"},
		{"BM", "a BMP image"},
		{"PK\x03\x04", "a zip archive (a PyTorch .bin/.pt checkpoint?)"},
		{"GGUF", "a GGUF checkpoint"},
		{"\x1f\x8b", "a gzip file"},
	} {
		if strings.HasPrefix(string(b), f.magic) {
			return f.kind
		}
	}
	return ""
}

func looksText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c >= 0x7f {
			return false
		}
	}
	return true
}

// ReadHeader reads and validates the header of the safetensors file held by
// r, whose total size is size. It reads only the header: at most
// min(size, 8+MaxHeaderLen) bytes, and allocates nothing before the header
// length has been checked against both.
func ReadHeader(r io.ReaderAt, size int64) (*Header, error) {
	if size < 0 {
		return nil, errorf(ErrTruncated, "", "negative file size %d", size)
	}
	var first [9]byte
	k := int64(len(first))
	if size < k {
		k = size
	}
	if err := readFull(r, first[:k], 0); err != nil {
		return nil, &FormatError{Reason: "reading header length: " + err.Error(), Err: ErrTruncated}
	}
	n, err := HeaderLen(first[:min(k, 8)])
	if err != nil {
		return nil, err
	}
	if k == 9 && first[8] != '{' {
		return nil, errorf(ErrNotSafetensors, "", "header does not start with '{' (byte 0x%02x)", first[8])
	}
	if n > size-8 {
		return nil, errorf(ErrTruncated, "", "header length %d but the file has only %d bytes after the length", n, size-8)
	}
	buf := make([]byte, n)
	if err := readFull(r, buf, 8); err != nil {
		return nil, &FormatError{Reason: "reading header: " + err.Error(), Err: ErrTruncated}
	}
	return ParseHeader(buf, size)
}

// ParseHeader parses and validates a header (the JSON bytes after the
// 8-byte length) for streaming loaders that hold only a prefix of the file.
// fileSize is the total file size; pass -1 when it is not known, which skips
// only the check that the last tensor ends exactly at the end of the file.
// Tensor offsets in the result are absolute (8+len(jsonBytes)+relative).
func ParseHeader(jsonBytes []byte, fileSize int64) (*Header, error) {
	if len(jsonBytes) > MaxHeaderLen {
		return nil, errorf(ErrHeaderTooLarge, "", "header length %d exceeds the %d-byte limit", len(jsonBytes), MaxHeaderLen)
	}
	dataStart := 8 + int64(len(jsonBytes))
	if fileSize >= 0 && fileSize < dataStart {
		return nil, errorf(ErrTruncated, "", "header of %d bytes does not fit in a %d-byte file", len(jsonBytes), fileSize)
	}
	if len(jsonBytes) == 0 || jsonBytes[0] != '{' {
		return nil, errorf(ErrNotSafetensors, "", "header is not a JSON object")
	}
	if !utf8.Valid(jsonBytes) {
		return nil, errorf(ErrBadHeader, "", "header is not valid UTF-8")
	}
	p := parser{b: jsonBytes}
	h, err := p.header()
	if err != nil {
		return nil, err
	}
	h.DataStart = dataStart
	if err := h.validate(fileSize); err != nil {
		return nil, err
	}
	return h, nil
}

// validate converts relative offsets to absolute ones and checks that the
// tensors tile the data section: sorted by offset, first at 0, each starting
// where the previous ended, each exactly as long as its shape needs.
func (h *Header) validate(fileSize int64) error {
	slices.SortStableFunc(h.Tensors, func(a, b TensorInfo) int {
		if c := cmp.Compare(a.Begin, b.Begin); c != 0 {
			return c
		}
		return cmp.Compare(a.End, b.End)
	})
	limit := int64(math.MaxInt64) - h.DataStart
	if fileSize >= 0 {
		limit = fileSize - h.DataStart
	}
	var prev int64
	for i := range h.Tensors {
		t := &h.Tensors[i]
		if t.Begin != prev {
			if t.Begin < prev {
				return errorf(ErrBadOffsets, t.Name, "data_offsets [%d, %d] overlap the previous tensor, which ends at %d", t.Begin, t.End, prev)
			}
			return errorf(ErrBadOffsets, t.Name, "data_offsets [%d, %d] leave a gap after offset %d", t.Begin, t.End, prev)
		}
		if t.End > limit {
			return errorf(ErrTruncated, t.Name, "data_offsets [%d, %d] run past the end of the data section (%d bytes)", t.Begin, t.End, limit)
		}
		bits, _ := t.DType.Bits()
		want, ok := byteSize(t.Shape, bits)
		if !ok {
			return errorf(ErrShapeMismatch, t.Name, "shape %v of %s does not fit in int64 bytes or covers a partial byte", t.Shape, t.DType)
		}
		if want != t.End-t.Begin {
			return errorf(ErrShapeMismatch, t.Name, "shape %v of %s needs %d bytes but data_offsets [%d, %d] hold %d", t.Shape, t.DType, want, t.Begin, t.End, t.End-t.Begin)
		}
		prev = t.End
	}
	if fileSize >= 0 && prev != limit {
		return errorf(ErrBadOffsets, "", "tensors cover %d bytes but the data section holds %d", prev, limit)
	}
	if len(h.Tensors) > math.MaxInt32 {
		return errorf(ErrBadHeader, "", "%d tensors", len(h.Tensors))
	}
	h.byName = make([]int32, len(h.Tensors))
	for i := range h.Tensors {
		t := &h.Tensors[i]
		t.Begin += h.DataStart
		t.End += h.DataStart
		h.byName[i] = int32(i)
	}
	slices.SortFunc(h.byName, func(a, b int32) int { return strings.Compare(h.Tensors[a].Name, h.Tensors[b].Name) })
	for i := 1; i < len(h.byName); i++ {
		if name := h.Tensors[h.byName[i]].Name; name == h.Tensors[h.byName[i-1]].Name {
			return errorf(ErrDuplicateTensor, name, "the name appears twice in the header")
		}
	}
	return nil
}

// byteSize returns prod(shape)*bits/8, or false on overflow, a negative
// dimension, or a total that is not a whole number of bytes. An overflow is
// rejected even when a later dimension is 0, as in the reference.
func byteSize(shape []int, bits int) (int64, bool) {
	n := int64(1)
	zero := false
	for _, d := range shape {
		switch {
		case d < 0:
			return 0, false
		case d == 0:
			zero = true
			continue
		case n > math.MaxInt64/int64(d):
			return 0, false
		}
		n *= int64(d)
	}
	if zero {
		return 0, true
	}
	if n > math.MaxInt64/int64(bits) {
		return 0, false
	}
	b := n * int64(bits)
	if b%8 != 0 {
		return 0, false
	}
	return b / 8, true
}

// readFull reads len(buf) bytes at off; io.ReaderAt may report io.EOF
// together with a complete read, which is success.
func readFull(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
