package native

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops"
)

func randT(o *Ops, rng *rand.Rand, shape ...int) *Tensor {
	v := make([]float32, numel(shape))
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return o.Tensor(v, shape...).(*Tensor)
}

// close reports whether got matches want within an absolute+relative
// tolerance scaled for float32 accumulation over k terms.
func checkClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		d := math.Abs(float64(got[i]) - want[i])
		if d > tol*(1+math.Abs(want[i])) || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: [%d] = %v, want %v (diff %g)", what, i, got[i], want[i], d)
		}
	}
}

func checkShape(t *testing.T, what string, got, want []int) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: shape %v, want %v", what, got, want)
	}
}

// refGemm is the float64 reference for c = op(a) @ op(b) (+ bias).
func refGemm(a, b []float32, m, k, n int, ta, tb bool, bias []float32) []float64 {
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			if bias != nil {
				s = float64(bias[j])
			}
			for p := 0; p < k; p++ {
				var av, bv float32
				if ta {
					av = a[p*m+i]
				} else {
					av = a[i*k+p]
				}
				if tb {
					bv = b[j*k+p]
				} else {
					bv = b[p*n+j]
				}
				s += float64(av) * float64(bv)
			}
			c[i*n+j] = s
		}
	}
	return c
}

func gemmTol(k int) float64 { return 2e-6 * math.Sqrt(float64(k)+1) * 4 }

var gemmSizes = [][3]int{
	{1, 1, 1}, {1, 7, 1}, {1, 1, 9}, {2, 3, 4}, {5, 17, 33}, {6, 16, 16}, {7, 31, 17},
	{13, 64, 50}, {50, 64, 50}, {12, 300, 47}, {37, 257, 129}, {6, 1, 16}, {65, 33, 15},
	{171, 40, 70}, // more than 16 strips: packed B panels
}

func TestMatMul(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, threads := range []int{1, 2, 3} {
		o := New(threads)
		for _, sz := range gemmSizes {
			m, k, n := sz[0], sz[1], sz[2]
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					for _, batch := range []int{0, 1, 3} {
						name := fmt.Sprintf("t%d m%d k%d n%d ta%v tb%v batch%d", threads, m, k, n, ta, tb, batch)
						ash, bsh := []int{m, k}, []int{k, n}
						if ta {
							ash = []int{k, m}
						}
						if tb {
							bsh = []int{n, k}
						}
						nb := 1
						if batch > 0 {
							nb = batch
							ash = append([]int{batch}, ash...)
							bsh = append([]int{batch}, bsh...)
						}
						a, b := randT(o, rng, ash...), randT(o, rng, bsh...)
						c := o.MatMul(a, b, ta, tb).(*Tensor)
						wantShape := []int{m, n}
						if batch > 0 {
							wantShape = []int{batch, m, n}
						}
						checkShape(t, name, c.Shape, wantShape)
						var want []float64
						for bi := 0; bi < nb; bi++ {
							want = append(want, refGemm(a.Data[bi*m*k:(bi+1)*m*k], b.Data[bi*k*n:(bi+1)*k*n], m, k, n, ta, tb, nil)...)
						}
						checkClose(t, name, c.Data, want, gemmTol(k))
						o.Dispose(a, b, c)
					}
				}
			}
		}
		o.Close()
	}
}

func TestMatMulViTShapes(t *testing.T) {
	if testing.Short() {
		t.Skip("large shapes")
	}
	rng := rand.New(rand.NewSource(2))
	o := New(2)
	defer o.Close()
	for _, sz := range [][3]int{{50, 768, 768}, {50, 3072, 768}, {57, 768, 515}} {
		m, k, n := sz[0], sz[1], sz[2]
		a, b := randT(o, rng, m, k), randT(o, rng, k, n)
		c := o.MatMul(a, b, false, false).(*Tensor)
		checkClose(t, fmt.Sprint(sz), c.Data, refGemm(a.Data, b.Data, m, k, n, false, false, nil), gemmTol(k))
	}
}

func TestFusedMatMul(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, threads := range []int{1, 2} {
		o := New(threads)
		for _, sz := range gemmSizes {
			m, k, n := sz[0], sz[1], sz[2]
			a, b, bias := randT(o, rng, m, k), randT(o, rng, k, n), randT(o, rng, n)
			c := o.FusedMatMul(a, b, bias).(*Tensor)
			checkShape(t, "fused", c.Shape, []int{m, n})
			checkClose(t, fmt.Sprint("fused ", sz), c.Data, refGemm(a.Data, b.Data, m, k, n, false, false, bias.Data), gemmTol(k))
			row := o.Reshape(bias, 1, n)
			c2 := o.FusedMatMul(a, b, row).(*Tensor)
			checkClose(t, fmt.Sprint("fused [1,n] bias ", sz), c2.Data, f64(c.Data), 0)
			o.Dispose(a, b, bias, c, row, c2)
		}
		o.Close()
	}
}

