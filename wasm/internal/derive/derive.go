// Package derive computes the run-time weights of the CLIP graphs (vit,
// textmodel) from the stored ones in plain Go, one tensor at a time, so
// that a backend only ever receives finished weights: on tfjs-wasm every
// temporary of a derivation done through the ops would land in a heap that
// never shrinks. Builder is the reading and handing over that both graphs'
// Load share.
package derive

import (
	"fmt"
	"sync"
)

// Linear describes how a stored linear layer y = x Wᵀ + B (W [Out, In],
// B [Out], as Hugging Face stores them) becomes its run-time form, a
// weight [In, Out] (read as x·W') and a bias [Out], with
//
//	y' = Scale · ( InScale · (Gain⊙x + Shift) Wᵀ + B )
//
// folded in: Gain and Shift are the gain and bias of a LayerNorm before
// the layer (nil: none), InScale scales its input (e.g. 1/1.702 after a
// scaled activation), Scale its output (e.g. attention's 1/sqrt(d)). A zero
// scale means 1. With Centre, every row of the result and the bias have
// their mean over the outputs subtracted (the output then has zero mean
// over Out for every input). Perm, if set, gives the output column of
// stored row r (a permutation of 0..Out-1). With OutMajor the weight is
// written [Out, In] instead (output c is row c, read as W'·xᵀ): for a
// backend whose matrix product keeps a packed copy of its right operand,
// where the weight must be the left one (see ops.LeftWeights).
type Linear struct {
	W           []float32 // [Out, In]
	B           []float32 // [Out]; nil: zero
	Out, In     int
	Scale       float32
	InScale     float32
	Gain, Shift []float32 // [In]
	Centre      bool
	Perm        func(r int) int
	OutMajor    bool
	Threads     int // goroutines (default 1)
}

func (l *Linear) check(dst []float32, ld, col int, bias []float32) {
	if len(l.W) != l.Out*l.In {
		panic(fmt.Sprintf("derive: weight of %d values for [%d, %d]", len(l.W), l.Out, l.In))
	}
	if l.B != nil && len(l.B) != l.Out {
		panic(fmt.Sprintf("derive: bias of %d values for %d outputs", len(l.B), l.Out))
	}
	if (l.Gain != nil && len(l.Gain) != l.In) || (l.Shift != nil && len(l.Shift) != l.In) {
		panic(fmt.Sprintf("derive: LayerNorm of %d/%d values for %d inputs", len(l.Gain), len(l.Shift), l.In))
	}
	if l.OutMajor {
		if col < 0 || ld < l.In || len(dst) < (col+l.Out-1)*ld+l.In {
			panic(fmt.Sprintf("derive: destination of %d values, stride %d, row %d for [%d, %d]", len(dst), ld, col, l.Out, l.In))
		}
	} else if col < 0 || col+l.Out > ld || len(dst) < (l.In-1)*ld+col+l.Out {
		panic(fmt.Sprintf("derive: destination of %d values, stride %d, column %d for [%d, %d]", len(dst), ld, col, l.In, l.Out))
	}
	if bias != nil && len(bias) < col+l.Out {
		panic(fmt.Sprintf("derive: bias destination of %d values, column %d for %d outputs", len(bias), col, l.Out))
	}
}

// Write writes the run-time weight into rows 0..In-1 of dst (row stride
// ld) at columns col..col+Out-1, and the bias into bias[col:col+Out] (bias
// nil: not written). Layers that share an input (Q, K and V) can so be
// written side by side into one [In, 3·Out] weight. With OutMajor the
// weight goes to rows col..col+Out-1 (row stride ld), columns 0..In-1.
func (l *Linear) Write(dst []float32, ld, col int, bias []float32) {
	l.check(dst, ld, col, bias)
	if l.OutMajor {
		l.write(dst, layout{ld: ld, row: col, outMajor: true}, bias)
		return
	}
	l.write(dst, layout{ld: ld, col: col}, bias)
}

// WritePanels is Write (ld Out, column 0) into the order in which
// package native's SGEMM reads a right operand: the rows in k-blocks of
// kc (the last may be shorter), each block panel after panel of nr
// columns, each panel kc x nr row-major and contiguous. The weight is
// then never rearranged again. nr must divide Out and be a multiple of 8.
func (l *Linear) WritePanels(dst []float32, nr, kc int, bias []float32) {
	if l.OutMajor {
		panic("derive: WritePanels of an OutMajor weight")
	}
	l.check(dst, l.Out, 0, bias)
	if nr <= 0 || nr%8 != 0 || l.Out%nr != 0 || kc <= 0 || kc%8 != 0 {
		panic(fmt.Sprintf("derive: panels of %d columns, %d rows for [%d, %d]", nr, kc, l.In, l.Out))
	}
	l.write(dst, layout{ld: l.Out, nr: nr, kc: kc, in: l.In}, bias)
}

