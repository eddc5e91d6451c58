package imagefile

import (
	"bytes"
	"encoding/binary"
)

// EXIF orientation, read by hand: the tag lives in the first IFD of a small
// TIFF structure (JPEG APP1 "Exif\0\0", PNG eXIf, WebP EXIF chunk, or the
// TIFF file itself). Every offset is bounds-checked; anything malformed
// means "no orientation" (1), as Pillow's exif_transpose leaves such images
// alone.

const tagOrientation = 0x0112

// orientationOf returns the EXIF orientation (1..8) of an encoded image.
func orientationOf(format string, data []byte) int {
	var tiffData []byte
	switch format {
	case FormatJPEG:
		tiffData = jpegExif(data)
	case FormatPNG:
		tiffData = pngExif(data)
	case FormatWebP:
		tiffData = webpExif(data)
	case FormatTIFF:
		tiffData = data
	}
	if tiffData == nil {
		return 1
	}
	return ParseOrientation(tiffData)
}

// ParseOrientation reads tag 0x0112 from IFD0 of a TIFF-structured block
// ("II*\0" or "MM\0*" header). It returns 1 if the tag is absent or invalid.
func ParseOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	ifd := int64(bo.Uint32(t[4:8]))
	if ifd < 8 || ifd+2 > int64(len(t)) {
		return 1
	}
	n := int64(bo.Uint16(t[ifd:]))
	for i := int64(0); i < n; i++ {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(t)) {
			return 1
		}
		if bo.Uint16(t[e:]) != tagOrientation {
			continue
		}
		typ, count := bo.Uint16(t[e+2:]), bo.Uint32(t[e+4:])
		if count < 1 {
			return 1
		}
		var v int
		switch typ {
		case 3: // SHORT, stored in the first two bytes of the value field
			v = int(bo.Uint16(t[e+8:]))
		case 4: // LONG (seen in the wild)
			v = int(bo.Uint32(t[e+8:]))
		default:
			return 1
		}
		if v < 1 || v > 8 {
			return 1
		}
		return v
	}
	return 1
}

// jpegExif walks the JPEG marker segments before the first scan and returns
// the TIFF block of the first APP1 "Exif\0\0" segment.
func jpegExif(d []byte) []byte {
	i := 2
	for i+4 <= len(d) {
		if d[i] != 0xff {
			return nil
		}
		marker := d[i+1]
		if marker == 0xff { // fill byte
			i++
			continue
		}
		if marker == 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker == 0x01 {
			i += 2
			continue
		}
		if marker == 0xda || marker == 0xd9 { // start of scan / end of image
			return nil
		}
		n := int(binary.BigEndian.Uint16(d[i+2:]))
		if n < 2 || i+2+n > len(d) {
			return nil
		}
		seg := d[i+4 : i+2+n]
		if marker == 0xe1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return seg[6:]
		}
		i += 2 + n
	}
	return nil
}

// pngExif returns the payload of the eXIf chunk. Pillow honours it before
// or after the image data, so the walk skips over IDAT chunks (by length,
// without reading them) up to IEND.
func pngExif(d []byte) []byte {
	i := 8
	for i+12 <= len(d) {
		n := int64(binary.BigEndian.Uint32(d[i:]))
		typ := string(d[i+4 : i+8])
		end := int64(i) + 12 + n
		if end > int64(len(d)) {
			return nil
		}
		switch typ {
		case "eXIf":
			return d[i+8 : i+8+int(n)]
		case "IEND":
			return nil
		}
		i = int(end)
	}
	return nil
}

// webpExif returns the payload of the RIFF "EXIF" chunk of an extended WebP.
func webpExif(d []byte) []byte {
	i := 12
	for i+8 <= len(d) {
		n := int64(binary.LittleEndian.Uint32(d[i+4:]))
		end := int64(i) + 8 + n + n&1
		if int64(i)+8+n > int64(len(d)) {
			return nil
		}
		if string(d[i:i+4]) == "EXIF" {
			p := d[i+8 : i+8+int(n)]
			// Some writers keep the JPEG-style prefix.
			return bytes.TrimPrefix(p, []byte("Exif\x00\x00"))
		}
		i = int(end)
	}
	return nil
}

// probeSize reads the dimensions of JPEG and WebP files directly from their
// first frame header. The standard DecodeConfig functions read further
// than needed for these (a JPEG without a JFIF segment is parsed up to its
// first scan, a WebP VP8X canvas is not trusted until the frame chunk), so
// an oversized image would be reported as corrupt when its header already
// says it is too large.
func probeSize(format string, d []byte) (w, h int, ok bool) {
	switch format {
	case FormatJPEG:
		w, h, _, ok = jpegSOF(d)
		return w, h, ok
	case FormatWebP:
		if len(d) < 12+8 {
			return 0, 0, false
		}
		c := d[12:]
		body := c[8:]
		switch string(c[:4]) {
		case "VP8X":
			if len(body) < 10 {
				return 0, 0, false
			}
			w = int(body[4]) | int(body[5])<<8 | int(body[6])<<16
			h = int(body[7]) | int(body[8])<<8 | int(body[9])<<16
			return w + 1, h + 1, true
		case "VP8L":
			if len(body) < 5 || body[0] != 0x2f {
				return 0, 0, false
			}
			v := binary.LittleEndian.Uint32(body[1:])
			return int(v&0x3fff) + 1, int(v>>14&0x3fff) + 1, true
		case "VP8 ":
			if len(body) < 10 || body[3] != 0x9d || body[4] != 0x01 || body[5] != 0x2a {
				return 0, 0, false
			}
			return int(binary.LittleEndian.Uint16(body[6:]) & 0x3fff), int(binary.LittleEndian.Uint16(body[8:]) & 0x3fff), true
		}
	}
	return 0, 0, false
}

// jpegSOF reads the frame header (SOFn) of a JPEG: dimensions and the
// number of components (1 gray, 3 YCbCr or RGB, 4 CMYK/YCCK).
func jpegSOF(d []byte) (w, h, comps int, ok bool) {
	i := 2
	for i+4 <= len(d) {
		if d[i] != 0xff {
			return 0, 0, 0, false
		}
		m := d[i+1]
		if m == 0xff {
			i++
			continue
		}
		if m == 0xd8 || (m >= 0xd0 && m <= 0xd7) || m == 0x01 {
			i += 2
			continue
		}
		if m == 0xda || m == 0xd9 {
			return 0, 0, 0, false
		}
		n := int(binary.BigEndian.Uint16(d[i+2:]))
		if n < 2 {
			return 0, 0, 0, false
		}
		// SOF0..SOF15 except DHT (c4), JPG (c8) and DAC (cc).
		if m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc {
			if i+10 > len(d) {
				return 0, 0, 0, false
			}
			return int(binary.BigEndian.Uint16(d[i+7:])), int(binary.BigEndian.Uint16(d[i+5:])), int(d[i+9]), true
		}
		i += 2 + n
	}
	return 0, 0, 0, false
}
