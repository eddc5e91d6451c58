package weights

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/imgembed/imgembed/weights/safetensors"
)

func TestQuantizeInt8RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rows, cols := 7, 48
	vals := make([]float32, rows*cols)
	for i := range vals {
		vals[i] = float32(r.NormFloat64()) * float32(1+i/cols) // a different range per row
	}
	vals[5] = 40          // an outlier in row 0
	for i := range cols { // an all-zero row
		vals[3*cols+i] = 0
	}
	for _, groups := range []int{1, 4} {
		q := make([]byte, len(vals))
		scales := make([]float32, rows*groups)
		if err := QuantizeInt8(vals, rows, groups, q, scales); err != nil {
			t.Fatal(err)
		}
		glen := cols / groups
		got := make([]float32, len(vals))
		// Decoded in odd-sized chunks that straddle groups and rows.
		for off := 0; off < len(vals); off += 37 {
			end := min(len(vals), off+37)
			if err := safetensors.DequantizeInt8(q[off:end], scales, glen, off, got[off:end]); err != nil {
				t.Fatal(err)
			}
		}
		for i, v := range vals {
			s := scales[i/glen]
			if int8(q[i]) == -128 {
				t.Fatalf("groups %d: value %d quantised to -128", groups, i)
			}
			if d := math.Abs(float64(got[i] - v)); d > float64(s)/2*1.0001 {
				t.Fatalf("groups %d: value %d: %g -> %g (scale %g): error beyond half a step", groups, i, v, got[i], s)
			}
		}
		for g := 0; g < groups; g++ { // the zero row
			if scales[3*groups+g] != 0 {
				t.Fatalf("zero row scale %g", scales[3*groups+g])
			}
		}
	}
	if err := QuantizeInt8([]float32{1, float32(math.NaN())}, 1, 1, make([]byte, 2), make([]float32, 1)); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("NaN weight: %v", err)
	}
}

