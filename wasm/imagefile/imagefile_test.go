package imagefile

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustDecode(t testing.TB, data []byte) *RGB {
	t.Helper()
	m, err := Decode(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// diff returns the mean and max absolute difference of two RGB images in
// 8-bit levels.
func diff(t testing.TB, a, b *RGB) (mean float64, maxd int) {
	t.Helper()
	if a.Width != b.Width || a.Height != b.Height || len(a.Pix) != len(b.Pix) {
		t.Fatalf("size %dx%d vs %dx%d", a.Width, a.Height, b.Width, b.Height)
	}
	sum := 0
	for i := range a.Pix {
		d := int(a.Pix[i]) - int(b.Pix[i])
		if d < 0 {
			d = -d
		}
		sum += d
		maxd = max(maxd, d)
	}
	return float64(sum) / float64(len(a.Pix)), maxd
}

func encode(t testing.TB, f func(*bytes.Buffer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestJPEGMatchesLibjpeg compares our decode of JPEGs written by
// libjpeg-turbo's cjpeg with what libjpeg-turbo's djpeg (the decoder
// inside Pillow, default settings as Pillow uses them) made of the same
// files. Chroma upsampling and colour conversion are libjpeg's; what is
// left is Go's IDCT, which rounds differently from libjpeg's islow IDCT.
func TestJPEGMatchesLibjpeg(t *testing.T) {
	for _, sub := range []string{"420", "444"} {
		name := "4:" + sub[1:2] + ":" + sub[2:]
		jpg := readFile(t, "testdata/chelsea-q95-"+sub+".jpg")
		ref := mustDecode(t, readFile(t, "testdata/chelsea-q95-"+sub+".djpeg.png"))
		got := mustDecode(t, jpg)
		mean, maxd := diff(t, got, ref)

		// Go's own conversion (replicated chroma, Go's rounding), for scale.
		std, err := jpeg.Decode(bytes.NewReader(jpg))
		if err != nil {
			t.Fatal(err)
		}
		stdMean, stdMax := diff(t, (&genericRows{std, std.Bounds()}).rgb(), ref)
		t.Logf("%s: ours vs libjpeg mean %.3f max %d; Go image.YCbCr.At vs libjpeg mean %.3f max %d", name, mean, maxd, stdMean, stdMax)
		if mean > 0.15 || maxd > 4 {
			t.Errorf("%s: mean %.3f (limit 0.15), max %d (limit 4) levels off libjpeg", name, mean, maxd)
		}
		if sub == "420" && mean >= stdMean {
			t.Errorf("fancy upsampling should beat replication: %.3f vs %.3f", mean, stdMean)
		}
	}
	// The same coefficients stored progressively (jpegtran, lossless)
	// must decode to exactly what the baseline file gives.
	prog := mustDecode(t, readFile(t, "testdata/chelsea-q95-420-progressive.jpg"))
	base := mustDecode(t, readFile(t, "testdata/chelsea-q95-420.jpg"))
	if mean, maxd := diff(t, prog, base); maxd != 0 {
		t.Errorf("progressive vs baseline: mean %.3f max %d", mean, maxd)
	}
}

func (r *genericRows) rgb() *RGB {
	w, h := r.Size()
	m := &RGB{Pix: make([]byte, 3*w*h), Width: w, Height: h}
	for y := 0; y < h; y++ {
		r.Row(y, 0, w, m.Pix[3*y*w:])
	}
	return m
}

// TestWebPLossyMatchesLibwebp compares lossy WebP (cwebp -q 90; one with
// an alpha channel) with libwebp's dwebp output.
func TestWebPLossyMatchesLibwebp(t *testing.T) {
	for _, name := range []string{"chelsea-q90", "crop-lossy-alpha"} {
		got := mustDecode(t, readFile(t, "testdata/"+name+".webp"))
		ref := mustDecode(t, readFile(t, "testdata/"+name+".dwebp.png"))
		mean, maxd := diff(t, got, ref)
		t.Logf("%s: ours vs libwebp mean %.3f max %d", name, mean, maxd)
		if mean > 0.15 || maxd > 4 {
			t.Errorf("%s: mean %.3f (limit 0.15), max %d (limit 4) levels off libwebp", name, mean, maxd)
		}
	}
}

// cropRGBA is a 97x61 photo crop with an alpha ramp (fully transparent on
// the right), the source of the lossless-format tests.
func cropRGBA(t testing.TB) *image.NRGBA {
	m, err := png.Decode(bytes.NewReader(readFile(t, "testdata/crop-rgba.png")))
	if err != nil {
		t.Fatal(err)
	}
	n, ok := m.(*image.NRGBA)
	if !ok {
		t.Fatalf("crop-rgba.png decoded to %T", m)
	}
	return n
}

// straightRGB is what convert("RGB") must give for an NRGBA image.
func straightRGB(m *image.NRGBA) *RGB {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	out := &RGB{Pix: make([]byte, 3*w*h), Width: w, Height: h}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := m.NRGBAAt(x, y)
			i := 3 * (y*w + x)
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = c.R, c.G, c.B
		}
	}
	return out
}

func TestLosslessFormatsAgree(t *testing.T) {
	src := cropRGBA(t)
	want := straightRGB(src)
	w, h := src.Rect.Dx(), src.Rect.Dy()

	opaque := image.NewRGBA(src.Rect)
	for i := 0; i < len(opaque.Pix); i += 4 {
		copy(opaque.Pix[i:i+3], src.Pix[i:i+3])
		opaque.Pix[i+3] = 255
	}
	deep := image.NewNRGBA64(src.Rect) // 16-bit, low byte != high byte
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := src.NRGBAAt(x, y)
			deep.SetNRGBA64(x, y, color.NRGBA64{uint16(c.R)<<8 | 0x7f, uint16(c.G)<<8 | 0xff, uint16(c.B) << 8, uint16(c.A)<<8 | 0x80})
		}
	}

	cases := []struct {
		name string
		data []byte
		want *RGB
	}{
		{"png rgba (straight alpha dropped)", encode(t, func(b *bytes.Buffer) error { return png.Encode(b, src) }), want},
		{"png rgb", encode(t, func(b *bytes.Buffer) error { return png.Encode(b, opaque) }), want},
		{"png 16-bit rgba", encode(t, func(b *bytes.Buffer) error { return png.Encode(b, deep) }), want},
		{"bmp 24-bit", encode(t, func(b *bytes.Buffer) error { return bmp.Encode(b, opaque) }), want},
		{"bmp 32-bit alpha", encode(t, func(b *bytes.Buffer) error { return bmp.Encode(b, src) }), want},
		{"tiff rgb", encode(t, func(b *bytes.Buffer) error { return tiff.Encode(b, opaque, nil) }), want},
		{"tiff unassociated alpha", encode(t, func(b *bytes.Buffer) error { return tiff.Encode(b, src, nil) }), want},
		{"tiff deflate", encode(t, func(b *bytes.Buffer) error {
			return tiff.Encode(b, src, &tiff.Options{Compression: tiff.Deflate, Predictor: true})
		}), want},
		{"webp lossless (cwebp -lossless -exact)", readFile(t, "testdata/crop-lossless.webp"), want},
	}
	for _, c := range cases {
		got, err := Decode(c.data, Options{})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if mean, maxd := diff(t, got, c.want); maxd != 0 {
			t.Errorf("%s: differs from the straight RGB source: mean %.3f max %d", c.name, mean, maxd)
		}
	}

	// Premultiplied sources: un-premultiplying cannot restore what
	// premultiplication rounded away, but opaque pixels must be exact and
	// the rest close.
	pre := image.NewRGBA(src.Rect)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			pre.Set(x, y, src.NRGBAAt(x, y))
		}
	}
	got := mustDecode(t, encode(t, func(b *bytes.Buffer) error { return tiff.Encode(b, pre, nil) }))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := src.NRGBAAt(x, y)
			i := 3 * (y*w + x)
			for k, v := range []byte{c.R, c.G, c.B} {
				d := math.Abs(float64(got.Pix[i+k]) - float64(v))
				switch {
				case c.A == 255 && d != 0, c.A >= 64 && d > 4:
					t.Fatalf("tiff associated alpha at (%d,%d) a=%d: got %d want %d", x, y, c.A, got.Pix[i+k], v)
				case c.A == 0 && got.Pix[i+k] != 0:
					t.Fatalf("tiff associated alpha: fully transparent pixel should be black, got %d", got.Pix[i+k])
				}
			}
		}
	}
}

