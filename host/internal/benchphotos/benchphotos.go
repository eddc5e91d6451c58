// Package benchphotos makes the photo sets the end-to-end benchmarks run
// on: a 12 MP JPEG and a mixed set of 18 photos (the repository's PNG,
// JPEG and WebP test images plus kinds it does not commit: 16-bit and
// palette PNG, GIF, an EXIF-rotated and a grayscale JPEG, a 2400x1800 PNG
// and the 12 MP JPEG). They are generated, never committed.
package benchphotos

import (
	"bytes"
	"fmt"
	"image"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"

	xdraw "golang.org/x/image/draw"
)

// Photo12MP returns a 4000x3000 quality-90 JPEG: a smooth gradient plus a
// fixed pseudo-random texture, so that its entropy-coded data is as dense
// as a camera photo's (a few MB). The same bytes every call.
func Photo12MP() []byte {
	const W, H = 4000, 3000
	m := image.NewYCbCr(image.Rect(0, 0, W, H), image.YCbCrSubsampleRatio420)
	seed := uint32(12345)
	for y := 0; y < H; y++ {
		for x := 0; x < W; x++ {
			seed = seed*1664525 + 1013904223
			m.Y[y*m.YStride+x] = byte(min(max(40+150*x/W+50*y/H+int(seed>>24)%25-12, 0), 255))
		}
	}
	for y := 0; y < H/2; y++ {
		for x := 0; x < W/2; x++ {
			m.Cb[y*m.CStride+x] = byte(90 + 80*x/(W/2))
			m.Cr[y*m.CStride+x] = byte(170 - 60*y/(H/2))
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		panic(err) // encoding to memory does not fail
	}
	return buf.Bytes()
}

// repoPhotos are the committed images of the mixed set, relative to the
// repository's root.
var repoPhotos = []string{
	"testdata/images/astronaut.png",
	"testdata/images/chelsea.png",
	"testdata/images/coffee.png",
	"js/bench/astronaut.jpg",
	"wasm/imagefile/testdata/chelsea-q90.webp",
	"wasm/imagefile/testdata/chelsea-q95-420-progressive.jpg",
	"wasm/imagefile/testdata/chelsea-q95-420.jpg",
	"wasm/imagefile/testdata/chelsea-q95-444.jpg",
	"wasm/imagefile/testdata/crop-lossless.webp",
	"wasm/imagefile/testdata/crop-lossy-alpha.webp",
	"wasm/imagefile/testdata/crop-rgba.png",
}

// WriteMixed writes the mixed set of 18 photos into dir (created if
// needed) from the repository at root, and returns their paths, sorted.
func WriteMixed(dir, root string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	save := func(name string, b []byte) error {
		p := filepath.Join(dir, name)
		paths = append(paths, p)
		return os.WriteFile(p, b, 0o644)
	}
	for _, rel := range repoPhotos {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return nil, err
		}
		if err := save(filepath.Base(rel), b); err != nil {
			return nil, err
		}
	}
	decode := func(rel string) (image.Image, error) {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return nil, err
		}
		m, _, err := image.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		return m, nil
	}
	astro, err := decode("testdata/images/astronaut.png")
	if err != nil {
		return nil, err
	}
	chelsea, err := decode("testdata/images/chelsea.png")
	if err != nil {
		return nil, err
	}
	coffee, err := decode("testdata/images/coffee.png")
	if err != nil {
		return nil, err
	}
	for _, gen := range []struct {
		name string
		make func(*bytes.Buffer) error
	}{
		{"astronaut-16bit.png", func(w *bytes.Buffer) error {
			m := image.NewRGBA64(astro.Bounds())
			draw.Draw(m, m.Bounds(), astro, astro.Bounds().Min, draw.Src)
			return png.Encode(w, m)
		}},
		{"chelsea-palette.png", func(w *bytes.Buffer) error {
			m := image.NewPaletted(chelsea.Bounds(), palette.Plan9)
			draw.FloydSteinberg.Draw(m, m.Bounds(), chelsea, chelsea.Bounds().Min)
			return png.Encode(w, m)
		}},
		{"coffee.gif", func(w *bytes.Buffer) error {
			return gif.Encode(w, coffee, &gif.Options{NumColors: 256})
		}},
		{"coffee-gray.jpg", func(w *bytes.Buffer) error {
			m := image.NewGray(coffee.Bounds())
			draw.Draw(m, m.Bounds(), coffee, coffee.Bounds().Min, draw.Src)
			return jpeg.Encode(w, m, &jpeg.Options{Quality: 90})
		}},
		{"chelsea-exif6.jpg", func(w *bytes.Buffer) error {
			var j bytes.Buffer
			if err := jpeg.Encode(&j, chelsea, &jpeg.Options{Quality: 92}); err != nil {
				return err
			}
			// An APP1 Exif segment right after SOI: big-endian TIFF, one
			// IFD entry, Orientation (0x0112) = 6.
			exif := []byte{'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 1, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0}
			w.Write(j.Bytes()[:2])
			w.Write([]byte{0xFF, 0xE1, byte((len(exif) + 2) >> 8), byte(len(exif) + 2)})
			w.Write(exif)
			w.Write(j.Bytes()[2:])
			return nil
		}},
		{"astronaut-2400.png", func(w *bytes.Buffer) error {
			// Upscaled, plus a texture so that it compresses like a photo.
			m := image.NewRGBA(image.Rect(0, 0, 2400, 1800))
			xdraw.CatmullRom.Scale(m, m.Bounds(), astro, astro.Bounds(), draw.Src, nil)
			seed := uint32(7)
			for i := 0; i < len(m.Pix); i += 4 {
				seed = seed*1664525 + 1013904223
				n := int(seed>>28) - 8
				for c := 0; c < 3; c++ {
					m.Pix[i+c] = uint8(min(max(int(m.Pix[i+c])+n, 0), 255))
				}
			}
			return png.Encode(w, m)
		}},
		{"big12mp.jpg", func(w *bytes.Buffer) error {
			_, err := w.Write(Photo12MP())
			return err
		}},
	} {
		var buf bytes.Buffer
		if err := gen.make(&buf); err != nil {
			return nil, fmt.Errorf("%s: %w", gen.name, err)
		}
		if err := save(gen.name, buf.Bytes()); err != nil {
			return nil, err
		}
	}
	slices.Sort(paths)
	return paths, nil
}
