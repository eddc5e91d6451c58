package imagefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand"
	"runtime"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// pngHeader is a PNG signature + IHDR (8-bit RGB) claiming w x h, with a
// valid CRC, followed by a tiny IDAT and IEND.
func pngHeader(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		c = append(c, typ...)
		c = append(c, data...)
		c = binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
		b = append(b, c...)
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b
}

// jpegHeader is a JPEG whose SOF0 claims w x h (3 components) with no
// usable data after it.
func jpegHeader(w, h uint16) []byte {
	b := []byte{0xff, 0xd8}
	// DQT with one table of ones, so the decoder accepts the SOF.
	dqt := []byte{0xff, 0xdb, 0, 67, 0}
	for i := 0; i < 64; i++ {
		dqt = append(dqt, 1)
	}
	b = append(b, dqt...)
	sof := []byte{0xff, 0xc0, 0, 17, 8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 3,
		1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0}
	b = append(b, sof...)
	return append(b, 0xff, 0xd9)
}

func gifHeader(w, h uint16) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	return append(b, 0, 0, 0, 0x3b)
}

func bmpHeader(w, h int32) []byte {
	b := []byte("BM")
	b = binary.LittleEndian.AppendUint32(b, 54)
	b = append(b, 0, 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, 54)
	b = binary.LittleEndian.AppendUint32(b, 40)
	b = binary.LittleEndian.AppendUint32(b, uint32(w))
	b = binary.LittleEndian.AppendUint32(b, uint32(h))
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 24)
	return append(b, make([]byte, 24)...)
}

// webpVP8XHeader is a WebP container whose VP8X chunk claims w x h.
func webpVP8XHeader(w, h uint32) []byte {
	vp8x := []byte{0, 0, 0, 0}
	vp8x = append(vp8x, byte(w-1), byte((w-1)>>8), byte((w-1)>>16))
	vp8x = append(vp8x, byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(4+8+len(vp8x)))
	b = append(b, "WEBPVP8X"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(vp8x)))
	return append(b, vp8x...)
}

// webpVP8LHeader is a lossless WebP whose VP8L header claims w x h.
func webpVP8LHeader(w, h uint32) []byte {
	v := (w - 1) | (h-1)<<14
	body := binary.LittleEndian.AppendUint32([]byte{0x2f}, v)
	body = append(body, 0, 0, 0)
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(4+8+len(body)))
	b = append(b, "WEBPVP8L"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

// tiffHeader is a little-endian TIFF whose IFD claims w x h, 8-bit RGB.
func tiffHeader(w, h uint32) []byte {
	b := []byte("II*\x00")
	b = binary.LittleEndian.AppendUint32(b, 8)
	entries := [][3]uint32{
		{256, 4, w}, {257, 4, h}, {258, 3, 8}, {259, 3, 1}, {262, 3, 1},
		{273, 4, 200}, {277, 3, 1}, {278, 4, h}, {279, 4, 3},
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(entries)))
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, 1)
		if e[1] == 3 {
			b = binary.LittleEndian.AppendUint16(b, uint16(e[2]))
			b = binary.LittleEndian.AppendUint16(b, 0)
		} else {
			b = binary.LittleEndian.AppendUint32(b, e[2])
		}
	}
	b = binary.LittleEndian.AppendUint32(b, 0)
	return append(b, make([]byte, 256-len(b))...)
}

// expectCode asserts err is an *Error with the code, matching its sentinel.
func expectCode(t *testing.T, what string, err error, code Code) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("%s: error %v (%T), want *Error %s", what, err, err, code)
		return
	}
	if e.Code != code {
		t.Errorf("%s: code %s, want %s (%v)", what, e.Code, code, err)
	}
	sentinel := map[Code]error{CodeUnsupportedFormat: ErrUnsupportedFormat, CodeCorrupt: ErrCorrupt,
		CodeTooLarge: ErrTooLarge, CodeInvalidInput: ErrInvalidInput}[code]
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: errors.Is(err, %v) is false", what, sentinel)
	}
}

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func TestTooLargeRefusedFromHeader(t *testing.T) {
	cases := map[string][]byte{
		"png 60000x60000 (3.6 GP)":   pngHeader(60000, 60000),
		"png 100001x1000":            pngHeader(100001, 1000),
		"png 2^31-1 square":          pngHeader(1<<31-1, 1<<31-1),
		"jpeg 65535x65535":           jpegHeader(65535, 65535),
		"gif 65535x65535":            gifHeader(65535, 65535),
		"bmp 60000x60000":            bmpHeader(60000, 60000),
		"bmp 60000x-60000 top-down":  bmpHeader(60000, -60000),
		"webp VP8X 16777216^2":       webpVP8XHeader(1<<24, 1<<24),
		"webp VP8L 16384^2":          webpVP8LHeader(16384, 16384),
		"tiff 60000x60000":           tiffHeader(60000, 60000),
		"png 20000x10000 (200 MP)":   pngHeader(20000, 10000),
		"jpeg 20000x10000 (200 MP)":  jpegHeader(20000, 10000),
		"tiff 4294967295x4294967295": tiffHeader(1<<32-1, 1<<32-1),
	}
	for name, data := range cases {
		var err error
		n := allocated(func() { _, err = Decode(data, Options{}) })
		if errors.Is(err, ErrCorrupt) && (name == "tiff 4294967295x4294967295" || name == "png 2^31-1 square") {
			// Some decoders reject absurd dimensions as malformed first;
			// either way nothing is allocated.
		} else {
			expectCode(t, name, err, CodeTooLarge)
		}
		if n > 4<<20 {
			t.Errorf("%s: allocated %d bytes before refusing", name, n)
		}
	}
	// A custom limit applies too, and the default admits 100 MP.
	_, err := Decode(pngHeader(2000, 1000), Options{MaxPixels: 1_000_000})
	expectCode(t, "custom limit", err, CodeTooLarge)
	// (A header alone is too small to hold 100 MP: the file is padded to
	// the size deflate would need at the least; see TestLyingHeader.)
	h, err := DecodeHeader(append(pngHeader(10000, 10000), make([]byte, 300<<10)...), Options{})
	if err != nil || h.Width != 10000 {
		t.Errorf("100 MP header refused: %v", err)
	}
}

