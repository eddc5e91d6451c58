package derive

import (
	"math"
	"math/rand/v2"
	"testing"
)

// reference is Linear.Write written as the definition, in float64.
func reference(l Linear) (w [][]float64, b []float64) {
	scale, inScale := float64(one(l.Scale)), float64(one(l.InScale))
	w = make([][]float64, l.In)
	b = make([]float64, l.Out)
	col := func(r int) int {
		if l.Perm != nil {
			return l.Perm(r)
		}
		return r
	}
	for i := range w {
		w[i] = make([]float64, l.Out)
	}
	for r := 0; r < l.Out; r++ {
		var dot float64
		for i := 0; i < l.In; i++ {
			g, s := 1.0, 0.0
			if l.Gain != nil {
				g, s = float64(l.Gain[i]), float64(l.Shift[i])
			}
			v := float64(l.W[r*l.In+i])
			w[i][col(r)] = scale * inScale * g * v
			dot += s * v
		}
		bias := 0.0
		if l.B != nil {
			bias = float64(l.B[r])
		}
		b[col(r)] = scale * (bias + inScale*dot)
	}
	if l.Centre {
		for i := range w {
			var m float64
			for _, v := range w[i] {
				m += v
			}
			m /= float64(l.Out)
			for c := range w[i] {
				w[i][c] -= m
			}
		}
		var m float64
		for _, v := range b {
			m += v
		}
		m /= float64(l.Out)
		for c := range b {
			b[c] -= m
		}
	}
	return w, b
}

// TestWriteMatchesDefinition: every option, odd sizes (partial tiles),
// a permutation, a column offset into a wider matrix, 1 and 3 threads.
func TestWriteMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	for _, c := range []struct {
		out, in            int
		scale, inScale     float32
		fold, centre, perm bool
		bias               bool
	}{
		{out: 5, in: 3},
		{out: 70, in: 45, scale: 0.125, fold: true, perm: true, bias: true},
		{out: 33, in: 97, inScale: 1 / 1.702, centre: true, bias: true},
		{out: 64, in: 64, scale: 1.702, fold: true, centre: true},
	} {
		for _, threads := range []int{1, 3} {
			l := Linear{W: vals(c.out * c.in), Out: c.out, In: c.in, Scale: c.scale, InScale: c.inScale, Centre: c.centre, Threads: threads}
			if c.bias {
				l.B = vals(c.out)
			}
			if c.fold {
				l.Gain, l.Shift = vals(c.in), vals(c.in)
			}
			if c.perm {
				heads := 5
				hd := c.out / heads
				l.Perm = func(r int) int { return (r%hd)*heads + r/hd }
			}
			ld, col := c.out+7, 4
			dst := make([]float32, c.in*ld)
			bias := make([]float32, ld)
			l.Write(dst, ld, col, bias)
			w, b := reference(l)
			for i := range c.in {
				for j := range c.out {
					if got, want := float64(dst[i*ld+col+j]), w[i][j]; math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
						t.Fatalf("%+v threads %d: w[%d][%d] = %g, want %g", c, threads, i, j, got, want)
					}
				}
				for j := 0; j < col; j++ {
					if dst[i*ld+j] != 0 || dst[i*ld+col+c.out+j%(ld-col-c.out)] != 0 {
						t.Fatalf("%+v: wrote outside its columns in row %d", c, i)
					}
				}
			}
			for j := range c.out {
				if got, want := float64(bias[col+j]), b[j]; math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
					t.Fatalf("%+v threads %d: b[%d] = %g, want %g", c, threads, j, got, want)
				}
			}
		}
	}
}

// TestWriteOutMajor: with OutMajor, Write writes the same weight
// transposed ([Out, In], at a row offset of a taller matrix with a wider
// stride) and the same bias.
func TestWriteOutMajor(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	for _, threads := range []int{1, 3} {
		out, in, heads := 70, 45, 5
		hd := out / heads
		l := Linear{W: vals(out * in), B: vals(out), Out: out, In: in, Scale: 0.125, InScale: 1 / 1.702,
			Gain: vals(in), Shift: vals(in), Centre: true, Perm: func(r int) int { return (r%hd)*heads + r/hd },
			Threads: threads}
		want, wantB := make([]float32, in*out), make([]float32, out)
		l.Write(want, out, 0, wantB)
		l.OutMajor = true
		ld, row := in+3, 2
		dst := make([]float32, (row+out+1)*ld)
		bias := make([]float32, row+out)
		l.Write(dst, ld, row, bias)
		for c := range out {
			for i := range in {
				if got, w := dst[(row+c)*ld+i], want[i*out+c]; got != w {
					t.Fatalf("threads %d: out-major [%d][%d] = %g, want %g", threads, c, i, got, w)
				}
			}
			if bias[row+c] != wantB[c] {
				t.Fatalf("threads %d: bias[%d] = %g, want %g", threads, c, bias[row+c], wantB[c])
			}
		}
		for i, v := range dst {
			if r, c := i/ld, i%ld; (r < row || r >= row+out || c >= in) && v != 0 {
				t.Fatalf("threads %d: wrote outside its rows at [%d][%d]", threads, r, c)
			}
		}
	}
}

func TestCentreRows(t *testing.T) {
	x := []float32{1, 2, 3, 10, 10, 40}
	CentreRows(x, 3)
	want := []float32{-1, 0, 1, -10, -10, 20}
	for i := range x {
		if x[i] != want[i] {
			t.Fatalf("%v, want %v", x, want)
		}
	}
}

// TestWritePanels: WritePanels puts exactly Write's values where the
// panel order says (k-blocks of kc rows, a short last one; panels of nr
// columns), with sizes that are not multiples of 8 or of kc.
func TestWritePanels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ out, in, nr, kc int }{
		{out: 48, in: 100, nr: 16, kc: 32},
		{out: 64, in: 64, nr: 32, kc: 64},
		{out: 96, in: 77, nr: 16, kc: 24},
	} {
		for _, threads := range []int{1, 3} {
			l := Linear{W: make([]float32, c.out*c.in), B: make([]float32, c.out), Out: c.out, In: c.in, Scale: 0.5, Centre: true, Threads: threads}
			for i := range l.W {
				l.W[i] = float32(rng.NormFloat64())
			}
			l.Gain, l.Shift = make([]float32, c.in), make([]float32, c.in)
			for i := range l.Gain {
				l.Gain[i], l.Shift[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			want, wantB := make([]float32, c.in*c.out), make([]float32, c.out)
			l.Write(want, c.out, 0, wantB)
			got, gotB := make([]float32, c.in*c.out), make([]float32, c.out)
			l.WritePanels(got, c.nr, c.kc, gotB)
			for i := range c.in {
				k0 := i / c.kc * c.kc
				kk := min(c.kc, c.in-k0)
				for j := range c.out {
					at := k0*c.out + j/c.nr*c.nr*kk + (i-k0)*c.nr + j%c.nr
					if got[at] != want[i*c.out+j] {
						t.Fatalf("%+v threads %d: (%d, %d) at %d = %g, want %g", c, threads, i, j, at, got[at], want[i*c.out+j])
					}
				}
			}
			for j := range wantB {
				if gotB[j] != wantB[j] {
					t.Fatalf("%+v: bias[%d] = %g, want %g", c, j, gotB[j], wantB[j])
				}
			}
		}
	}
}
