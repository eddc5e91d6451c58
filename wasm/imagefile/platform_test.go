package imagefile

import (
	"errors"
	"github.com/imgembed/imgembed/wasm/api"
	"testing"
)

// rowsRGB reads a whole Rows source.
func rowsRGB(r Rows) *RGB {
	w, h := r.Size()
	pix := make([]byte, 3*w*h)
	for y := 0; y < h; y++ {
		r.Row(y, 0, w, pix[3*y*w:3*(y+1)*w])
	}
	return &RGB{Pix: pix, Width: w, Height: h}
}

// rgbaOf is what a browser hands over: straight RGBA, opaque.
func rgbaOf(m *RGB) []byte {
	out := make([]byte, 4*m.Width*m.Height)
	for i, j := 0, 0; i < len(m.Pix); i, j = i+3, j+4 {
		out[j], out[j+1], out[j+2], out[j+3] = m.Pix[i], m.Pix[i+1], m.Pix[i+2], 0xff
	}
	return out
}

// TestPlatformRows stands libjpeg's decode of the test JPEGs (djpeg, as a
// browser would decode them) in for the platform's pixels: with every EXIF
// orientation the rows must match this package's own decode of the file
// within the JPEG tolerance, rotated the same way.
func TestPlatformRows(t *testing.T) {
	for _, sub := range []string{"420", "444"} {
		jpg := readFile(t, "testdata/chelsea-q95-"+sub+".jpg")
		ref := mustDecode(t, readFile(t, "testdata/chelsea-q95-"+sub+".djpeg.png"))
		rgba := rgbaOf(ref)
		for o := 1; o <= 8; o++ {
			file := jpg
			if o > 1 {
				file = withJPEGExif(jpg, exifTIFF(o, o%2 == 0, false))
			}
			if !PlatformDecodable(file) {
				t.Fatalf("%s o=%d: not platform-decodable", sub, o)
			}
			r, err := PlatformRows(file, rgba, ref.Width, ref.Height, Options{})
			if err != nil {
				t.Fatalf("%s o=%d: %v", sub, o, err)
			}
			got := rowsRGB(r)
			if want := Orient(ref, o); true {
				if mean, maxd := diff(t, got, want); maxd != 0 {
					t.Fatalf("%s o=%d: not the oriented platform pixels (mean %.3f max %d)", sub, o, mean, maxd)
				}
			}
			own := rowsRGB(mustRows(t, file))
			mean, maxd := diff(t, got, own)
			if mean > 0.5 {
				t.Errorf("%s o=%d: platform vs own decode mean %.3f levels (max %d), limit 0.5", sub, o, mean, maxd)
			}
		}
	}
}

func mustRows(t *testing.T, data []byte) Rows {
	t.Helper()
	r, err := DecodeRows(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPlatformRowsRefusals(t *testing.T) {
	jpg := readFile(t, "testdata/chelsea-q95-420.jpg")
	ref := mustDecode(t, jpg)
	rgba := rgbaOf(ref)
	png := readFile(t, "testdata/crop-rgba.png")
	if PlatformDecodable(png) {
		t.Error("PNG must be decoded here (exact, alpha)")
	}
	if _, err := PlatformRows(png, rgba, ref.Width, ref.Height, Options{}); !errors.Is(err, ErrNotPlatformDecodable) {
		t.Errorf("PNG: %v, want ErrNotPlatformDecodable", err)
	}
	if _, err := PlatformRows(jpg, rgba, ref.Height, ref.Width, Options{}); !errors.Is(err, ErrNotPlatformDecodable) {
		t.Errorf("swapped size: %v, want ErrNotPlatformDecodable", err)
	}
	if _, err := PlatformRows(jpg, rgba[:len(rgba)-4], ref.Width, ref.Height, Options{}); api.CodeOf(err) != CodeInvalidInput {
		t.Errorf("short pixels: %v, want InvalidInput", err)
	}
	if _, err := PlatformRows(jpg, rgba, ref.Width, ref.Height, Options{MaxPixels: 100}); api.CodeOf(err) != CodeTooLarge {
		t.Errorf("limit: %v, want ImageTooLarge", err)
	}
	// A CMYK JPEG (4 components in SOF) is decoded here.
	cmyk := append([]byte(nil), jpg...)
	w, h, comps, ok := jpegSOF(cmyk)
	if !ok || comps != 3 || w != ref.Width || h != ref.Height {
		t.Fatalf("jpegSOF: %d %d %d %v", w, h, comps, ok)
	}
	for i := 2; i+10 <= len(cmyk); i++ {
		if cmyk[i] == 0xff && cmyk[i+1] == 0xc0 {
			cmyk[i+9] = 4
			break
		}
	}
	if PlatformDecodable(cmyk) {
		t.Error("a 4-component JPEG must not be platform-decodable")
	}
}
