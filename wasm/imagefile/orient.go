package imagefile

// Orient returns img transformed for EXIF orientation o, as Pillow's
// ImageOps.exif_transpose does: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
// 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
// Orientation 1 (or anything out of range) returns img itself.
func Orient(img *RGB, o int) *RGB {
	if o < 2 || o > 8 {
		return img
	}
	w, h := img.Width, img.Height
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	x0, y0, dxx, dxy, dyx, dyy := orientation(o, w, h)
	src := img.Pix
	dst := make([]byte, len(src))
	// Offsets in bytes: stepping x in the output moves the source by step.
	step := 3 * (dxx + dyx*w)
	for y := 0; y < oh; y++ {
		s := 3 * ((x0 + dxy*y) + (y0+dyy*y)*w)
		row := dst[3*y*ow : 3*(y+1)*ow]
		for i := 0; i < len(row); i += 3 {
			row[i], row[i+1], row[i+2] = src[s], src[s+1], src[s+2]
			s += step
		}
	}
	return &RGB{Pix: dst, Width: ow, Height: oh}
}

// orientation gives, for EXIF orientation o (2..8) of a w x h image, the
// source pixel of output (x, y): (x0 + dxx*x + dxy*y, y0 + dyx*x + dyy*y).
func orientation(o, w, h int) (x0, y0, dxx, dxy, dyx, dyy int) {
	switch o {
	case 2:
		x0, dxx, dyy = w-1, -1, 1
	case 3:
		x0, y0, dxx, dyy = w-1, h-1, -1, -1
	case 4:
		y0, dxx, dyy = h-1, 1, -1
	case 5:
		dxy, dyx = 1, 1
	case 6:
		y0, dxy, dyx = h-1, 1, -1
	case 7:
		x0, y0, dxy, dyx = w-1, h-1, -1, -1
	case 8:
		x0, dxy, dyx = w-1, -1, 1
	}
	return
}

// band and blockCols tile orientRows' transposes: 64 source rows x 64
// columns is 12 KB read and 12 KB written per tile.
const band, blockCols = 64, 64

// orientRows is Orient(ToRGB-of-src, o) without the full-size unrotated
// copy: src is converted a band of rows at a time and each band's pixels
// are written where the orientation puts them (for the transposing
// orientations, a band's column becomes a run of one output row, so the
// writes stay contiguous and the band stays in cache).
func orientRows(src Rows, o int) *RGB {
	w, h := src.Size()
	if o < 2 || o > 8 { // as is
		dst := make([]byte, 3*w*h)
		for y := 0; y < h; y++ {
			src.Row(y, 0, w, dst[3*w*y:3*w*(y+1)])
		}
		return &RGB{Pix: dst, Width: w, Height: h}
	}
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	x0, y0, dxx, dxy, dyx, dyy := orientation(o, w, h)
	dst := make([]byte, 3*ow*oh)
	buf := make([]byte, 3*w*min(band, h))
	for sy0 := 0; sy0 < h; sy0 += band {
		n := min(band, h-sy0)
		for i := 0; i < n; i++ {
			src.Row(sy0+i, 0, w, buf[3*w*i:3*w*(i+1)])
		}
		if o < 5 { // rows stay rows: y = dyy*(sy - y0), x = dxx*(sx - x0)
			for i := 0; i < n; i++ {
				y := dyy * (sy0 + i - y0)
				row, line := dst[3*ow*y:3*ow*(y+1)], buf[3*w*i:3*w*(i+1)]
				if dxx == 1 {
					copy(row, line)
					continue
				}
				for sx := 0; sx < w; sx++ {
					d, p := row[3*(w-1-sx):3*(w-sx)], line[3*sx:3*sx+3]
					d[0], d[1], d[2] = p[0], p[1], p[2]
				}
			}
			continue
		}
		// Transposed: y = dxy*(sx - x0), x = dyx*(sy - y0): source column
		// sx of the band is a run of n pixels of output row y, from xa
		// rightwards (dyx = 1) or leftwards. Columns go in blocks so that
		// the block's band reads and output runs stay in L1 and its pages
		// in the TLB.
		xa := dyx * (sy0 - y0)
		lo := xa
		if dyx < 0 {
			lo = xa - n + 1
		}
		for bx := 0; bx < w; bx += blockCols {
			for sx := bx; sx < min(bx+blockCols, w); sx++ {
				y := dxy * (sx - x0)
				d := dst[3*(ow*y+lo) : 3*(ow*y+lo+n)]
				off, step := 3*sx, 3*w
				if dyx > 0 {
					for i := 0; i < n; i++ {
						p, q := buf[off:off+3:off+3], d[3*i:3*i+3:3*i+3]
						q[0], q[1], q[2] = p[0], p[1], p[2]
						off += step
					}
					continue
				}
				for i := n - 1; i >= 0; i-- {
					p, q := buf[off:off+3:off+3], d[3*i:3*i+3:3*i+3]
					q[0], q[1], q[2] = p[0], p[1], p[2]
					off += step
				}
			}
		}
	}
	return &RGB{Pix: dst, Width: ow, Height: oh}
}