func expectPanic(t *testing.T, what, contains string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("%s: no panic", what)
		}
		if !strings.Contains(fmt.Sprint(r), contains) {
			t.Fatalf("%s: panic %q does not mention %q", what, r, contains)
		}
	}()
	f()
}

func TestMisusePanics(t *testing.T) {
	o := New(1)
	rng := rand.New(rand.NewSource(4))
	a, b := randT(o, rng, 2, 3), randT(o, rng, 4, 5)
	expectPanic(t, "matmul inner", "inner dimensions", func() { o.MatMul(a, b, false, false) })
	expectPanic(t, "matmul rank", "rank", func() { o.MatMul(a, randT(o, rng, 1, 3, 2), false, false) })
	expectPanic(t, "matmul batch", "batch", func() { o.MatMul(randT(o, rng, 2, 2, 3), randT(o, rng, 3, 3, 2), false, false) })
	expectPanic(t, "fused bias", "bias", func() { o.FusedMatMul(a, randT(o, rng, 3, 5), randT(o, rng, 4)) })
	expectPanic(t, "add", "broadcast", func() { o.Add(a, b) })
	expectPanic(t, "tensor", "needs 6 values", func() { o.Tensor(make([]float32, 5), 2, 3) })
	expectPanic(t, "tensor overflow", "bad shape", func() { o.Tensor(nil, 1<<32, 1<<32) })
	expectPanic(t, "tensor overflow to len", "bad shape", func() { o.Tensor(make([]float32, 4), 1<<62+1, 4) })
	expectPanic(t, "tensor negative", "bad shape", func() { o.Tensor(nil, -1, 0) })
	expectPanic(t, "reshape overflow", "too many elements", func() { o.Reshape(o.Tensor(make([]float32, 4), 4), 1<<62+1, 4) })
	expectPanic(t, "reshape overflow 0", "too many elements", func() { o.Reshape(o.Tensor(nil, 0), 1<<33, 1<<31, 0) })
	expectPanic(t, "slice overflow", "out of bounds", func() { o.Slice(a, []int{0, math.MaxInt}, []int{1, 1}) })
	expectPanic(t, "reshape", "cannot reshape", func() { o.Reshape(a, 4, -1) })
	expectPanic(t, "reshape -1 -1", "more than one -1", func() { o.Reshape(a, -1, -1) })
	expectPanic(t, "mean", "axis", func() { o.Mean(a, 2, false) })
	expectPanic(t, "transpose", "perm", func() { o.Transpose(a, 0, 0) })
	expectPanic(t, "slice", "out of bounds", func() { o.Slice(a, []int{1, 1}, []int{2, -1}) })
	expectPanic(t, "softmax", "rank-0", func() { o.Softmax(o.Tensor([]float32{1})) })
	expectPanic(t, "foreign", "not *native.Tensor", func() { o.Add(a, 3) })
}

// refBinary computes numpy broadcasting the slow obvious way.
func refBinary(op binOp, a, b *Tensor) ([]int, []float64) {
	shape := broadcastShape(op, a.Shape, b.Shape)
	r := len(shape)
	out := make([]float64, numel(shape))
	idx := make([]int, r)
	at := func(x *Tensor) float64 {
		off := 0
		for i, d := range x.Shape {
			v := idx[r-len(x.Shape)+i]
			if d == 1 {
				v = 0
			}
			off = off*d + v
		}
		return float64(x.Data[off])
	}
	for i := range out {
		rem := i
		for j := r - 1; j >= 0; j-- {
			idx[j] = rem % shape[j]
			rem /= shape[j]
		}
		x, y := at(a), at(b)
		switch op {
		case opAdd:
			out[i] = x + y
		case opSub:
			out[i] = x - y
		case opMul:
			out[i] = x * y
		}
	}
	return shape, out
}