func validFiles(t *testing.T) map[string][]byte {
	src := image.NewNRGBA(image.Rect(0, 0, 33, 21))
	for i := range src.Pix {
		src.Pix[i] = byte(i * 7)
	}
	pal := image.NewPaletted(src.Rect, color.Palette{color.Black, color.White, color.RGBA{255, 0, 0, 255}})
	for i := range pal.Pix {
		pal.Pix[i] = byte(i % 3)
	}
	return map[string][]byte{
		"jpeg":          encode(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, src, nil) }),
		"png":           encode(t, func(b *bytes.Buffer) error { return png.Encode(b, src) }),
		"gif":           encode(t, func(b *bytes.Buffer) error { return gif.Encode(b, pal, nil) }),
		"bmp":           encode(t, func(b *bytes.Buffer) error { return bmp.Encode(b, src) }),
		"tiff":          encode(t, func(b *bytes.Buffer) error { return tiff.Encode(b, src, nil) }),
		"webp":          readFile(t, "testdata/crop-lossy-alpha.webp"),
		"webp lossless": readFile(t, "testdata/crop-lossless.webp"),
	}
}

func TestTruncatedIsCorrupt(t *testing.T) {
	for name, data := range validFiles(t) {
		if _, err := Decode(data, Options{}); err != nil {
			t.Fatalf("%s: valid file: %v", name, err)
		}
		for _, n := range []int{2, 3, 7, 12, 20, len(data) / 3, len(data) / 2, len(data) - 20} {
			if n <= 1 || n >= len(data) {
				continue
			}
			_, err := Decode(data[:n], Options{})
			if err == nil {
				// Some formats can end early legitimately (e.g. a BMP's
				// trailing bytes); only a cut header must fail.
				if n < 30 {
					t.Errorf("%s cut to %d bytes decoded without error", name, n)
				}
				continue
			}
			expectCode(t, name+" truncated", err, CodeCorrupt)
		}
	}
}

func TestUnsupportedInputs(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	random := make([]byte, 4096)
	rnd.Read(random)
	random[0] = 0 // no format starts with a zero byte
	cases := map[string][]byte{
		"empty":    {},
		"one byte": {0xff},
		"svg":      []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>`),
		"xml svg":  []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>`),
		"html":     []byte("<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"),
		"json":     []byte(`{"error":"not found"}`),
		"random":   random,
		"avif":     []byte("\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf"),
		"heic":     []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"),
		"RIFF wav": []byte("RIFF\x24\x00\x00\x00WAVEfmt "),
	}
	for name, data := range cases {
		_, err := Decode(data, Options{})
		expectCode(t, name, err, CodeUnsupportedFormat)
	}
}

func TestGarbageAfterMagicIsCorrupt(t *testing.T) {
	rnd := rand.New(rand.NewSource(2))
	for _, m := range magics {
		sig := []byte(m.sig)
		for i := range sig {
			if m.mask != "" && m.mask[i] == '?' {
				sig[i] = 0x40
			}
		}
		for trial := 0; trial < 20; trial++ {
			data := append(append([]byte(nil), sig...), make([]byte, rnd.Intn(300))...)
			rnd.Read(data[len(sig):])
			img, err := Decode(data, Options{MaxPixels: 1 << 20})
			if err == nil {
				if len(img.Pix) != 3*img.Width*img.Height {
					t.Fatalf("%s garbage: inconsistent image", m.format)
				}
				continue // random bytes can form a tiny valid image
			}
			var e *Error
			if !errors.As(err, &e) || (e.Code != CodeCorrupt && e.Code != CodeTooLarge) {
				t.Errorf("%s + garbage: %v, want CorruptImage", m.format, err)
			}
		}
	}
}