func TestGrayAndPalette(t *testing.T) {
	src := cropRGBA(t)
	w, h := src.Rect.Dx(), src.Rect.Dy()
	gray := image.NewGray(src.Rect)
	gray16 := image.NewGray16(src.Rect)
	grayWant := &RGB{Pix: make([]byte, 3*w*h), Width: w, Height: h}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := src.NRGBAAt(x, y).G
			gray.SetGray(x, y, color.Gray{v})
			gray16.SetGray16(x, y, color.Gray16{uint16(v)<<8 | uint16(x&0xff)})
			i := 3 * (y*w + x)
			grayWant.Pix[i], grayWant.Pix[i+1], grayWant.Pix[i+2] = v, v, v
		}
	}
	// A 16-colour palette with one translucent entry: expansion keeps its
	// straight colour.
	pal := color.Palette{}
	for i := 0; i < 15; i++ {
		pal = append(pal, color.NRGBA{uint8(i * 17), uint8(255 - i*17), uint8(i * 5), 255})
	}
	pal = append(pal, color.NRGBA{200, 100, 50, 128})
	pm := image.NewPaletted(src.Rect, pal)
	palWant := &RGB{Pix: make([]byte, 3*w*h), Width: w, Height: h}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			k := uint8((x/7 + y/5) % 16)
			pm.SetColorIndex(x, y, k)
			c := pal[k].(color.NRGBA)
			i := 3 * (y*w + x)
			palWant.Pix[i], palWant.Pix[i+1], palWant.Pix[i+2] = c.R, c.G, c.B
		}
	}
	opaquePal := image.NewPaletted(src.Rect, pal[:15])
	opaqueWant := &RGB{Pix: make([]byte, 3*w*h), Width: w, Height: h}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			k := uint8((x/3 + y/4) % 15)
			opaquePal.SetColorIndex(x, y, k)
			c := pal[k].(color.NRGBA)
			i := 3 * (y*w + x)
			opaqueWant.Pix[i], opaqueWant.Pix[i+1], opaqueWant.Pix[i+2] = c.R, c.G, c.B
		}
	}
	cases := []struct {
		name string
		data []byte
		want *RGB
	}{
		{"png gray", encode(t, func(b *bytes.Buffer) error { return png.Encode(b, gray) }), grayWant},
		{"png gray 16-bit", encode(t, func(b *bytes.Buffer) error { return png.Encode(b, gray16) }), grayWant},
		{"tiff gray", encode(t, func(b *bytes.Buffer) error { return tiff.Encode(b, gray, nil) }), grayWant},
		{"bmp gray", encode(t, func(b *bytes.Buffer) error { return bmp.Encode(b, gray) }), grayWant},
		{"jpeg gray (q100)", encode(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, gray, &jpeg.Options{Quality: 100}) }), nil},
		{"png palette + tRNS", encode(t, func(b *bytes.Buffer) error { return png.Encode(b, pm) }), palWant},
		{"png palette", encode(t, func(b *bytes.Buffer) error { return png.Encode(b, opaquePal) }), opaqueWant},
		{"gif", encode(t, func(b *bytes.Buffer) error { return gif.Encode(b, opaquePal, nil) }), opaqueWant},
		{"bmp palette", encode(t, func(b *bytes.Buffer) error { return bmp.Encode(b, opaquePal) }), opaqueWant},
		{"tiff palette", encode(t, func(b *bytes.Buffer) error { return tiff.Encode(b, opaquePal, nil) }), opaqueWant},
	}
	for _, c := range cases {
		got, err := Decode(c.data, Options{})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if c.want == nil { // lossy gray: replicated and close
			for i := 0; i < len(got.Pix); i += 3 {
				if got.Pix[i] != got.Pix[i+1] || got.Pix[i] != got.Pix[i+2] {
					t.Fatalf("%s: gray not replicated at %d", c.name, i/3)
				}
			}
			if mean, _ := diff(t, got, grayWant); mean > 1 {
				t.Errorf("%s: mean %.3f levels off", c.name, mean)
			}
			continue
		}
		if mean, maxd := diff(t, got, c.want); maxd != 0 {
			t.Errorf("%s: mean %.3f max %d levels off", c.name, mean, maxd)
		}
	}
}

