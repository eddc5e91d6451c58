// Package preprocess turns an RGB image into the float32 tensor a CLIP
// vision tower expects, bit-for-bit the way Hugging Face's
// CLIPImageProcessor does it with Pillow: resize the shortest edge to S with
// Pillow's BICUBIC resampler (8-bit fixed point, horizontal pass then
// vertical pass, each rounded and clipped to 8 bits), centre crop S x S,
// x/255, (x - mean)/std, channels first.
//
// Only the pixels inside the centre crop are computed: the resampler's
// output at a position depends only on the input, so skipping the columns
// and rows that the crop throws away gives identical values for much less
// work on large photos.
package preprocess

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/imgembed/imgembed/wasm/api"
	"github.com/imgembed/imgembed/wasm/imagefile"
)

// ErrBadArgs reports an invalid size, a nil image or a short dst.
var ErrBadArgs = errors.New("preprocess: bad arguments")

// OutputSize is the (width, height) the shortest-edge resize produces for a
// w x h image, as transformers' get_resize_output_image_size: the short
// edge becomes size, the long edge int(size*long/short) (floor).
func OutputSize(w, h, size int) (int, int) {
	if w <= h {
		return size, int(float64(size*h) / float64(w))
	}
	return int(float64(size*w) / float64(h)), size
}

// CLIP writes the 3 x size x size CHW tensor of img into dst[:3*size*size].
func CLIP(img *imagefile.RGB, size int, mean, std [3]float32, dst []float32) error {
	if img == nil {
		return fmt.Errorf("%w: nil image", ErrBadArgs)
	}
	if len(img.Pix) != 3*img.Width*img.Height {
		return fmt.Errorf("%w: RGB has %d bytes for %dx%d", ErrBadArgs, len(img.Pix), img.Width, img.Height)
	}
	return CLIPRows(img, size, mean, std, dst)
}

// CLIPRows is CLIP for any imagefile.Rows source, so that a decoded photo
// can be converted to RGB only where the crop needs it.
func CLIPRows(src imagefile.Rows, size int, mean, std [3]float32, dst []float32) error {
	return CLIPRowsThreads(src, size, mean, std, dst, 1)
}

// CLIPRowsThreads is CLIPRows with a large image's resample split over up
// to threads goroutines (ResizeCropThreads); the result is the same.
func CLIPRowsThreads(src imagefile.Rows, size int, mean, std [3]float32, dst []float32, threads int) (err error) {
	// Rows come from decoders that may have been fed hostile data; a
	// conversion bug must not take the whole module down.
	defer func() {
		if r := recover(); r != nil {
			err = api.New(api.CorruptImage, nil, "preprocess: panic: %v", r)
		}
	}()
	if len(dst) < 3*size*size {
		return fmt.Errorf("%w: dst has %d values, need %d", ErrBadArgs, len(dst), 3*size*size)
	}
	pix, err := ResizeCropThreads(src, size, threads)
	if err != nil {
		return err
	}
	Normalize(pix, size, mean, std, dst)
	return nil
}

// Normalize converts an interleaved 8-bit RGB size x size crop to CHW
// float32 as transformers does: float32(x * (1/255) in float64), then
// (x - mean) / std in float32.
func Normalize(pix []byte, size int, mean, std [3]float32, dst []float32) {
	n := size * size
	for c := 0; c < 3; c++ {
		var lut [256]float32
		for v := range lut {
			x := float32(float64(v) * (1.0 / 255.0))
			lut[v] = (x - mean[c]) / std[c]
		}
		out := dst[c*n : (c+1)*n]
		for i := range out {
			out[i] = lut[pix[3*i+c]]
		}
	}
}

// Pillow's fixed point: 8 bits of result, 2 bits of head room for filter
// overshoot, the rest for the fraction.
const precisionBits = 32 - 8 - 2

// window is one output sample's run of input samples and its weights.
type window struct {
	min, n int
	k      []int32
}