func (l *Linear) write(dst []float32, to layout, bias []float32) {
	scale, inScale := one(l.Scale), one(l.InScale)
	threads := max(1, l.Threads)

	// Pass 1, over stored rows (contiguous): the bias fold Σ Shift[i]·W[r,i]
	// per row, and for Centre the column sums Σ_r W[r,i].
	dots := make([]float64, l.Out)
	var colMean []float64
	if l.Centre {
		colMean = make([]float64, l.In)
	}
	if l.Shift != nil || l.Centre {
		parts := make([][]float64, threads)
		parallel(threads, l.Out, func(t, r0, r1 int) {
			var sums []float64
			if l.Centre {
				sums = make([]float64, l.In)
				parts[t] = sums
			}
			for r := r0; r < r1; r++ {
				row := l.W[r*l.In : (r+1)*l.In]
				if l.Shift != nil {
					dots[r] = dot(l.Shift, row)
				}
				for i, w := range row[:len(sums)] {
					sums[i] += float64(w)
				}
			}
		})
		if l.Centre {
			for _, p := range parts {
				for i, v := range p {
					colMean[i] += v
				}
			}
			for i := range colMean {
				colMean[i] /= float64(l.Out)
			}
		}
	}

	// Pass 2: the transpose in tiles (both sides stay in cache), each input
	// row i scaled by f[i] = Scale·InScale·Gain[i] after its mean is
	// subtracted.
	f := make([]float32, l.In)
	sub := make([]float32, l.In)
	for i := range f {
		g := float64(scale) * float64(inScale)
		if l.Gain != nil {
			g *= float64(l.Gain[i])
		}
		f[i] = float32(g)
		if l.Centre {
			sub[i] = float32(colMean[i])
		}
	}
	// rowOf[c] is the stored row that becomes output column c.
	rowOf := make([]int, l.Out)
	cols := make([]int, l.Out)
	for r := range rowOf {
		cols[r] = r
		if l.Perm != nil {
			cols[r] = l.Perm(r)
		}
		rowOf[cols[r]] = r
	}
	if to.outMajor {
		// No transpose: each stored row, scaled, is a result row.
		parallel(threads, l.Out, func(_, c0, c1 int) {
			for c := c0; c < c1; c++ {
				src := l.W[rowOf[c]*l.In:][:l.In]
				d := dst[(to.row+c)*to.ld:][:l.In]
				for i, v := range src {
					d[i] = (v - sub[i]) * f[i]
				}
			}
		})
	} else {
		l.transposed(dst, to, threads, rowOf, f, sub)
	}
	if bias == nil {
		return
	}
	b := make([]float64, l.Out)
	var mean float64
	for r := range b {
		v := float64(inScale) * dots[r]
		if l.B != nil {
			v += float64(l.B[r])
		}
		b[r] = float64(scale) * v
		mean += b[r]
	}
	mean /= float64(l.Out)
	at := to.col
	if to.outMajor {
		at = to.row
	}
	for r, v := range b {
		if l.Centre {
			v -= mean
		}
		bias[at+cols[r]] = float32(v)
	}
}

// transposed writes the [In, Out] weight (row-major or panels) of write.
func (l *Linear) transposed(dst []float32, to layout, threads int, rowOf []int, f, sub []float32) {
	// Tiles of tile x tile, blocks of output columns (stored rows)
	// outermost so that their stored rows are read front to back, a few
	// at a time; within a tile, 8 x 8 blocks go through registers.
	const tile = 64
	parallel(threads, (l.Out+tile-1)/tile, func(_, b0, b1 int) {
		// Row-major results go through a contiguous buffer, copied out a
		// row at a time: written in place, the rows of a tile are a
		// power-of-two-ish number of bytes apart (768 or 3072 floats) and
		// would all compete for one cache set. Panels are contiguous
		// already.
		var buf []float32
		if to.nr == 0 {
			buf = make([]float32, tile*tile)
		}
		for c0 := b0 * tile; c0 < min(l.Out, b1*tile); c0 += tile {
			c1 := min(l.Out, c0+tile)
			for i0 := 0; i0 < l.In; i0 += tile {
				i1 := min(l.In, i0+tile)
				if buf == nil {
					l.tile(dst, to, rowOf, f, sub, c0, c1, i0, i1)
					continue
				}
				l.tile(buf, layout{ld: tile, col: -c0, row: -i0}, rowOf, f, sub, c0, c1, i0, i1)
				for i := i0; i < i1; i++ {
					at := i*to.ld + to.col
					copy(dst[at+c0:at+c1], buf[(i-i0)*tile:][:c1-c0])
				}
			}
		}
	})
}

// layout places the run-time weight's element (i, c) in dst: row-major
// with row stride ld, from row row and column col, or (nr > 0) in panels
// (WritePanels).
type layout struct {
	ld, row, col, nr, kc, in int
	outMajor                 bool // [Out, In] from row row (Linear.OutMajor)
}

