package imagefile

import (
	"bytes"
	"errors"
	"image/jpeg"
	"testing"
)

// FuzzDecode: any input must yield either a consistent image or an *Error
// with a known code, never a panic and never more than the pixel limit.
// Seeds: testdata/fuzz/FuzzDecode (one small file per format) plus the
// hostile headers of hostile_test.go.
func FuzzDecode(f *testing.F) {
	f.Add(pngHeader(60000, 60000))
	f.Add(jpegHeader(300, 200))
	f.Add(gifHeader(5, 5))
	f.Add(bmpHeader(3, 2))
	f.Add(tiffHeader(4, 4))
	f.Add(webpVP8LHeader(4, 4))
	f.Add([]byte("<svg/>"))
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, blocksImage(), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(withJPEGExif(buf.Bytes(), exifTIFF(6, true, false)))
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Decode(data, Options{MaxPixels: limit})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			switch e.Code {
			case CodeUnsupportedFormat, CodeCorrupt, CodeTooLarge:
			default:
				t.Fatalf("unexpected code %q", e.Code)
			}
			return
		}
		if img.Width <= 0 || img.Height <= 0 || int64(img.Width)*int64(img.Height) > limit || len(img.Pix) != 3*img.Width*img.Height {
			t.Fatalf("inconsistent image %dx%d with %d bytes", img.Width, img.Height, len(img.Pix))
		}
		rows, err := DecodeRows(data, Options{MaxPixels: limit})
		if err != nil {
			t.Fatalf("Decode succeeded but DecodeRows failed: %v", err)
		}
		w, h := rows.Size()
		if w != img.Width || h != img.Height {
			t.Fatalf("DecodeRows size %dx%d, Decode %dx%d", w, h, img.Width, img.Height)
		}
		line := make([]byte, 3*w)
		rows.Row(h-1, 0, w, line)
		if string(line) != string(img.Pix[3*(h-1)*w:]) {
			t.Fatalf("DecodeRows last row differs from Decode")
		}
	})
}
