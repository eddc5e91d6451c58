// Package opdiff runs every op of a graph on two ops.Ops implementations at
// once (in this project: TensorFlow.js-wasm through wasm/jsops and the pure Go
// kernels of wasm/ops/native) and records, op by op, how far apart their
// outputs are. It is the differential test of the op-list boundary: the graph
// (wasm/vit) is run on an *Ops of this package and every call is checked.
//
// # Resync
//
// With Resync set, each op's output on the second implementation (B) is
// replaced, after the comparison, by a copy of the first's (A) output. Every
// op then sees bit-identical inputs on both sides, so a recorded difference is
// that op's own, not error carried in from earlier ops. Without Resync the two
// runs are independent and the records show how differences accumulate
// through the graph.
//
// # Tolerance
//
// Each record carries a per-element error bound derived from IEEE-754 float32
// error analysis (u = 2^-24 is the unit roundoff, γn = n·u/(1-n·u)). Both
// implementations are within the bound of the exact result, so their
// difference is within twice that (the factor 2 below):
//
//   - Tensor, Reshape, Transpose, Slice move values: bound 0, the
//     outputs must be bitwise equal.
//   - Add, Sub, Mul are single correctly rounded IEEE operations in both
//     wasm (f32.add/f32x4.add, ...) and Go: bound 0 as well.
//   - MatMul: |ĉij - cij| <= γk Σq |aiq||bqj| for any summation order (and
//     with or without FMA), so the bound is 2γk Σq |aiq||bqj|, computed here
//     in float64 from the (shared) inputs. FusedMatMul adds the bias: one more
//     rounding, 2γ(k+1) (Σq |aiq||bqj| + |biasj|).
//   - DepthwiseConv2d: a product per output over k = FH·FW taps, so the
//     MatMul bound 2γk Σ|x||filter| over those taps.
//   - Mean over L values: 2γL Σ|xi| / L + 2u|mean| (the division).
//   - Rsqrt, Sigmoid, Softmax use transcendental functions that neither side
//     rounds correctly (XNNPACK uses polynomial approximations, Go float64
//     math then a rounding). We allow 8 ulp relative for Rsqrt's sqrt and
//     division, 16 ulp relative for Sigmoid's exp and division, and for
//     Softmax (exp of x-max, a sum of L terms, a division) 2(L+16)·u
//     relative. Softmax and Sigmoid outputs below 2^-100 get the absolute
//     floor 2^-126 (flush-to-zero of subnormals may differ).
//
// Ratio = max |a-b| / bound over the elements (0 when both are equal); a
// record is within tolerance when Ratio <= 1. Bounds only hold for identical
// inputs, so Within is meaningful only with Resync.
package opdiff

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/imgembed/imgembed/wasm/ops"
)

const u = 1.0 / (1 << 24) // float32 unit roundoff

func gamma(n int) float64 { return float64(n) * u / (1 - float64(n)*u) }

// Record is the comparison of one op's outputs.
type Record struct {
	Seq      int     `json:"seq"`       // call order, from 0
	Op       string  `json:"op"`        // ops.Ops method name, e.g. "FusedMatMul"
	Args     string  `json:"args"`      // non-tensor arguments, e.g. "transposeB=true"
	InShapes [][]int `json:"in_shapes"` // tensor inputs' shapes
	Shape    []int   `json:"shape"`     // A's output shape
	ShapeB   []int   `json:"shape_b,omitempty"`
	N        int     `json:"n"`       // elements compared
	MaxAbs   float64 `json:"max_abs"` // max |a-b|
	MaxRel   float64 `json:"max_rel"` // MaxAbs / max(|a|) over the tensor
	Ratio    float64 `json:"ratio"`   // max |a-b| / bound (Inf if bound 0 and a != b)
	Worst    int     `json:"worst"`   // element index of the largest Ratio (or MaxAbs)
	A        float32 `json:"a"`       // values at Worst
	B        float32 `json:"b"`
	NaN      bool    `json:"nan,omitempty"` // a NaN on one side only
}

