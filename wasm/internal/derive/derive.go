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
// stored row r (a permutation of 0..Out-1).
type Linear struct {
	W           []float32 // [Out, In]
	B           []float32 // [Out]; nil: zero
	Out, In     int
	Scale       float32
	InScale     float32
	Gain, Shift []float32 // [In]
	Centre      bool
	Perm        func(r int) int
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
	if col < 0 || col+l.Out > ld || len(dst) < (l.In-1)*ld+col+l.Out {
		panic(fmt.Sprintf("derive: destination of %d values, stride %d, column %d for [%d, %d]", len(dst), ld, col, l.In, l.Out))
	}
	if bias != nil && len(bias) < col+l.Out {
		panic(fmt.Sprintf("derive: bias destination of %d values, column %d for %d outputs", len(bias), col, l.Out))
	}
}

// Write writes the run-time weight into rows 0..In-1 of dst (row stride
// ld) at columns col..col+Out-1, and the bias into bias[col:col+Out] (bias
// nil: not written). Layers that share an input (Q, K and V) can so be
// written side by side into one [In, 3·Out] weight.
func (l *Linear) Write(dst []float32, ld, col int, bias []float32) {
	l.check(dst, ld, col, bias)
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
	// rowOf[c] is the stored row that becomes output column c, so that
	// the tiles below write dst in runs of consecutive columns.
	rowOf := make([]int, l.Out)
	cols := make([]int, l.Out)
	for r := range rowOf {
		cols[r] = r
		if l.Perm != nil {
			cols[r] = l.Perm(r)
		}
		rowOf[cols[r]] = r
	}
	// Each tile goes through a small contiguous buffer: read as runs of a
	// stored row, written as runs of a result row. Striding through both
	// matrices directly would make every access a conflict miss: their
	// rows are a power-of-two-ish number of bytes apart (768 or 3072
	// floats), so a column's elements share one cache set.
	const tile = 32
	// Blocks of output columns (stored rows) outermost: their stored rows
	// are then read front to back, a few at a time.
	parallel(threads, (l.Out+tile-1)/tile, func(_, b0, b1 int) {
		var buf [tile][tile]float32
		for c0 := b0 * tile; c0 < min(l.Out, b1*tile); c0 += tile {
			c1 := min(l.Out, c0+tile)
			for i0 := 0; i0 < l.In; i0 += tile {
				i1 := min(l.In, i0+tile)
				fs, ss := f[i0:i1], sub[i0:i1]
				n := i1 - i0
				ss, fs = ss[:n], fs[:n]
				for c := c0; c < c1; c++ {
					r := rowOf[c]
					src := l.W[r*l.In+i0:][:n]
					j := c - c0
					for k, v := range src {
						buf[k][j] = (v - ss[k]) * fs[k]
					}
				}
				for k := range n {
					at := (i0+k)*ld + col
					copy(dst[at+c0:at+c1], buf[k][:c1-c0])
				}
			}
		}
	})

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
	for r, v := range b {
		if l.Centre {
			v -= mean
		}
		bias[col+cols[r]] = float32(v)
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