// bicubic is Pillow's cubic convolution kernel with a = -0.5.
func bicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// coeffs computes Pillow's windows (precompute_coeffs + normalize_coeffs_8bpc)
// for output samples first..first+count-1 of an inSize -> outSize resize.
func coeffs(inSize, outSize, first, count int) []window {
	scale := float64(inSize) / float64(outSize)
	filterscale := math.Max(scale, 1)
	support := 2 * filterscale
	ws := make([]window, count)
	buf := make([]float64, int(math.Ceil(support))*2+1)
	for i := range ws {
		xx := first + i
		center := (float64(xx) + 0.5) * scale
		ss := 1 / filterscale
		xmin := int(center - support + 0.5) // C truncation; clamped below
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		n := xmax - xmin
		if n > len(buf) {
			n = len(buf)
		}
		ww := 0.0
		for x := 0; x < n; x++ {
			w := bicubic((float64(x+xmin) - center + 0.5) * ss)
			buf[x] = w
			ww += w
		}
		k := make([]int32, n)
		for x := 0; x < n; x++ {
			w := buf[x]
			if ww != 0 {
				w /= ww
			}
			if w < 0 {
				k[x] = int32(-0.5 + w*(1<<precisionBits))
			} else {
				k[x] = int32(0.5 + w*(1<<precisionBits))
			}
		}
		ws[i] = window{xmin, n, k}
	}
	return ws
}

// clip8 takes a fixed-point sum to an 8-bit value like Pillow's clip8.
func clip8(v int32) byte {
	v >>= precisionBits
	if uint32(v) <= 255 {
		return byte(v)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// ResizeCrop returns the size x size centre crop (interleaved RGB, 8-bit)
// of src resized with Pillow BICUBIC so that its shortest edge is size.
func ResizeCrop(src imagefile.Rows, size int) ([]byte, error) {
	return ResizeCropThreads(src, size, 1)
}

// minSplit is the fewest source pixels per goroutine worth a split of the
// horizontal pass (a goroutine costs microseconds; this is ~1 ms of work).
var minSplit = 1 << 19

// ResizeCropThreads is ResizeCrop with the rows of a large image split
// over up to threads goroutines (rows are independent, so the result is
// the same). Under GOOS=js it is single-threaded.
func ResizeCropThreads(src imagefile.Rows, size, threads int) ([]byte, error) {
	if src == nil || size <= 0 {
		return nil, fmt.Errorf("%w: size %d", ErrBadArgs, size)
	}
	w, h := src.Size()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: empty image %dx%d", ErrBadArgs, w, h)
	}
	ow, oh := OutputSize(w, h, size)
	if ow < size || oh < size {
		return nil, fmt.Errorf("%w: resize of %dx%d gave %dx%d", ErrBadArgs, w, h, ow, oh)
	}
	left, top := (ow-size)/2, (oh-size)/2
	needH, needV := ow != w, oh != h

	// Source columns [x0, x1) feed the crop's columns; source rows [y0, y1)
	// feed its rows.
	var xw, yw []window
	x0, x1 := left, left+size
	if needH {
		xw = coeffs(w, ow, left, size)
		x0, x1 = xw[0].min, xw[0].min+xw[0].n
		for _, win := range xw {
			x1 = max(x1, win.min+win.n)
		}
	}
	y0, y1 := top, top+size
	if needV {
		yw = coeffs(h, oh, top, size)
		y0, y1 = yw[0].min, yw[0].min+yw[0].n
		for _, win := range yw {
			y1 = max(y1, win.min+win.n)
		}
	}

	// Horizontal pass (or plain column crop) over the rows the vertical
	// pass will read, into tmp: (y1-y0) rows of size RGB pixels.
	stride := 3 * size
	tmp := make([]byte, (y1-y0)*stride)
	var plan *hplan
	if needH && hasAVX2 {
		plan = newHPlan(xw, x0)
	}
	parts := splits(threads, (y1-y0)*(x1-x0))
	run(parts, func(part int) {
		ya := y0 + (y1-y0)*part/parts
		yb := y0 + (y1-y0)*(part+1)/parts
		rows := src
		if part > 0 {
			rows = imagefile.Fork(src) // Row may keep scratch state
		}
		hrows(rows, ya, yb, x0, x1, xw, plan, tmp[(ya-y0)*stride:(yb-y0)*stride], stride)
	})
	if !needV {
		return tmp, nil
	}
	out := make([]byte, size*stride)
	vparts := splits(threads, len(yw)*stride*len(yw[0].k))
	run(vparts, func(part int) {
		a, b := len(yw)*part/vparts, len(yw)*(part+1)/vparts
		vertical(tmp, y0, stride, yw[a:b], out[a*stride:b*stride])
	})
	return out, nil
}

// splits is how many goroutines work of n pixels gets: one under GOOS=js
// (no threads there) or when small.
func splits(threads, n int) int {
	if runtime.GOOS == "js" || threads <= 1 {
		return 1
	}
	return max(1, min(threads, n/minSplit))
}

// run calls f(0..parts-1), part 0 on this goroutine and the others on their
// own, and returns when all are done. A panic in any is re-raised here,
// where CLIPRows turns it into an error.
func run(parts int, f func(part int)) {
	if parts <= 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	panics := make([]any, parts)
	for p := 1; p < parts; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[p] = recover() }()
			f(p)
		}()
	}
	func() {
		defer func() { panics[0] = recover() }()
		f(0)
	}()
	wg.Wait()
	for _, p := range panics {
		if p != nil {
			panic(p)
		}
	}
}