// convertTiny converts the tiny F32 fixture to int8 in memory.
func convertTiny(t *testing.T, group int) (*safetensors.File, *safetensors.File, Config) {
	t.Helper()
	src := openFixture(t, "tiny-f32")
	cfg, err := ConfigFrom(src.Header, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ConvertWith(&buf, src, cfg, ConvertOptions{DType: safetensors.I8, GroupSize: group}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.NewFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return src, f, cfg
}

// TestConvertInt8: every matMul weight is I8 with an F32 scale per output
// channel, everything else F16, the scheme is in the metadata, the config
// reads back, the layout is aligned, and every dequantised value is within
// half a quantisation step of the source.
func TestConvertInt8(t *testing.T) {
	for _, group := range []int{0, 32} {
		src, f, cfg := convertTiny(t, group)
		if f.Metadata[MetaQuant] != QuantInt8 || f.Metadata[MetaQuantVersion] != QuantVersion {
			t.Fatalf("metadata %v", f.Metadata)
		}
		got, err := ConfigFrom(f.Header, nil)
		if err != nil || got.HiddenSize != cfg.HiddenSize || got.NumHeads != cfg.NumHeads {
			t.Fatalf("config %+v, %v", got, err)
		}
		dec := NewDecoder(f.Header, f.ReadAt)
		dec.Chunk = 1000 // chunks that do not fall on rows
		nq := 0
		for _, name := range VisionTensorNames(cfg) {
			ti, _ := f.Tensor(name)
			if ti.Begin%int64(max(1, func() int { s, _ := ti.DType.Size(); return s }())) != 0 {
				t.Errorf("%s at %d: misaligned for %s", name, ti.Begin, ti.DType)
			}
			want, _, err := src.Float32(name)
			if err != nil {
				t.Fatal(err)
			}
			vals, _, err := dec.Float32(name)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !IsMatMulWeight(name) {
				if ti.DType != safetensors.F16 {
					t.Errorf("%s: %s, want F16", name, ti.DType)
				}
				continue
			}
			nq++
			l, err := CheckInt8(f.Header, name)
			if err != nil {
				t.Fatal(err)
			}
			if l.Scale.DType != safetensors.F32 {
				t.Errorf("%s scale %s", name, l.Scale.DType)
			}
			if group > 0 && l.GroupLen != group || group == 0 && l.Groups != 1 {
				t.Errorf("%s: layout %+v for group size %d", name, l, group)
			}
			scales, _, _ := f.Float32(ScaleName(name))
			for i, v := range want {
				s := scales[i/l.GroupLen]
				if d := math.Abs(float64(vals[i] - v)); d > float64(s)/2*1.0001 {
					t.Fatalf("%s[%d]: %g -> %g, scale %g", name, i, v, vals[i], s)
				}
			}
		}
		if want := 2 + 6*cfg.NumLayers; nq != want {
			t.Errorf("%d int8 tensors, want %d", nq, want)
		}
	}
}

// rewrite copies f's tensors into a new file after edit changes them.
func rewrite(t *testing.T, f *safetensors.File, meta map[string]string, edit func(ts []safetensors.Tensor) []safetensors.Tensor) *safetensors.File {
	t.Helper()
	var ts []safetensors.Tensor
	for _, ti := range f.Tensors {
		b, _, err := f.Bytes(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b})
	}
	ts = edit(ts)
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	out, err := safetensors.NewFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMalformedInt8: a file that breaks the scheme fails ConfigFrom with an
// error that is both ErrMissingTensors and ErrInvalidQuant, naming the
// tensor.
func TestMalformedInt8(t *testing.T) {
	_, f, _ := convertTiny(t, 0)
	const w = "vision_model.encoder.layers.1.mlp.fc1.weight"
	meta := func(drop string) map[string]string {
		m := map[string]string{}
		for k, v := range f.Metadata {
			if k != drop {
				m[k] = v
			}
		}
		return m
	}
	edit := func(fn func(*safetensors.Tensor) bool) func([]safetensors.Tensor) []safetensors.Tensor {
		return func(ts []safetensors.Tensor) []safetensors.Tensor {
			var out []safetensors.Tensor
			for i := range ts {
				if fn(&ts[i]) {
					out = append(out, ts[i])
				}
			}
			return out
		}
	}
	keep := edit(func(*safetensors.Tensor) bool { return true })
	cases := map[string]*safetensors.File{
		"missing scale": rewrite(t, f, meta(""), edit(func(x *safetensors.Tensor) bool { return x.Name != ScaleName(w) })),
		"scale shape": rewrite(t, f, meta(""), edit(func(x *safetensors.Tensor) bool {
			if x.Name == ScaleName(w) {
				x.Shape = []int{x.Shape[0] / 2}
				x.Data = x.Data[:len(x.Data)/2]
			}
			return true
		})),
		"scale rows": rewrite(t, f, meta(""), edit(func(x *safetensors.Tensor) bool {
			if x.Name == ScaleName(w) { // [512] -> [256, 2]: wrong row count
				x.Shape = []int{x.Shape[0] / 2, 2}
			}
			return true
		})),
		"scale groups not dividing the row": rewrite(t, f, meta(""), edit(func(x *safetensors.Tensor) bool {
			if x.Name == ScaleName(w) { // [512] -> [512, 3]: 3 does not divide 128
				x.Shape = []int{x.Shape[0], 3}
				x.Data = append(append(append([]byte(nil), x.Data...), x.Data...), x.Data...)
			}
			return true
		})),
		"scale dtype": rewrite(t, f, meta(""), edit(func(x *safetensors.Tensor) bool {
			if x.Name == ScaleName(w) {
				x.DType = safetensors.I32
			}
			return true
		})),
		"no scheme in metadata":  rewrite(t, f, meta(MetaQuant), keep),
		"unknown scheme version": rewrite(t, f, func() map[string]string { m := meta(""); m[MetaQuantVersion] = "9"; return m }(), keep),
		"unknown quant scheme":   rewrite(t, f, func() map[string]string { m := meta(""); m[MetaQuant] = "int4-awq"; return m }(), keep),
	}
	for name, h := range cases {
		_, err := ConfigFrom(h.Header, nil)
		if !errors.Is(err, ErrInvalidQuant) || !errors.Is(err, ErrMissingTensors) {
			t.Errorf("%s: %v, want ErrInvalidQuant", name, err)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
	// A NaN scale passes the header checks and fails when decoded.
	h := rewrite(t, f, meta(""), edit(func(x *safetensors.Tensor) bool {
		if x.Name == ScaleName(w) {
			x.Data = append([]byte(nil), x.Data...)
			copy(x.Data[8:], []byte{0, 0, 0xc0, 0x7f})
		}
		return true
	}))
	if _, err := ConfigFrom(h.Header, nil); err != nil {
		t.Fatalf("NaN scale: header check: %v", err)
	}
	if _, _, err := NewDecoder(h.Header, h.ReadAt).Float32(w); !errors.Is(err, ErrInvalidQuant) {
		t.Fatalf("NaN scale decoded: %v", err)
	}
	// A dtype the decoder cannot read.
	raw := NewDecoder(h.Header, h.ReadAt)
	raw.CheckFinite = false // the NaN in it is the point of this file
	if _, _, err := raw.Float32(ScaleName(w)); err != nil {
		t.Fatalf("reading a scale tensor itself: %v", err)
	}
}

func TestGetIntoAndMemoryGetter(t *testing.T) {
	own := []float32{1, 2, 3}
	ignoring := func(string, []float32) ([]float32, []int, error) { return own, []int{3}, nil }
	buf := make([]float32, 4)
	v, shape, err := GetInto(ignoring, "x", buf)
	if err != nil || len(v) != 3 || &v[0] != &buf[0] || v[2] != 3 || shape[0] != 3 {
		t.Errorf("GetInto with room in buf: %v %v %v (not in buf)", v, shape, err)
	}
	v[0] = 9
	if own[0] != 1 {
		t.Error("GetInto handed out the getter's storage")
	}
	if v, _, _ := GetInto(ignoring, "x", nil); &v[0] != &own[0] {
		t.Error("GetInto without a buf copied")
	}
	g := MemoryGetter(map[string][]float32{"a": {4, 5}}, map[string][]int{"a": {2}})
	v, _, err = g("a", nil)
	if err != nil || len(v) != 2 || v[1] != 5 {
		t.Fatalf("MemoryGetter: %v %v", v, err)
	}
	v[0] = 0
	if w, _, _ := g("a", make([]float32, 0, 8)); w[0] != 4 || cap(w) != 8 {
		t.Errorf("MemoryGetter's storage changed through a result, or buf unused: %v", w)
	}
	if _, _, err := g("b", nil); err == nil {
		t.Error("MemoryGetter: no error for a missing tensor")
	}
}