func TestBroadcast(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	cases := [][2][]int{
		{{2, 3}, {2, 3}}, {{}, {}}, {{4, 5}, {}}, {{}, {4, 5}}, {{4, 5}, {5}}, {{5}, {4, 5}},
		{{3, 50, 768}, {768}}, {{50, 768}, {50, 1}}, {{50, 1}, {50, 768}}, {{2, 1, 4}, {3, 1}},
		{{1}, {3, 4}}, {{2, 3, 4, 5}, {3, 1, 5}}, {{4, 1}, {1, 6}}, {{1, 1}, {1}}, {{2, 3}, {1, 1}},
		{{7, 300, 40}, {7, 300, 40}}, {{1, 3000}, {3000}}, {{3, 0, 2}, {2}},
	}
	for _, threads := range []int{1, 2} {
		o := New(threads)
		for _, c := range cases {
			for _, op := range []binOp{opAdd, opSub, opMul} {
				a, b := randT(o, rng, c[0]...), randT(o, rng, c[1]...)
				var got ops.Tensor
				switch op {
				case opAdd:
					got = o.Add(a, b)
				case opSub:
					got = o.Sub(a, b)
				case opMul:
					got = o.Mul(a, b)
				}
				shape, want := refBinary(op, a, b)
				g := got.(*Tensor)
				name := fmt.Sprintf("%v %v %v", op, c[0], c[1])
				checkShape(t, name, g.Shape, shape)
				checkClose(t, name, g.Data, want, 1e-6)
				o.Dispose(a, b, got)
			}
		}
		o.Close()
	}
}

func TestUnary(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	o := New(2)
	defer o.Close()
	for _, shape := range [][]int{{}, {1}, {7}, {50, 3072}, {2, 0}} {
		x := randT(o, rng, shape...)
		s := o.Sigmoid(x).(*Tensor)
		want := make([]float64, len(x.Data))
		for i, v := range x.Data {
			want[i] = 1 / (1 + math.Exp(-float64(v)*1))
		}
		checkShape(t, "sigmoid", s.Shape, shape)
		checkClose(t, "sigmoid", s.Data, want, 2e-6)
		// Rsqrt of positive values.
		for i := range x.Data {
			x.Data[i] = float32(math.Abs(float64(x.Data[i])) + 1e-3)
		}
		r := o.Rsqrt(x).(*Tensor)
		for i, v := range x.Data {
			want[i] = 1 / math.Sqrt(float64(v))
		}
		checkClose(t, "rsqrt", r.Data, want, 2e-6)
	}
	// Extreme sigmoid inputs stay finite and saturate.
	x := o.Tensor([]float32{-1000, 1000, 0, -88, 88}, 5)
	checkClose(t, "sigmoid extremes", o.Sigmoid(x).(*Tensor).Data, []float64{0, 1, 0.5, 1 / (1 + math.Exp(88)), 1}, 1e-6)
}

func TestSoftmax(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	o := New(2)
	defer o.Close()
	for _, shape := range [][]int{{1}, {5}, {3, 1}, {12, 50, 50}, {2, 3, 7}, {4, 1000}} {
		x := randT(o, rng, shape...)
		for i := range x.Data {
			x.Data[i] *= 30 // large logits: must not overflow
		}
		s := o.Softmax(x).(*Tensor)
		n := shape[len(shape)-1]
		want := make([]float64, len(x.Data))
		for r := 0; r < len(x.Data)/n; r++ {
			m := math.Inf(-1)
			for _, v := range x.Data[r*n : (r+1)*n] {
				m = math.Max(m, float64(v))
			}
			var sum float64
			for j, v := range x.Data[r*n : (r+1)*n] {
				want[r*n+j] = math.Exp(float64(v) - m)
				sum += want[r*n+j]
			}
			for j := 0; j < n; j++ {
				want[r*n+j] /= sum
			}
		}
		checkShape(t, "softmax", s.Shape, shape)
		checkClose(t, fmt.Sprint("softmax ", shape), s.Data, want, 3e-6)
	}
}

func TestMean(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	o := New(1)
	for _, shape := range [][]int{{5}, {50, 768}, {2, 3, 4}, {1, 1}, {3, 5, 2, 4}} {
		for axis := -len(shape); axis < len(shape); axis++ {
			for _, keep := range []bool{false, true} {
				x := randT(o, rng, shape...)
				got := o.Mean(x, axis, keep).(*Tensor)
				ax := axis
				if ax < 0 {
					ax += len(shape)
				}
				outer, n, inner := numel(shape[:ax]), shape[ax], numel(shape[ax+1:])
				want := make([]float64, outer*inner)
				for i := 0; i < outer; i++ {
					for k := 0; k < n; k++ {
						for j := 0; j < inner; j++ {
							want[i*inner+j] += float64(x.Data[(i*n+k)*inner+j]) / float64(n)
						}
					}
				}
				ws := append([]int{}, shape[:ax]...)
				if keep {
					ws = append(ws, 1)
				}
				ws = append(ws, shape[ax+1:]...)
				name := fmt.Sprintf("mean %v axis %d keep %v", shape, axis, keep)
				checkShape(t, name, got.Shape, ws)
				checkClose(t, name, got.Data, want, 1e-5)
			}
		}
	}
}