// TestCMYK checks Pillow's cmyk2rgb arithmetic on decoded CMYK data (Go's
// JPEG encoder cannot write CMYK files).
func TestCMYK(t *testing.T) {
	m := image.NewCMYK(image.Rect(0, 0, 4, 1))
	copy(m.Pix, []byte{0, 0, 0, 0, 255, 255, 255, 0, 10, 128, 250, 30, 0, 0, 0, 255})
	got := ToRGB(m, FormatJPEG).Pix
	// nk = 255-k; v = nk - round(c*nk/255) per Pillow's MULDIV255.
	want := []byte{255, 255, 255, 0, 0, 0, 216, 112, 4, 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Errorf("cmyk2rgb: got %v want %v", got, want)
	}
}

func TestFromPixels(t *testing.T) {
	rgba := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	m, err := FromPixels(rgba, 2, 1, 4)
	if err != nil || !bytes.Equal(m.Pix, []byte{1, 2, 3, 5, 6, 7}) || m.Width != 2 || m.Height != 1 {
		t.Fatalf("rgba: %v %v", m, err)
	}
	rgb := []byte{1, 2, 3, 4, 5, 6}
	m, err = FromPixels(rgb, 1, 2, 3)
	if err != nil || !bytes.Equal(m.Pix, rgb) || m.Height != 2 {
		t.Fatalf("rgb: %v %v", m, err)
	}
	rgb[0] = 99
	if m.Pix[0] != 1 {
		t.Error("FromPixels aliases its input")
	}
	_, err = FromPixels(nil, 20000, 10000, 3)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("200 MP raw pixels: %v, want ImageTooLarge", err)
	}
	r, err := RawRows(rgba, 2, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 6)
	r.Row(0, 0, 2, line)
	if !bytes.Equal(line, []byte{1, 2, 3, 5, 6, 7}) {
		t.Errorf("RawRows rgba row = %v", line)
	}
	for _, c := range []struct {
		data    []byte
		w, h, c int
	}{
		{rgb, 2, 2, 3}, {rgb, 0, 2, 3}, {rgb, -1, -6, 3}, {rgb, 2, 1, 2}, {nil, 1, 1, 3},
	} {
		_, err := FromPixels(c.data, c.w, c.h, c.c)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalidInput || !errors.Is(err, ErrInvalidInput) {
			t.Errorf("FromPixels(%d bytes, %d, %d, %d) = %v, want InvalidInput", len(c.data), c.w, c.h, c.c, err)
		}
		if _, err := RawRows(c.data, c.w, c.h, c.c); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("RawRows(%d bytes, %d, %d, %d) = %v, want InvalidInput", len(c.data), c.w, c.h, c.c, err)
		}
	}
}

