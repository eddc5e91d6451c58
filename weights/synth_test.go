package weights

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/weights/safetensors"
)

func synth(t testing.TB, cfg Config, opts SynthOptions) *safetensors.File {
	t.Helper()
	var buf bytes.Buffer
	if err := Synthesize(&buf, cfg, opts); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.NewFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSynthesizeConfigRoundTrip(t *testing.T) {
	for _, preset := range []string{"tiny", "b32"} {
		cfg := Preset(preset)
		cfg.NumLayers = 2
		for _, opts := range []SynthOptions{
			{Seed: 1}, {Seed: 2, DType: safetensors.F16, Full: true}, {Seed: 3, DType: safetensors.BF16, Bare: true},
		} {
			f := synth(t, cfg, opts)
			got, err := ConfigFrom(f.Header, nil)
			if err != nil {
				t.Fatalf("%s %+v: %v", preset, opts, err)
			}
			if got != cfg {
				t.Errorf("%s %+v: config %+v, want %+v", preset, opts, got, cfg)
			}
			if _, ok := f.Tensor("logit_scale"); ok != opts.Full {
				t.Errorf("%s %+v: logit_scale present = %v", preset, opts, ok)
			}
			if _, ok := f.Metadata["num_attention_heads"]; ok == opts.Bare {
				t.Errorf("%s %+v: metadata %v", preset, opts, f.Metadata)
			}
			for _, ti := range f.Tensors {
				if size, _ := ti.DType.Size(); (ti.Begin-f.DataStart)%int64(size) != 0 {
					t.Errorf("%s misaligned", ti.Name)
				}
			}
		}
	}
}

func TestSynthesizeValues(t *testing.T) {
	cfg := Preset("tiny")
	a := synth(t, cfg, SynthOptions{Seed: 7})
	ln, _, _ := a.Float32("vision_model.encoder.layers.1.layer_norm2.weight")
	lb, _, _ := a.Float32("vision_model.pre_layrnorm.bias")
	for i := range ln {
		if ln[i] != 1 || lb[i] != 0 {
			t.Fatalf("LayerNorm init: weight %v bias %v", ln[i], lb[i])
		}
	}
	w, _, _ := a.Float32("vision_model.encoder.layers.0.mlp.fc1.weight")
	var sum, sq float64
	for _, v := range w {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	mean, std := sum/float64(len(w)), math.Sqrt(sq/float64(len(w)))
	if math.Abs(mean) > 1e-3 || math.Abs(std-0.02) > 1e-3 {
		t.Errorf("fc1 weight mean %g std %g, want 0, 0.02", mean, std)
	}
	bias, _, _ := a.Float32("vision_model.encoder.layers.0.mlp.fc1.bias")
	nonzero := 0
	for _, v := range bias {
		if v != 0 && math.Abs(float64(v)) < 0.06 {
			nonzero++
		}
	}
	if nonzero < len(bias)*9/10 {
		t.Errorf("biases not small random: %d/%d", nonzero, len(bias))
	}

	// Same seed: identical; other seed: different; per-tensor streams: a
	// 1-layer model shares layer 0 with the 2-layer one.
	same := synth(t, cfg, SynthOptions{Seed: 7})
	other := synth(t, cfg, SynthOptions{Seed: 8})
	one := cfg
	one.NumLayers = 1
	short := synth(t, one, SynthOptions{Seed: 7})
	const name = "vision_model.encoder.layers.0.self_attn.k_proj.weight"
	x, _, _ := a.Float32(name)
	y, _, _ := same.Float32(name)
	z, _, _ := other.Float32(name)
	s, _, _ := short.Float32(name)
	if !slices.Equal(x, y) || !slices.Equal(x, s) || slices.Equal(x, z) {
		t.Error("seeding is not deterministic per tensor")
	}
	// F16 output holds the F32 values rounded.
	h := synth(t, cfg, SynthOptions{Seed: 7, DType: safetensors.F16})
	xh, ti, _ := h.Float32(name)
	for i := range x {
		if safetensors.Float16ToFloat32(safetensors.Float32ToFloat16(x[i])) != xh[i] || ti.DType != safetensors.F16 {
			t.Fatalf("f16 value %d: %v vs %v", i, xh[i], x[i])
		}
	}
}

func TestFullFileLayersIgnoreText(t *testing.T) {
	cfg := Preset("tiny")
	cfg.NumLayers = 1
	f := synth(t, cfg, SynthOptions{Seed: 1, Full: true, Bare: true})
	if _, ok := f.Tensor("text_model.encoder.layers.0.mlp.fc1.weight"); !ok {
		t.Fatal("no text layer written")
	}
	got, err := ConfigFrom(f.Header, nil)
	if err != nil || got.NumLayers != 1 {
		t.Fatalf("layers %d, err %v", got.NumLayers, err)
	}
}

func TestConvertFullClipToF16(t *testing.T) {
	src := openFixture(t, "tiny-fullclip-f32")
	cfg, err := ConfigFrom(src.Header, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v.safetensors")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Convert(out, src, cfg, safetensors.F16); err != nil {
		t.Fatal(err)
	}
	out.Close()
	dst, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if len(dst.Tensors) != len(VisionTensors(cfg)) {
		t.Errorf("%d tensors written, want the %d vision ones", len(dst.Tensors), len(VisionTensors(cfg)))
	}
	for _, ti := range dst.Tensors {
		if strings.HasPrefix(ti.Name, "text") || ti.Name == "logit_scale" || strings.HasSuffix(ti.Name, "position_ids") {
			t.Errorf("non-vision tensor %s kept", ti.Name)
		}
	}
	back, err := ConfigFrom(dst.Header, nil)
	if err != nil || back != cfg {
		t.Fatalf("config read back %+v, %v; want %+v", back, err, cfg)
	}
	for _, name := range VisionTensorNames(cfg) {
		a, _, _ := src.Float32(name)
		b, ti, err := dst.Float32(name)
		if err != nil || ti.DType != safetensors.F16 {
			t.Fatal(name, err)
		}
		for i := range a {
			if safetensors.Float16ToFloat32(safetensors.Float32ToFloat16(a[i])) != b[i] {
				t.Fatalf("%s[%d]: %v -> %v", name, i, a[i], b[i])
			}
		}
	}
	// The metadata must win over inference: a converted file with a
	// non-default head count keeps it.
	cfg4 := cfg
	cfg4.NumHeads = 4
	var buf bytes.Buffer
	if err := Convert(&buf, src, cfg4, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	f4, _ := safetensors.NewFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if got, err := ConfigFrom(f4.Header, nil); err != nil || got.NumHeads != 4 {
		t.Errorf("heads %d, %v", got.NumHeads, err)
	}
}

func TestConvertOutOfRange(t *testing.T) {
	var buf bytes.Buffer
	cfg := Preset("tiny")
	cfg.NumLayers = 1
	shapes := VisionTensors(cfg)
	var ts []safetensors.Tensor
	for _, n := range VisionTensorNames(cfg) {
		k := 1
		for _, d := range shapes[n] {
			k *= d
		}
		vals := make([]float32, k)
		if n == keyProj {
			vals[5] = 1e6
			vals[7] = math.MaxFloat32 // rounds up to +Inf in BF16
		}
		data := make([]byte, 4*k)
		safetensors.EncodeFloat32(safetensors.F32, vals, data)
		ts = append(ts, safetensors.Tensor{Name: n, DType: safetensors.F32, Shape: shapes[n], Data: data})
	}
	if err := safetensors.Write(&buf, ts, nil); err != nil {
		t.Fatal(err)
	}
	f, _ := safetensors.NewFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	err := Convert(&bytes.Buffer{}, f, cfg, safetensors.F16)
	if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), keyProj) {
		t.Fatalf("err %v", err)
	}
	err = Convert(&bytes.Buffer{}, f, cfg, safetensors.BF16)
	if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), keyProj+"[7]") {
		t.Fatalf("BF16: err %v", err)
	}
	if err := Convert(&bytes.Buffer{}, f, cfg, safetensors.F32); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkSynthesizeB32(b *testing.B) {
	cfg := Preset("b32")
	for b.Loop() {
		var n countWriter
		if err := Synthesize(&n, cfg, SynthOptions{Seed: 1}); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(n))
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

func TestSynthesizeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b16.safetensors")
	cfg := Preset("b16")
	cfg.NumLayers = 1
	if err := SynthesizeFile(path, cfg, SynthOptions{Seed: 3, DType: safetensors.BF16}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := ConfigFrom(f.Header, nil); err != nil || got != cfg {
		t.Fatalf("%+v %v", got, err)
	}
	// The position table spans several random chunks: all must be filled.
	v, _, _ := f.Float32("vision_model.embeddings.position_embedding.weight")
	zeros := 0
	for _, x := range v {
		if x == 0 {
			zeros++
		}
	}
	if len(v) != 197*768 || zeros > 10 {
		t.Errorf("%d values, %d zeros", len(v), zeros)
	}
	bad := cfg
	bad.NumHeads = 5
	if err := SynthesizeFile(path, bad, SynthOptions{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("invalid config: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("failed synthesis left %s", path)
	}
}