func TestTranspose(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	o := New(2)
	defer o.Close()
	cases := []struct {
		shape, perm []int
	}{
		{[]int{}, []int{}}, {[]int{5}, []int{0}}, {[]int{3, 4}, []int{1, 0}}, {[]int{3, 4}, nil},
		{[]int{2, 50, 12, 64}, []int{0, 2, 1, 3}}, {[]int{2, 3, 4}, []int{2, 0, 1}}, {[]int{2, 3, 4}, []int{1, 2, 0}},
		{[]int{2, 3, 4, 5}, []int{3, 2, 1, 0}}, {[]int{2, 3, 4, 5}, []int{0, 1, 2, 3}}, {[]int{768, 2304}, []int{1, 0}},
		{[]int{33, 65}, []int{1, 0}}, {[]int{1, 7, 1}, []int{2, 1, 0}}, {[]int{3, 50, 64, 12}, []int{1, 2, 0, 3}},
	}
	for _, c := range cases {
		x := randT(o, rng, c.shape...)
		got := o.Transpose(x, c.perm...).(*Tensor)
		perm := c.perm
		r := len(c.shape)
		if perm == nil {
			perm = make([]int, r)
			for i := range perm {
				perm[i] = r - 1 - i
			}
		}
		ws := make([]int, r)
		for i, p := range perm {
			ws[i] = c.shape[p]
		}
		checkShape(t, "transpose", got.Shape, ws)
		want := make([]float64, len(x.Data))
		in := stridesOf(c.shape)
		idx := make([]int, r)
		for i := range want {
			rem := i
			for j := r - 1; j >= 0; j-- {
				idx[j] = rem % ws[j]
				rem /= ws[j]
			}
			off := 0
			for j, p := range perm {
				off += idx[j] * in[p]
			}
			want[i] = float64(x.Data[off])
		}
		checkClose(t, fmt.Sprint("transpose ", c.shape, perm), got.Data, want, 0)
	}
}

