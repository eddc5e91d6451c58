package imagefile

import (
	"fmt"
	"image"
	"image/color"
	"math/rand"
	"testing"
)

// TestVectorYCbCrMatchesScalar: the AVX2 chroma upsampling and JFIF
// conversion (amd64) give byte for byte what the Go loops give, through
// Row and RowPacked, for every subsampling, odd and even image sizes
// (chroma planes 1 to 300+ samples wide), column windows starting and
// ending on odd and even pixels and at the edges, and planes holding
// extremes (0, 255) as well as noise.
func TestVectorYCbCrMatchesScalar(t *testing.T) {
	if !hasAVX2 {
		t.Skip("no vector path on this machine")
	}
	rnd := rand.New(rand.NewSource(5))
	ratios := []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410}
	fill := func(b []byte) {
		for i := range b {
			switch rnd.Intn(8) {
			case 0:
				b[i] = 0
			case 1:
				b[i] = 255
			default:
				b[i] = byte(rnd.Intn(256))
			}
		}
	}
	type view struct {
		rows  *ycbcrRows
		line  []byte
		rb    []int64
		g     []byte
		label string
	}
	for _, sz := range [][2]int{{1, 1}, {2, 3}, {5, 4}, {7, 9}, {31, 17}, {32, 2}, {33, 5}, {34, 6}, {63, 8}, {64, 3}, {65, 7}, {66, 4}, {97, 5}, {200, 3}, {641, 9}} {
		w, h := sz[0], sz[1]
		for _, ratio := range ratios {
			m := image.NewYCbCr(image.Rect(0, 0, w, h), ratio)
			fill(m.Y)
			fill(m.Cb)
			fill(m.Cr)
			r, ok := newYCbCrRows(m, false).(*ycbcrRows)
			if !ok {
				t.Fatalf("%dx%d %v: not ycbcrRows", w, h, ratio)
			}
			windows := [][2]int{{0, w}}
			for i := 0; i < 12; i++ {
				x0 := rnd.Intn(w)
				windows = append(windows, [2]int{x0, x0 + 1 + rnd.Intn(w-x0)})
			}
			for _, win := range windows {
				x0, x1 := win[0], win[1]
				for y := 0; y < h; y++ {
					var got [2]view
					for k, vec := range []bool{false, true} {
						hasAVX2 = vec && vectorOK
						v := view{rows: r, line: make([]byte, 3*(x1-x0)), rb: make([]int64, x1-x0), g: make([]byte, x1-x0)}
						r.Row(y, x0, x1, v.line)
						r.RowPacked(y, x0, x1, v.rb, v.g)
						got[k] = v
					}
					hasAVX2 = vectorOK
					where := fmt.Sprintf("%dx%d %v row %d columns %d..%d", w, h, ratio, y, x0, x1)
					if string(got[0].line) != string(got[1].line) || string(got[0].g) != string(got[1].g) {
						t.Fatalf("%s: Row or G differs between the Go and vector paths", where)
					}
					for i := range got[0].rb {
						if got[0].rb[i] != got[1].rb[i] {
							t.Fatalf("%s: R|B<<32 of pixel %d: Go %x, vector %x", where, x0+i, got[0].rb[i], got[1].rb[i])
						}
					}
				}
			}
		}
	}
}

// TestRGBARowPackedIsRow: RowPacked of straight and premultiplied RGBA
// (PNG, TIFF, WebP lossless) gives exactly Row's pixels, on the Go and the
// vector path, for opaque images (the vector fast path) and images with
// some translucent pixels (premultiplied ones are un-premultiplied).
func TestRGBARowPackedIsRow(t *testing.T) {
	rnd := rand.New(rand.NewSource(9))
	for _, w := range []int{1, 7, 8, 9, 16, 31, 33, 100} {
		const h = 3
		for _, translucent := range []bool{false, true} {
			pix := make([]byte, 4*w*h)
			for i := range pix {
				pix[i] = byte(rnd.Intn(256))
				if i%4 == 3 && (!translucent || rnd.Intn(3) > 0) {
					pix[i] = 255
				}
			}
			for _, src := range []PackedRows{&rgbaRows{pix, 4 * w, w, h}, &nrgbaRows{pix, 4 * w, w, h}} {
				for _, vec := range []bool{false, true} {
					hasAVX2 = vec && vectorOK
					for y := 0; y < h; y++ {
						for _, win := range [][2]int{{0, w}, {w / 3, w}, {1, max(1, w-1)}} {
							x0, x1 := win[0], win[1]
							line := make([]byte, 3*(x1-x0))
							rb, g := make([]int64, x1-x0), make([]byte, x1-x0)
							src.Row(y, x0, x1, line)
							src.RowPacked(y, x0, x1, rb, g)
							for i := range rb {
								if want := int64(line[3*i]) | int64(line[3*i+2])<<32; rb[i] != want || g[i] != line[3*i+1] {
									t.Fatalf("%T w %d translucent %v vector %v row %d x %d: packed %x/%d, Row %v", src, w, translucent, hasAVX2, y, x0+i, rb[i], g[i], line[3*i:3*i+3])
								}
							}
						}
					}
				}
				hasAVX2 = vectorOK
			}
		}
	}
}

