package imagefile

import (
	"image"
	"image/color"
)

// Go's GIF decoder replaces the palette entry of the transparent index with
// transparent black, but Pillow's convert("RGB") shows the colour stored in
// the file for that index. gifStoredPalette reads the colour table that
// applies to the first frame (its local table, else the global one) so the
// stored colours can be restored. It returns nil on anything unexpected,
// leaving Go's palette in place.
func gifStoredPalette(d []byte) color.Palette {
	if len(d) < 13 {
		return nil
	}
	table := func(off, flags int) (color.Palette, int) {
		if flags&0x80 == 0 {
			return nil, off
		}
		n := 2 << (flags & 7)
		if off+3*n > len(d) {
			return nil, -1
		}
		p := make(color.Palette, n)
		for i := range p {
			p[i] = color.RGBA{d[off+3*i], d[off+3*i+1], d[off+3*i+2], 0xff}
		}
		return p, off + 3*n
	}
	global, i := table(13, int(d[10]))
	if i < 0 {
		return nil
	}
	for i < len(d) {
		switch d[i] {
		case 0x21: // extension: label, then sub-blocks up to a zero length
			i += 2
			for i < len(d) && d[i] != 0 {
				i += 1 + int(d[i])
			}
			i++
		case 0x2c: // first image descriptor
			if i+10 > len(d) {
				return nil
			}
			local, j := table(i+10, int(d[i+9]))
			if j < 0 {
				return nil
			}
			if local != nil {
				return local
			}
			return global
		default:
			return nil
		}
	}
	return nil
}

// restoreGIFPalette swaps in the stored colours for a decoded first frame.
func restoreGIFPalette(img image.Image, data []byte) {
	p, ok := img.(*image.Paletted)
	if !ok {
		return
	}
	stored := gifStoredPalette(data)
	if len(stored) < len(p.Palette) {
		return
	}
	pal := make(color.Palette, len(p.Palette))
	copy(pal, stored)
	p.Palette = pal
}
