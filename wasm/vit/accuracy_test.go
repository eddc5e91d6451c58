package vit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/imgembed/imgembed/wasm/imagefile"
	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/wasm/preprocess"
	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// cropRows is a window of a decoded image.
type cropRows struct {
	src        imagefile.Rows
	x, y, w, h int
	flip       bool
	buf        []byte
}

func (c *cropRows) Size() (int, int) { return c.w, c.h }
func (c *cropRows) Row(y, x0, x1 int, dst []byte) {
	if !c.flip {
		c.src.Row(c.y+y, c.x+x0, c.x+x1, dst)
		return
	}
	if cap(c.buf) < 3*c.w {
		c.buf = make([]byte, 3*c.w)
	}
	c.src.Row(c.y+y, c.x, c.x+c.w, c.buf[:3*c.w])
	for x := x0; x < x1; x++ {
		s := c.w - 1 - x
		copy(dst[3*(x-x0):3*(x-x0)+3], c.buf[3*s:3*s+3])
	}
}

// accuracyInputs: the golden pixels of the three photos, then 24 crops and
// mirror images of each photo (different framings, so the comparison is
// not over three inputs only).
func accuracyInputs(t *testing.T, size int) (names []string, px [][]float32) {
	for _, p := range photos {
		names = append(names, "golden "+p)
		px = append(px, readPixels(t, size, p))
	}
	for _, p := range photos {
		data := readFile(t, filepath.Join(testdata, "images", p))
		rows, err := imagefile.DecodeRows(data, imagefile.Options{})
		if err != nil {
			t.Fatal(err)
		}
		w, h := rows.Size()
		for _, frac := range []float64{1, 0.8, 0.6, 0.45} {
			cw, ch := int(float64(w)*frac), int(float64(h)*frac)
			for k, pos := range [][2]float64{{0, 0}, {1, 1}, {0.5, 0.5}} {
				for _, flip := range []bool{false, true} {
					if frac == 1 && k > 0 {
						continue
					}
					c := &cropRows{src: rows, x: int(float64(w-cw) * pos[0]), y: int(float64(h-ch) * pos[1]), w: cw, h: ch, flip: flip}
					dst := make([]float32, 3*size*size)
					if err := preprocess.CLIPRows(c, size, weights.DefaultImageMean, weights.DefaultImageStd, dst); err != nil {
						t.Fatal(err)
					}
					names = append(names, fmt.Sprintf("%s crop %.2f@%v flip=%v", p, frac, pos, flip))
					px = append(px, dst)
				}
			}
		}
	}
	return names, px
}

// TestQuantAccuracy compares the int8 (per channel and per group of 128)
// and F16 conversions of a big F32 model with the F32 model itself, over
// accuracyInputs, and prints the distribution of cosines and the file
// sizes. It needs a model: IMGEMBED_ACCURACY_MODEL=build/bench/b32.safetensors
// (make bench-accuracy). Fails if any int8 cosine is below 0.999.
func TestQuantAccuracy(t *testing.T) {
	path := os.Getenv("IMGEMBED_ACCURACY_MODEL")
	if path == "" {
		t.Skip("set IMGEMBED_ACCURACY_MODEL to an F32 safetensors file (e.g. build/bench/b32.safetensors, made by make bench-mem)")
	}
	src, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg, err := weights.ConfigFrom(src.Header, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := native.New(0)
	names, inputs := accuracyInputs(t, cfg.ImageSize)
	embed := func(f *safetensors.File) [][]float32 {
		m, err := LoadFile(o, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Dispose()
		var out [][]float32
		for _, px := range inputs {
			e, err := m.Forward(px, 1)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e[0])
		}
		return out
	}
	ref := embed(src)
	for _, v := range []struct {
		name string
		o    weights.ConvertOptions
	}{
		{"int8 per channel", weights.ConvertOptions{DType: safetensors.I8}},
		{"int8 group 128", weights.ConvertOptions{DType: safetensors.I8, GroupSize: 128}},
		{"F16", weights.ConvertOptions{DType: safetensors.F16}},
	} {
		var buf bytes.Buffer
		if err := weights.ConvertWith(&buf, src, cfg, v.o); err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.NewFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		got := embed(f)
		cs := make([]float64, len(got))
		worst := 0
		for i := range got {
			cs[i] = cosine(got[i], ref[i])
			if cs[i] < cs[worst] {
				worst = i
			}
		}
		sorted := slices.Clone(cs)
		slices.Sort(sorted)
		var mean float64
		for _, c := range cs {
			mean += c
		}
		mean /= float64(len(cs))
		q := func(p float64) float64 { return sorted[int(p*float64(len(sorted)-1))] }
		t.Logf("%-16s %6.2f MB: n=%d cosine to F32 min %.6f (%s) p10 %.6f median %.6f mean %.6f max %.6f",
			v.name, float64(buf.Len())/1e6, len(cs), sorted[0], names[worst], q(0.1), q(0.5), mean, sorted[len(sorted)-1])
		if v.o.DType == safetensors.I8 && sorted[0] < 0.999 {
			t.Errorf("%s: min cosine %.6f < 0.999", v.name, sorted[0])
		}
	}
}
