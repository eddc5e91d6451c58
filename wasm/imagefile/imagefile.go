// Package imagefile turns encoded image bytes into 8-bit RGB pixels the way
// Pillow's Image.open(...) + ImageOps.exif_transpose + convert("RGB") does,
// because the CLIP preprocessing that follows must see the same pixels as the
// Hugging Face reference.
//
// Formats are recognised by their magic bytes, never by name: JPEG, PNG, GIF
// (first frame), WebP, BMP and TIFF. The image size is read from the header
// and checked against a pixel limit before any pixel memory is allocated, and
// every decoder runs under recover so hostile input yields a typed error
// instead of a panic. The package is plain Go: it builds natively and for
// GOOS=js GOARCH=wasm.
//
// Measured against Pillow's own decoders (libjpeg-turbo, libwebp; see
// testdata/README.md): lossless formats are bit-exact; JPEG and lossy WebP
// differ only by IDCT rounding (mean 0.04-0.06 of a level, max 3).
// Known differences:
//   - 16-bit grayscale is reduced to its high byte. Pillow opens such PNG
//     and TIFF files as 32-bit integer images and convert("RGB") clips the
//     16-bit values to 0..255 (mostly white); the high byte is what a user
//     expects to see and what this project specifies.
//   - Animated WebP: the first frame on its canvas, as Pillow shows it.
//   - 4-component JPEGs without an Adobe marker and TIFF with associated
//     alpha follow Go's decoders (then un-premultiplied).
package imagefile

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"strings"

	"golang.org/x/image/bmp"

	"github.com/imgembed/imgembed/wasm/api"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// DefaultMaxPixels is the pixel limit used when Options.MaxPixels is 0:
// 100 megapixels, far above any camera photo, far below what would exhaust
// a browser tab's memory (the decoded RGB alone would be 300 MB).
const DefaultMaxPixels = api.DefaultMaxPixels

// Error codes (package api's): every failure is an *Error with one of
// them.
const (
	CodeUnsupportedFormat = api.UnsupportedImageFormat
	CodeCorrupt           = api.CorruptImage
	CodeTooLarge          = api.ImageTooLarge
	CodeInvalidInput      = api.InvalidInput
)

// Sentinel errors; an *Error matches the one for its Code under errors.Is.
var (
	ErrUnsupportedFormat = api.ErrUnsupportedImageFormat
	ErrCorrupt           = api.ErrCorruptImage
	ErrTooLarge          = api.ErrImageTooLarge
	ErrInvalidInput      = api.ErrInvalidInput
)

// Error describes why bytes could not be turned into pixels (package
// api's one error type).
type (
	Error = api.Error
	Code  = api.Code
)

// newErr makes an *Error whose message names the format (when known)
// and then the cause.
func newErr(code api.Code, format string, cause error) *Error {
	if format == "" {
		return api.New(code, cause, "")
	}
	return api.New(code, cause, "%s", format)
}

// Options tunes Decode.
type Options struct {
	// MaxPixels refuses images with more than this many pixels (width x
	// height, from the header). 0 means DefaultMaxPixels.
	MaxPixels int64
	// MaxDecodeBytes is the memory budget for decoding one image, as
	// estimated from its header (see budget.go); over it the image fails
	// with ImageTooLarge before decoding. 0 means DefaultMaxDecodeBytes.
	MaxDecodeBytes int64
}

// RGB is an 8-bit RGB image: Pix holds Width*Height*3 bytes, row-major, with
// no padding between rows.
type RGB struct {
	Pix           []byte
	Width, Height int
}

// Format names returned in Error.Format and by Sniff.
const (
	FormatJPEG = "jpeg"
	FormatPNG  = "png"
	FormatGIF  = "gif"
	FormatWebP = "webp"
	FormatBMP  = "bmp"
	FormatTIFF = "tiff"
)

type magic struct {
	format string
	sig    string
	mask   string // '?' matches any byte
}

var magics = []magic{
	{FormatJPEG, "\xff\xd8\xff", ""},
	{FormatPNG, "\x89PNG\r\n\x1a\n", ""},
	{FormatGIF, "GIF87a", ""},
	{FormatGIF, "GIF89a", ""},
	{FormatWebP, "RIFF????WEBP", "RIFF????WEBP"},
	{FormatBMP, "BM", ""},
	{FormatTIFF, "II*\x00", ""},
	{FormatTIFF, "MM\x00*", ""},
}

func matchMagic(data []byte, m magic, prefixOK bool) bool {
	if len(data) < len(m.sig) && !prefixOK {
		return false
	}
	n := min(len(data), len(m.sig))
	for i := 0; i < n; i++ {
		if m.mask != "" && m.mask[i] == '?' {
			continue
		}
		if data[i] != m.sig[i] {
			return false
		}
	}
	return true
}