func TestSliceReshape(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	o := New(1)
	x := randT(o, rng, 3, 4, 5)
	s := o.Slice(x, []int{1, 0, 2}, []int{2, -1, 2}).(*Tensor)
	checkShape(t, "slice", s.Shape, []int{2, 4, 2})
	var want []float64
	for i := 1; i < 3; i++ {
		for j := 0; j < 4; j++ {
			for k := 2; k < 4; k++ {
				want = append(want, float64(x.Data[(i*4+j)*5+k]))
			}
		}
	}
	checkClose(t, "slice", s.Data, want, 0)
	// CLS token slice: x[:, 0, :] as in the ViT pooler.
	h := randT(o, rng, 2, 50, 8)
	cls := o.Slice(h, []int{0, 0, 0}, []int{-1, 1, -1}).(*Tensor)
	checkShape(t, "cls", cls.Shape, []int{2, 1, 8})
	checkClose(t, "cls", cls.Data, f64(append(append([]float32{}, h.Data[0:8]...), h.Data[400:408]...)), 0)
	e := o.Slice(x, []int{3, 0, 0}, []int{-1, -1, -1}).(*Tensor)
	checkShape(t, "empty slice", e.Shape, []int{0, 4, 5})
	sc := o.Slice(o.Tensor([]float32{4}), nil, nil).(*Tensor)
	checkShape(t, "scalar slice", sc.Shape, []int{})
	checkClose(t, "scalar slice", sc.Data, []float64{4}, 0)
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func TestDisposeAndData(t *testing.T) {
	o := New(1)
	a := o.Tensor([]float32{1, 2, 3, 4}, 2, 2)
	b := o.Add(a, a)
	d := o.Data(b)
	o.Dispose(b, nil, b)
	c := o.Mul(a, a) // likely reuses b's buffer
	checkClose(t, "data survives dispose", d, []float64{2, 4, 6, 8}, 0)
	checkClose(t, "reuse", o.Data(c), []float64{1, 4, 9, 16}, 0)
	checkShape(t, "shape", o.Shape(c), []int{2, 2})
	o.Dispose(a)
	if a.(*Tensor).Data != nil {
		t.Fatal("Dispose did not drop the data")
	}
	expectPanic(t, "use after dispose", "disposed", func() { o.Data(a) })
	expectPanic(t, "use after dispose", "disposed", func() { o.Add(c, a) })

	// Reshape shares the buffer; it is recycled only after both views go.
	x := o.Tensor(make([]float32, 4096), 64, 64)
	y := o.Add(x, x)
	r := o.Reshape(y, 4096)
	o.Dispose(y)
	z := o.Add(x, o.Tensor([]float32{7}, 1)) // must not land in r's buffer
	for i, v := range o.Data(r) {
		if v != 0 {
			t.Fatalf("reshaped view changed after disposing its source: [%d] = %v", i, v)
		}
	}
	shared := &r.(*Tensor).Data[0]
	o.Dispose(r)
	w := o.Add(x, o.Tensor([]float32{1}, 1))
	if &w.(*Tensor).Data[0] != shared {
		t.Fatal("the buffer was not recycled after its last view was disposed")
	}
	checkClose(t, "recycled", o.Data(w)[:3], []float64{1, 1, 1}, 0)
	o.Dispose(z, w)
	if o.pool.bytes == 0 {
		t.Fatal("pool empty after disposing pooled tensors")
	}
	o.ReleaseBuffers()
	if o.pool.bytes != 0 || len(o.pool.free) != 0 {
		t.Fatal("ReleaseBuffers kept buffers")
	}
	checkClose(t, "after release", o.Data(o.Add(x, x))[:2], []float64{0, 0}, 0)
}

func TestConcurrentUse(t *testing.T) {
	// Several goroutines share one Ops (run with -race): the pools, worker
	// pool and scratch buffers must be safe.
	o := New(2)
	defer o.Close()
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func(seed int64) {
			rng := rand.New(rand.NewSource(seed))
			for it := 0; it < 5; it++ {
				a, b := randT(o, rng, 37, 129), randT(o, rng, 129, 70)
				c := o.MatMul(a, b, false, false).(*Tensor)
				want := refGemm(a.Data, b.Data, 37, 129, 70, false, false, nil)
				for i := range want {
					if d := math.Abs(float64(c.Data[i]) - want[i]); d > gemmTol(129)*(1+math.Abs(want[i])) {
						done <- fmt.Errorf("goroutine %d: [%d] = %v, want %v", seed, i, c.Data[i], want[i])
						return
					}
				}
				s := o.Softmax(o.Reshape(c, 37*70).(ops.Tensor))
				o.Dispose(a, b, c, s)
			}
			done <- nil
		}(int64(g))
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestParallelPaths covers the three ways a product is split across
// threads: by column panels, by row strips (few panels), and by batch item.
func TestParallelPaths(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	for _, threads := range []int{2, 3} {
		o := New(threads)
		for _, c := range []struct{ batch, m, k, n int }{
			{1, 60, 300, 200}, // panels
			{1, 400, 300, 40}, // strips
			{8, 100, 64, 100}, // batch items
		} {
			ash, bsh := []int{c.m, c.k}, []int{c.k, c.n}
			if c.batch > 1 {
				ash, bsh = append([]int{c.batch}, ash...), append([]int{c.batch}, bsh...)
			}
			a, b := randT(o, rng, ash...), randT(o, rng, bsh...)
			got := o.MatMul(a, b, false, false).(*Tensor)
			var want []float64
			for bi := 0; bi < c.batch; bi++ {
				mk, kn := c.m*c.k, c.k*c.n
				want = append(want, refGemm(a.Data[bi*mk:(bi+1)*mk], b.Data[bi*kn:(bi+1)*kn], c.m, c.k, c.n, false, false, nil)...)
			}
			checkClose(t, fmt.Sprintf("threads %d %+v", threads, c), got.Data, want, gemmTol(c.k))
			o.Dispose(a, b, got)
		}
		o.Close()
	}
}

// A panic in a chunk run by a worker goroutine must reach the caller (where
// the graph's entry points recover it) instead of killing the process.
func TestParallelForPanicReachesCaller(t *testing.T) {
	o := New(4)
	defer o.Close()
	for _, bad := range []int{0, 3} { // chunk 0 runs on the caller, 3 on a worker
		func() {
			defer func() {
				if r := recover(); r != fmt.Sprintf("chunk %d", bad) {
					t.Errorf("bad chunk %d: recovered %v", bad, r)
				}
			}()
			o.parallelFor(4, 1<<20, func(lo, hi int) {
				if lo == bad {
					panic(fmt.Sprintf("chunk %d", lo))
				}
			})
		}()
	}
	// The pool still works afterwards.
	var hits [4]int
	o.parallelFor(4, 1<<20, func(lo, hi int) { hits[lo]++ })
	if hits != [4]int{1, 1, 1, 1} {
		t.Errorf("chunks after a panic: %v", hits)
	}
}
