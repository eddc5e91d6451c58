package native

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// TestKernelsAgree runs every micro-kernel this CPU supports against a
// float64 reference on odd k, padded strides, both A layouts (packed and
// in place), with and without a prefetch pointer, and non-zero initial C.
func TestKernelsAgree(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	for _, kern := range append([]gemmKernel{genericKernel}, kernels()...) {
		mr, nr := kern.mr, kern.nr
		for _, k := range []int{1, 2, 3, 7, 64, 191, 256} {
			for _, ld := range [][2]int{{nr, nr}, {50, 37}, {768, 2304}} {
				for _, layout := range []struct {
					name       string
					lda, astep int
				}{{"packed", 1, mr}, {"in place", k + 5, 1}} {
					ldb, ldc := ld[0], ld[1]
					lda, astep := layout.lda, layout.astep
					a := make([]float32, (mr-1)*lda+(k-1)*astep+1)
					b := make([]float32, (k-1)*ldb+nr)
					c0 := make([]float32, (mr-1)*ldc+nr)
					for _, v := range [][]float32{a, b, c0} {
						for i := range v {
							v[i] = float32(rng.NormFloat64())
						}
					}
					ref := make([]float64, len(c0))
					for i := range ref {
						ref[i] = float64(c0[i])
					}
					for r := 0; r < mr; r++ {
						for j := 0; j < nr; j++ {
							for p := 0; p < k; p++ {
								ref[r*ldc+j] += float64(a[r*lda+p*astep]) * float64(b[p*ldb+j])
							}
						}
					}
					for _, pf := range []*float32{nil, &b[len(b)-1]} {
						name := fmt.Sprintf("%s %s k=%d ldb=%d ldc=%d pf=%v", kern.name, layout.name, k, ldb, ldc, pf != nil)
						got := append([]float32(nil), c0...)
						kern.fn(k, a, lda, astep, b, ldb, got, ldc, pf)
						checkClose(t, name, got, ref, gemmTol(k))
						// Elements between rows (ldc > nr) must be untouched.
						for r := 0; r < mr-1; r++ {
							for j := nr; j < ldc; j++ {
								if got[r*ldc+j] != c0[r*ldc+j] {
									t.Fatalf("%s: wrote outside the tile at row %d col %d", name, r, j)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestMatMulEveryKernel reruns the product tests with each micro-kernel,
// including the portable one that non-amd64 hosts and wasm use.
func TestMatMulEveryKernel(t *testing.T) {
	saved := kernel
	defer func() { kernel = saved }()
	for _, kern := range append([]gemmKernel{genericKernel}, kernels()...) {
		t.Run(kern.name, func(t *testing.T) {
			kernel = kern
			TestMatMul(t)
			TestFusedMatMul(t)
		})
	}
}

func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-104); x < 89; x += 0.0137 {
		got := float64(expf(x))
		want := math.Exp(float64(x))
		if want < math.SmallestNonzeroFloat32*4 {
			if got > want*1.5+math.SmallestNonzeroFloat32 {
				t.Fatalf("expf(%v) = %v, want %v", x, got, want)
			}
			continue
		}
		if want > math.MaxFloat32 {
			if !math.IsInf(got, 1) {
				t.Fatalf("expf(%v) = %v, want +Inf", x, got)
			}
			continue
		}
		rel := math.Abs(got-want) / want
		if want < 1.2e-38 { // denormal results keep fewer bits
			rel = math.Abs(got-want) / 1.2e-38
		}
		worst = math.Max(worst, rel)
	}
	t.Logf("expf worst relative error %.3g", worst)
	if worst > 3e-7 {
		t.Fatalf("expf worst relative error %g", worst)
	}
	for _, c := range []struct{ x, want float32 }{
		{0, 1}, {float32(math.Inf(1)), float32(math.Inf(1))}, {float32(math.Inf(-1)), 0}, {-200, 0}, {100, float32(math.Inf(1))},
	} {
		if got := expf(c.x); got != c.want {
			t.Fatalf("expf(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	if nan := expf(float32(math.NaN())); nan == nan {
		t.Fatal("expf(NaN) is not NaN")
	}
}

// TestSigmoidSweep checks the vector and scalar sigmoid over the whole
// float32 range that matters, with relative error (outputs near 0 too) and
// the special values.
func TestSigmoidSweep(t *testing.T) {
	var xs []float32
	for x := float32(-120); x < 120; x += 0.0093 {
		xs = append(xs, x)
	}
	inf := float32(math.Inf(1))
	xs = append(xs, inf, -inf, 0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, 88.5, -88.5, 103, -103)
	for len(xs)%16 != 3 { // a tail for the scalar path too
		xs = append(xs, 1)
	}
	run := func(name string) {
		o := New(1)
		got := o.Data(o.Sigmoid(o.Tensor(xs, len(xs))))
		for i, x := range xs {
			want := 1 / (1 + math.Exp(-float64(x)))
			g := float64(got[i])
			// Results below the normal float32 range may flush to 0 (float32
			// exp(-x) overflows there, in tfjs too).
			if want < 1.2e-38 {
				if g < 0 || g > 1.2e-38 {
					t.Fatalf("%s: sigmoid(%v) = %v, want %v", name, x, g, want)
				}
				continue
			}
			if err := math.Abs(g-want) / want; err > 1e-6 {
				t.Fatalf("%s: sigmoid(%v) = %v, want %v (rel err %g)", name, x, g, want, err)
			}
		}
		vals := make([]float32, 33)
		vals[5], vals[32] = float32(math.NaN()), float32(math.NaN())
		res := o.Data(o.Sigmoid(o.Tensor(vals, 33)))
		if !math.IsNaN(float64(res[5])) || !math.IsNaN(float64(res[32])) || res[4] != 0.5 {
			t.Fatalf("%s: NaN handling: %v", name, res)
		}
	}
	run("default")
	saved := sigmoidVec
	sigmoidVec = func(dst, src []float32) int { return 0 }
	defer func() { sigmoidVec = saved }()
	run("scalar")
}

// TestElementwiseScalarPaths reruns the elementwise tests with the
// assembly prefixes switched off (what wasm and non-amd64 hosts run).
func TestElementwiseScalarPaths(t *testing.T) {
	vv, vs, sv, vsum, vexp := vecVV, vecVS, vecSV, vecSum, expShiftVec
	defer func() { vecVV, vecVS, vecSV, vecSum, expShiftVec = vv, vs, sv, vsum, vexp }()
	expShiftVec = func(dst, src []float32, shift float32) (float32, int) { return 0, 0 }
	vecVV = func(op binOp, dst, a, b []float32) int { return 0 }
	vecVS = func(op binOp, dst, a []float32, s float32) int { return 0 }
	vecSV = func(op binOp, dst []float32, s float32, b []float32) int { return 0 }
	vecSum = func(a []float32) (float32, int) { return 0, 0 }
	TestBroadcast(t)
	TestMean(t)
	TestSoftmax(t)
}
