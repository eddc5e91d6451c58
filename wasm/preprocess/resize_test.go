package preprocess

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"

	"github.com/imgembed/imgembed/wasm/imagefile"
)

// fullResize is the plain two-pass Pillow resample of the whole image
// (every output pixel, every needed row), written without the crop
// shortcuts of ResizeCrop, to check that computing only the crop changes
// nothing.
func fullResize(m *imagefile.RGB, ow, oh int) *imagefile.RGB {
	w, h := m.Width, m.Height
	cur := m
	if ow != w {
		ws := coeffs(w, ow, 0, ow)
		out := &imagefile.RGB{Pix: make([]byte, 3*ow*h), Width: ow, Height: h}
		for y := 0; y < h; y++ {
			for x, win := range ws {
				for c := 0; c < 3; c++ {
					acc := int32(1 << (precisionBits - 1))
					for j, kv := range win.k {
						acc += int32(cur.Pix[3*(y*w+win.min+j)+c]) * kv
					}
					out.Pix[3*(y*ow+x)+c] = clip8(acc)
				}
			}
		}
		cur = out
	}
	if oh != h {
		ws := coeffs(h, oh, 0, oh)
		out := &imagefile.RGB{Pix: make([]byte, 3*ow*oh), Width: ow, Height: oh}
		for y, win := range ws {
			for x := 0; x < ow; x++ {
				for c := 0; c < 3; c++ {
					acc := int32(1 << (precisionBits - 1))
					for j, kv := range win.k {
						acc += int32(cur.Pix[3*((win.min+j)*ow+x)+c]) * kv
					}
					out.Pix[3*(y*ow+x)+c] = clip8(acc)
				}
			}
		}
		cur = out
	}
	return cur
}

func TestCropShortcutMatchesFullResize(t *testing.T) {
	rnd := rand.New(rand.NewSource(3))
	sizes := [][2]int{{300, 200}, {200, 300}, {224, 224}, {224, 500}, {640, 224}, {50, 30}, {30, 50}, {1, 7}, {9, 1}, {225, 224}, {451, 300}, {500, 499}}
	for _, sz := range sizes {
		w, h := sz[0], sz[1]
		m := &imagefile.RGB{Pix: make([]byte, 3*w*h), Width: w, Height: h}
		for i := range m.Pix {
			// Smooth field plus noise, with hard edges: exercises the
			// clipping of overshoot.
			x, y := (i/3)%w, (i/3)/w
			v := (x*7+y*3)%256 + rnd.Intn(40) - 20
			if (x/5+y/4)%2 == 0 {
				v = 255 - v
			}
			m.Pix[i] = byte(min(max(v, 0), 255))
		}
		for _, size := range []int{224, 64, 7} {
			got, err := ResizeCrop(m, size)
			if err != nil {
				t.Fatal(err)
			}
			ow, oh := OutputSize(w, h, size)
			full := fullResize(m, ow, oh)
			left, top := (ow-size)/2, (oh-size)/2
			want := make([]byte, 0, 3*size*size)
			for y := top; y < top+size; y++ {
				want = append(want, full.Pix[3*(y*ow+left):3*(y*ow+left+size)]...)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%dx%d @%d: crop-only resample differs from full resample + crop", w, h, size)
			}
		}
	}
}

func TestOutputSize(t *testing.T) {
	for _, c := range []struct{ w, h, s, ow, oh int }{
		{451, 300, 224, 336, 224}, // 224*451/300 = 336.75 -> 336
		{600, 400, 224, 336, 224},
		{512, 512, 224, 224, 224},
		{300, 451, 224, 224, 336},
		{4000, 3000, 224, 298, 224}, // 298.67
		{3, 1000, 224, 224, 74666},
	} {
		ow, oh := OutputSize(c.w, c.h, c.s)
		if ow != c.ow || oh != c.oh {
			t.Errorf("OutputSize(%d, %d, %d) = %d x %d, want %d x %d", c.w, c.h, c.s, ow, oh, c.ow, c.oh)
		}
	}
}

func TestBadArgs(t *testing.T) {
	img := &imagefile.RGB{Pix: make([]byte, 3*10*10), Width: 10, Height: 10}
	dst := make([]float32, 3*8*8)
	cases := map[string]error{
		"nil image":   CLIP(nil, 8, clipMean, clipStd, dst),
		"short dst":   CLIP(img, 8, clipMean, clipStd, dst[:10]),
		"size 0":      CLIP(img, 0, clipMean, clipStd, dst),
		"negative":    CLIP(img, -3, clipMean, clipStd, dst),
		"pix too few": CLIP(&imagefile.RGB{Pix: make([]byte, 5), Width: 10, Height: 10}, 8, clipMean, clipStd, dst),
		"empty image": CLIP(&imagefile.RGB{}, 8, clipMean, clipStd, dst),
	}
	for name, err := range cases {
		if !errors.Is(err, ErrBadArgs) {
			t.Errorf("%s: %v, want ErrBadArgs", name, err)
		}
	}
	if err := CLIP(img, 8, clipMean, clipStd, dst); err != nil {
		t.Fatal(err)
	}
}

// TestNormalize: a mid-grey image gives (128/255 - mean)/std per channel,
// in CHW order.
func TestNormalize(t *testing.T) {
	img := &imagefile.RGB{Pix: bytes.Repeat([]byte{128, 0, 255}, 16*16), Width: 16, Height: 16}
	dst := make([]float32, 3*4*4)
	if err := CLIP(img, 4, clipMean, clipStd, dst); err != nil {
		t.Fatal(err)
	}
	for c, v := range []float64{128, 0, 255} {
		want := (float32(v/255) - clipMean[c]) / clipStd[c]
		for i := 0; i < 16; i++ {
			if got := dst[c*16+i]; got != want {
				t.Fatalf("channel %d value %d: %v, want %v", c, i, got, want)
			}
		}
	}
}
