package imagefile

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

// exifTIFF builds a minimal TIFF block whose IFD0 holds the orientation tag
// (plus a leading unrelated tag, so the parser must walk entries).
func exifTIFF(o int, bigEndian bool, long bool) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	hdr := []byte("II*\x00")
	if bigEndian {
		bo, hdr = binary.BigEndian, []byte("MM\x00*")
	}
	b := append([]byte(nil), hdr...)
	b = bo.AppendUint32(b, 8)
	b = bo.AppendUint16(b, 2)
	// 0x010F Make, ASCII, count 4 fits inline.
	b = bo.AppendUint16(b, 0x010f)
	b = bo.AppendUint16(b, 2)
	b = bo.AppendUint32(b, 4)
	b = append(b, 'G', 'o', '!', 0)
	b = bo.AppendUint16(b, tagOrientation)
	if long {
		b = bo.AppendUint16(b, 4)
		b = bo.AppendUint32(b, 1)
		b = bo.AppendUint32(b, uint32(o))
	} else {
		b = bo.AppendUint16(b, 3)
		b = bo.AppendUint32(b, 1)
		b = bo.AppendUint16(b, uint16(o))
		b = bo.AppendUint16(b, 0)
	}
	return bo.AppendUint32(b, 0) // no next IFD
}

// withJPEGExif inserts an APP1 Exif segment right after SOI.
func withJPEGExif(jpg, tiffBlock []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), tiffBlock...)
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte(nil), jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// withPNGExif inserts an eXIf chunk right after IHDR.
func withPNGExif(p, tiffBlock []byte) []byte {
	ihdrEnd := 8 + 12 + int(binary.BigEndian.Uint32(p[8:]))
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(tiffBlock)))
	chunk = append(chunk, "eXIf"...)
	chunk = append(chunk, tiffBlock...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	out := append([]byte(nil), p[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, p[ihdrEnd:]...)
}

// withPNGExifAtEnd inserts an eXIf chunk just before IEND.
func withPNGExifAtEnd(p, tiffBlock []byte) []byte {
	iend := len(p) - 12
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(tiffBlock)))
	chunk = append(chunk, "eXIf"...)
	chunk = append(chunk, tiffBlock...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	out := append([]byte(nil), p[:iend]...)
	out = append(out, chunk...)
	return append(out, p[iend:]...)
}

// blocks is a 3x2 grid of 8x8 solid blocks, six distinct colours, so
// every one of the eight orientations gives a different picture. 8x8
// blocks survive JPEG (4:2:0) well enough to be told apart at their
// centres.
var blockColours = [2][3]color.RGBA{
	{{250, 10, 10, 255}, {10, 250, 10, 255}, {10, 10, 250, 255}},
	{{250, 250, 10, 255}, {10, 250, 250, 255}, {250, 10, 250, 255}},
}

func blocksImage() *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, 24, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 24; x++ {
			m.SetRGBA(x, y, blockColours[y/8][x/8])
		}
	}
	return m
}

// expectedBlock returns the colour that must appear at output block
// (bx, by) for orientation o, derived from Pillow's transposes.
func expectedBlock(o, bx, by int) color.RGBA {
	const W, H = 3, 2 // source grid in blocks
	var sx, sy int
	switch o {
	case 1:
		sx, sy = bx, by
	case 2: // FLIP_LEFT_RIGHT
		sx, sy = W-1-bx, by
	case 3: // ROTATE_180
		sx, sy = W-1-bx, H-1-by
	case 4: // FLIP_TOP_BOTTOM
		sx, sy = bx, H-1-by
	case 5: // TRANSPOSE
		sx, sy = by, bx
	case 6: // ROTATE_270 (90 clockwise)
		sx, sy = by, H-1-bx
	case 7: // TRANSVERSE
		sx, sy = W-1-by, H-1-bx
	case 8: // ROTATE_90 (counter-clockwise)
		sx, sy = W-1-by, bx
	}
	return blockColours[sy][sx]
}