// vectorOK is what the machine supports (tests switch hasAVX2 off and back).
var vectorOK = hasAVX2

// TestReplicatedChroma: where libjpeg does not filter (4:4:4, 4:1:1, and
// 2x factors of planes at most 2 samples wide) pixel x of row y takes
// chroma sample (x/hs, y/vs), checked against that formula directly, for
// column windows at every offset.
func TestReplicatedChroma(t *testing.T) {
	rnd := rand.New(rand.NewSource(12))
	for _, c := range []struct {
		w, h   int
		ratio  image.YCbCrSubsampleRatio
		hs, vs int
	}{{37, 5, image.YCbCrSubsampleRatio444, 1, 1}, {37, 5, image.YCbCrSubsampleRatio411, 4, 1}, {38, 4, image.YCbCrSubsampleRatio410, 4, 2}, {3, 3, image.YCbCrSubsampleRatio422, 2, 1}, {4, 2, image.YCbCrSubsampleRatio422, 2, 1}} {
		m := image.NewYCbCr(image.Rect(0, 0, c.w, c.h), c.ratio)
		rnd.Read(m.Cb)
		rnd.Read(m.Cr)
		r := newYCbCrRows(m, false).(*ycbcrRows)
		if r.fancyH || r.fancyV {
			t.Fatalf("%v %dx%d: filtered, not replicated", c.ratio, c.w, c.h)
		}
		for y := 0; y < c.h; y++ {
			for x0 := 0; x0 < c.w; x0++ {
				x1 := x0 + 1 + rnd.Intn(c.w-x0)
				r.chromaRow(y, x0, x1)
				for x := x0; x < x1; x++ {
					k := (y/c.vs)*m.CStride + x/c.hs
					if r.cb[x-x0] != m.Cb[k] || r.cr[x-x0] != m.Cr[k] {
						t.Fatalf("%v %dx%d pixel (%d,%d), window %d..%d: chroma %d/%d, want %d/%d", c.ratio, c.w, c.h, x, y, x0, x1, r.cb[x-x0], r.cr[x-x0], m.Cb[k], m.Cr[k])
					}
				}
			}
		}
	}
}

// TestPackedRowsAreRows: every PackedRows the decoders lead to writes
// exactly Row's pixels as R | B<<32 and G (gray 8 and 16 bit, palette,
// plain RGB), for several column windows of every row.
func TestPackedRowsAreRows(t *testing.T) {
	rnd := rand.New(rand.NewSource(4))
	const w, h = 37, 5
	gray := image.NewGray(image.Rect(0, 0, w, h))
	rnd.Read(gray.Pix)
	gray16 := image.NewGray16(image.Rect(0, 0, w, h))
	rnd.Read(gray16.Pix)
	pal := image.NewPaletted(image.Rect(0, 0, w, h), nil)
	for i := 0; i < 200; i++ { // fewer entries than indices: the rest read as black
		pal.Palette = append(pal.Palette, color.NRGBA{byte(rnd.Intn(256)), byte(rnd.Intn(256)), byte(rnd.Intn(256)), 255})
	}
	rnd.Read(pal.Pix)
	rgb := &RGB{Pix: make([]byte, 3*w*h), Width: w, Height: h}
	rnd.Read(rgb.Pix)
	for name, r := range map[string]Rows{"gray": NewRows(gray, FormatPNG), "gray16": NewRows(gray16, FormatPNG), "paletted": NewRows(pal, FormatPNG), "rgb": rgb} {
		p, ok := r.(PackedRows)
		if !ok {
			t.Fatalf("%s: %T is not PackedRows", name, r)
		}
		for y := 0; y < h; y++ {
			for _, win := range [][2]int{{0, w}, {1, w - 1}, {5, 6}, {w - 3, w}} {
				x0, x1 := win[0], win[1]
				line := make([]byte, 3*(x1-x0))
				rb, g := make([]int64, x1-x0), make([]byte, x1-x0)
				r.Row(y, x0, x1, line)
				p.RowPacked(y, x0, x1, rb, g)
				for i := range rb {
					if want := int64(line[3*i]) | int64(line[3*i+2])<<32; rb[i] != want || g[i] != line[3*i+1] {
						t.Fatalf("%s row %d x %d: packed %x/%d, Row %v", name, y, x0+i, rb[i], g[i], line[3*i:3*i+3])
					}
				}
			}
		}
	}
}
