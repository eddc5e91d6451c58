package imagefile

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// TestLyingHeader: headers within the pixel limit (10000x10000 = 100 MP)
// with next to no data behind them fail at once, before the decoder
// allocates the image (a 69-byte PNG used to cost ~1 GB).
func TestLyingHeader(t *testing.T) {
	for name, data := range map[string][]byte{
		"png":  pngHeader(10000, 10000),
		"jpeg": jpegHeader(10000, 10000),
		"gif":  gifHeader(10000, 10000),
		"bmp":  bmpHeader(10000, 10000),
		"tiff": tiffHeader(10000, 10000),
	} {
		var err error
		n := allocated(func() { _, err = Decode(data, Options{}) })
		expectCode(t, name, err, CodeCorrupt)
		// (Go's JPEG config reader wants an SOS first: also corrupt.)
		if err != nil && !strings.Contains(err.Error(), "too small to hold") && !strings.Contains(err.Error(), "missing SOS") {
			t.Errorf("%s: %v", name, err)
		}
		if n > 4<<20 {
			t.Errorf("%s: allocated %d bytes before refusing", name, n)
		}
	}
	// WebP lossless can spend no bits on a pixel: its header is bounded by
	// the memory budget instead.
	var err error
	n := allocated(func() { _, err = Decode(webpVP8LHeader(10000, 10000), Options{MaxDecodeBytes: 64 << 20}) })
	expectCode(t, "webp over a 64 MB budget", err, CodeTooLarge)
	if n > 4<<20 {
		t.Errorf("webp: allocated %d bytes before refusing", n)
	}
}

// progressiveJPEG is a gray progressive JPEG header (SOF2) of w x h, a COM
// segment of pad bytes, then scans (each an SOS header and a byte of
// data), then EOI: enough for the marker walk, which runs before decoding.
func progressiveJPEG(w, h uint16, pad, scans int) []byte {
	b := []byte{0xff, 0xd8}
	b = append(b, 0xff, 0xc2, 0, 11, 8, byte(h>>8), byte(h), byte(w>>8), byte(w), 1, 1, 0x11, 0)
	for pad > 0 {
		k := min(pad, 65000)
		b = append(b, 0xff, 0xfe, byte((k+2)>>8), byte(k+2))
		b = append(b, make([]byte, k)...)
		pad -= k
	}
	for i := 0; i < scans; i++ {
		b = append(b, 0xff, 0xda, 0, 8, 1, 1, 0, 1, 63, 0, 0x5a)
	}
	return append(b, 0xff, 0xd9)
}

// TestJPEGScanBounds: a progressive JPEG with more scans than MaxJPEGScans,
// or whose scans would visit too many blocks, fails before decoding, in
// well under a second (such a file took 100 s).
func TestJPEGScanBounds(t *testing.T) {
	for name, data := range map[string][]byte{
		"5000 scans of 64x64":    progressiveJPEG(64, 64, 0, 5000),
		"200 scans of 4000x4000": progressiveJPEG(4000, 4000, 40<<10, 200),
	} {
		t0 := time.Now()
		_, err := Decode(data, Options{})
		expectCode(t, name, err, CodeCorrupt)
		if err != nil && !strings.Contains(err.Error(), "scans") {
			t.Errorf("%s: %v", name, err)
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("%s: took %v", name, d)
		}
	}
	// A real progressive file passes the walk.
	data, err := os.ReadFile(filepath.Join("testdata", "chelsea-q95-420-progressive.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	j, ok := jpegScan(data)
	if !ok || !j.progressive || j.scans < 2 || j.scans > 20 {
		t.Fatalf("progressive fixture: %+v %v", j, ok)
	}
	if _, err := Decode(data, Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestDecodeMemoryMultiple measures what decoding allocates, per format,
// over the RGB buffer (w*h*3), and requires it to stay within the
// estimate the budget uses (plus 10% and 1 MB of slack).
func TestDecodeMemoryMultiple(t *testing.T) {
	const w, h = 1200, 900
	rgba := image.NewNRGBA(image.Rect(0, 0, w, h))
	gray := image.NewGray(rgba.Rect)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := rgba.PixOffset(x, y)
			v := byte((x*7 + y*13) ^ (x * y >> 5))
			rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2], rgba.Pix[i+3] = v, byte(x), byte(y), 255
			gray.Pix[y*w+x] = v
		}
	}
	enc := func(f func(*bytes.Buffer) error) []byte {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	pal := image.NewPaletted(rgba.Rect, color.Palette{color.Black, color.White, color.RGBA{200, 30, 30, 255}, color.RGBA{30, 30, 200, 255}})
	for i := range pal.Pix {
		pal.Pix[i] = byte(i % 4)
	}
	files := map[string][]byte{
		"png rgba": enc(func(b *bytes.Buffer) error { return png.Encode(b, rgba) }),
		"png gray": enc(func(b *bytes.Buffer) error { return png.Encode(b, gray) }),
		"jpeg":     enc(func(b *bytes.Buffer) error { return jpeg.Encode(b, rgba, &jpeg.Options{Quality: 90}) }),
		"gif":      enc(func(b *bytes.Buffer) error { return gif.Encode(b, pal, nil) }),
		"bmp":      enc(func(b *bytes.Buffer) error { return bmp.Encode(b, rgba) }),
		"tiff":     enc(func(b *bytes.Buffer) error { return tiff.Encode(b, rgba, &tiff.Options{Compression: tiff.Deflate}) }),
	}
	for _, f := range []string{"chelsea-q95-420-progressive.jpg", "chelsea-q90.webp"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = b
	}
	for name, data := range files {
		hdr, err := DecodeHeader(data, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var cfg image.Config
		cfg, err = codecs[hdr.Format].config(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		// The estimate: the smallest budget the header passes.
		est := int64(1) << 62
		for lo, hi := int64(0), int64(1)<<40; lo <= hi; {
			mid := (lo + hi) / 2
			if budgetCheck(hdr.Format, data, cfg, Options{MaxDecodeBytes: max(mid, 1)}) == nil {
				est, hi = mid, mid-1
			} else {
				lo = mid + 1
			}
		}
		var rows Rows
		n := allocated(func() { rows, err = DecodeRows(data, Options{}) })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = rows
		rgb := float64(hdr.Width * hdr.Height * 3)
		t.Logf("%-32s %5dx%-5d allocated %5.2fx the RGB buffer (estimate %5.2fx)", name, hdr.Width, hdr.Height, float64(n)/rgb, float64(est)/rgb)
		if float64(n) > 1.1*float64(est)+(1<<20) {
			t.Errorf("%s: allocated %d bytes, over the estimate %d", name, n, est)
		}
	}
}