func TestSniffIgnoresNames(t *testing.T) {
	png := readFile(t, filepath.Join("testdata", "crop-rgba.png"))
	if f := Sniff(png); f != FormatPNG {
		t.Errorf("Sniff(png) = %q", f)
	}
	if f := Sniff(readFile(t, "testdata/crop-lossless.webp")); f != FormatWebP {
		t.Errorf("Sniff(webp) = %q", f)
	}
	if f := Sniff(readFile(t, "testdata/chelsea-q95-420.jpg")); f != FormatJPEG {
		t.Errorf("Sniff(jpeg) = %q", f)
	}
}

// TestRowRangesAgree: any column range of a row equals the same slice of
// the full row, for every Rows implementation the decoders lead to (the
// resampler asks for just the columns a centre crop needs).
func TestRowRangesAgree(t *testing.T) {
	src := cropRGBA(t)
	files := map[string][]byte{
		"jpeg 4:2:0":       readFile(t, "testdata/chelsea-q95-420.jpg"),
		"jpeg 4:4:4":       readFile(t, "testdata/chelsea-q95-444.jpg"),
		"webp lossy alpha": readFile(t, "testdata/crop-lossy-alpha.webp"),
		"webp lossy":       readFile(t, "testdata/chelsea-q90.webp"),
		"png rgba":         encode(t, func(b *bytes.Buffer) error { return png.Encode(b, src) }),
		"tiff":             encode(t, func(b *bytes.Buffer) error { return tiff.Encode(b, src, nil) }),
	}
	for name, data := range files {
		img, h, err := DecodeImage(data, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r := NewRows(img, h.Format)
		w, hh := r.Size()
		full := make([]byte, 3*w)
		part := make([]byte, 3*w)
		for _, y := range []int{0, 1, hh / 2, hh - 2, hh - 1} {
			r.Row(y, 0, w, full)
			for _, xr := range [][2]int{{0, 1}, {1, 2}, {0, w}, {1, w - 1}, {2, w / 2}, {w/2 - 1, w/2 + 6}, {w - 1, w}, {w - 3, w}, {3, 4}} {
				x0, x1 := xr[0], xr[1]
				r.Row(y, x0, x1, part)
				if !bytes.Equal(part[:3*(x1-x0)], full[3*x0:3*x1]) {
					t.Fatalf("%s: row %d columns %d..%d differ from the full row", name, y, x0, x1)
				}
			}
		}
	}
}

// TestGIFFirstFrame: only frame 0 is decoded, shown on the logical screen
// at its offset (the rest filled with the transparent index, as Pillow
// fills frame 0's canvas).
func TestGIFFirstFrame(t *testing.T) {
	// Index 0 is transparent; the file stores (0, 0, 0) for it, as Go's
	// encoder writes a transparent entry.
	pal := color.Palette{color.RGBA{0, 0, 0, 0}, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}}
	f0 := image.NewPaletted(image.Rect(2, 1, 6, 4), pal) // 4x3 frame at (2,1)
	for i := range f0.Pix {
		f0.Pix[i] = 1
	}
	f1 := image.NewPaletted(image.Rect(0, 0, 8, 5), pal)
	for i := range f1.Pix {
		f1.Pix[i] = 2
	}
	data := encode(t, func(b *bytes.Buffer) error {
		return gif.EncodeAll(b, &gif.GIF{
			Image: []*image.Paletted{f0, f1}, Delay: []int{10, 10},
			Config: image.Config{ColorModel: pal, Width: 8, Height: 5},
		})
	})
	got := mustDecode(t, data)
	if got.Width != 8 || got.Height != 5 {
		t.Fatalf("size %dx%d, want the 8x5 logical screen", got.Width, got.Height)
	}
	for y := 0; y < 5; y++ {
		for x := 0; x < 8; x++ {
			p := got.Pix[3*(y*8+x) : 3*(y*8+x)+3]
			inside := x >= 2 && x < 6 && y >= 1 && y < 4
			want := []byte{0, 0, 0}
			if inside {
				want = []byte{255, 0, 0}
			}
			if !bytes.Equal(p, want) {
				t.Fatalf("(%d,%d) = %v, want %v (frame 0 only)", x, y, p, want)
			}
		}
	}
}