func checkBlocks(t *testing.T, what string, o int, m *RGB, tol int) {
	t.Helper()
	gw, gh := 3, 2
	if o >= 5 {
		gw, gh = 2, 3
	}
	if m.Width != 8*gw || m.Height != 8*gh {
		t.Fatalf("%s orientation %d: got %dx%d, want %dx%d", what, o, m.Width, m.Height, 8*gw, 8*gh)
	}
	for by := 0; by < gh; by++ {
		for bx := 0; bx < gw; bx++ {
			want := expectedBlock(o, bx, by)
			i := 3 * ((8*by+4)*m.Width + 8*bx + 4)
			got := m.Pix[i : i+3]
			for c, w := range []uint8{want.R, want.G, want.B} {
				d := int(got[c]) - int(w)
				if d < -tol || d > tol {
					t.Fatalf("%s orientation %d: block (%d,%d) is %v, want %v", what, o, bx, by, got, want)
				}
			}
		}
	}
}

func TestEXIFOrientationJPEG(t *testing.T) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, blocksImage(), &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	for o := 1; o <= 8; o++ {
		for _, v := range []struct {
			name      string
			big, long bool
		}{{"II SHORT", false, false}, {"MM SHORT", true, false}, {"II LONG", false, true}} {
			data := withJPEGExif(buf.Bytes(), exifTIFF(o, v.big, v.long))
			h, err := DecodeHeader(data, Options{})
			if err != nil || h.Orientation != o {
				t.Fatalf("%s: header orientation %d, err %v; want %d", v.name, h.Orientation, err, o)
			}
			checkBlocks(t, "jpeg "+v.name, o, mustDecode(t, data), 24)
			// DecodeRows must agree with Decode.
			r, err := DecodeRows(data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			w, hh := r.Size()
			rows := &RGB{Pix: make([]byte, 3*w*hh), Width: w, Height: hh}
			for y := 0; y < hh; y++ {
				r.Row(y, 0, w, rows.Pix[3*y*w:])
			}
			checkBlocks(t, "jpeg rows "+v.name, o, rows, 24)
		}
	}
}

func TestEXIFOrientationPNG(t *testing.T) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, blocksImage()); err != nil {
		t.Fatal(err)
	}
	for o := 1; o <= 8; o++ {
		checkBlocks(t, "png eXIf", o, mustDecode(t, withPNGExif(buf.Bytes(), exifTIFF(o, true, false))), 0)
		checkBlocks(t, "png eXIf after IDAT", o, mustDecode(t, withPNGExifAtEnd(buf.Bytes(), exifTIFF(o, false, false))), 0)
	}
}

func TestEXIFMalformed(t *testing.T) {
	good := exifTIFF(6, false, false)
	if ParseOrientation(good) != 6 {
		t.Fatal("baseline")
	}
	bad := map[string][]byte{
		"empty":        nil,
		"short":        good[:7],
		"bad magic":    append([]byte("XX*\x00"), good[4:]...),
		"ifd past end": append(append([]byte(nil), good[:4]...), 0xff, 0xff, 0, 0),
		"entries cut":  good[:20],
		"value 0":      exifTIFF(0, false, false),
		"value 9":      exifTIFF(9, false, false),
		"value 65535":  exifTIFF(65535, true, false),
	}
	for name, b := range bad {
		if o := ParseOrientation(b); o != 1 {
			t.Errorf("%s: orientation %d, want 1", name, o)
		}
	}
	// A JPEG whose APP1 length runs past the end must still decode or fail
	// cleanly, never panic.
	var buf bytes.Buffer
	jpeg.Encode(&buf, blocksImage(), nil)
	data := withJPEGExif(buf.Bytes(), good)
	data[4], data[5] = 0xff, 0xff
	if _, err := Decode(data, Options{}); err == nil {
		t.Log("decoder accepted the broken APP1 segment")
	}
}

// TestOrientRoundTrip: applying each orientation then its inverse is the
// identity, on a non-square image with distinct pixels.
func TestOrientRoundTrip(t *testing.T) {
	m := &RGB{Pix: make([]byte, 3*5*3), Width: 5, Height: 3}
	for i := range m.Pix {
		m.Pix[i] = byte(i)
	}
	inverse := map[int]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}
	for o := 1; o <= 8; o++ {
		back := Orient(Orient(m, o), inverse[o])
		if back.Width != 5 || back.Height != 3 || !bytes.Equal(back.Pix, m.Pix) {
			t.Errorf("orientation %d then %d is not the identity", o, inverse[o])
		}
	}
}