// Sniff names the format of data from its magic bytes, or returns "".
func Sniff(data []byte) string {
	for _, m := range magics {
		if matchMagic(data, m, false) {
			return m.format
		}
	}
	return ""
}

// sniffTruncated recognises a file cut inside its magic number (at least two
// bytes of it), so that it reports CorruptImage rather than unsupported.
func sniffTruncated(data []byte) string {
	if len(data) < 2 {
		return ""
	}
	for _, m := range magics {
		if len(data) < len(m.sig) && matchMagic(data, m, true) {
			return m.format
		}
	}
	return ""
}

type codec struct {
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

var codecs = map[string]codec{
	FormatJPEG: {jpeg.DecodeConfig, jpeg.Decode},
	FormatPNG:  {png.DecodeConfig, png.Decode},
	FormatGIF:  {gif.DecodeConfig, gif.Decode},
	FormatWebP: {webp.DecodeConfig, webp.Decode},
	FormatBMP:  {bmp.DecodeConfig, bmp.Decode},
	FormatTIFF: {tiff.DecodeConfig, tiff.Decode},
}

// Header is what Decode learns before decoding pixels.
type Header struct {
	Format        string
	Width, Height int // as stored, before EXIF orientation
	Orientation   int // EXIF orientation 1..8 (1 when absent or invalid)
}

// notAnImage names what a non-image input that people commonly fetch or
// pick by mistake is (an HTML error or login page, an SVG, JSON), or "".
func notAnImage(data []byte) string {
	head := strings.ToLower(strings.TrimLeft(string(data[:min(len(data), 512)]), " \t\r\n\ufeff"))
	switch {
	case strings.HasPrefix(head, "<!doctype html"), strings.HasPrefix(head, "<html"), strings.HasPrefix(head, "<head"), strings.HasPrefix(head, "<body"):
		return "an HTML page (an error or login page instead of the image?)"
	case strings.HasPrefix(head, "<svg"), strings.HasPrefix(head, "<?xml") && strings.Contains(head, "<svg"):
		return "an SVG drawing (vector images are not decoded; convert it to PNG)"
	case strings.HasPrefix(head, "{"), strings.HasPrefix(head, "["):
		return "JSON text (an API error response?)"
	}
	return ""
}

// DecodeHeader sniffs the format, reads the dimensions and the EXIF
// orientation without decoding pixels, and applies the pixel limit.
func DecodeHeader(data []byte, opts Options) (Header, error) {
	format := Sniff(data)
	if format == "" {
		if f := sniffTruncated(data); f != "" {
			return Header{}, newErr(CodeCorrupt, f, io.ErrUnexpectedEOF)
		}
		if len(data) == 0 {
			return Header{}, newErr(CodeUnsupportedFormat, "", errors.New("empty input"))
		}
		if kind := notAnImage(data); kind != "" {
			return Header{}, newErr(CodeUnsupportedFormat, "", fmt.Errorf("%s, not an image", kind))
		}
		return Header{}, newErr(CodeUnsupportedFormat, "", fmt.Errorf("unrecognised leading bytes %q", leading(data)))
	}
	limit := opts.MaxPixels
	if limit <= 0 {
		limit = DefaultMaxPixels
	}
	tooLarge := func(w, h int) error {
		return newErr(CodeTooLarge, format, fmt.Errorf("%dx%d = %d pixels exceeds the limit of %d", w, h, int64(w)*int64(h), limit))
	}
	if w, h, ok := probeSize(format, data); ok && int64(w)*int64(h) > limit {
		return Header{Format: format, Width: w, Height: h}, tooLarge(w, h)
	}
	var cfg image.Config
	err := safely(func() error {
		var err error
		cfg, err = codecs[format].config(bytes.NewReader(data))
		return err
	})
	if err != nil {
		return Header{}, newErr(CodeCorrupt, format, err)
	}
	h := Header{Format: format, Width: cfg.Width, Height: cfg.Height, Orientation: 1}
	if h.Width <= 0 || h.Height <= 0 {
		return h, newErr(CodeCorrupt, format, fmt.Errorf("bad dimensions %dx%d", h.Width, h.Height))
	}
	if int64(h.Width)*int64(h.Height) > limit {
		return h, tooLarge(h.Width, h.Height)
	}
	if err := budgetCheck(format, data, cfg, opts); err != nil {
		return h, err
	}
	// The EXIF walk is bounds-checked; recover anyway, as for decoders, and
	// treat a failure as "no orientation".
	if safely(func() error { h.Orientation = orientationOf(format, data); return nil }) != nil {
		h.Orientation = 1
	}
	return h, nil
}

func leading(data []byte) []byte {
	if len(data) > 8 {
		return data[:8]
	}
	return data
}

// safely runs f, turning a panic (a decoder bug hit by hostile data) into an
// error.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panic: %v", r)
		}
	}()
	return f()
}

