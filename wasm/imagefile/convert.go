package imagefile

import (
	"image"
	"image/color"
)

// Rows produces RGB rows on demand. Resamplers that only need part of an
// image (package preprocess keeps only a centre crop) read just those
// columns, and never pay for a full-size RGB copy of a large photo.
type Rows interface {
	Size() (w, h int)
	// Row writes pixels x0..x1-1 of row y as RGB (3*(x1-x0) bytes) to dst.
	Row(y, x0, x1 int, dst []byte)
}

// PackedRows is a Rows that can also write a row in the layout package
// preprocess's horizontal resampler reads, without an interleaved RGB line
// in between: rb[i] = R | B<<32 and g[i] = G for pixel x0+i. A JPEG's
// YCbCr planes take this path (one pass over the pixels instead of two).
type PackedRows interface {
	Rows
	RowPacked(y, x0, x1 int, rb []int64, g []byte)
}

// Fork returns a Rows over the same pixels as r that another goroutine
// can read while r is in use: a YCbCr source keeps per-row scratch, so it
// gets its own; every other Rows only reads and is returned as is.
func Fork(r Rows) Rows {
	if y, ok := r.(*ycbcrRows); ok {
		c := *y
		c.cb, c.cr = make([]byte, len(y.cb)), make([]byte, len(y.cr))
		c.sb, c.sr, c.pb, c.pr = nil, nil, nil, nil
		return &c
	}
	return r
}

// Size implements Rows.
func (m *RGB) Size() (int, int) { return m.Width, m.Height }

// Row implements Rows.
func (m *RGB) Row(y, x0, x1 int, dst []byte) {
	o := 3 * (y*m.Width + x0)
	copy(dst[:3*(x1-x0)], m.Pix[o:o+3*(x1-x0)])
}

// RowPacked implements PackedRows.
func (m *RGB) RowPacked(y, x0, x1 int, rb []int64, g []byte) {
	o := 3 * (y*m.Width + x0)
	src := m.Pix[o : o+3*(x1-x0)]
	rb, g = rb[:x1-x0], g[:x1-x0]
	for i := range rb {
		p := src[3*i : 3*i+3 : 3*i+3]
		rb[i], g[i] = int64(p[0])|int64(p[2])<<32, p[1]
	}
}

// NewRows wraps a decoded image as a Rows source that converts colour the
// way Pillow's convert("RGB") does. format ("jpeg", "webp", ...) selects the
// YCbCr conversion: JPEG follows libjpeg (full range, fancy upsampling),
// lossy WebP follows libwebp (BT.601 limited range).
func NewRows(img image.Image, format string) Rows {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if b.Min != (image.Point{}) {
		return &genericRows{img, b}
	}
	switch m := img.(type) {
	case *image.YCbCr:
		return newYCbCrRows(m, format == FormatWebP)
	case *image.NYCbCrA:
		return newYCbCrRows(&m.YCbCr, format == FormatWebP)
	case *image.RGBA:
		return &rgbaRows{m.Pix, m.Stride, w, h}
	case *image.NRGBA:
		return &nrgbaRows{m.Pix, m.Stride, w, h}
	case *image.Gray:
		return &grayRows{m.Pix, m.Stride, 1, w, h}
	case *image.Gray16:
		return &grayRows{m.Pix, m.Stride, 2, w, h} // high byte first
	case *image.NRGBA64:
		return &nrgba64Rows{m.Pix, m.Stride, w, h}
	case *image.RGBA64:
		return &rgba64Rows{m.Pix, m.Stride, w, h}
	case *image.CMYK:
		return &cmykRows{m.Pix, m.Stride, w, h}
	case *image.Paletted:
		return newPalettedRows(m)
	}
	return &genericRows{img, b}
}

