package host

import (
	"bytes"
	"image"
	_ "image/gif"  // header decoders for the MaxPixels pre-check
	_ "image/jpeg" //
	_ "image/png"  //

	_ "golang.org/x/image/bmp"  //
	_ "golang.org/x/image/webp" //
)

// checkPixels enforces Options.MaxPixels on encoded bytes by reading only
// the image header, before the module is asked to decode anything. The
// module applies its own, larger, default limit the same way; this lets a Go
// caller choose a smaller one (the module's load options have no such
// setting). Headers Go cannot read are left to the module, which reports
// the proper error.
func checkPixels(data []byte, max int64) error {
	if max <= 0 {
		return nil
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	if n := int64(cfg.Width) * int64(cfg.Height); n > max {
		return newError(ImageTooLarge, nil, "%s image %dx%d has %d pixels, more than the limit of %d", format, cfg.Width, cfg.Height, n, max)
	}
	return nil
}
