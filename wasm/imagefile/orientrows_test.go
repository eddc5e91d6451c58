package imagefile

import (
	"bytes"
	"image"
	"math/rand"
	"testing"
)

// TestOrientRowsIsOrient: the banded convert-and-orient gives byte for byte
// Orient of the full RGB conversion, for every orientation (and the out of
// range ones), sizes around the band height, thin images, and RGB and
// YCbCr sources.
func TestOrientRowsIsOrient(t *testing.T) {
	rnd := rand.New(rand.NewSource(8))
	for _, sz := range [][2]int{{1, 1}, {1, 40}, {40, 1}, {7, 15}, {15, 16}, {16, 17}, {33, 31}, {64, 48}, {101, 67}, {65, 64}, {63, 129}, {130, 65}} {
		w, h := sz[0], sz[1]
		rgb := &RGB{Pix: make([]byte, 3*w*h), Width: w, Height: h}
		rnd.Read(rgb.Pix)
		m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
		rnd.Read(m.Y)
		rnd.Read(m.Cb)
		rnd.Read(m.Cr)
		full := ToRGB(m, FormatJPEG)
		for o := 0; o <= 9; o++ {
			want := Orient(full, o)
			got := orientRows(NewRows(m, FormatJPEG), o)
			if got.Width != want.Width || got.Height != want.Height || !bytes.Equal(got.Pix, want.Pix) {
				t.Fatalf("ycbcr %dx%d orientation %d: banded result differs from Orient(ToRGB)", w, h, o)
			}
		}
		for o := 0; o <= 9; o++ {
			want := Orient(rgb, o)
			got := orientRows(rgb, o)
			if got.Width != want.Width || got.Height != want.Height || !bytes.Equal(got.Pix, want.Pix) {
				t.Fatalf("rgb %dx%d orientation %d: banded result differs from Orient", w, h, o)
			}
		}
	}
}