// ToRGB converts a decoded image to a packed RGB image (no orientation).
func ToRGB(img image.Image, format string) *RGB {
	r := NewRows(img, format)
	w, h := r.Size()
	pix := make([]byte, 3*w*h)
	for y := 0; y < h; y++ {
		r.Row(y, 0, w, pix[3*y*w:3*(y+1)*w])
	}
	return &RGB{Pix: pix, Width: w, Height: h}
}

// DecodeRows is Decode without the full-size RGB copy when the image needs
// no rotation: the returned Rows converts colour lazily from the decoder's
// own buffers.
func DecodeRows(data []byte, opts Options) (Rows, error) {
	img, h, err := DecodeImage(data, opts)
	if err != nil {
		return nil, err
	}
	var r Rows
	err = safely(func() error {
		r = NewRows(img, h.Format)
		if h.Orientation != 1 {
			r = orientRows(r, h.Orientation)
		}
		return nil
	})
	if err != nil {
		return nil, newErr(CodeCorrupt, h.Format, err)
	}
	return r, nil
}

// ---- straight and premultiplied RGBA ----

type nrgbaRows struct {
	pix    []byte
	stride int
	w, h   int
}

func (r *nrgbaRows) Size() (int, int) { return r.w, r.h }
func (r *nrgbaRows) Row(y, x0, x1 int, dst []byte) {
	src := r.pix[y*r.stride+4*x0 : y*r.stride+4*x1]
	dst = dst[:3*(x1-x0)]
	for i, j := 0, 0; i < len(dst); i, j = i+3, j+4 {
		dst[i], dst[i+1], dst[i+2] = src[j], src[j+1], src[j+2]
	}
}

// RowPacked implements PackedRows.
func (r *nrgbaRows) RowPacked(y, x0, x1 int, rb []int64, g []byte) {
	src := r.pix[y*r.stride+4*x0 : y*r.stride+4*x1]
	rb, g = rb[:x1-x0], g[:x1-x0]
	i := 0
	if hasAVX2 {
		i, _ = rgbaPacked(src, rb, g)
	}
	for ; i < len(rb); i++ {
		p := src[4*i : 4*i+3 : 4*i+3]
		rb[i], g[i] = int64(p[0])|int64(p[2])<<32, p[1]
	}
}

type rgbaRows struct {
	pix    []byte
	stride int
	w, h   int
}

func (r *rgbaRows) Size() (int, int) { return r.w, r.h }
func (r *rgbaRows) Row(y, x0, x1 int, dst []byte) {
	src := r.pix[y*r.stride+4*x0 : y*r.stride+4*x1]
	dst = dst[:3*(x1-x0)]
	for i, j := 0, 0; i < len(dst); i, j = i+3, j+4 {
		a := src[j+3]
		if a == 0xff {
			dst[i], dst[i+1], dst[i+2] = src[j], src[j+1], src[j+2]
			continue
		}
		dst[i], dst[i+1], dst[i+2] = unpremul(src[j], a), unpremul(src[j+1], a), unpremul(src[j+2], a)
	}
}

// RowPacked implements PackedRows: Row's pixels as R | B<<32 and G.
func (r *rgbaRows) RowPacked(y, x0, x1 int, rb []int64, g []byte) {
	src := r.pix[y*r.stride+4*x0 : y*r.stride+4*x1]
	rb, g = rb[:x1-x0], g[:x1-x0]
	i := 0
	if hasAVX2 {
		// All opaque (any PNG without alpha): the split is the answer;
		// otherwise redo the row with un-premultiplication.
		if n, opaque := rgbaPacked(src, rb, g); opaque {
			i = n
		}
	}
	for ; i < len(rb); i++ {
		p := src[4*i : 4*i+4 : 4*i+4]
		if a := p[3]; a != 0xff {
			rb[i], g[i] = int64(unpremul(p[0], a))|int64(unpremul(p[2], a))<<32, unpremul(p[1], a)
			continue
		}
		rb[i], g[i] = int64(p[0])|int64(p[2])<<32, p[1]
	}
}