// DecodeImage decodes data to the decoder's own image type (no colour
// conversion, no orientation), after the header checks of DecodeHeader.
// Callers that want to fuse colour conversion into later work (package
// preprocess) use it; everyone else uses Decode.
func DecodeImage(data []byte, opts Options) (image.Image, Header, error) {
	h, err := DecodeHeader(data, opts)
	if err != nil {
		return nil, h, err
	}
	var img image.Image
	err = safely(func() error {
		var err error
		if h.Format == FormatWebP {
			if img, err = webpAnimFirstFrame(data, h.Width, h.Height); img != nil || err != nil {
				return err
			}
		}
		img, err = codecs[h.Format].decode(bytes.NewReader(data))
		return err
	})
	if err != nil {
		return nil, h, newErr(CodeCorrupt, h.Format, err)
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 || int64(b.Dx())*int64(b.Dy()) > int64(h.Width)*int64(h.Height) {
		return nil, h, newErr(CodeCorrupt, h.Format, fmt.Errorf("decoded bounds %v disagree with header %dx%d", b, h.Width, h.Height))
	}
	if h.Format == FormatGIF {
		err = safely(func() error {
			if b.Dx() != h.Width || b.Dy() != h.Height || b.Min != (image.Point{}) {
				// Pillow shows the first frame on the full logical screen.
				img = gifCanvas(img, h.Width, h.Height)
			}
			restoreGIFPalette(img, data)
			return nil
		})
		if err != nil {
			return nil, h, newErr(CodeCorrupt, h.Format, err)
		}
	}
	return img, h, nil
}

// Decode decodes data (any supported format, recognised by content), applies
// its EXIF orientation and converts it to RGB as Pillow's convert("RGB") does.
func Decode(data []byte, opts Options) (*RGB, error) {
	img, h, err := DecodeImage(data, opts)
	if err != nil {
		return nil, err
	}
	var rgb *RGB
	err = safely(func() error {
		rgb = orientRows(NewRows(img, h.Format), h.Orientation)
		return nil
	})
	if err != nil {
		return nil, newErr(CodeCorrupt, h.Format, err)
	}
	return rgb, nil
}

// RawRows is FromPixels without the copy: a Rows view of data (3 = RGB,
// 4 = RGBA, alpha ignored). data must not change while the Rows is used.
func RawRows(data []byte, w, h, channels int) (Rows, error) {
	if err := checkRaw(data, w, h, channels); err != nil {
		return nil, err
	}
	if channels == 3 {
		return &RGB{Pix: data, Width: w, Height: h}, nil
	}
	return &nrgbaRows{data, 4 * w, w, h}, nil
}

func checkRaw(data []byte, w, h, channels int) error {
	if channels != 3 && channels != 4 {
		return newErr(CodeInvalidInput, "", fmt.Errorf("channels = %d, want 3 or 4", channels))
	}
	if w <= 0 || h <= 0 {
		return newErr(CodeInvalidInput, "", fmt.Errorf("bad dimensions %dx%d", w, h))
	}
	if int64(w)*int64(h) > DefaultMaxPixels {
		return newErr(CodeTooLarge, "", fmt.Errorf("%dx%d exceeds %d pixels", w, h, DefaultMaxPixels))
	}
	if int64(len(data)) != int64(w)*int64(h)*int64(channels) {
		return newErr(CodeInvalidInput, "", fmt.Errorf("got %d bytes, want %dx%dx%d = %d", len(data), w, h, channels, int64(w)*int64(h)*int64(channels)))
	}
	return nil
}

// FromPixels wraps raw interleaved pixels (channels 3 = RGB, 4 = RGBA whose
// alpha is dropped, like convert("RGB")). The result never aliases data.
func FromPixels(data []byte, w, h, channels int) (*RGB, error) {
	if err := checkRaw(data, w, h, channels); err != nil {
		return nil, err
	}
	n := w * h
	pix := make([]byte, n*3)
	if channels == 3 {
		copy(pix, data)
	} else {
		for i, j := 0, 0; i < len(pix); i, j = i+3, j+4 {
			pix[i], pix[i+1], pix[i+2] = data[j], data[j+1], data[j+2]
		}
	}
	return &RGB{Pix: pix, Width: w, Height: h}, nil
}
