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
	// Source pixel of output (x, y) is (x0 + dxx*x + dxy*y, y0 + dyx*x + dyy*y).
	var x0, y0, dxx, dxy, dyx, dyy int
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