// unpremul recovers a straight 8-bit value from a premultiplied one, as
// Pillow's RGBa -> RGBA does (255*c/a, truncated, clipped).
func unpremul(c, a byte) byte {
	if a == 0 {
		return 0
	}
	v := 255 * int(c) / int(a)
	if v > 255 {
		return 255
	}
	return byte(v)
}

type nrgba64Rows struct {
	pix    []byte
	stride int
	w, h   int
}

func (r *nrgba64Rows) Size() (int, int) { return r.w, r.h }
func (r *nrgba64Rows) Row(y, x0, x1 int, dst []byte) {
	src := r.pix[y*r.stride+8*x0 : y*r.stride+8*x1]
	dst = dst[:3*(x1-x0)]
	for i, j := 0, 0; i < len(dst); i, j = i+3, j+8 {
		dst[i], dst[i+1], dst[i+2] = src[j], src[j+2], src[j+4] // big-endian: high bytes
	}
}

type rgba64Rows struct {
	pix    []byte
	stride int
	w, h   int
}

func (r *rgba64Rows) Size() (int, int) { return r.w, r.h }
func (r *rgba64Rows) Row(y, x0, x1 int, dst []byte) {
	src := r.pix[y*r.stride+8*x0 : y*r.stride+8*x1]
	dst = dst[:3*(x1-x0)]
	for i, j := 0, 0; i < len(dst); i, j = i+3, j+8 {
		a := uint32(src[j+6])<<8 | uint32(src[j+7])
		for c := 0; c < 3; c++ {
			v := uint32(src[j+2*c])<<8 | uint32(src[j+2*c+1])
			if a != 0xffff {
				if a == 0 {
					v = 0
				} else {
					v = min(0xffff, v*0xffff/a)
				}
			}
			dst[i+c] = byte(v >> 8)
		}
	}
}

// ---- gray ----

type grayRows struct {
	pix    []byte
	stride int
	bpp    int // 1 for Gray, 2 for Gray16 (big-endian, high byte kept)
	w, h   int
}

func (r *grayRows) Size() (int, int) { return r.w, r.h }
func (r *grayRows) Row(y, x0, x1 int, dst []byte) {
	src := r.pix[y*r.stride+r.bpp*x0 : y*r.stride+r.bpp*x1]
	dst = dst[:3*(x1-x0)]
	for i, j := 0, 0; i < len(dst); i, j = i+3, j+r.bpp {
		v := src[j]
		dst[i], dst[i+1], dst[i+2] = v, v, v
	}
}

// RowPacked implements PackedRows.
func (r *grayRows) RowPacked(y, x0, x1 int, rb []int64, g []byte) {
	src := r.pix[y*r.stride+r.bpp*x0 : y*r.stride+r.bpp*x1]
	rb, g = rb[:x1-x0], g[:x1-x0]
	for i := range rb {
		v := src[r.bpp*i]
		rb[i], g[i] = int64(v)|int64(v)<<32, v
	}
}

// ---- CMYK ----

type cmykRows struct {
	pix    []byte
	stride int
	w, h   int
}

func (r *cmykRows) Size() (int, int) { return r.w, r.h }
func (r *cmykRows) Row(y, x0, x1 int, dst []byte) {
	src := r.pix[y*r.stride+4*x0 : y*r.stride+4*x1]
	dst = dst[:3*(x1-x0)]
	for i, j := 0, 0; i < len(dst); i, j = i+3, j+4 {
		nk := 255 - int(src[j+3])
		dst[i] = cmykChannel(src[j], nk)
		dst[i+1] = cmykChannel(src[j+1], nk)
		dst[i+2] = cmykChannel(src[j+2], nk)
	}
}

