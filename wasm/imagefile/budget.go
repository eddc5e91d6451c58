package imagefile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
)

// Decoding memory. Go's decoders allocate the whole decoded image (and, for
// progressive JPEG, every DCT coefficient) from the header's dimensions,
// before the data has shown that it holds such an image: a 69-byte PNG
// declaring 10000x10000 used to cost ~1 GB. Two checks run on the header,
// before any pixel memory is allocated:
//
//   - Plausibility: every format but WebP has a bounded compression ratio
//     (deflate 1032:1, LZW ~2730:1, one Huffman bit per JPEG block at the
//     least, BMP rows stored whole), so a file too small for its declared
//     dimensions is a lie and fails with CorruptImage at once.
//   - Budget: the decoder's peak is estimated from the header (bytes per
//     pixel of the image type it will allocate, doubled where it also
//     buffers the raw samples); over Options.MaxDecodeBytes
//     (DefaultMaxDecodeBytes, 1 GiB) the image fails with ImageTooLarge.
//     A lying header (WebP's, whose lossless coding can spend no bits on a
//     pixel) can so make the host allocate at most the budget.
//
// Progressive JPEG: each scan walks every block of its components, so a
// small file with thousands of scans over a large image took minutes. The
// markers are counted first (as libjpeg's max-scans does): more than
// MaxJPEGScans scans, or more block visits than maxScanWork allows, fail
// with CorruptImage before decoding.
//
// Measured (Go heap allocated while decoding, over the RGB buffer w*h*3;
// TestDecodeMemoryMultiple logs them; a 1200x900 image unless noted):
// PNG RGBA 1.47x (estimate 1.67x), PNG gray 0.45x (0.42x), baseline JPEG
// 4:2:0 0.52x (0.55x), progressive JPEG 4:2:0 2.72x (3.12x; 451x300), GIF
// 0.34x (1.67x), BMP 1.34x (1.33x), deflate TIFF RGBA 6.53x (7.33x), lossy
// WebP 0.63x (1.33x; 451x300). With the 1 GiB budget the largest images
// are then about: PNG RGBA 200 MP (the 100 MP pixel limit applies first),
// progressive JPEG 4:2:0 110 MP, 4:4:4 55 MP, TIFF RGBA 8-bit 48 MP.

// DefaultMaxDecodeBytes is the memory budget for decoding one image when
// Options.MaxDecodeBytes is 0.
const DefaultMaxDecodeBytes = 1 << 30

// MaxJPEGScans bounds the scans of a JPEG (libjpeg's own default limit is
// in the same range; real encoders write at most a few dozen).
const MaxJPEGScans = 1000

// maxScanWork bounds the block visits of all scans of a progressive JPEG:
// 32 passes over every block of the image, or 16 Mi visits for small
// images, whichever is more.
func maxScanWork(totalBlocks int64) int64 { return max(32*totalBlocks, 16<<20) }

// budgetCheck applies the plausibility floor, the memory budget and (JPEG)
// the scan bounds to a header whose dimensions passed the pixel limit.
func budgetCheck(format string, data []byte, cfg image.Config, opts Options) error {
	w, h := int64(cfg.Width), int64(cfg.Height)
	px := w * h
	var minBytes int64 // the file can be no smaller
	var perPixel float64
	switch format {
	case FormatPNG:
		bits := pngBitsPerPixel(data)
		minBytes = h * (1 + (w*bits+7)/8) / 1032
		perPixel = 1.25 * bytesPerPixel(cfg.ColorModel) // + inflate and row buffers
		if len(data) > 28 && data[28] == 1 {            // Adam7: the passes, then the image
			perPixel *= 2
		}
	case FormatJPEG:
		j, ok := jpegScan(data)
		if !ok {
			return nil // the decoder reports what is wrong
		}
		minBytes = j.blocks / 8
		perPixel = 1.1 * j.samples / float64(px)
		if j.progressive {
			perPixel *= 5.5 // + one int32 coefficient per sample
		}
		if j.scans > MaxJPEGScans {
			return newErr(CodeCorrupt, format, fmt.Errorf("%d scans, more than the limit of %d", j.scans, MaxJPEGScans))
		}
		if j.progressive && j.work > maxScanWork(j.blocks) {
			return newErr(CodeCorrupt, format, fmt.Errorf("its %d scans visit %d blocks, more than the limit of %d for a %dx%d image", j.scans, j.work, maxScanWork(j.blocks), w, h))
		}
	case FormatGIF:
		minBytes = px / 2730
		perPixel = 5 // the paletted frame and the RGBA canvas
	case FormatBMP:
		if len(data) >= 32 && binary.LittleEndian.Uint32(data[30:]) == 0 { // BI_RGB: rows stored whole
			bpp := int64(binary.LittleEndian.Uint16(data[28:]))
			minBytes = h * ((w*bpp + 31) / 32 * 4)
		}
		perPixel = 4
	case FormatTIFF:
		minBytes = px / 8 / 4096
		// The image, and each strip inflated whole into a buffer that
		// grows by doubling (x/image/tiff).
		perPixel = 5.5 * bytesPerPixel(cfg.ColorModel)
	case FormatWebP:
		perPixel = 4 // VP8L's NRGBA; lossy is 1.5-2.5
	}
	if int64(len(data)) < minBytes {
		return newErr(CodeCorrupt, format, fmt.Errorf("the file is %d bytes, too small to hold a %dx%d image (at least %d)", len(data), w, h, minBytes))
	}
	budget := opts.MaxDecodeBytes
	if budget <= 0 {
		budget = DefaultMaxDecodeBytes
	}
	if need := int64(perPixel * float64(px)); need > budget {
		return newErr(CodeTooLarge, format, fmt.Errorf("decoding %dx%d would take about %d MB, more than the budget of %d MB", w, h, need>>20, budget>>20))
	}
	return nil
}