// at is the index of element (i, c); step is the distance from (i, c) to
// (i+1, c), the same for (i..i+7, c..c+7) when i and c are multiples of 8
// (a k-block never ends inside such a run, nor a panel).
func (d layout) at(i, c int) (at, step int) {
	c += d.col
	if d.nr == 0 {
		return (i+d.row)*d.ld + c, d.ld
	}
	k0 := i / d.kc * d.kc
	kk := min(d.kc, d.in-k0)
	j := c / d.nr * d.nr
	return k0*d.ld + j*kk + (i-k0)*d.nr + c - j, d.nr
}

// tile writes output columns c0..c1 of input rows i0..i1:
// dst(i, c) = (W[rowOf[c], i] - sub[i]) · f[i].
func (l *Linear) tile(dst []float32, to layout, rowOf []int, f, sub []float32, c0, c1, i0, i1 int) {
	c8, i8 := c0+(c1-c0)/8*8, i0+(i1-i0)/8*8
	for c := c0; c < c8; c += 8 {
		var rows [8][]float32 // the stored rows of columns c..c+7
		for j := range rows {
			rows[j] = l.W[rowOf[c+j]*l.In:][:l.In]
		}
		var src [8]*[8]float32
		for i := i0; i < i8; i += 8 {
			for j := range src {
				src[j] = (*[8]float32)(rows[j][i:])
			}
			at, step := to.at(i, c)
			block8(dst[at:], step, &src, (*[8]float32)(sub[i:]), (*[8]float32)(f[i:]))
		}
		// Rows past the last whole block of 8.
		for j := range rows {
			for i := i8; i < i1; i++ {
				at, _ := to.at(i, c+j)
				dst[at] = (rows[j][i] - sub[i]) * f[i]
			}
		}
	}
	// Columns past the last whole block of 8.
	for c := c8; c < c1; c++ {
		w := l.W[rowOf[c]*l.In:]
		for i := i0; i < i1; i++ {
			at, _ := to.at(i, c)
			dst[at] = (w[i] - sub[i]) * f[i]
		}
	}
}

// block8 writes the 8 x 8 block dst[k·step + j] = (src[j][k] - sub[k]) ·
// f[k]: eight stored rows in, eight output rows out, through registers.
func block8(dst []float32, step int, src *[8]*[8]float32, sub, f *[8]float32) {
	_ = dst[7*step+7]
	s0, s1, s2, s3, s4, s5, s6, s7 := src[0], src[1], src[2], src[3], src[4], src[5], src[6], src[7]
	for k := range 8 {
		d := (*[8]float32)(dst[k*step:])
		m, g := sub[k], f[k]
		d[0] = (s0[k] - m) * g
		d[1] = (s1[k] - m) * g
		d[2] = (s2[k] - m) * g
		d[3] = (s3[k] - m) * g
		d[4] = (s4[k] - m) * g
		d[5] = (s5[k] - m) * g
		d[6] = (s6[k] - m) * g
		d[7] = (s7[k] - m) * g
	}
}

// dot is Σ a[i]·b[i] in float64, over four running sums.
func dot(a, b []float32) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += float64(a[i]) * float64(b[i])
		s1 += float64(a[i+1]) * float64(b[i+1])
		s2 += float64(a[i+2]) * float64(b[i+2])
		s3 += float64(a[i+3]) * float64(b[i+3])
	}
	for ; i < len(a); i++ {
		s0 += float64(a[i]) * float64(b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

func one(s float32) float32 {
	if s == 0 {
		return 1
	}
	return s
}

// Transpose returns x [r, c] as [c, r] (x itself when r or c is 1).
func Transpose(x []float32, r, c int) []float32 {
	if r == 1 || c == 1 {
		return x
	}
	out := make([]float32, len(x))
	for i := range r {
		for j := range c {
			out[j*r+i] = x[i*c+j]
		}
	}
	return out
}

// CentreRows subtracts from each row of x [rows, n] its mean.
func CentreRows(x []float32, n int) {
	for r := 0; r+n <= len(x); r += n {
		row := x[r : r+n]
		var s float64
		for _, v := range row {
			s += float64(v)
		}
		m := float32(s / float64(n))
		for i := range row {
			row[i] -= m
		}
	}
}

// parallel splits 0..n into up to threads contiguous runs and calls
// fn(t, start, end) for each, on its own goroutine when there are several.
func parallel(threads, n int, fn func(t, start, end int)) {
	threads = min(threads, n)
	if threads <= 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	var panicked any
	var mu sync.Mutex
	for t := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					mu.Lock()
					panicked = r
					mu.Unlock()
				}
			}()
			fn(t, n*t/threads, n*(t+1)/threads)
		}()
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
}
