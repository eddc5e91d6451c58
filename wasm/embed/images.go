package embed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/imgembed/imgembed/wasm/api"
	"github.com/imgembed/imgembed/wasm/imagefile"
	"github.com/imgembed/imgembed/wasm/preprocess"
)

// Input is one image: exactly one of Bytes, Path, URL, Raw, Pixels or Lazy
// is set (Err, when set, is reported as the input's failure as is).
type Input struct {
	// Name is how messages name the input ("" for bytes: none).
	Name string
	// Bytes is an encoded image (PNG, JPEG, GIF, BMP, TIFF or WebP).
	Bytes []byte
	// Path is a local file, read through Images.Opener.
	Path string
	// URL is fetched through Images.Fetcher, a window ahead of its turn.
	URL string
	// Raw is decoded 8-bit RGB or RGBA pixels.
	Raw *Raw
	// Pixels is a preprocessed 3 x S x S CHW image.
	Pixels []float32
	// Decoded is an encoded file with the RGBA pixels a platform decoder
	// (a browser) made of it: the pixels are used where imagefile takes
	// them (PlatformRows), else the file is decoded here.
	Decoded *Decoded
	// Lazy produces the input when its turn comes (a JS value copied into
	// Go as late as possible, so a call's inputs are not all in the Go
	// heap at once).
	Lazy func() (Input, error)
	// Err is a failure the host found already (an unsupported value).
	Err error

	fetch chan fetched // a download started by Ahead
}

// Decoded is a file and its platform-decoded RGBA pixels (w x h, the EXIF
// orientation not applied).
type Decoded struct {
	File, RGBA    []byte
	Width, Height int
}

// Raw is decoded pixels: Width*Height*Channels bytes, Channels 3 or 4.
type Raw struct {
	Data                    []byte
	Width, Height, Channels int
}

// Fetcher downloads image URLs. Fetch must respect ctx and the image size
// cap (api.MaxImageFileBytes) and return *api.Error values.
type Fetcher interface {
	Fetch(ctx context.Context, url string) (Body, error)
}

// Body is a fetched image that may live outside the Go heap until it is
// decoded (JS chunks in the browser).
type Body interface {
	Bytes() []byte
}

// Opener reads a local image file (bounded by the image size cap).
type Opener interface {
	Open(ctx context.Context, path string) ([]byte, error)
}

// GoBody is a Body already in the Go heap.
type GoBody []byte

// Bytes returns b.
func (b GoBody) Bytes() []byte { return b }

type fetched struct {
	body Body
	err  error
}

// Images prepares image inputs for a model: decode (with EXIF
// orientation), Pillow-exact resize and centre crop, normalisation.
type Images struct {
	Size      int
	Mean, Std [3]float32
	// MaxPixels bounds width*height (0: api.DefaultMaxPixels).
	MaxPixels int64
	// MaxDecodeBytes is the decoding memory budget (0:
	// imagefile.DefaultMaxDecodeBytes).
	MaxDecodeBytes int64
	Fetcher        Fetcher // nil: URL inputs fail DownloadFailed
	Opener         Opener  // nil: Path inputs fail InvalidInput
	// NoPixels refuses preprocessed-pixel inputs (the preprocess API).
	NoPixels bool
	// Threads is how many goroutines one large image's resample may use
	// (0 or 1: the calling one; GOOS=js always one): a 12 MP photo is
	// otherwise the batch's straggler while other cores idle.
	Threads int
}

// RowLen is 3 x Size x Size.
func (im *Images) RowLen() int { return 3 * im.Size * im.Size }

// Ahead starts downloading a URL input (Tower.Ahead).
func (im *Images) Ahead(ctx context.Context, in Input) Input {
	if in.URL == "" || im.Fetcher == nil || in.fetch != nil {
		return in
	}
	ch := make(chan fetched, 1)
	in.fetch = ch
	url := in.URL
	go func() {
		var f fetched
		defer func() {
			if r := recover(); r != nil {
				f = fetched{err: api.New(api.DownloadFailed, nil, "fetching %s: internal error: %v", url, r)}
			}
			ch <- f
		}()
		f.body, f.err = im.Fetcher.Fetch(ctx, url)
	}()
	return in
}

