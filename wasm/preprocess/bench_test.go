package preprocess

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"path/filepath"
	"sync"
	"testing"

	"github.com/imgembed/imgembed/wasm/imagefile"
)

var (
	bigOnce sync.Once
	bigJPEG []byte
	bigErr  error
)

// big12MP returns a deterministic 4000x3000 quality-90 JPEG: coffee.png
// upscaled (bilinear) plus a fixed pseudo-random texture of +-12 levels, so
// the entropy-coded data is as dense as a real camera photo's (about
// 3-4 MB), not the few hundred KB of a smooth upscale.
func big12MP(b *testing.B) []byte {
	bigOnce.Do(func() {
		var src image.Image
		src, bigErr = png.Decode(bytes.NewReader(readFile(b, filepath.Join(root, "images", "coffee.png"))))
		if bigErr != nil {
			return
		}
		sw, sh := src.Bounds().Dx(), src.Bounds().Dy()
		rgba := src.(*image.RGBA)
		const W, H = 4000, 3000
		m := image.NewRGBA(image.Rect(0, 0, W, H))
		seed := uint32(12345)
		for y := 0; y < H; y++ {
			fy := float64(y) * float64(sh-1) / float64(H-1)
			y0 := int(fy)
			y1 := min(y0+1, sh-1)
			wy := fy - float64(y0)
			for x := 0; x < W; x++ {
				fx := float64(x) * float64(sw-1) / float64(W-1)
				x0 := int(fx)
				x1 := min(x0+1, sw-1)
				wx := fx - float64(x0)
				seed = seed*1664525 + 1013904223
				noise := float64(int(seed>>24)%25 - 12)
				o := m.PixOffset(x, y)
				for c := 0; c < 3; c++ {
					p := func(xx, yy int) float64 { return float64(rgba.Pix[rgba.PixOffset(xx, yy)+c]) }
					v := (p(x0, y0)*(1-wx)+p(x1, y0)*wx)*(1-wy) + (p(x0, y1)*(1-wx)+p(x1, y1)*wx)*wy + noise
					m.Pix[o+c] = byte(min(max(v+0.5, 0), 255))
				}
				m.Pix[o+3] = 255
			}
		}
		var buf bytes.Buffer
		bigErr = jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90})
		bigJPEG = buf.Bytes()
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	return bigJPEG
}

// cpuMetric reports CPU milliseconds per op (process CPU time, all
// threads; GC included) next to wall time. Use as defer cpuMetric(b)().
func cpuMetric(b *testing.B) func() {
	b.ResetTimer()
	start := cpuNanos()
	return func() {
		b.StopTimer()
		if start != 0 && b.N > 0 {
			b.ReportMetric(float64(cpuNanos()-start)/1e6/float64(b.N), "cpu-ms/op")
		}
	}
}

// BenchmarkDecodePreprocess12MP: 12 MP JPEG bytes -> 3x224x224 tensor, the
// whole per-image CPU path in front of the model. Sub-benchmarks split it
// into the JPEG decode (Go's image/jpeg: entropy decoding + IDCT) and the
// colour conversion + resample + normalise that this project owns.
func BenchmarkDecodePreprocess12MP(b *testing.B) {
	data := big12MP(b)
	dst := make([]float32, 3*224*224)
	b.Run("total", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		defer cpuMetric(b)()
		for i := 0; i < b.N; i++ {
			rows, err := imagefile.DecodeRows(data, imagefile.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := CLIPRows(rows, 224, clipMean, clipStd, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		defer cpuMetric(b)()
		for i := 0; i < b.N; i++ {
			if _, _, err := imagefile.DecodeImage(data, imagefile.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	img, h, err := imagefile.DecodeImage(data, imagefile.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("convert+resize", func(b *testing.B) {
		defer cpuMetric(b)()
		for i := 0; i < b.N; i++ {
			if err := CLIPRows(imagefile.NewRows(img, h.Format), 224, clipMean, clipStd, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	rgb := imagefile.ToRGB(img, h.Format)
	b.Run("resize-only", func(b *testing.B) {
		// Crop-only resample + normalise from ready RGB (no conversion).
		defer cpuMetric(b)()
		for i := 0; i < b.N; i++ {
			if err := CLIP(rgb, 224, clipMean, clipStd, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full-RGB-path", func(b *testing.B) {
		// Decode to a full RGB image first (what Decode + CLIP costs).
		defer cpuMetric(b)()
		for i := 0; i < b.N; i++ {
			rgb := imagefile.ToRGB(img, h.Format)
			if err := CLIP(rgb, 224, clipMean, clipStd, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkResample12MP is the crop-only resample alone (4000x3000 RGB ->
// 224x224), on synthetic pixels: the part of the pipeline that is
// Pillow's algorithm, without decoding or colour conversion.
func BenchmarkResample12MP(b *testing.B) {
	const W, H = 4000, 3000
	m := &imagefile.RGB{Pix: make([]byte, 3*W*H), Width: W, Height: H}
	for i := range m.Pix {
		m.Pix[i] = byte(i*7 + i/4096)
	}
	defer cpuMetric(b)()
	for i := 0; i < b.N; i++ {
		if _, err := ResizeCrop(m, 224); err != nil {
			b.Fatal(err)
		}
	}
}
