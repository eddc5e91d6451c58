package native

import (
	"math"
	"testing"
)

// kernels lists the assembly micro-kernels this CPU can run.
func kernels() []gemmKernel {
	var ks []gemmKernel
	if hasAVX2FMA {
		ks = append(ks, avx2Kernel5, avx2Kernel)
	}
	if hasAVX512 {
		ks = append(ks, avx512Kernel)
	}
	return ks
}

// TestAVX2Exp runs the AVX2 sigmoid and exp on any CPU that has them (also
// one with AVX-512, which would otherwise use the 16-lane versions), and
// checks exp(x - shift) against the scalar expf lane by lane.
func TestAVX2Exp(t *testing.T) {
	if !hasAVX2FMA {
		t.Skip("no AVX2+FMA")
	}
	sv, ev := sigmoidVec, expShiftVec
	defer func() { sigmoidVec, expShiftVec = sv, ev }()
	sigmoidVec, expShiftVec = sigmoid8, expShift8
	TestSigmoidSweep(t)
	TestSoftmax(t)

	var xs []float32
	for x := float32(-110); x < 110; x += 0.0071 {
		xs = append(xs, x)
	}
	xs = append(xs, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, 1e-30)
	xs = xs[:len(xs)&^7]
	for _, shift := range []float32{0, 3.5, -20} {
		dst := make([]float32, len(xs))
		s, n := expShift8(dst, xs, shift)
		if n != len(xs) {
			t.Fatalf("did %d of %d", n, len(xs))
		}
		var want float64
		for i, x := range xs {
			arg := x - shift
			ref := expf(min(max(arg, -100), 100))
			if arg != arg {
				ref = arg
			}
			want += float64(ref)
			g := dst[i]
			switch {
			case ref != ref:
				if g == g {
					t.Fatalf("exp(%v - %v) = %v, want NaN", x, shift, g)
				}
			case ref < 1.2e-38: // denormal range: the two-step scaling may round differently
				if math.Abs(float64(g-ref)) > 1e-44 {
					t.Fatalf("exp(%v - %v) = %v, want %v", x, shift, g, ref)
				}
			case math.IsInf(float64(ref), 1):
				if !math.IsInf(float64(g), 1) {
					t.Fatalf("exp(%v - %v) = %v, want +Inf", x, shift, g)
				}
			default:
				if d := math.Abs(float64(g-ref)) / float64(ref); d > 2.5e-7 {
					t.Fatalf("exp(%v - %v) = %v, scalar %v (rel %g)", x, shift, g, ref, d)
				}
			}
		}
		if !math.IsNaN(want) && !math.IsInf(want, 0) {
			if d := math.Abs(float64(s)-want) / want; d > 1e-5 {
				t.Fatalf("sum %v, want %v", s, want)
			}
		}
	}
}
