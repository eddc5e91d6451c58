package vit

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

func cosine(a, b []float32) float64 {
	var dot, aa, bb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(aa*bb)
}

// TestInt8Fixture: the committed tiny-int8 fixture (made by
// `imgembed-weights convert --dtype int8` from tiny-f32) reproduces the F32
// goldens at cosine >= 0.999 from the golden pixels, one at a time and as a
// batch.
func TestInt8Fixture(t *testing.T) {
	o := native.New(0)
	m := openModel(t, o, "tiny-int8")
	defer m.Dispose()
	golden := readGolden(t, "embed-tiny-f32.json")
	var batch []float32
	for _, p := range photos {
		px := readPixels(t, m.Config().ImageSize, p)
		batch = append(batch, px...)
		got, err := m.Forward(px, 1)
		if err != nil {
			t.Fatal(err)
		}
		cos := cosine(got[0], golden["images/"+p])
		t.Logf("%s: cosine %.6f to the F32 golden", p, cos)
		if cos < 0.999 {
			t.Errorf("%s: cosine %.6f, want >= 0.999", p, cos)
		}
	}
	got, err := m.Forward(batch, len(photos))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range photos {
		if cos := cosine(got[i], golden["images/"+p]); cos < 0.999 {
			t.Errorf("batch %s: cosine %.6f, want >= 0.999", p, cos)
		}
	}
}

// TestInt8FixtureIsConverterOutput: the committed fixture is exactly what
// the converter makes from tiny-f32 today (so the fixture cannot drift from
// the scheme the loaders read).
func TestInt8FixtureIsConverterOutput(t *testing.T) {
	src, err := safetensors.Open(filepath.Join(testdata, "models", "tiny-f32.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg, err := weights.ConfigFrom(src.Header, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := weights.Convert(&buf, src, cfg, safetensors.I8); err != nil {
		t.Fatal(err)
	}
	committed := readFile(t, filepath.Join(testdata, "models", "tiny-int8.safetensors"))
	if !bytes.Equal(buf.Bytes(), committed) {
		t.Fatalf("testdata/models/tiny-int8.safetensors (%d bytes) differs from the converter's output (%d bytes): regenerate it with imgembed-weights convert --dtype int8", len(committed), buf.Len())
	}
}

// TestInt8GroupScales: per-group scales load through the same path and are
// at least as accurate as per-channel ones on the tiny model.
func TestInt8GroupScales(t *testing.T) {
	src, err := safetensors.Open(filepath.Join(testdata, "models", "tiny-f32.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg, err := weights.ConfigFrom(src.Header, nil)
	if err != nil {
		t.Fatal(err)
	}
	golden := readGolden(t, "embed-tiny-f32.json")
	o := native.New(0)
	for _, g := range []int{0, 64} {
		var buf bytes.Buffer
		if err := weights.ConvertWith(&buf, src, cfg, weights.ConvertOptions{DType: safetensors.I8, GroupSize: g}); err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.NewFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		if g > 0 {
			s, _ := f.Tensor(weights.ScaleName("vision_model.encoder.layers.0.mlp.fc2.weight"))
			if !slices.Equal(s.Shape, []int{cfg.HiddenSize, cfg.IntermediateSize / g}) {
				t.Fatalf("group %d: fc2 scale shape %v", g, s.Shape)
			}
		}
		m, err := LoadFile(o, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		worst := 1.0
		for _, p := range photos {
			got, err := m.Forward(readPixels(t, cfg.ImageSize, p), 1)
			if err != nil {
				t.Fatal(err)
			}
			worst = min(worst, cosine(got[0], golden["images/"+p]))
		}
		m.Dispose()
		t.Logf("group size %d: %d bytes, worst cosine %.6f", g, buf.Len(), worst)
		if worst < 0.999 {
			t.Errorf("group size %d: worst cosine %.6f", g, worst)
		}
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