// TestGIFTransparentKeepsStoredColour: Pillow's convert("RGB") shows the
// palette colour stored for the transparent index; Go's decoder replaces
// it with transparent black, so Decode restores it from the file.
func TestGIFTransparentKeepsStoredColour(t *testing.T) {
	pal := color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}}
	m := image.NewPaletted(image.Rect(0, 0, 4, 2), pal)
	m.Pix[1] = 1
	data := encode(t, func(b *bytes.Buffer) error { return gif.Encode(b, m, nil) })
	// Mark index 0 transparent with a Graphic Control Extension inserted
	// before the image descriptor: stored colour stays (255, 0, 0).
	i := bytes.IndexByte(data[13+3*2:], 0x2c) + 13 + 3*2
	gce := []byte{0x21, 0xf9, 4, 0x01, 0, 0, 0, 0}
	data = append(data[:i:i], append(gce, data[i:]...)...)
	if g, err := gif.Decode(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	} else if _, _, _, a := g.At(0, 0).RGBA(); a != 0 {
		t.Fatal("test file: index 0 should decode as transparent in Go")
	}
	got := mustDecode(t, data)
	if !bytes.Equal(got.Pix[:6], []byte{255, 0, 0, 0, 0, 255}) {
		t.Errorf("got %v, want the stored red for the transparent index", got.Pix[:6])
	}
}

