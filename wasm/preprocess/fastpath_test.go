package preprocess

import (
	"bytes"
	"fmt"
	"image"
	"math/rand"
	"runtime"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/wasm/imagefile"
)

// reference is ResizeCrop on the plain Go path: scalar horizontal pass,
// one goroutine.
func reference(t *testing.T, src imagefile.Rows, size int) []byte {
	t.Helper()
	saved := hasAVX2
	hasAVX2 = false
	defer func() { hasAVX2 = saved }()
	out, err := ResizeCropThreads(src, size, 1)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// texture fills b with a smooth ramp, noise and hard 0/255 edges (the
// edges make bicubic overshoot, so clipping is exercised).
func texture(rnd *rand.Rand, b []byte, w int) {
	for i := range b {
		x, y := i%w, i/w
		v := (x*5+y*3)%256 + rnd.Intn(60) - 30
		if (x/3+y/5)%2 == 0 {
			v = 255 - v
		}
		if rnd.Intn(50) == 0 {
			v = 255 * rnd.Intn(2)
		}
		b[i] = byte(min(max(v, 0), 255))
	}
}

// TestFastPathsMatchReference: the vector horizontal pass (AVX2 on amd64)
// and the row split over goroutines give byte for byte what the scalar
// single-goroutine resample gives, on RGB and on JPEG/WebP-style YCbCr
// sources of every subsampling, odd sizes, downscales and upscales. The
// split threshold is lowered so that small images are split too.
func TestFastPathsMatchReference(t *testing.T) {
	if !hasAVX2 && runtime.GOOS == "js" {
		// One goroutine and the Go pass: both sides would be the same code.
		t.Skip("no vector pass and no row split under GOOS=js")
	}
	saved := minSplit
	minSplit = 1
	defer func() { minSplit = saved }()
	rnd := rand.New(rand.NewSource(11))
	sizes := [][2]int{{4000, 3000}, {3000, 4000}, {1001, 777}, {777, 1001}, {640, 480}, {451, 300}, {300, 451},
		{225, 224}, {224, 224}, {250, 1000}, {1000, 250}, {97, 61}, {61, 97}, {31, 5}, {1, 9}, {9, 1}, {3, 3}}
	ratios := []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410}
	type source struct {
		name string
		rows func() imagefile.Rows
	}
	for _, sz := range sizes {
		w, h := sz[0], sz[1]
		rgb := &imagefile.RGB{Pix: make([]byte, 3*w*h), Width: w, Height: h}
		texture(rnd, rgb.Pix, 3*w)
		srcs := []source{{"rgb", func() imagefile.Rows { return rgb }}}
		for i, r := range ratios {
			if w*h > 2e6 && i%2 == 1 { // keep the test quick: half the ratios at 12 MP
				continue
			}
			m := image.NewYCbCr(image.Rect(0, 0, w, h), r)
			texture(rnd, m.Y, m.YStride)
			texture(rnd, m.Cb, m.CStride)
			texture(rnd, m.Cr, m.CStride)
			for _, format := range []string{imagefile.FormatJPEG, imagefile.FormatWebP} {
				if format == imagefile.FormatWebP && r != image.YCbCrSubsampleRatio420 {
					continue // lossy WebP is always 4:2:0
				}
				srcs = append(srcs, source{fmt.Sprintf("%v-%s", r, format), func() imagefile.Rows { return imagefile.NewRows(m, format) }})
			}
		}
		for _, src := range srcs {
			for _, size := range []int{224, 97, 8} {
				if w*h > 2e6 && size != 224 {
					continue
				}
				want := reference(t, src.rows(), size)
				for _, threads := range []int{1, 2, 3, 5} {
					got, err := ResizeCropThreads(src.rows(), size, threads)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("%dx%d %s @%d, %d threads (vector pass %v): differs from the reference", w, h, src.name, size, threads, hasAVX2)
					}
				}
			}
		}
	}
}