// cmykChannel is Pillow's cmyk2rgb for one channel: nk - c*nk/255, with the
// division by 255 done as Pillow's rounded MULDIV255.
func cmykChannel(c byte, nk int) byte {
	t := int(c)*nk + 128
	v := nk - ((t>>8)+t)>>8
	if v < 0 {
		return 0
	}
	return byte(v)
}

// ---- palette ----

type palettedRows struct {
	pix    []byte
	stride int
	w, h   int
	lut    [256][3]byte
}

func newPalettedRows(m *image.Paletted) *palettedRows {
	r := &palettedRows{pix: m.Pix, stride: m.Stride, w: m.Rect.Dx(), h: m.Rect.Dy()}
	for i, c := range m.Palette {
		if i >= 256 {
			break
		}
		r.lut[i] = straight(c)
	}
	// Out-of-range indices (hostile files) read as black, like an
	// unset palette entry.
	return r
}

func (r *palettedRows) Size() (int, int) { return r.w, r.h }
func (r *palettedRows) Row(y, x0, x1 int, dst []byte) {
	src := r.pix[y*r.stride+x0 : y*r.stride+x1]
	dst = dst[:3*(x1-x0)]
	for i, j := 0, 0; i < len(dst); i, j = i+3, j+1 {
		p := &r.lut[src[j]]
		dst[i], dst[i+1], dst[i+2] = p[0], p[1], p[2]
	}
}

// RowPacked implements PackedRows.
func (r *palettedRows) RowPacked(y, x0, x1 int, rb []int64, g []byte) {
	src := r.pix[y*r.stride+x0 : y*r.stride+x1]
	rb, g = rb[:len(src)], g[:len(src)]
	for i, k := range src {
		p := &r.lut[k]
		rb[i], g[i] = int64(p[0])|int64(p[2])<<32, p[1]
	}
}

// straight returns the non-premultiplied 8-bit RGB of any colour.
func straight(c color.Color) [3]byte {
	switch c := c.(type) {
	case color.NRGBA:
		return [3]byte{c.R, c.G, c.B}
	case color.RGBA:
		if c.A == 0xff {
			return [3]byte{c.R, c.G, c.B}
		}
		return [3]byte{unpremul(c.R, c.A), unpremul(c.G, c.A), unpremul(c.B, c.A)}
	case color.Gray:
		return [3]byte{c.Y, c.Y, c.Y}
	}
	n := color.NRGBA64Model.Convert(c).(color.NRGBA64)
	return [3]byte{byte(n.R >> 8), byte(n.G >> 8), byte(n.B >> 8)}
}

// ---- anything else: slow but correct ----

type genericRows struct {
	img image.Image
	b   image.Rectangle
}

func (r *genericRows) Size() (int, int) { return r.b.Dx(), r.b.Dy() }
func (r *genericRows) Row(y, x0, x1 int, dst []byte) {
	for x := x0; x < x1; x++ {
		p := straight(r.img.At(r.b.Min.X+x, r.b.Min.Y+y))
		i := 3 * (x - x0)
		dst[i], dst[i+1], dst[i+2] = p[0], p[1], p[2]
	}
}

// gifCanvas places a GIF's first frame on its logical screen, the rest
// filled with the transparent index (or 0), as Pillow shows frame 0.
func gifCanvas(img image.Image, w, h int) image.Image {
	p, ok := img.(*image.Paletted)
	if !ok {
		return img
	}
	fill := uint8(0)
	for i, c := range p.Palette {
		if _, _, _, a := c.RGBA(); a == 0 {
			fill = uint8(i)
			break
		}
	}
	out := image.NewPaletted(image.Rect(0, 0, w, h), p.Palette)
	for i := range out.Pix {
		out.Pix[i] = fill
	}
	r := p.Rect.Intersect(out.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		copy(out.Pix[out.PixOffset(r.Min.X, y):out.PixOffset(r.Max.X, y)], p.Pix[p.PixOffset(r.Min.X, y):p.PixOffset(r.Max.X, y)])
	}
	return out
}
