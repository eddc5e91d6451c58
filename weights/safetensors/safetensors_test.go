package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// file builds a safetensors file from a raw JSON header (padding not added)
// and a data section.
func file(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func read(b []byte) (*Header, error) { return ReadHeader(bytes.NewReader(b), int64(len(b))) }

func sampleTensors() []Tensor {
	f32 := make([]byte, 4*6)
	for i := range 6 {
		binary.LittleEndian.PutUint32(f32[4*i:], math.Float32bits(float32(i)+0.5))
	}
	return []Tensor{
		{Name: "b.f16", DType: F16, Shape: []int{3}, Data: []byte{0, 0x3c, 0, 0x40, 0, 0xc2}}, // 1, 2, -3
		{Name: "a.f32", DType: F32, Shape: []int{2, 3}, Data: f32},
		{Name: "ids", DType: I64, Shape: []int{1, 2}, Data: make([]byte, 16)},
		{Name: "scalar", DType: BF16, Shape: []int{}, Data: []byte{0x80, 0x3f}}, // 1.0
		{Name: "empty", DType: F32, Shape: []int{0, 5}, Data: nil},
		{Name: "q\"uote\\é\n", DType: U8, Shape: []int{2}, Data: []byte{7, 9}},
	}
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	meta := map[string]string{"format": "pt", "num_attention_heads": "2", "weird \"key\"": "v\\al\u2028"}
	if err := Write(&buf, sampleTensors(), meta); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	n := binary.LittleEndian.Uint64(b)
	if (8+n)%8 != 0 || b[8+n-1] != ' ' && b[8+n-1] != '}' {
		t.Fatalf("header of %d bytes not padded to 8 with spaces", n)
	}
	f, err := NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Metadata, meta) {
		t.Errorf("metadata %q, want %q", f.Metadata, meta)
	}
	if len(f.Tensors) != 6 {
		t.Fatalf("%d tensors", len(f.Tensors))
	}
	for i, ti := range f.Tensors {
		if ti.Begin%8 != 0 && ti.DType == I64 || ti.Begin%4 != 0 && ti.DType == F32 {
			t.Errorf("%s at %d is not aligned", ti.Name, ti.Begin)
		}
		if i > 0 && ti.Begin != f.Tensors[i-1].End {
			t.Errorf("not contiguous at %s", ti.Name)
		}
	}
	for _, want := range sampleTensors() {
		got, ti, err := f.Bytes(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Data) || ti.DType != want.DType || !reflect.DeepEqual(ti.Shape, want.Shape) {
			t.Errorf("%s: got %v %v %v", want.Name, ti.DType, ti.Shape, got)
		}
	}
	v, _, err := f.Float32("a.f32")
	if err != nil || !reflect.DeepEqual(v, []float32{0.5, 1.5, 2.5, 3.5, 4.5, 5.5}) {
		t.Errorf("a.f32 = %v, %v", v, err)
	}
	v, _, err = f.Float32("b.f16")
	if err != nil || !reflect.DeepEqual(v, []float32{1, 2, -3}) {
		t.Errorf("b.f16 = %v, %v", v, err)
	}
	v, _, err = f.Float32("scalar")
	if err != nil || !reflect.DeepEqual(v, []float32{1}) {
		t.Errorf("scalar = %v, %v", v, err)
	}
	if _, _, err := f.Float32("ids"); !errors.Is(err, ErrUnsupportedDType) {
		t.Errorf("I64 as float: %v", err)
	}
	if _, _, err := f.Bytes("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tensor: %v", err)
	}
}

