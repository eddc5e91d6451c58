package preprocess

import (
	"bytes"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/imgembed/imgembed/wasm/imagefile"
)

var (
	clipMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	clipStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
	photos   = []string{"astronaut.png", "chelsea.png", "coffee.png"}
)

// root is the repository's testdata directory (tests run in the package dir).
const root = "../../testdata"

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// levelStats compares got with want in units of one 8-bit level per channel
// (1/255/std[c]) and returns the mean and max absolute difference.
func levelStats(got, want []float32, size int) (mean, maxd float64) {
	n := size * size
	sum := 0.0
	for i := range want {
		level := 1 / 255.0 / float64(clipStd[i/n])
		d := math.Abs(float64(got[i])-float64(want[i])) / level
		sum += d
		maxd = math.Max(maxd, d)
	}
	return sum / float64(len(want)), maxd
}

func TestGoldenPNG(t *testing.T) {
	for _, size := range []int{224, 64} {
		for _, name := range photos {
			img, err := imagefile.Decode(readFile(t, filepath.Join(root, "images", name)), imagefile.Options{})
			if err != nil {
				t.Fatal(err)
			}
			want, err := readF32(filepath.Join(root, "golden", "pixels-"+strconv.Itoa(size), name+".f32"))
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != 3*size*size {
				t.Fatalf("%s: golden has %d values", name, len(want))
			}
			got := make([]float32, 3*size*size)
			if err := CLIP(img, size, clipMean, clipStd, got); err != nil {
				t.Fatal(err)
			}
			mean, maxd := levelStats(got, want, size)
			t.Logf("%s @%d: mean %.4f levels, max %.3f levels", name, size, mean, maxd)
			if mean > 0.05 || maxd > 1.0001 {
				t.Errorf("%s @%d: mean %.4f (limit 0.05), max %.3f (limit 1) levels off the golden", name, size, mean, maxd)
			}
		}
	}
}

// TestJPEGVsPillowDecode holds our JPEG decoding to the project's JPEG
// tolerance (mean <= 0.5 level) against what Pillow's decoder
// (libjpeg-turbo, via djpeg) made of the same files, after preprocessing
// both the same way. See ../imagefile/testdata/README.md.
func TestJPEGVsPillowDecode(t *testing.T) {
	for _, sub := range []string{"420", "444"} {
		ours, err := imagefile.DecodeRows(readFile(t, "../imagefile/testdata/chelsea-q95-"+sub+".jpg"), imagefile.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := imagefile.Decode(readFile(t, "../imagefile/testdata/chelsea-q95-"+sub+".djpeg.png"), imagefile.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{224, 64} {
			got := make([]float32, 3*size*size)
			want := make([]float32, 3*size*size)
			if err := CLIPRows(ours, size, clipMean, clipStd, got); err != nil {
				t.Fatal(err)
			}
			if err := CLIP(ref, size, clipMean, clipStd, want); err != nil {
				t.Fatal(err)
			}
			mean, maxd := levelStats(got, want, size)
			t.Logf("chelsea q95 %s @%d: mean %.4f, max %.0f levels off Pillow's decode", sub, size, mean, maxd)
			if mean > 0.5 || maxd > 4 {
				t.Errorf("chelsea q95 %s @%d: mean %.4f (limit 0.5), max %.0f (limit 4) levels", sub, size, mean, maxd)
			}
		}
	}
}

// TestGoldenJPEG re-encodes the photos as JPEG with Go's encoder (quality
// 95, always 4:2:0) and compares with the PNG goldens. At 64 px the
// downscale averages compression noise away and the JPEG tolerance (mean
// <= 0.5 level) holds. At 224 px it cannot hold for any decoder: Pillow's
// own decode of such files lands 0.5-1.4 levels off (measured with djpeg
// on q95 files), because the noise is the encoder's, so there we only
// guard against gross errors.
func TestGoldenJPEG(t *testing.T) {
	for _, size := range []int{224, 64} {
		for _, name := range photos {
			src, err := png.Decode(bytes.NewReader(readFile(t, filepath.Join(root, "images", name))))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 95}); err != nil {
				t.Fatal(err)
			}
			rows, err := imagefile.DecodeRows(buf.Bytes(), imagefile.Options{})
			if err != nil {
				t.Fatal(err)
			}
			want, err := readF32(filepath.Join(root, "golden", "pixels-"+strconv.Itoa(size), name+".f32"))
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, 3*size*size)
			if err := CLIPRows(rows, size, clipMean, clipStd, got); err != nil {
				t.Fatal(err)
			}
			mean, maxd := levelStats(got, want, size)
			t.Logf("%s as q95 JPEG @%d: mean %.4f levels, max %.0f levels", name, size, mean, maxd)
			limit := 0.5
			if size == 224 {
				limit = 1.6
			}
			if mean > limit {
				t.Errorf("%s as q95 JPEG @%d: mean %.4f levels (limit %.1f)", name, size, mean, limit)
			}
		}
	}
}