// Prepare writes in's 3 x Size x Size pixels to dst (Tower.Prepare).
func (im *Images) Prepare(ctx context.Context, in Input, dst []float32) error {
	if in.Lazy != nil {
		v, err := in.Lazy()
		if err != nil {
			return err
		}
		in = v
	}
	if in.Err != nil {
		return in.Err
	}
	data := in.Bytes
	switch {
	case in.Pixels != nil:
		if im.NoPixels {
			return api.New(api.InvalidInput, nil, "preprocessed pixels are not an image to preprocess")
		}
		if len(in.Pixels) != len(dst) {
			return api.New(api.InvalidInput, nil, "pixels must be 3x%dx%d = %d values, got %d", im.Size, im.Size, len(dst), len(in.Pixels))
		}
		if i := firstNonFinite(in.Pixels); i >= 0 {
			return api.New(api.InvalidInput, nil, "pixels[%d] is %v: pixels must be finite", i, in.Pixels[i])
		}
		copy(dst, in.Pixels)
		return nil
	case in.Raw != nil:
		r := in.Raw
		if limit := im.maxPixels(); int64(r.Width)*int64(r.Height) > limit {
			return api.New(api.ImageTooLarge, nil, "%dx%d pixels exceed the limit of %d", r.Width, r.Height, limit)
		}
		img, err := imagefile.FromPixels(r.Data, r.Width, r.Height, r.Channels)
		if err != nil {
			return err
		}
		if err := preprocess.CLIPRowsThreads(img, im.Size, im.Mean, im.Std, dst, im.Threads); err != nil {
			return api.New(api.InvalidInput, err, "preprocess")
		}
		return nil
	case in.Decoded != nil:
		d := in.Decoded
		rows, err := imagefile.PlatformRows(d.File, d.RGBA, d.Width, d.Height, imagefile.Options{MaxPixels: im.MaxPixels, MaxDecodeBytes: im.MaxDecodeBytes})
		if errors.Is(err, imagefile.ErrNotPlatformDecodable) {
			data = d.File
			break
		}
		if err != nil {
			return nameErr(in, api.As(err, api.CorruptImage))
		}
		if err := preprocess.CLIPRowsThreads(rows, im.Size, im.Mean, im.Std, dst, im.Threads); err != nil {
			return nameErr(in, api.New(api.CorruptImage, err, "preprocess"))
		}
		return nil
	case in.URL != "":
		f, err := im.fetch(ctx, in)
		if err != nil {
			return err
		}
		data = f
	case in.Path != "":
		if im.Opener == nil {
			return api.New(api.InvalidInput, nil, "cannot read %s: no file access here", in.Path)
		}
		b, err := im.Opener.Open(ctx, in.Path)
		if err != nil {
			return api.As(err, api.InvalidInput)
		}
		data = b
	case data == nil:
		return api.New(api.InvalidInput, nil, "empty input")
	}
	if int64(len(data)) > api.MaxImageFileBytes {
		return api.New(api.ImageTooLarge, nil, "%s%d bytes, more than the limit of %d", named(in), len(data), int64(api.MaxImageFileBytes))
	}
	rows, err := imagefile.DecodeRows(data, imagefile.Options{MaxPixels: im.MaxPixels, MaxDecodeBytes: im.MaxDecodeBytes})
	if err != nil {
		return nameErr(in, api.As(err, api.CorruptImage))
	}
	if err := preprocess.CLIPRowsThreads(rows, im.Size, im.Mean, im.Std, dst, im.Threads); err != nil {
		return nameErr(in, api.New(api.CorruptImage, err, "preprocess"))
	}
	return nil
}

func (im *Images) maxPixels() int64 {
	if im.MaxPixels > 0 {
		return im.MaxPixels
	}
	return api.DefaultMaxPixels
}

// fetch waits for the download Ahead started, or fetches now.
func (im *Images) fetch(ctx context.Context, in Input) ([]byte, error) {
	var f fetched
	switch {
	case in.fetch != nil:
		select {
		case f = <-in.fetch:
		case <-ctx.Done():
			return nil, aborted(ctx)
		}
	case im.Fetcher == nil:
		return nil, api.New(api.DownloadFailed, nil, "cannot fetch %s: no fetch function", in.URL)
	default:
		f.body, f.err = im.Fetcher.Fetch(ctx, in.URL)
	}
	if f.err != nil {
		if api.CodeOf(f.err) == "" {
			return nil, api.New(api.DownloadFailed, f.err, "fetching %s", in.URL)
		}
		return nil, f.err
	}
	return f.body.Bytes(), nil
}

func named(in Input) string {
	if n := in.name(); n != "" {
		return n + " is "
	}
	return ""
}

func (in Input) name() string {
	switch {
	case in.Name != "":
		return in.Name
	case in.URL != "":
		return in.URL
	}
	return in.Path
}

// nameErr puts the input's name in front of a decoding error's message.
func nameErr(in Input, e *api.Error) *api.Error {
	n := in.name()
	if n == "" {
		return e
	}
	return &api.Error{Code: e.Code, Message: fmt.Sprintf("%s: %s", n, e.Message), Err: e.Err}
}

// Tower returns the image tower over forward for this preparation.
func (im *Images) Tower(forward func(ctx context.Context, rows []float32, n int) ([][]float32, error)) *Tower[Input, float32] {
	return &Tower[Input, float32]{
		RowLen:  im.RowLen(),
		Ahead:   im.Ahead,
		Prepare: im.Prepare,
		Forward: forward,
	}
}

// firstNonFinite returns the index of the first NaN or ±Inf in v, or -1.
// A float32 is not finite exactly when its 8 exponent bits are all ones,
// that is when (bits & exponent) + (lowest exponent bit) reaches bit 31.
// Two values are tested at once as one uint64 (no carry crosses from the
// low half), without branches, and only a hit is searched for value by
// value: under the wazero host this check of a 224x224 image's 150528
// values cost ~1 ms per image as a float64 comparison loop.
func firstNonFinite(v []float32) int {
	const (
		exp  = 0x7f800000_7f800000
		low  = 0x00800000_00800000
		high = 0x80000000_80000000
	)
	start := 0
	if len(v) > 0 && uintptr(unsafe.Pointer(&v[0]))%8 != 0 {
		start = 1 // the uint64 view starts 8-aligned
	}
	if n := (len(v) - start) / 2; n > 0 {
		w := unsafe.Slice((*uint64)(unsafe.Pointer(&v[start])), n)
		var bad uint64
		for _, x := range w {
			bad |= x&exp + low
		}
		if bad&high == 0 {
			// Only the values outside the view are left.
			for _, i := range [2]int{0, len(v) - 1} {
				if (i < start || i >= start+2*n) && math.Float32bits(v[i])&0x7f800000 == 0x7f800000 {
					return i
				}
			}
			return -1
		}
	}
	for i, x := range v {
		if math.Float32bits(x)&0x7f800000 == 0x7f800000 {
			return i
		}
	}
	return -1
}
