package imagefile

import "image"

// YCbCr -> RGB as Pillow gets it. For JPEG Pillow uses libjpeg(-turbo):
// chroma is "fancy" upsampled (a triangle filter: 3/4 of the nearer sample,
// 1/4 of the next one, with libjpeg's exact rounding biases) and converted
// with libjpeg's 16-bit fixed-point JFIF tables. Go's image.YCbCr.At instead
// replicates chroma samples and rounds differently; the difference is
// visible after resampling, so it is redone here from the raw planes.
// For lossy WebP Pillow uses libwebp, whose conversion is BT.601 limited
// range (Y 16..235) with 14-bit coefficients.

var (
	crR, cbB [256]int32 // libjpeg Cr_r_tab, Cb_b_tab (already shifted)
	crG, cbG [256]int32 // libjpeg Cr_g_tab, Cb_g_tab (16.16, rounding in cbG)
)

func init() {
	const one = 1 << 16
	fix := func(x float64) int32 { return int32(x*one + 0.5) }
	for i := 0; i < 256; i++ {
		x := int32(i - 128)
		crR[i] = (fix(1.40200)*x + one/2) >> 16
		cbB[i] = (fix(1.77200)*x + one/2) >> 16
		crG[i] = -fix(0.71414) * x
		cbG[i] = -fix(0.34414)*x + one/2
	}
}

// clampTab[(v+256)&1023] is v clamped to 0..255 for v in -256..767, the
// range of every sum in the JFIF conversion (libjpeg's range_limit).
var clampTab = func() (t [1024]byte) {
	for i := range t {
		t[i] = clamp8(int32(i - 256))
	}
	return t
}()