// bytesPerPixel is the size of a pixel of the image type a decoder
// allocates for color model m.
func bytesPerPixel(m color.Model) float64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	case color.YCbCrModel:
		return 3
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 4
}

// pngBitsPerPixel reads bit depth x channels from the IHDR (1 when the
// header is too short: the floor is then the lowest).
func pngBitsPerPixel(d []byte) int64 {
	if len(d) < 26 {
		return 1
	}
	ch := map[byte]int64{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[d[25]]
	if ch == 0 {
		ch = 1
	}
	return max(1, int64(d[24])*ch)
}

// jpegInfo is what jpegScan learns from a JPEG's markers.
type jpegInfo struct {
	progressive bool
	blocks      int64   // 8x8 blocks of all components
	samples     float64 // samples of all components (the decoded image's bytes)
	scans       int
	work        int64 // blocks visited by all scans
}

// jpegScan walks the marker segments (the entropy-coded data between them
// is skipped byte by byte) and counts the scans and the blocks each visits.
func jpegScan(d []byte) (jpegInfo, bool) {
	var j jpegInfo
	type comp struct{ id, h, v int }
	var comps []comp
	var blocksOf map[int]int64
	i := 2
	for i+4 <= len(d) {
		if d[i] != 0xff {
			// Entropy-coded data: on to the next 0xff (IndexByte is
			// vectorised natively and a tight loop in wasm).
			k := bytes.IndexByte(d[i:], 0xff)
			if k < 0 {
				break
			}
			i += k
			continue
		}
		m := d[i+1]
		switch {
		case m == 0xff || m == 0x00 || (m >= 0xd0 && m <= 0xd7) || m == 0x01 || m == 0xd8:
			i += 2
			continue
		case m == 0xd9:
			return j, comps != nil
		}
		n := int(binary.BigEndian.Uint16(d[i+2:]))
		if n < 2 || i+2+n > len(d) {
			return j, comps != nil
		}
		seg := d[i+4 : i+2+n]
		switch {
		case m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc && comps == nil:
			if len(seg) < 6 {
				return j, false
			}
			j.progressive = m == 0xc2 || m == 0xc6 || m == 0xca || m == 0xce
			hgt, wid, nc := int(binary.BigEndian.Uint16(seg[1:])), int(binary.BigEndian.Uint16(seg[3:])), int(seg[5])
			if len(seg) < 6+3*nc || nc == 0 {
				return j, false
			}
			hmax, vmax := 1, 1
			for k := 0; k < nc; k++ {
				c := comp{int(seg[6+3*k]), max(1, int(seg[7+3*k]>>4)), max(1, int(seg[7+3*k]&15))}
				comps = append(comps, c)
				hmax, vmax = max(hmax, c.h), max(vmax, c.v)
			}
			blocksOf = map[int]int64{}
			for _, c := range comps {
				cw := (int64(wid)*int64(c.h) + int64(hmax) - 1) / int64(hmax)
				ch := (int64(hgt)*int64(c.v) + int64(vmax) - 1) / int64(vmax)
				b := ((cw + 7) / 8) * ((ch + 7) / 8)
				blocksOf[c.id] += b
				j.blocks += b
				j.samples += float64(b * 64)
			}
		case m == 0xda:
			j.scans++
			if len(seg) >= 1 {
				for k := 0; k < int(seg[0]) && 1+2*k < len(seg); k++ {
					j.work += blocksOf[int(seg[1+2*k])]
				}
			}
		}
		i += 2 + n
	}
	return j, comps != nil
}