// TestVectorPassUsed: on an amd64 machine with AVX2 a 12 MP resample gets
// a vector plan (so TestFastPathsMatchReference compared that path), and
// windows the vector pass could not read in bounds get none.
func TestVectorPassUsed(t *testing.T) {
	if !hasAVX2 {
		t.Skip("no vector horizontal pass on this machine")
	}
	ws := coeffs(4000, 298, 37, 224)
	if newHPlan(ws, ws[0].min+1) != nil {
		t.Fatal("a plan whose first window starts left of its line")
	}
	p := newHPlan(ws, ws[0].min)
	if p == nil {
		t.Fatal("no vector plan for a 12 MP resample")
	}
	if p.kp%8 != 0 || p.kp < 54 || len(p.mins) != 224 || p.mins[0] != 0 {
		t.Fatalf("plan kp %d, %d windows", p.kp, len(p.mins))
	}
}

// panicRows panics on one row, as a decoder bug hit by hostile data might.
type panicRows struct {
	imagefile.Rows
	bad int
}

func (p panicRows) Row(y, x0, x1 int, dst []byte) {
	if y == p.bad {
		panic("bad row")
	}
	p.Rows.Row(y, x0, x1, dst)
}

// TestSplitPanicIsError: a panic in any goroutine of a split resample
// comes back as CLIPRowsThreads's error, after every goroutine has ended.
func TestSplitPanicIsError(t *testing.T) {
	saved := minSplit
	minSplit = 1
	defer func() { minSplit = saved }()
	const w, h = 300, 200
	rgb := &imagefile.RGB{Pix: make([]byte, 3*w*h), Width: w, Height: h}
	dst := make([]float32, 3*224*224)
	for _, bad := range []int{0, h / 2, h - 1} {
		err := CLIPRowsThreads(panicRows{rgb, bad}, 224, clipMean, clipStd, dst, 3)
		if err == nil || !strings.Contains(err.Error(), "bad row") {
			t.Errorf("row %d panics: err = %v, want the panic as an error", bad, err)
		}
	}
	if err := CLIPRowsThreads(panicRows{rgb, -1}, 224, clipMean, clipStd, dst, 3); err != nil {
		t.Fatal(err)
	}
}

// FuzzFastPaths: for any image size, crop size and pixels, the vector
// passes and a split over goroutines give the scalar one-goroutine bytes
// (RGB and 4:2:0 YCbCr sources). The seeds run in every `go test`.
func FuzzFastPaths(f *testing.F) {
	f.Add(uint16(300), uint16(200), uint16(224), int64(1))
	f.Add(uint16(5), uint16(700), uint16(224), int64(2))
	f.Add(uint16(1), uint16(1), uint16(9), int64(3))
	f.Add(uint16(451), uint16(37), uint16(31), int64(4))
	f.Fuzz(func(t *testing.T, w16, h16, size16 uint16, seed int64) {
		w, h, size := int(w16%700)+1, int(h16%700)+1, int(size16%300)+1
		if !hasAVX2 && runtime.GOOS == "js" {
			t.Skip("both sides the same code under GOOS=js")
		}
		saved := minSplit
		minSplit = 1
		defer func() { minSplit = saved }()
		rnd := rand.New(rand.NewSource(seed))
		rgb := &imagefile.RGB{Pix: make([]byte, 3*w*h), Width: w, Height: h}
		texture(rnd, rgb.Pix, 3*w)
		m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
		texture(rnd, m.Y, m.YStride)
		texture(rnd, m.Cb, m.CStride)
		texture(rnd, m.Cr, m.CStride)
		for _, src := range []func() imagefile.Rows{
			func() imagefile.Rows { return rgb },
			func() imagefile.Rows { return imagefile.NewRows(m, imagefile.FormatJPEG) },
		} {
			want := reference(t, src(), size)
			got, err := ResizeCropThreads(src(), size, 3)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%dx%d @%d (%T): fast path differs from the reference", w, h, size, src())
			}
		}
	})
}
