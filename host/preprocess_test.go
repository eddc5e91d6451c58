package host

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/imgembed/imgembed/weights"
)

// TestEmbedderPreprocessGolden: Embedder.Preprocess (public API) matches the
// golden pixels of testdata/FIXTURES.md for the lossless fixture images on
// both engines, within the preprocessing tolerance there: mean absolute
// difference <= 0.05 of an 8-bit level, no value more than one level off.
func TestEmbedderPreprocessGolden(t *testing.T) {
	ctx := context.Background()
	for _, eng := range []Engine{EngineNative, EngineWasm} {
		t.Run(string(eng), func(t *testing.T) {
			e, err := New(ctx, Options{Engine: eng, Model: modelPath("tiny-f32"), CacheDir: testCache(t), Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			size := e.Config().ImageSize
			for _, img := range fixtureImages {
				got, err := e.Preprocess(ctx, filepath.Join(testdataDir, "images", img), size)
				if err != nil {
					t.Fatalf("%s: %v", img, err)
				}
				want := goldenPixels(t, size, img)
				if len(got) != len(want) || len(got) != 3*size*size {
					t.Fatalf("%s: %d values, golden %d, want %d", img, len(got), len(want), 3*size*size)
				}
				var sum, worst float64
				for i := range got {
					level := 1 / 255.0 / float64(weights.DefaultImageStd[i/(size*size)])
					d := math.Abs(float64(got[i])-float64(want[i])) / level
					sum += d
					worst = math.Max(worst, d)
				}
				mean := sum / float64(len(got))
				if mean > 0.05 || worst > 1+1e-3 {
					t.Errorf("%s: mean %.4f levels (want <= 0.05), max %.3f levels (want <= 1)", img, mean, worst)
				}
			}
		})
	}
}