func clamp8(v int32) byte {
	if uint32(v) <= 255 {
		return byte(v)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// vp8Clip8 is libwebp's clip of a 6-bit fixed-point value.
func vp8Clip8(v int32) byte {
	if v&^(256<<6-1) == 0 {
		return byte(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

type ycbcrRows struct {
	m      *image.YCbCr
	w, h   int
	cw, ch int // chroma plane size in samples
	hs, vs int // horizontal, vertical subsampling factor (1, 2 or 4)
	fancyH bool
	fancyV bool
	webp   bool
	cb, cr []byte  // per-row upsampled chroma scratch, length w
	sb, sr []int32 // h2v2 column sums scratch
	pb, pr []byte  // h2v2 pair output scratch
}

func newYCbCrRows(m *image.YCbCr, webp bool) Rows {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	r := &ycbcrRows{m: m, w: w, h: h, webp: webp, hs: 1, vs: 1}
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
	case image.YCbCrSubsampleRatio422:
		r.hs = 2
	case image.YCbCrSubsampleRatio420:
		r.hs, r.vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		r.vs = 2
	case image.YCbCrSubsampleRatio411:
		r.hs = 4
	case image.YCbCrSubsampleRatio410:
		r.hs, r.vs = 4, 2
	default:
		return &genericRows{m, m.Rect}
	}
	r.cw = (w + r.hs - 1) / r.hs
	r.ch = (h + r.vs - 1) / r.vs
	// libjpeg only filters 2x factors, and only when the downsampled width
	// exceeds 2 (jdsample.c); 4x is plain replication.
	if r.hs == 2 && (r.vs == 1 || r.vs == 2) && r.cw > 2 {
		r.fancyH = true
		r.fancyV = r.vs == 2
	}
	if r.hs == 1 && r.vs == 2 {
		r.fancyV = true
	}
	if webp {
		// libwebp always upsamples 4:2:0 with its fancy filter.
		r.fancyH, r.fancyV = r.hs == 2, r.vs == 2
	}
	// Chroma planes must hold cw x ch samples; Go's decoders guarantee
	// this, but check so a malformed image cannot index out of range.
	if len(m.Cb) < (r.ch-1)*m.CStride+r.cw || len(m.Cr) < (r.ch-1)*m.CStride+r.cw ||
		len(m.Y) < (h-1)*m.YStride+w || m.CStride < r.cw || m.YStride < w {
		return &genericRows{m, m.Rect}
	}
	r.cb = make([]byte, w+4)
	r.cr = make([]byte, w+4)
	return r
}

func (r *ycbcrRows) Size() (int, int) { return r.w, r.h }

// chromaRow fills r.cb/r.cr[x - x0] for luma row y, columns x0..x1-1.
func (r *ycbcrRows) chromaRow(y, x0, x1 int) {
	m := r.m
	cy := y / r.vs
	if !r.fancyH && !r.fancyV {
		base := cy * m.CStride
		if r.hs == 1 { // 4:4:4: the plane's own samples
			copy(r.cb[:x1-x0], m.Cb[base+x0:base+x1])
			copy(r.cr[:x1-x0], m.Cr[base+x0:base+x1])
			return
		}
		shift := uint(1) // replication by 2 or 4: x / hs as a shift
		if r.hs == 4 {
			shift = 2
		}
		cb, cr := r.cb[:x1-x0], r.cr[:x1-x0]
		for i := range cb {
			c := base + (x0+i)>>shift
			cb[i], cr[i] = m.Cb[c], m.Cr[c]
		}
		return
	}
	// Vertical neighbour: above for even rows, below for odd; edge rows
	// are replicated, as libjpeg's context rows are.
	ny := cy
	bias := int32(0)
	if r.fancyV {
		if y&1 == 0 {
			ny = max(cy-1, 0)
			bias = 1
		} else {
			ny = min(cy+1, r.ch-1)
			bias = 2
		}
	}
	near, far := cy*m.CStride, ny*m.CStride
	if !r.fancyH { // h1v2: (3*near + far + bias) >> 2
		for x := x0; x < x1; x++ {
			r.cb[x-x0] = byte((3*int32(m.Cb[near+x]) + int32(m.Cb[far+x]) + bias) >> 2)
			r.cr[x-x0] = byte((3*int32(m.Cr[near+x]) + int32(m.Cr[far+x]) + bias) >> 2)
		}
		return
	}
	if !r.fancyV { // h2v1: (3*this + neighbour + 1|2) >> 2, edges replicated
		if hasAVX2 {
			r.h2v1Vec(near, x0, x1)
			return
		}
		for x := x0; x < x1; x++ {
			c := x >> 1
			var nb int
			var b int32
			if x&1 == 0 {
				nb, b = c-1, 1
			} else {
				nb, b = c+1, 2
			}
			if nb < 0 || nb >= r.cw {
				r.cb[x-x0], r.cr[x-x0] = m.Cb[near+c], m.Cr[near+c]
				continue
			}
			r.cb[x-x0] = byte((3*int32(m.Cb[near+c]) + int32(m.Cb[near+nb]) + b) >> 2)
			r.cr[x-x0] = byte((3*int32(m.Cr[near+c]) + int32(m.Cr[near+nb]) + b) >> 2)
		}
		return
	}
	// h2v2: column sums 3*near + far, then (3*this + left + 8) >> 4 for the
	// even pixel and (3*this + right + 7) >> 4 for the odd one; at the
	// image's left/right edge the missing neighbour is the column itself.
	// Sums are computed once per chroma column, with one replicated or real
	// neighbour on each side so the pair loop has no branches.
	if hasAVX2 {
		r.h2v2Vec(near, far, x0, x1)
		return
	}
	cs, ce := x0/2, (x1+1)/2 // chroma columns whose pixel pairs cover x0..x1
	n := ce - cs + 2
	if cap(r.sb) < n {
		r.sb = make([]int32, n)
		r.sr = make([]int32, n)
	}
	sb, sr := r.sb[:n], r.sr[:n]
	// Real columns a..b; at most one replicated column at either end.
	lo, a, b := cs-1, max(cs-1, 0), min(ce, r.cw-1)
	nCb, fCb := m.Cb[near+a:near+b+1], m.Cb[far+a:far+b+1]
	nCr, fCr := m.Cr[near+a:near+b+1], m.Cr[far+a:far+b+1]
	fCb, nCr, fCr = fCb[:len(nCb)], nCr[:len(nCb)], fCr[:len(nCb)]
	sbi, sri := sb[a-lo:], sr[a-lo:]
	sbi, sri = sbi[:len(nCb)], sri[:len(nCb)]
	for i, v := range nCb {
		sbi[i] = 3*int32(v) + int32(fCb[i])
		sri[i] = 3*int32(nCr[i]) + int32(fCr[i])
	}
	if lo < 0 {
		sb[0], sr[0] = sb[1], sr[1]
	}
	if ce > r.cw-1 {
		sb[n-1], sr[n-1] = sb[n-2], sr[n-2]
	}
	// Pixel 2*cs lands at index -(x0 - 2*cs) of the output; write pairs
	// into a scratch offset by that much.
	off := x0 - 2*cs
	np := ce - cs
	if cap(r.pb) < 2*np {
		r.pb = make([]byte, 2*np)
		r.pr = make([]byte, 2*np)
	}
	pb, pr := r.pb[:2*np], r.pr[:2*np]
	lb, tb, rbv := sb[:np], sb[1:][:np], sb[2:][:np]
	lr, tr, rrv := sr[:np], sr[1:][:np], sr[2:][:np]
	for i, l := range lb {
		t3 := 3 * tb[i]
		o := pb[2*i : 2*i+2 : 2*i+2]
		o[0] = byte((t3 + l + 8) >> 4)
		o[1] = byte((t3 + rbv[i] + 7) >> 4)
		t3 = 3 * tr[i]
		o = pr[2*i : 2*i+2 : 2*i+2]
		o[0] = byte((t3 + lr[i] + 8) >> 4)
		o[1] = byte((t3 + rrv[i] + 7) >> 4)
	}
	copy(r.cb[:x1-x0], pb[off:])
	copy(r.cr[:x1-x0], pr[off:])
}

// h2v2Vec is chromaRow's h2v2 case with the vector kernel (pairsVec).
func (r *ycbcrRows) h2v2Vec(near, far, x0, x1 int) {
	r.pairsVec(x0, x1,
		func(p []byte, a, n int, dst []byte) { upsampleH2V2(p[near+a-1:], p[far+a-1:], n, dst) },
		func(p []byte, c int, dst []byte) { pairH2V2(p, near, far, c, r.cw, dst) })
}

// h2v1Vec is chromaRow's h2v1 case with the vector kernel (pairsVec).
func (r *ycbcrRows) h2v1Vec(near, x0, x1 int) {
	r.pairsVec(x0, x1,
		func(p []byte, a, n int, dst []byte) { upsampleH2V1(p[near+a-1:], n, dst) },
		func(p []byte, c int, dst []byte) { pairH2V1(p[near:], c, r.cw, dst) })
}

// pairsVec fills r.cb and r.cr for pixels [x0, x1) from chroma columns
// that each give a pair of pixels: vec upsamples n columns of a plane from
// column a (the columns that have both neighbours, in runs of 16), pair one
// column (the rest).
func (r *ycbcrRows) pairsVec(x0, x1 int, vec func(plane []byte, a, n int, dst []byte), pair func(plane []byte, c int, dst []byte)) {
	m := r.m
	cs, ce := x0/2, (x1+1)/2
	np := ce - cs
	if cap(r.pb) < 2*np {
		r.pb = make([]byte, 2*np)
		r.pr = make([]byte, 2*np)
	}
	pb, pr := r.pb[:2*np], r.pr[:2*np]
	a, b := max(cs, 1), min(ce, r.cw-1)
	n := 0
	if b > a {
		n = (b - a) &^ 15
	}
	if n > 0 {
		vec(m.Cb, a, n, pb[2*(a-cs):])
		vec(m.Cr, a, n, pr[2*(a-cs):])
	}
	for c := cs; c < ce; c++ {
		if c == a && n > 0 {
			c += n - 1
			continue
		}
		pair(m.Cb, c, pb[2*(c-cs):])
		pair(m.Cr, c, pr[2*(c-cs):])
	}
	off := x0 - 2*cs
	copy(r.cb[:x1-x0], pb[off:])
	copy(r.cr[:x1-x0], pr[off:])
}

// pairH2V1 is one chroma column's h2v1 pair; a missing neighbour at an
// edge is the column itself, which gives the column's own value, as
// libjpeg's replication does.
func pairH2V1(row []byte, c, cw int, o []byte) {
	t3 := 3 * int32(row[c])
	o[0] = byte((t3 + int32(row[max(c-1, 0)]) + 1) >> 2)
	o[1] = byte((t3 + int32(row[min(c+1, cw-1)]) + 2) >> 2)
}

// pairH2V2 is one chroma column's h2v2 pair (see chromaRow), edge columns
// replicated.
func pairH2V2(p []byte, near, far, c, cw int, o []byte) {
	s := func(c int) int32 {
		c = min(max(c, 0), cw-1)
		return 3*int32(p[near+c]) + int32(p[far+c])
	}
	t3 := 3 * s(c)
	o[0] = byte((t3 + s(c-1) + 8) >> 4)
	o[1] = byte((t3 + s(c+1) + 7) >> 4)
}

func (r *ycbcrRows) Row(y, x0, x1 int, dst []byte) {
	if cap(r.cb) < x1-x0 {
		r.cb = make([]byte, x1-x0)
		r.cr = make([]byte, x1-x0)
	}
	r.chromaRow(y, x0, x1)
	ys := r.m.Y[y*r.m.YStride+x0 : y*r.m.YStride+x1]
	cbs, crs := r.cb[:len(ys)], r.cr[:len(ys)]
	dst = dst[:3*len(ys)]
	if r.webp {
		for i, yv := range ys {
			yy := int32(yv) * 19077 >> 8
			u, v := int32(cbs[i]), int32(crs[i])
			dst[3*i] = vp8Clip8(yy + v*26149>>8 - 14234)
			dst[3*i+1] = vp8Clip8(yy - u*6419>>8 - v*13320>>8 + 8708)
			dst[3*i+2] = vp8Clip8(yy + u*33050>>8 - 17685)
		}
		return
	}
	i0 := 0
	if hasAVX2 {
		i0 = jfifRGB(ys, cbs, crs, dst)
	}
	for i := i0; i < len(ys); i++ {
		yy := int32(ys[i]) + 256
		cb, cr := cbs[i], crs[i]
		d := dst[3*i : 3*i+3 : 3*i+3]
		d[0] = clampTab[(yy+crR[cr])&1023]
		d[1] = clampTab[(yy+(cbG[cb]+crG[cr])>>16)&1023]
		d[2] = clampTab[(yy+cbB[cb])&1023]
	}
}

// RowPacked implements PackedRows: Row's conversion, written as R | B<<32
// and G.
func (r *ycbcrRows) RowPacked(y, x0, x1 int, rb []int64, g []byte) {
	if cap(r.cb) < x1-x0 {
		r.cb = make([]byte, x1-x0)
		r.cr = make([]byte, x1-x0)
	}
	r.chromaRow(y, x0, x1)
	ys := r.m.Y[y*r.m.YStride+x0 : y*r.m.YStride+x1]
	cbs, crs := r.cb[:len(ys)], r.cr[:len(ys)]
	rb, g = rb[:len(ys)], g[:len(ys)]
	if r.webp {
		for i, yv := range ys {
			yy := int32(yv) * 19077 >> 8
			u, v := int32(cbs[i]), int32(crs[i])
			rb[i] = int64(vp8Clip8(yy+v*26149>>8-14234)) | int64(vp8Clip8(yy+u*33050>>8-17685))<<32
			g[i] = vp8Clip8(yy - u*6419>>8 - v*13320>>8 + 8708)
		}
		return
	}
	// Two pixels per iteration (Go's wasm loops return through a br_table
	// dispatch on every iteration: see preprocess.horizontal).
	i := 0
	if hasAVX2 {
		i = jfifPacked(ys, cbs, crs, rb, g)
	}
	for ; i+2 <= len(ys); i += 2 {
		y2, b2, r2 := ys[i:i+2:i+2], cbs[i:i+2:i+2], crs[i:i+2:i+2]
		o, og := rb[i:i+2:i+2], g[i:i+2:i+2]
		yy, cb, cr := int32(y2[0])+256, b2[0], r2[0]
		o[0] = int64(clampTab[(yy+crR[cr])&1023]) | int64(clampTab[(yy+cbB[cb])&1023])<<32
		og[0] = clampTab[(yy+(cbG[cb]+crG[cr])>>16)&1023]
		yy, cb, cr = int32(y2[1])+256, b2[1], r2[1]
		o[1] = int64(clampTab[(yy+crR[cr])&1023]) | int64(clampTab[(yy+cbB[cb])&1023])<<32
		og[1] = clampTab[(yy+(cbG[cb]+crG[cr])>>16)&1023]
	}
	for ; i < len(ys); i++ {
		yy := int32(ys[i]) + 256
		cb, cr := cbs[i], crs[i]
		rb[i] = int64(clampTab[(yy+crR[cr])&1023]) | int64(clampTab[(yy+cbB[cb])&1023])<<32
		g[i] = clampTab[(yy+(cbG[cb]+crG[cr])>>16)&1023]
	}
}
