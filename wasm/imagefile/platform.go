package imagefile

import (
	"errors"
	"fmt"
)

// ErrNotPlatformDecodable is returned by PlatformRows when the file is not
// one whose platform-decoded pixels are taken (the caller then decodes the
// file itself).
var ErrNotPlatformDecodable = errors.New("imagefile: pixels of this file are decoded here, not by the platform")

// PlatformDecodable reports whether a browser's decoder may decode data in
// place of this package: a JPEG with 1 or 3 components. Browsers and
// Pillow both decode those with libjpeg-turbo (results within the JPEG
// tolerance of the fixtures); CMYK/YCCK files are converted differently,
// and the lossless formats must stay exact (a canvas premultiplies alpha),
// so everything else is decoded here.
func PlatformDecodable(data []byte) bool {
	if Sniff(data) != FormatJPEG {
		return false
	}
	_, _, comps, ok := jpegSOF(data)
	return ok && (comps == 1 || comps == 3)
}

// PlatformRows is DecodeRows for a file a browser decoded: rgba holds its
// straight RGBA pixels, w x h, as stored (the EXIF orientation not
// applied: createImageBitmap with imageOrientation 'none'). The header
// checks and pixel limit of DecodeHeader apply to data, the sizes must
// match the file's, and the file's EXIF orientation is applied here as in
// DecodeRows. For files PlatformDecodable refuses it returns an error
// wrapping ErrNotPlatformDecodable.
func PlatformRows(data, rgba []byte, w, h int, opts Options) (Rows, error) {
	if !PlatformDecodable(data) {
		return nil, ErrNotPlatformDecodable
	}
	hd, err := DecodeHeader(data, opts)
	if err != nil {
		return nil, err
	}
	if hd.Width != w || hd.Height != h {
		return nil, fmt.Errorf("%w: decoded %dx%d, the file is %dx%d", ErrNotPlatformDecodable, w, h, hd.Width, hd.Height)
	}
	if err := checkRaw(rgba, w, h, 4); err != nil {
		return nil, err
	}
	var r Rows = &nrgbaRows{rgba, 4 * w, w, h}
	if hd.Orientation != 1 {
		pix := make([]byte, 3*w*h)
		for y := 0; y < h; y++ {
			r.Row(y, 0, w, pix[3*y*w:3*(y+1)*w])
		}
		r = Orient(&RGB{Pix: pix, Width: w, Height: h}, hd.Orientation)
	}
	return r, nil
}
