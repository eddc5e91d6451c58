package native

import (
	"fmt"
	"math/rand"
	"testing"
)

// ViT-B/32 matrix products at batch 1 (50 tokens) and batch 8 (400 rows).
var vitShapes = []struct {
	name         string
	batch, m, k  int
	n            int
	ta, tb       bool
	batchedHeads bool
}{
	{name: "qkv_50x768x2304", batch: 1, m: 50, k: 768, n: 2304},
	{name: "proj_50x768x768", batch: 1, m: 50, k: 768, n: 768},
	{name: "fc1_50x768x3072", batch: 1, m: 50, k: 768, n: 3072},
	{name: "fc2_50x3072x768", batch: 1, m: 50, k: 3072, n: 768},
	{name: "scores_12x50x64x50T", batch: 12, m: 50, k: 64, n: 50, tb: true},
	{name: "context_12x50x50x64", batch: 12, m: 50, k: 50, n: 64},
	{name: "qkv_400x768x2304", batch: 1, m: 400, k: 768, n: 2304},
	{name: "fc1_400x768x3072", batch: 1, m: 400, k: 768, n: 3072},
	{name: "fc2_400x3072x768", batch: 1, m: 400, k: 3072, n: 768},
}

func BenchmarkMatMul(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	for _, s := range vitShapes {
		for _, kname := range KernelNames()[1:] {
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%s/threads=%d", s.name, kname, threads), func(b *testing.B) {
					defer UseKernel(kname)()
					o := New(threads)
					defer o.Close()
					ash, bsh := []int{s.m, s.k}, []int{s.k, s.n}
					if s.tb {
						bsh = []int{s.n, s.k}
					}
					if s.batch > 1 {
						ash = append([]int{s.batch}, ash...)
						bsh = append([]int{s.batch}, bsh...)
					}
					x, y := randT(o, rng, ash...), randT(o, rng, bsh...)
					flops := 2 * float64(s.batch*s.m*s.k*s.n)
					b.ResetTimer()
					cpu0 := cpuSeconds()
					for i := 0; i < b.N; i++ {
						o.Dispose(o.MatMul(x, y, s.ta, s.tb))
					}
					reportFlops(b, flops, cpu0)
				})
			}
		}
	}
}

// reportFlops reports wall-clock GFLOP/s and, where CPU time is available,
// GFLOP per CPU-second (per busy core), which is less sensitive to other
// processes on a shared machine.
func reportFlops(b *testing.B, flopsPerOp float64, cpu0 float64) {
	total := flopsPerOp * float64(b.N)
	b.ReportMetric(total/float64(b.Elapsed().Nanoseconds()), "GFLOP/s")
	if cpu := cpuSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(total/cpu/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkKernel times each micro-kernel alone on a k=256 tile whose
// operands sit in L1: the ceiling the blocked driver can approach.
func BenchmarkKernel(b *testing.B) {
	for _, kern := range append([]gemmKernel{genericKernel}, kernels()...) {
		b.Run(kern.name, func(b *testing.B) {
			const k = 192
			a := make([]float32, k*kern.mr)
			bb := make([]float32, k*kern.nr)
			c := make([]float32, kern.mr*kern.nr)
			for i := range a {
				a[i] = 1e-3
			}
			for i := range bb {
				bb[i] = 1e-3
			}
			b.ResetTimer()
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				kern.fn(k, a, 1, kern.mr, bb, kern.nr, c, kern.nr, nil)
			}
			reportFlops(b, float64(2*k*kern.mr*kern.nr), cpu0)
		})
	}
}

// BenchmarkExp times the transcendental elementwise ops at ViT-B/32 sizes:
// quick_gelu's sigmoid over the MLP activations (50x3072 per image) and
// the attention softmax (12 heads x 50x50), with the vector code the CPU
// gets ("vector") and the scalar Go loop ("scalar").
func BenchmarkExp(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	for _, vec := range []bool{true, false} {
		mode := "vector"
		if !vec {
			mode = "scalar"
		}
		b.Run("sigmoid_50x3072/"+mode, func(b *testing.B) {
			if !vec {
				saved := sigmoidVec
				sigmoidVec = func(dst, src []float32) int { return 0 }
				defer func() { sigmoidVec = saved }()
			}
			o := New(1)
			defer o.Close()
			x := randT(o, rng, 50, 3072)
			b.ResetTimer()
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				o.Dispose(o.Sigmoid(x))
			}
			reportPerElem(b, 50*3072, cpu0)
		})
		b.Run("softmax_12x50x50/"+mode, func(b *testing.B) {
			if !vec {
				saved := expShiftVec
				expShiftVec = func(dst, src []float32, shift float32) (float32, int) { return 0, 0 }
				defer func() { expShiftVec = saved }()
			}
			o := New(1)
			defer o.Close()
			x := randT(o, rng, 12, 50, 50)
			b.ResetTimer()
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				o.Dispose(o.Softmax(x))
			}
			reportPerElem(b, 12*50*50, cpu0)
		})
	}
}

func reportPerElem(b *testing.B, n int, cpu0 float64) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/elem")
	if cpu := cpuSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(cpu*1e9/float64(b.N*n), "cpu-ns/elem")
	}
}

// BenchmarkLayerCold runs the linear layers of ViT-B/32 layers as a
// forward pass does: every weight is used once per pass and the passes'
// weights (12 layers, 340 MB) do not fit in any cache, so B streams from
// memory. Weights are packed (prepack.go) before the timed passes.
func BenchmarkLayerCold(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	const d, f, layers = 768, 3072, 12
	for _, m := range []int{50, 400} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("m=%d/threads=%d", m, threads), func(b *testing.B) {
				o := New(threads)
				defer o.Close()
				type layer struct{ q, k, v, out, fc1, fc2, b, bf *Tensor }
				ls := make([]layer, layers)
				for i := range ls {
					ls[i] = layer{randT(o, rng, d, d), randT(o, rng, d, d), randT(o, rng, d, d), randT(o, rng, d, d),
						randT(o, rng, d, f), randT(o, rng, f, d), randT(o, rng, d), randT(o, rng, f)}
				}
				x := randT(o, rng, m, d)
				pass := func() {
					for _, l := range ls {
						for _, w := range []*Tensor{l.q, l.k, l.v, l.out} {
							o.Dispose(o.FusedMatMul(x, w, l.b))
						}
						h := o.FusedMatMul(x, l.fc1, l.bf)
						o.Dispose(o.FusedMatMul(h, l.fc2, l.b), h)
					}
				}
				for i := 0; i < packAfterUses; i++ { // the weights get packed
					pass()
				}
				flops := float64(layers) * 2 * float64(m) * (4*d*d + 2*d*f)
				b.ResetTimer()
				cpu0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					pass()
				}
				reportFlops(b, flops, cpu0)
			})
		}
	}
}