// hrows runs the horizontal pass (or the plain column crop) of source rows
// [ya, yb) into dst, one stride-byte row each.
func hrows(src imagefile.Rows, ya, yb, x0, x1 int, xw []window, plan *hplan, dst []byte, stride int) {
	if xw == nil {
		for y := ya; y < yb; y++ {
			src.Row(y, x0, x1, dst[(y-ya)*stride:(y-ya+1)*stride])
		}
		return
	}
	n := x1 - x0
	if plan != nil {
		n = max(n, plan.need) // the vector pass reads whole 8-tap groups
	}
	line := make([]byte, 3*(x1-x0))
	rb, g := make([]int64, n), make([]byte, n)
	packed, _ := src.(imagefile.PackedRows)
	for y := ya; y < yb; y++ {
		out := dst[(y-ya)*stride : (y-ya+1)*stride]
		if packed != nil {
			packed.RowPacked(y, x0, x1, rb, g)
		} else {
			src.Row(y, x0, x1, line)
			pack(line, rb, g)
		}
		if plan != nil {
			horizontalVec(rb, g, plan, out)
		} else {
			horizontal(rb, g, x0, xw, out)
		}
	}
}

// vertical computes output rows ws of the vertical pass from tmp (the
// horizontal pass's rows, starting at source row y0) into out.
func vertical(tmp []byte, y0, stride int, ws []window, out []byte) {
	acc := make([]int32, stride)
	for yy, win := range ws {
		o := out[yy*stride : (yy+1)*stride]
		v := 0 // columns done by the vector pass
		if hasAVX2 {
			v = verticalVec(tmp[(win.min-y0)*stride:(win.min-y0+len(win.k))*stride], stride, win.k, o)
		}
		acc := acc[v:]
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		for j, kv := range win.k {
			row := tmp[(win.min+j-y0)*stride+v : (win.min+j-y0+1)*stride]
			row = row[:len(acc)]
			i := 0
			for ; i+4 <= len(row); i += 4 { // four per iteration, as in horizontal
				a4, r4 := acc[i:i+4:i+4], row[i:i+4:i+4]
				a4[0] += int32(r4[0]) * kv
				a4[1] += int32(r4[1]) * kv
				a4[2] += int32(r4[2]) * kv
				a4[3] += int32(r4[3]) * kv
			}
			for ; i < len(row); i++ {
				acc[i] += int32(row[i]) * kv
			}
		}
		o = o[v:]
		o = o[:len(acc)]
		for i, a := range acc {
			o[i] = clip8(a)
		}
	}
}

// hplan is the horizontal windows laid out for the vector pass: every
// window padded with zero weights to kp taps (a multiple of 8), mins
// relative to the line's first column, krb each weight twice (for the R
// and B lanes of the packed line), need the line length it reads.
type hplan struct {
	kp, need int
	mins     []int32
	krb, kg  []int32
}