func TestWriterStreaming(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, []Spec{{"x", F32, []int{4}}, {"y", F16, []int{2}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 { // 20 bytes in odd-sized chunks
		if _, err := w.Write([]byte{byte(i), 1, 2, 3}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte{1}); !errors.Is(err, ErrShapeMismatch) {
		t.Errorf("write past end: %v", err)
	}
	h, err := read(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if h.Metadata != nil || len(h.Tensors) != 2 {
		t.Fatalf("%+v", h)
	}
	w, _ = NewWriter(&bytes.Buffer{}, []Spec{{"x", F32, []int{4}}}, nil)
	w.Write(make([]byte, 15))
	var fe *FormatError
	if err := w.Close(); !errors.Is(err, ErrTruncated) || !errors.As(err, &fe) || fe.Tensor != "x" {
		t.Errorf("short write: %v", err)
	}
	if err := Write(&bytes.Buffer{}, []Tensor{{"x", F32, []int{2}, make([]byte, 7)}}, nil); !errors.Is(err, ErrShapeMismatch) {
		t.Errorf("wrong data size: %v", err)
	}
	for _, specs := range [][]Spec{
		{{"x", F32, []int{1}}, {"x", F32, []int{1}}},
		{{"x", "F17", []int{1}}},
		{{"x", F32, []int{-1}}},
		{{"x", F32, []int{math.MaxInt32, math.MaxInt32, math.MaxInt32}}},
		{{"__metadata__", F32, []int{1}}},
	} {
		if _, err := NewWriter(&bytes.Buffer{}, specs, nil); err == nil {
			t.Errorf("NewWriter(%v) accepted", specs)
		}
	}
}

// hostile lists malformed files and the sentinel each must produce.
func hostile() []struct {
	name   string
	data   []byte
	want   error
	tensor string
} {
	ok := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	big := make([]byte, 8)
	binary.LittleEndian.PutUint64(big, 1<<63)
	neg := make([]byte, 8)
	binary.LittleEndian.PutUint64(neg, math.MaxUint64) // -1 as int64
	nested := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}}`
	return []struct {
		name   string
		data   []byte
		want   error
		tensor string
	}{
		{"empty", nil, ErrNotSafetensors, ""},
		{"3 bytes", []byte{1, 2, 3}, ErrTruncated, ""},
		{"short text", []byte("null"), ErrNotSafetensors, ""},
		{"html", []byte("<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>404</body></html>"), ErrNotSafetensors, ""},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>`), ErrNotSafetensors, ""},
		{"json file", []byte(`{"error":"Entry not found"}`), ErrNotSafetensors, ""},
		{"length 2^63", append(big, ok...), ErrHeaderTooLarge, ""},
		{"length -1", append(neg, ok...), ErrHeaderTooLarge, ""},
		{"length past end", file(ok, make([]byte, 8))[:20], ErrTruncated, ""},
		{"length 0", file("", nil), ErrNotSafetensors, ""},
		{"header not object", file(`["a"]    `, nil), ErrNotSafetensors, ""},
		{"header truncated json", file(`{"a":{"dtype":"F32"`, nil), ErrBadHeader, "a"},
		{"trailing garbage", file(`{} x`, nil), ErrBadHeader, ""},
		{"bad utf8", file("{\"a\xff\":{}}", nil), ErrBadHeader, ""},
		{"no dtype", file(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), ErrBadHeader, "a"},
		{"no shape", file(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, make([]byte, 8)), ErrBadHeader, "a"},
		{"no offsets", file(`{"a":{"dtype":"F32","shape":[2]}}`, make([]byte, 8)), ErrBadHeader, "a"},
		{"unknown dtype", file(`{"a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), ErrUnknownDType, "a"},
		{"dtype not string", file(`{"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), ErrBadHeader, "a"},
		{"duplicate", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), ErrDuplicateTensor, "a"},
		{"negative offset", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, make([]byte, 8)), ErrBadOffsets, "a"},
		{"reversed offsets", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}`, make([]byte, 8)), ErrBadOffsets, "a"},
		{"three offsets", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}}`, make([]byte, 8)), ErrBadOffsets, "a"},
		{"float offset", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}}`, make([]byte, 8)), ErrBadOffsets, "a"},
		{"huge offset", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999]}}`, make([]byte, 8)), ErrBadOffsets, "a"},
		{"not from 0", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), ErrBadOffsets, "a"},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), ErrBadOffsets, "b"},
		{"gap", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), ErrBadOffsets, "b"},
		{"past end", file(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, make([]byte, 8)), ErrTruncated, "a"},
		{"trailing data", file(ok, make([]byte, 12)), ErrBadOffsets, ""},
		{"shape mismatch", file(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8)), ErrShapeMismatch, "a"},
		{"negative dim", file(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, make([]byte, 8)), ErrShapeMismatch, "a"},
		{"shape overflow", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`, nil), ErrShapeMismatch, "a"},
		{"shape overflow bytes", file(`{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}`, nil), ErrShapeMismatch, "a"},
		{"shape wraps to size", file(`{"a":{"dtype":"U8","shape":[4294967296,4294967296,4294967296,4294967296,8],"data_offsets":[0,8]}}`, make([]byte, 8)), ErrShapeMismatch, "a"},
		{"dimension too big", file(`{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}}`, make([]byte, 8)), ErrShapeMismatch, "a"},
		{"partial byte", file(`{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, make([]byte, 2)), ErrShapeMismatch, "a"},
		{"deep nesting", file(nested, make([]byte, 8)), ErrBadHeader, "a"},
		{"deep metadata", file(`{"__metadata__":`+strings.Repeat(`{"a":`, 1000)+`}`, nil), ErrBadHeader, "__metadata__"},
		{"metadata number", file(`{"__metadata__":{"a":1}}`, nil), ErrBadHeader, "__metadata__"},
		{"metadata twice", file(`{"__metadata__":{},"__metadata__":{}}`, nil), ErrDuplicateTensor, "__metadata__"},
		{"control char", file("{\"a\n\":{}}", nil), ErrBadHeader, ""},
		{"unpaired surrogate", file(`{"\ud800":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, nil), ErrBadHeader, ""},
	}
}

func TestHostile(t *testing.T) {
	for _, c := range hostile() {
		_, err := read(c.data)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
			continue
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: %T is not a *FormatError", c.name, err)
			continue
		}
		if fe.Tensor != c.tensor {
			t.Errorf("%s: error names tensor %q, want %q (%v)", c.name, fe.Tensor, c.tensor, err)
		}
	}
}

func TestAccepted(t *testing.T) {
	for name, data := range map[string][]byte{
		"no tensors":       file(`{}`, nil),
		"only metadata":    file(`{"__metadata__":{"k":"v"}}`, nil),
		"null metadata":    file(`{"__metadata__":null,"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}`, []byte{1}),
		"whitespace":       file("{ \"a\" : { \"shape\" : [ 2 ] , \"dtype\" : \"I32\", \"data_offsets\" : [ 0 , 8 ] } }\t ", make([]byte, 8)),
		"unknown field":    file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":{"x":[1,2.5e3,true,null,"s"]}}}`, make([]byte, 8)),
		"escapes":          file(`{"a\u00e9\ud83d\ude00\/\n":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, []byte{1}),
		"zero sized":       file(`{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)),
		"sub-byte":         file(`{"a":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}`, make([]byte, 2)),
		"unsorted in json": file(`{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 8)),
	} {
		h, err := read(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for i, ti := range h.Tensors {
			if i > 0 && h.Tensors[i-1].End != ti.Begin {
				t.Errorf("%s: tensors not sorted/contiguous", name)
			}
			if got, ok := h.Tensor(ti.Name); !ok || got.Begin != ti.Begin {
				t.Errorf("%s: lookup of %q failed", name, ti.Name)
			}
		}
	}
	h, _ := read(file(`{"a\u00e9\ud83d\ude00\/\n":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, []byte{1}))
	if _, ok := h.Tensor("aé😀/\n"); !ok {
		t.Errorf("escaped name decoded as %q", h.Names())
	}
	h, _ = read(file(`{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 8)))
	if h.Tensors[0].Name != "a" || h.Tensors[0].Begin != h.DataStart || h.Tensors[1].End != h.DataStart+8 {
		t.Errorf("absolute offsets / order wrong: %+v", h.Tensors)
	}
}

// sparse is a ReaderAt claiming a huge size, serving a prefix and zeros,
// and counting the bytes asked for.
type sparse struct {
	prefix []byte
	asked  int64
}

func (s *sparse) ReadAt(p []byte, off int64) (int, error) {
	s.asked += int64(len(p))
	for i := range p {
		p[i] = 0
		if off+int64(i) < int64(len(s.prefix)) {
			p[i] = s.prefix[off+int64(i)]
		}
	}
	return len(p), nil
}

func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func TestHostileLengthsAllocateNothing(t *testing.T) {
	for _, n := range []uint64{1 << 63, math.MaxUint64, MaxHeaderLen + 1, 1 << 40} {
		s := &sparse{prefix: binary.LittleEndian.AppendUint64(nil, n)}
		s.prefix = append(s.prefix, '{')
		var err error
		a := allocated(func() { _, err = ReadHeader(s, 1<<62) })
		if !errors.Is(err, ErrHeaderTooLarge) {
			t.Errorf("length %d: %v", n, err)
		}
		if a > 64<<10 || s.asked > 9 {
			t.Errorf("length %d: allocated %d bytes, read %d", n, a, s.asked)
		}
	}
	// A plausible length beyond a small file: refused before allocating.
	small := file(strings.Repeat(" ", 50), nil)
	binary.LittleEndian.PutUint64(small, 90<<20)
	small[8] = '{'
	var err error
	a := allocated(func() { _, err = read(small) })
	if !errors.Is(err, ErrTruncated) || a > 64<<10 {
		t.Errorf("90 MB header in a 58-byte file: %v, allocated %d", err, a)
	}
}

func TestLargeHeaderBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are inflated under -race")
	}
	// 20 MB of valid JSON padding (the reference accepts whitespace): memory
	// stays within a small multiple of the file size.
	hdr := "{" + strings.Repeat(" ", 20<<20) + "}"
	b := file(hdr, nil)
	var err error
	a := allocated(func() { _, err = read(b) })
	if err != nil {
		t.Fatal(err)
	}
	if a > uint64(len(b))+1<<20 {
		t.Errorf("allocated %d bytes for a %d-byte file", a, len(b))
	}
	// Many tensors: structures stay within a small multiple of the header.
	var sb strings.Builder
	sb.WriteString("{")
	const n = 20000
	for i := range n {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"t%d":{"dtype":"U8","shape":[1],"data_offsets":[%d,%d]}`, i, i, i+1)
	}
	sb.WriteString("}")
	b = file(sb.String(), make([]byte, n))
	a = allocated(func() { _, err = read(b) })
	if err != nil {
		t.Fatal(err)
	}
	if a > 4*uint64(len(b)) { // TensorInfo (72 bytes) is larger than its shortest JSON
		t.Errorf("allocated %d bytes for a %d-byte header", a, len(b))
	}
}

func TestHeaderLenAndParseHeader(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, sampleTensors(), nil); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	n, err := HeaderLen(b[:8])
	if err != nil {
		t.Fatal(err)
	}
	h1, err := ParseHeader(b[8:8+n], int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	h2, err := ParseHeader(b[8:8+n], -1) // size unknown: streaming
	if err != nil {
		t.Fatal(err)
	}
	h3, _ := read(b)
	if !reflect.DeepEqual(h1.Tensors, h3.Tensors) || !reflect.DeepEqual(h2.Tensors, h3.Tensors) || h1.DataStart != 8+n {
		t.Error("ParseHeader disagrees with ReadHeader")
	}
	if _, err := ParseHeader(b[8:8+n], int64(len(b))+1); !errors.Is(err, ErrBadOffsets) {
		t.Errorf("file size too large: %v", err)
	}
	if _, err := ParseHeader(b[8:8+n], int64(len(b))-1); !errors.Is(err, ErrTruncated) {
		t.Errorf("file size too small: %v", err)
	}
	if _, err := HeaderLen(b[:5]); !errors.Is(err, ErrTruncated) {
		t.Errorf("5-byte prefix: %v", err)
	}
}

func TestFixtures(t *testing.T) {
	f32, err := Open("../../testdata/models/tiny-f32.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f32.Close()
	f16, err := Open("../../testdata/models/tiny-f16.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f16.Close()
	if len(f32.Tensors) != 41 || f32.Metadata["num_attention_heads"] != "2" {
		t.Fatalf("tiny-f32: %d tensors, metadata %v", len(f32.Tensors), f32.Metadata)
	}
	// The F16 file holds the same weights rounded: every decoded value must
	// equal the F32 value rounded to F16.
	for _, ti := range f32.Tensors {
		if ti.DType != F32 {
			continue // position_ids
		}
		a, _, err := f32.Float32(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		b, tb, err := f16.Float32(ti.Name)
		if err != nil || tb.DType != F16 || !reflect.DeepEqual(tb.Shape, ti.Shape) {
			t.Fatalf("%s: %v %v", ti.Name, err, tb)
		}
		for i := range a {
			if Float16ToFloat32(Float32ToFloat16(a[i])) != b[i] {
				t.Fatalf("%s[%d]: f32 %v rounds to %v, file has %v", ti.Name, i, a[i], Float16ToFloat32(Float32ToFloat16(a[i])), b[i])
			}
		}
	}
	// Data read from the fixture matches a direct decode of the file bytes.
	raw, err := os.ReadFile("../../testdata/models/tiny-f32.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	ti, _ := f32.Tensor("visual_projection.weight")
	v, _, _ := f32.Float32(ti.Name)
	if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[ti.End-4:])); v[len(v)-1] != got || len(v) != 32*128 {
		t.Errorf("last value %v, file %v", v[len(v)-1], got)
	}
}

// f16ref decodes binary16 by the textbook formula, in float64.
func f16ref(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	switch e {
	case 0:
		return s * m * math.Pow(2, -24)
	case 31:
		if m != 0 {
			return math.NaN()
		}
		return s * math.Inf(1)
	}
	return s * (1 + m/1024) * math.Pow(2, float64(e-15))
}

func TestFloat16Exhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := float64(Float16ToFloat32(h))
		want := f16ref(h)
		if math.IsNaN(want) {
			if !math.IsNaN(got) {
				t.Fatalf("%04x: %v, want NaN", h, got)
			}
			if Float32ToFloat16(float32(got))&0x7c00 != 0x7c00 || Float32ToFloat16(float32(got))&0x3ff == 0 {
				t.Fatalf("NaN %04x re-encodes as %04x", h, Float32ToFloat16(float32(got)))
			}
			continue
		}
		if got != want || math.Signbit(got) != math.Signbit(want) {
			t.Fatalf("%04x: %v, want %v", h, got, want)
		}
		if back := Float32ToFloat16(float32(got)); back != h {
			t.Fatalf("%04x round-trips to %04x", h, back)
		}
	}
}

// nearestF16 finds the correctly rounded binary16 of x by search.
func nearestF16(x float32) uint16 {
	if math.IsInf(float64(x), 0) || math.Abs(float64(x)) >= 65520 { // 65520 is the halfway point to 2^16
		if x < 0 {
			return 0xfc00
		}
		return 0x7c00
	}
	best := uint16(0)
	bestD := math.Inf(1)
	sign := uint16(0)
	if math.Signbit(float64(x)) {
		sign = 0x8000
	}
	ax := math.Abs(float64(x))
	lo, hi := 0, 0x7bff
	for lo < hi { // largest magnitude <= ax
		mid := (lo + hi + 1) / 2
		if f16ref(uint16(mid)) <= ax {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	for _, c := range []int{lo, lo + 1} {
		if c > 0x7c00 {
			continue
		}
		d := math.Abs(f16ref(uint16(c)) - ax)
		if d < bestD || d == bestD && c&1 == 0 {
			best, bestD = uint16(c), d
		}
	}
	return sign | best
}

func TestFloat32ToFloat16Rounding(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(x float32) {
		if got, want := Float32ToFloat16(x), nearestF16(x); got != want {
			t.Fatalf("%g (%08x): got %04x, want %04x", x, math.Float32bits(x), got, want)
		}
	}
	for range 200000 {
		check(math.Float32frombits(r.Uint32()&0x8fffffff | 0x30000000)) // around the f16 range
		check(float32(r.NormFloat64() * 0.02))
	}
	// Exact halfway points between neighbours (ties to even), incl. subnormals.
	for i := 0; i < 0x7bff; i++ {
		mid := float32((f16ref(uint16(i)) + f16ref(uint16(i+1))) / 2)
		check(mid)
		check(-mid)
	}
	check(65519.99)
	check(65520)
	check(1e-9)
}

func TestBFloat16(t *testing.T) {
	for _, c := range []struct {
		in   float32
		want uint16
	}{{1, 0x3f80}, {-2, 0xc000}, {float32(math.Inf(1)), 0x7f80},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie, even stays
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, odd rounds up
		{math.Float32frombits(0x3f808001), 0x3f81}} {
		if got := Float32ToBFloat16(c.in); got != c.want {
			t.Errorf("%v: %04x, want %04x", c.in, got, c.want)
		}
	}
	if got := Float32ToBFloat16(float32(math.NaN())); got&0x7f80 != 0x7f80 || got&0x7f == 0 {
		t.Errorf("NaN -> %04x", got)
	}
	src := []float32{1.5, -0.25, 3e38, 1e-40}
	buf := make([]byte, 8)
	if err := EncodeFloat32(BF16, src, buf); err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 4)
	if err := DecodeFloat32(BF16, buf, dst); err != nil {
		t.Fatal(err)
	}
	for i := range src {
		if d := math.Abs(float64(dst[i]-src[i])) / math.Max(math.Abs(float64(src[i])), 1e-38); d > 1.0/256 {
			t.Errorf("%v -> %v", src[i], dst[i])
		}
	}
}

func TestDecodeAllF16(t *testing.T) {
	src := make([]byte, 2<<16)
	for i := range 1 << 16 {
		binary.LittleEndian.PutUint16(src[2*i:], uint16(i))
	}
	dst := make([]float32, 1<<16)
	if err := DecodeFloat32(F16, src, dst); err != nil {
		t.Fatal(err)
	}
	for i, v := range dst {
		if math.Float32bits(v) != math.Float32bits(Float16ToFloat32(uint16(i))) {
			t.Fatalf("%04x: %v", i, v)
		}
	}
	// F32 from an odd (unaligned) offset.
	raw := make([]byte, 1+4*3)
	for i, v := range []float32{1, -2, float32(math.Inf(1))} {
		binary.LittleEndian.PutUint32(raw[1+4*i:], math.Float32bits(v))
	}
	out := make([]float32, 3)
	if err := DecodeFloat32(F32, raw[1:], out); err != nil || out[0] != 1 || out[1] != -2 || !math.IsInf(float64(out[2]), 1) {
		t.Fatal(out, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	if err := DecodeFloat32(F32, make([]byte, 7), make([]float32, 2)); !errors.Is(err, ErrShapeMismatch) {
		t.Error(err)
	}
	if err := DecodeFloat32("F17", nil, nil); !errors.Is(err, ErrUnknownDType) {
		t.Error(err)
	}
	if err := DecodeFloat32(I32, nil, nil); !errors.Is(err, ErrUnsupportedDType) {
		t.Error(err)
	}
	src := []float32{1, -2.5, 1e-3}
	for _, d := range []DType{F32, F64, F16} {
		size, _ := d.Size()
		b := make([]byte, size*3)
		if err := EncodeFloat32(d, src, b); err != nil {
			t.Fatal(err)
		}
		out := make([]float32, 3)
		if err := DecodeFloat32(d, b, out); err != nil {
			t.Fatal(err)
		}
		if out[0] != 1 || out[1] != -2.5 || math.Abs(float64(out[2])-1e-3) > 1e-6 {
			t.Errorf("%s: %v", d, out)
		}
	}
}

func BenchmarkDecodeF16(b *testing.B) {
	src := make([]byte, 2<<20)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range src {
		src[i] = byte(r.Uint32())
	}
	dst := make([]float32, len(src)/2)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		DecodeFloat32(F16, src, dst)
	}
}

func BenchmarkDecodeF16Weights(b *testing.B) {
	// Realistic: N(0, 0.02) weights, as in CLIP checkpoints.
	r := rand.New(rand.NewPCG(1, 1))
	vals := make([]float32, 1<<20)
	for i := range vals {
		vals[i] = float32(r.NormFloat64() * 0.02)
	}
	src := make([]byte, 2*len(vals))
	EncodeFloat32(F16, vals, src)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		DecodeFloat32(F16, src, vals)
	}
}

func BenchmarkDecodeF32(b *testing.B) {
	src := make([]byte, 4<<20)
	dst := make([]float32, len(src)/4)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		DecodeFloat32(F32, src, dst)
	}
}

func BenchmarkReadHeaderB32(b *testing.B) {
	data, err := os.ReadFile("../../testdata/models/b32l2-f16.safetensors")
	if err != nil {
		b.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(data)
	data = data[:8+n] // header only; the size passed is the real one
	size := int64(33946120)
	b.SetBytes(int64(n))
	for b.Loop() {
		if _, err := ParseHeader(data[8:], size); err != nil {
			b.Fatal(err)
		}
	}
}

func TestInternCoversEveryDType(t *testing.T) {
	for d := range dtypeBits {
		if got, ok := intern([]byte(d)); !ok || got != d {
			t.Errorf("intern(%q) = %q, %v", d, got, ok)
		}
	}
	if _, ok := intern([]byte("f32")); ok {
		t.Error("dtype names are case-sensitive")
	}
}

func TestRandomBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		data := make([]byte, r.IntN(4096))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		if i%2 == 1 && len(data) >= 9 {
			// A plausible length prefix makes the parser look at the JSON.
			binary.LittleEndian.PutUint64(data, uint64(r.IntN(len(data)-8)+1))
			data[8] = '{'
		}
		_, err := read(data)
		var fe *FormatError
		if err == nil || !errors.As(err, &fe) || fe.Err == nil {
			t.Fatalf("random %d bytes: %v", len(data), err)
		}
	}
}