// MarshalJSON writes the record with an added "within" field and an
// infinite Ratio as the largest float64 (JSON has no infinity).
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	p := plain(r)
	if math.IsInf(p.Ratio, 1) {
		p.Ratio = math.MaxFloat64
	}
	return json.Marshal(struct {
		plain
		Within bool `json:"within"`
	}{p, r.Within()})
}

// Within reports whether the outputs agree within the op's float32 bound.
func (r Record) Within() bool {
	return r.ShapeB == nil && !r.NaN && r.Ratio <= 1
}

func (r Record) String() string {
	s := fmt.Sprintf("#%d %s%s in=%v out=%v: max_abs=%.3g max_rel=%.3g ratio=%.3g (at %d: %g vs %g)",
		r.Seq, r.Op, paren(r.Args), r.InShapes, r.Shape, r.MaxAbs, r.MaxRel, r.Ratio, r.Worst, r.A, r.B)
	if r.ShapeB != nil {
		s += fmt.Sprintf(" SHAPE MISMATCH: B has %v", r.ShapeB)
	}
	if r.NaN {
		s += " NaN on one side"
	}
	return s
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

// pair is the tensor handle of Ops: the same value on both implementations.
type pair struct{ a, b ops.Tensor }

// Ops is an ops.Ops that executes every call on A and on B and records the
// differences. Data and Shape answer from A. Not safe for concurrent use.
type Ops struct {
	A, B   ops.Ops
	Resync bool

	// Bounds turns on the float32 error bounds (Ratio); without it Ratio is
	// computed against a zero bound (any difference gives +Inf). The bounds
	// cost a float64 pass over every matrix product's inputs.
	Bounds bool

	records []Record
}

var _ ops.Ops = (*Ops)(nil)

// New returns Ops over a and b with Resync and Bounds on.
func New(a, b ops.Ops) *Ops { return &Ops{A: a, B: b, Resync: true, Bounds: true} }

// Records returns the comparisons so far, in call order.
func (o *Ops) Records() []Record { return o.records }

// Reset forgets the records.
func (o *Ops) Reset() { o.records = nil }

// Failures returns the records outside tolerance.
func (o *Ops) Failures() []Record {
	var out []Record
	for _, r := range o.records {
		if !r.Within() {
			out = append(out, r)
		}
	}
	return out
}

// Worst returns, per op name, the record with the largest Ratio (then MaxRel).
func (o *Ops) Worst() map[string]Record {
	w := map[string]Record{}
	for _, r := range o.records {
		if c, ok := w[r.Op]; !ok || worse(r, c) {
			w[r.Op] = r
		}
	}
	return w
}

func worse(r, c Record) bool {
	if r.Within() != c.Within() {
		return !r.Within()
	}
	if r.Ratio != c.Ratio {
		return r.Ratio > c.Ratio
	}
	return r.MaxRel > c.MaxRel
}

// Summary is a short multi-line report: the worst record of every op.
func (o *Ops) Summary() string {
	w := o.Worst()
	var b strings.Builder
	for _, name := range []string{"Tensor", "MatMul", "FusedMatMul", "Add", "Sub", "Mul", "Sigmoid", "Rsqrt",
		"Softmax", "Mean", "Reshape", "Transpose", "Slice", "DepthwiseConv2d"} {
		if r, ok := w[name]; ok {
			fmt.Fprintln(&b, r.String())
		}
	}
	return b.String()
}

func split(t ops.Tensor) pair {
	p, ok := t.(*pair)
	if !ok {
		panic(fmt.Sprintf("opdiff: tensor %T does not come from this Ops", t))
	}
	return *p
}

// boundFunc returns the per-element bound for output element i given A's
// output values.
type boundFunc func(i int, out []float32) float64

func zeroBound(int, []float32) float64 { return 0 }

func (o *Ops) record(op, args string, ins []ops.Tensor, ra, rb ops.Tensor, bound boundFunc) ops.Tensor {
	rec := Record{Seq: len(o.records), Op: op, Args: args}
	for _, t := range ins {
		rec.InShapes = append(rec.InShapes, o.A.Shape(split(t).a))
	}
	rec.Shape = o.A.Shape(ra)
	if sb := o.B.Shape(rb); !slices.Equal(rec.Shape, sb) {
		rec.ShapeB = sb
		rec.Ratio = math.Inf(1)
		o.records = append(o.records, rec)
		return &pair{ra, rb}
	}
	da, db := o.A.Data(ra), o.B.Data(rb)
	if !o.Bounds {
		bound = zeroBound
	}
	rec.N = len(da)
	var maxA, worstD float64
	worstRatio := -1.0
	for i := range da {
		x, y := float64(da[i]), float64(db[i])
		if math.IsNaN(x) != math.IsNaN(y) {
			if !rec.NaN {
				rec.NaN = true
				rec.Worst, rec.A, rec.B = i, da[i], db[i]
			}
			continue
		}
		if math.IsNaN(x) || x == y { // equal (including infinities)
			maxA = math.Max(maxA, math.Abs(x))
			continue
		}
		maxA = math.Max(maxA, math.Abs(x))
		d := math.Abs(x - y)
		rec.MaxAbs = math.Max(rec.MaxAbs, d)
		ratio := math.Inf(1)
		if bd := bound(i, da); bd > 0 {
			ratio = d / bd
		}
		if !rec.NaN && (ratio > worstRatio || (ratio == worstRatio && d > worstD)) {
			worstRatio, worstD = ratio, d
			rec.Worst, rec.A, rec.B = i, da[i], db[i]
		}
	}
	if worstRatio > 0 {
		rec.Ratio = worstRatio
	}
	if maxA > 0 {
		rec.MaxRel = rec.MaxAbs / maxA
	} else if rec.MaxAbs > 0 {
		rec.MaxRel = math.Inf(1)
	}
	o.records = append(o.records, rec)
	if o.Resync {
		o.B.Dispose(rb)
		rb = o.B.Tensor(append([]float32(nil), da...), rec.Shape...)
	}
	return &pair{ra, rb}
}

// Tensor creates the tensor on both sides (each gets its own copy of values,
// since implementations may keep the slice).
func (o *Ops) Tensor(values []float32, shape ...int) ops.Tensor {
	ra := o.A.Tensor(values, shape...)
	rb := o.B.Tensor(append([]float32(nil), values...), shape...)
	return o.record("Tensor", "", nil, ra, rb, zeroBound)
}

// Data returns A's values.
func (o *Ops) Data(t ops.Tensor) []float32 { return o.A.Data(split(t).a) }

// Shape returns A's shape.
func (o *Ops) Shape(t ops.Tensor) []int { return o.A.Shape(split(t).a) }

// Dispose releases both sides.
func (o *Ops) Dispose(ts ...ops.Tensor) {
	for _, t := range ts {
		if t == nil {
			continue
		}
		p := split(t)
		o.A.Dispose(p.a)
		o.B.Dispose(p.b)
	}
}

func (o *Ops) data(t ops.Tensor) []float32 { return o.A.Data(split(t).a) }

// MatMul is checked against 2γk Σ|a||b|.
func (o *Ops) MatMul(a, b ops.Tensor, transposeA, transposeB bool) ops.Tensor {
	pa, pb := split(a), split(b)
	ra := o.A.MatMul(pa.a, pb.a, transposeA, transposeB)
	rb := o.B.MatMul(pa.b, pb.b, transposeA, transposeB)
	var bound boundFunc = zeroBound
	if o.Bounds {
		abs, k := o.absProduct(a, b, transposeA, transposeB)
		g := 2 * gamma(k)
		bound = func(i int, _ []float32) float64 { return g * abs[i] }
	}
	return o.record("MatMul", fmt.Sprintf("transposeA=%v,transposeB=%v", transposeA, transposeB),
		[]ops.Tensor{a, b}, ra, rb, bound)
}

// FusedMatMul is checked against 2γ(k+1) (Σ|a||b| + |bias|).
func (o *Ops) FusedMatMul(a, b, bias ops.Tensor) ops.Tensor {
	pa, pb, pc := split(a), split(b), split(bias)
	ra := o.A.FusedMatMul(pa.a, pb.a, pc.a)
	rb := o.B.FusedMatMul(pa.b, pb.b, pc.b)
	var bound boundFunc = zeroBound
	if o.Bounds {
		abs, k := o.absProduct(a, b, false, false)
		bv := o.data(bias)
		n := o.Shape(b)[1]
		g := 2 * gamma(k+1)
		bound = func(i int, _ []float32) float64 { return g * (abs[i] + math.Abs(float64(bv[i%n]))) }
	}
	return o.record("FusedMatMul", "", []ops.Tensor{a, b, bias}, ra, rb, bound)
}

// absProduct returns |A|·|B| in float64 (batched for rank 3) and the inner
// dimension k.
func (o *Ops) absProduct(a, b ops.Tensor, ta, tb bool) ([]float64, int) {
	sa, sb := o.Shape(a), o.Shape(b)
	da, db := o.data(a), o.data(b)
	batch := 1
	if len(sa) == 3 {
		batch = sa[0]
		sa, sb = sa[1:], sb[1:]
	}
	m, k := sa[0], sa[1]
	if ta {
		m, k = k, m
	}
	n := sb[1]
	if tb {
		n = sb[0]
	}
	out := make([]float64, batch*m*n)
	col := make([]float64, k)
	for bi := 0; bi < batch; bi++ {
		A := da[bi*m*k : (bi+1)*m*k]
		B := db[bi*k*n : (bi+1)*k*n]
		for j := 0; j < n; j++ {
			for q := 0; q < k; q++ {
				if tb {
					col[q] = math.Abs(float64(B[j*k+q]))
				} else {
					col[q] = math.Abs(float64(B[q*n+j]))
				}
			}
			for i := 0; i < m; i++ {
				var s float64
				if ta {
					for q := 0; q < k; q++ {
						s += math.Abs(float64(A[q*m+i])) * col[q]
					}
				} else {
					row := A[i*k : (i+1)*k]
					for q, v := range row {
						s += math.Abs(float64(v)) * col[q]
					}
				}
				out[bi*m*n+i*n+j] = s
			}
		}
	}
	return out, k
}

func (o *Ops) binary(name string, f func(ops.Ops, ops.Tensor, ops.Tensor) ops.Tensor, a, b ops.Tensor) ops.Tensor {
	pa, pb := split(a), split(b)
	ra := f(o.A, pa.a, pb.a)
	rb := f(o.B, pa.b, pb.b)
	return o.record(name, "", []ops.Tensor{a, b}, ra, rb, zeroBound)
}

// Add must be bitwise equal (one IEEE rounding on both sides).
func (o *Ops) Add(a, b ops.Tensor) ops.Tensor {
	return o.binary("Add", func(x ops.Ops, p, q ops.Tensor) ops.Tensor { return x.Add(p, q) }, a, b)
}

// Sub must be bitwise equal.
func (o *Ops) Sub(a, b ops.Tensor) ops.Tensor {
	return o.binary("Sub", func(x ops.Ops, p, q ops.Tensor) ops.Tensor { return x.Sub(p, q) }, a, b)
}

// Mul must be bitwise equal.
func (o *Ops) Mul(a, b ops.Tensor) ops.Tensor {
	return o.binary("Mul", func(x ops.Ops, p, q ops.Tensor) ops.Tensor { return x.Mul(p, q) }, a, b)
}

const tinyFloor = 0x1p-126

func relBound(ulps float64) boundFunc {
	return func(i int, out []float32) float64 {
		return math.Max(ulps*u*math.Abs(float64(out[i])), tinyFloor)
	}
}

// Sigmoid: 16 ulp relative.
func (o *Ops) Sigmoid(x ops.Tensor) ops.Tensor {
	p := split(x)
	return o.record("Sigmoid", "", []ops.Tensor{x}, o.A.Sigmoid(p.a), o.B.Sigmoid(p.b), relBound(2*16))
}

// Rsqrt: 8 ulp relative.
func (o *Ops) Rsqrt(x ops.Tensor) ops.Tensor {
	p := split(x)
	return o.record("Rsqrt", "", []ops.Tensor{x}, o.A.Rsqrt(p.a), o.B.Rsqrt(p.b), relBound(2*8))
}

// Softmax: 2(L+16) ulp relative, L the length of the last axis.
func (o *Ops) Softmax(x ops.Tensor) ops.Tensor {
	p := split(x)
	s := o.Shape(x)
	l := s[len(s)-1]
	return o.record("Softmax", "", []ops.Tensor{x}, o.A.Softmax(p.a), o.B.Softmax(p.b), relBound(2*float64(l+16)))
}

// Mean: 2γL Σ|x|/L + 2u|mean|.
func (o *Ops) Mean(x ops.Tensor, axis int, keepDims bool) ops.Tensor {
	p := split(x)
	ra := o.A.Mean(p.a, axis, keepDims)
	rb := o.B.Mean(p.b, axis, keepDims)
	var bound boundFunc = zeroBound
	if o.Bounds {
		s := o.Shape(x)
		ax := axis
		if ax < 0 {
			ax += len(s)
		}
		if ax >= 0 && ax < len(s) {
			outer, l, inner := 1, s[ax], 1
			for _, d := range s[:ax] {
				outer *= d
			}
			for _, d := range s[ax+1:] {
				inner *= d
			}
			xs := o.data(x)
			sums := make([]float64, outer*inner)
			for a := 0; a < outer; a++ {
				for j := 0; j < l; j++ {
					for c := 0; c < inner; c++ {
						sums[a*inner+c] += math.Abs(float64(xs[(a*l+j)*inner+c]))
					}
				}
			}
			g := 2 * gamma(l)
			bound = func(i int, out []float32) float64 {
				return g*sums[i]/float64(l) + 2*u*math.Abs(float64(out[i]))
			}
		}
	}
	return o.record("Mean", fmt.Sprintf("axis=%d,keepDims=%v", axis, keepDims), []ops.Tensor{x}, ra, rb, bound)
}

// Reshape must be exact.
func (o *Ops) Reshape(x ops.Tensor, shape ...int) ops.Tensor {
	p := split(x)
	return o.record("Reshape", fmt.Sprint(shape), []ops.Tensor{x}, o.A.Reshape(p.a, shape...), o.B.Reshape(p.b, shape...), zeroBound)
}

// Transpose must be exact.
func (o *Ops) Transpose(x ops.Tensor, perm ...int) ops.Tensor {
	p := split(x)
	return o.record("Transpose", fmt.Sprint(perm), []ops.Tensor{x}, o.A.Transpose(p.a, perm...), o.B.Transpose(p.b, perm...), zeroBound)
}

// Slice must be exact.
func (o *Ops) Slice(x ops.Tensor, begin, size []int) ops.Tensor {
	p := split(x)
	return o.record("Slice", fmt.Sprintf("begin=%v,size=%v", begin, size), []ops.Tensor{x},
		o.A.Slice(p.a, begin, size), o.B.Slice(p.b, begin, size), zeroBound)
}

// DepthwiseConv2d is checked against 2γk Σ|x||filter|, k = FH·FW.
func (o *Ops) DepthwiseConv2d(x, filter ops.Tensor) ops.Tensor {
	px, pf := split(x), split(filter)
	ra := o.A.DepthwiseConv2d(px.a, pf.a)
	rb := o.B.DepthwiseConv2d(px.b, pf.b)
	var bound boundFunc = zeroBound
	if o.Bounds {
		sx, sf := o.Shape(x), o.Shape(filter)
		dx, df := o.data(x), o.data(filter)
		h, w, c := sx[1], sx[2], sx[3]
		fh, fw, m := sf[0], sf[1], sf[3]
		oh, ow := h-fh+1, w-fw+1
		abs := make([]float64, sx[0]*oh*ow*c*m)
		for i := range abs {
			cm := i % (c * m)
			pix := i / (c * m)
			ci, mi := cm/m, cm%m
			bi, y, xx := pix/(oh*ow), pix%(oh*ow)/ow, pix%ow
			var s float64
			for dy := 0; dy < fh; dy++ {
				for dxx := 0; dxx < fw; dxx++ {
					s += math.Abs(float64(dx[((bi*h+y+dy)*w+xx+dxx)*c+ci])) * math.Abs(float64(df[((dy*fw+dxx)*c+ci)*m+mi]))
				}
			}
			abs[i] = s
		}
		g := 2 * gamma(fh*fw)
		bound = func(i int, _ []float32) float64 { return g * abs[i] }
	}
	return o.record("DepthwiseConv2d", "", []ops.Tensor{x, filter}, ra, rb, bound)
}