func newHPlan(ws []window, x0 int) *hplan {
	kp := 8
	for _, w := range ws {
		if w.min < x0 || len(w.k) != w.n {
			return nil // not a layout the vector pass can read safely: scalar pass
		}
		kp = max(kp, (len(w.k)+7)&^7)
	}
	p := &hplan{kp: kp, mins: make([]int32, len(ws)), krb: make([]int32, 2*kp*len(ws)), kg: make([]int32, kp*len(ws))}
	for i, w := range ws {
		p.mins[i] = int32(w.min - x0)
		p.need = max(p.need, w.min-x0+kp)
		for j, k := range w.k {
			p.kg[i*kp+j] = k
			p.krb[2*(i*kp+j)], p.krb[2*(i*kp+j)+1] = k, k
		}
	}
	return p
}

// horizontal resamples one source line into len(ws) RGB output pixels.
// rb holds each pixel's red and blue packed as r + b<<32 and g its green,
// starting at source column x0: one 64-bit multiply then accumulates two
// channels. This is exact: each channel's sum (with Pillow's rounding bias)
// fits in 32 signed bits, so the low half is recovered as int32(acc) and
// the high half as (acc - low) >> 32.
func horizontal(rb []int64, g []byte, x0 int, ws []window, out []byte) {
	const half = 1 << (precisionBits - 1)
	for i, win := range ws {
		k := win.k
		rbs := rb[win.min-x0:]
		rbs = rbs[:len(k)] // lets the compiler drop bounds checks below
		gs := g[win.min-x0:]
		gs = gs[:len(k)]
		accRB, accG := int64(half+half<<32), int64(half)
		// Four taps per iteration: Go's wasm code goes back through the
		// function's dispatch loop (a br_table) and spills the sums on
		// every iteration, which cost more than the taps themselves under
		// V8. Integer sums are exact in any order.
		j := 0
		for ; j+8 <= len(k); j += 8 {
			k8, r8, g8 := k[j:j+8:j+8], rbs[j:j+8:j+8], gs[j:j+8:j+8]
			accRB += r8[0]*int64(k8[0]) + r8[1]*int64(k8[1]) + r8[2]*int64(k8[2]) + r8[3]*int64(k8[3]) +
				r8[4]*int64(k8[4]) + r8[5]*int64(k8[5]) + r8[6]*int64(k8[6]) + r8[7]*int64(k8[7])
			accG += int64(g8[0])*int64(k8[0]) + int64(g8[1])*int64(k8[1]) + int64(g8[2])*int64(k8[2]) + int64(g8[3])*int64(k8[3]) +
				int64(g8[4])*int64(k8[4]) + int64(g8[5])*int64(k8[5]) + int64(g8[6])*int64(k8[6]) + int64(g8[7])*int64(k8[7])
		}
		for ; j+4 <= len(k); j += 4 {
			k4, r4, g4 := k[j:j+4:j+4], rbs[j:j+4:j+4], gs[j:j+4:j+4]
			accRB += r4[0]*int64(k4[0]) + r4[1]*int64(k4[1]) + r4[2]*int64(k4[2]) + r4[3]*int64(k4[3])
			accG += int64(g4[0])*int64(k4[0]) + int64(g4[1])*int64(k4[1]) + int64(g4[2])*int64(k4[2]) + int64(g4[3])*int64(k4[3])
		}
		for ; j < len(k); j++ {
			accRB += rbs[j] * int64(k[j])
			accG += int64(gs[j]) * int64(k[j])
		}
		lo := int32(accRB)
		hi := int32((accRB - int64(lo)) >> 32)
		o := out[3*i : 3*i+3 : 3*i+3]
		o[0], o[1], o[2] = clip8(lo), clip8(int32(accG)), clip8(hi)
	}
}

// pack splits an RGB line into the packed red/blue and green arrays that
// horizontal reads.
func pack(line []byte, rb []int64, g []byte) {
	rb = rb[:len(line)/3]
	g = g[:len(rb)]
	for i := range rb {
		p := line[3*i : 3*i+3 : 3*i+3]
		rb[i] = int64(p[0]) | int64(p[2])<<32
		g[i] = p[1]
	}
}