// tiffGrayWithOrientation is a hand-made 8-bit gray TIFF (one strip) whose
// IFD0 carries the orientation tag, as cameras and scanners write it.
func tiffGrayWithOrientation(w, h int, pix []byte, o int) []byte {
	le := binary.LittleEndian
	entries := [][3]uint32{
		{256, 4, uint32(w)}, {257, 4, uint32(h)}, {258, 3, 8}, {259, 3, 1}, {262, 3, 1},
		{273, 4, 0}, {tagOrientation, 3, uint32(o)}, {277, 3, 1}, {278, 4, uint32(h)}, {279, 4, uint32(len(pix))},
	}
	ifdLen := 2 + 12*len(entries) + 4
	dataOff := uint32(8 + ifdLen)
	b := le.AppendUint32([]byte("II*\x00"), 8)
	b = le.AppendUint16(b, uint16(len(entries)))
	for _, e := range entries {
		if e[0] == 273 {
			e[2] = dataOff
		}
		b = le.AppendUint16(b, uint16(e[0]))
		b = le.AppendUint16(b, uint16(e[1]))
		b = le.AppendUint32(b, 1)
		if e[1] == 3 {
			b = le.AppendUint16(b, uint16(e[2]))
			b = le.AppendUint16(b, 0)
		} else {
			b = le.AppendUint32(b, e[2])
		}
	}
	b = le.AppendUint32(b, 0)
	return append(b, pix...)
}

func TestEXIFOrientationTIFF(t *testing.T) {
	const w, h = 5, 3
	pix := make([]byte, w*h)
	for i := range pix {
		pix[i] = byte(10 * i)
	}
	base := &RGB{Pix: make([]byte, 3*w*h), Width: w, Height: h}
	for i, v := range pix {
		base.Pix[3*i], base.Pix[3*i+1], base.Pix[3*i+2] = v, v, v
	}
	for o := 1; o <= 8; o++ {
		got := mustDecode(t, tiffGrayWithOrientation(w, h, pix, o))
		want := Orient(base, o)
		if got.Width != want.Width || !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("tiff orientation %d: got %dx%d %v, want %dx%d %v", o, got.Width, got.Height, got.Pix[:9], want.Width, want.Height, want.Pix[:9])
		}
	}
}

// withWebPExif wraps a simple lossless WebP (RIFF/WEBP/VP8L) in an
// extended container: VP8X (EXIF flag), the VP8L chunk, then an EXIF chunk.
func withWebPExif(t *testing.T, webp []byte, w, h int, tiffBlock []byte) []byte {
	if string(webp[12:16]) != "VP8L" {
		t.Fatalf("want a simple VP8L file, got %q", webp[12:16])
	}
	le := binary.LittleEndian
	vp8x := []byte{0x08, 0, 0, 0, byte(w - 1), byte((w - 1) >> 8), byte((w - 1) >> 16), byte(h - 1), byte((h - 1) >> 8), byte((h - 1) >> 16)}
	body := append([]byte("WEBPVP8X"), le.AppendUint32(nil, uint32(len(vp8x)))...)
	body = append(body, vp8x...)
	body = append(body, webp[12:]...)
	if len(body)%2 == 1 {
		body = append(body, 0)
	}
	body = append(body, "EXIF"...)
	body = le.AppendUint32(body, uint32(len(tiffBlock)))
	body = append(body, tiffBlock...)
	if len(tiffBlock)%2 == 1 {
		body = append(body, 0)
	}
	return append(le.AppendUint32([]byte("RIFF"), uint32(len(body))), body...)
}

func TestEXIFOrientationWebP(t *testing.T) {
	plain := readFile(t, "testdata/crop-lossless.webp")
	base := mustDecode(t, plain)
	for o := 1; o <= 8; o++ {
		data := withWebPExif(t, plain, base.Width, base.Height, exifTIFF(o, false, false))
		got := mustDecode(t, data)
		want := Orient(base, o)
		if got.Width != want.Width || !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("webp orientation %d: wrong pixels (%dx%d)", o, got.Width, got.Height)
		}
	}
}
