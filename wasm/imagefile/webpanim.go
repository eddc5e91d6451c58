package imagefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"

	"golang.org/x/image/webp"
)

var errNoFrame = errors.New("animated WebP without a frame")

// webpAnimFirstFrame decodes frame 1 of an animated WebP (golang.org/x/image
// reads only still images) as Pillow shows it: libwebp's WebPAnimDecoder
// starts from a transparent black canvas and, the first frame being a key
// frame, copies the frame's pixels in at its offset without blending.
// It returns (nil, nil) if data has no ANMF chunk (a still image).
func webpAnimFirstFrame(data []byte, cw, ch int) (image.Image, error) {
	le := binary.LittleEndian
	var frame []byte
	for i := 12; i+8 <= len(data); {
		n := int64(le.Uint32(data[i+4:]))
		if int64(i)+8+n > int64(len(data)) {
			return nil, errNoFrame
		}
		if string(data[i:i+4]) == "ANMF" {
			frame = data[i+8 : i+8+int(n)]
			break
		}
		i += 8 + int(n) + int(n&1)
	}
	if frame == nil {
		return nil, nil
	}
	if len(frame) < 16+8 {
		return nil, errNoFrame
	}
	u24 := func(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }
	x, y := 2*u24(frame[0:]), 2*u24(frame[3:])
	fw, fh := u24(frame[6:])+1, u24(frame[9:])+1
	if x+fw > cw || y+fh > ch {
		// The format requires frames to lie within the canvas; the canvas
		// is what the pixel limit was checked against.
		return nil, errors.New("animated WebP frame outside its canvas")
	}
	sub := frame[16:]
	// Rebuild a still WebP from the frame's chunks (ALPH? + VP8, or VP8L)
	// behind a VP8X header carrying the frame size, so the decoder rejects
	// a bitstream that claims other (possibly huge) dimensions before
	// allocating for it.
	var flags byte
	if string(sub[:4]) == "ALPH" {
		flags = 0x10
	}
	vp8x := []byte{flags, 0, 0, 0, byte(fw - 1), byte((fw - 1) >> 8), byte((fw - 1) >> 16), byte(fh - 1), byte((fh - 1) >> 8), byte((fh - 1) >> 16)}
	body := append([]byte("WEBPVP8X"), le.AppendUint32(nil, uint32(len(vp8x)))...)
	body = append(body, vp8x...)
	body = append(body, sub...)
	still := append(le.AppendUint32([]byte("RIFF"), uint32(len(body))), body...)
	m, err := webp.Decode(bytes.NewReader(still))
	if err != nil {
		return nil, err
	}
	if b := m.Bounds(); b.Dx() != fw || b.Dy() != fh {
		return nil, errors.New("animated WebP frame size disagrees with its header")
	}
	canvas := image.NewNRGBA(image.Rect(0, 0, cw, ch))
	r := image.Rect(x, y, x+fw, y+fh).Intersect(canvas.Rect)
	// Straight (non-premultiplied) copy: RGB under alpha is kept, as
	// libwebp decodes into an RGBA canvas.
	rows := NewRows(m, FormatWebP)
	line := make([]byte, 3*fw)
	for yy := r.Min.Y; yy < r.Max.Y; yy++ {
		rows.Row(yy-y, r.Min.X-x, r.Max.X-x, line)
		o := canvas.PixOffset(r.Min.X, yy)
		for i := 0; i < r.Dx(); i++ {
			canvas.Pix[o+4*i], canvas.Pix[o+4*i+1], canvas.Pix[o+4*i+2], canvas.Pix[o+4*i+3] = line[3*i], line[3*i+1], line[3*i+2], 0xff
		}
	}
	return canvas, nil
}