// TestWebPAnimatedFirstFrame: frame 1 of an animated WebP (made with
// webpmux from the still test files) on a transparent-black canvas at its
// offset, as libwebp's WebPAnimDecoder gives it to Pillow.
func TestWebPAnimatedFirstFrame(t *testing.T) {
	for _, c := range []struct {
		file, still string
		x, y, w, h  int
	}{
		{"anim-lossy-first.webp", "crop-lossy-alpha.webp", 10, 20, 107, 81},
		{"anim-lossless-first.webp", "crop-lossless.webp", 0, 0, 101, 67},
	} {
		got := mustDecode(t, readFile(t, "testdata/"+c.file))
		frame := mustDecode(t, readFile(t, "testdata/"+c.still))
		if got.Width != c.w || got.Height != c.h {
			t.Fatalf("%s: %dx%d, want the %dx%d canvas", c.file, got.Width, got.Height, c.w, c.h)
		}
		for y := 0; y < c.h; y++ {
			for x := 0; x < c.w; x++ {
				want := []byte{0, 0, 0}
				if fx, fy := x-c.x, y-c.y; fx >= 0 && fy >= 0 && fx < frame.Width && fy < frame.Height {
					want = frame.Pix[3*(fy*frame.Width+fx) : 3*(fy*frame.Width+fx)+3]
				}
				if p := got.Pix[3*(y*c.w+x) : 3*(y*c.w+x)+3]; !bytes.Equal(p, want) {
					t.Fatalf("%s (%d,%d) = %v, want %v", c.file, x, y, p, want)
				}
			}
		}
	}
}

func TestWebPAnimatedHostile(t *testing.T) {
	data := readFile(t, "testdata/anim-lossy-first.webp")
	i := bytes.Index(data, []byte("ANMF")) + 8
	outside := append([]byte(nil), data...)
	outside[i], outside[i+1] = 0xff, 0x7f // x offset far outside the canvas
	_, err := Decode(outside, Options{})
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("frame outside canvas: %v, want CorruptImage", err)
	}
	bigger := append([]byte(nil), data...)
	bigger[i+6] = 0xff // frame width 256 + ..., larger than its bitstream
	_, err = Decode(bigger, Options{})
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("frame size mismatch: %v, want CorruptImage", err)
	}
}
