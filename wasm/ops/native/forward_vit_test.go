//go:build vitbench

// The full-forward benchmark depends on package vit, which is developed
// separately, so it is opt-in: go test -tags vitbench -bench Forward.
package native_test

import (
	"fmt"
	"math/rand"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/wasm/vit"
	"github.com/imgembed/imgembed/weights"
)

func hfShape(cfg weights.Config, name string) []int {
	d, m := cfg.HiddenSize, cfg.IntermediateSize
	switch {
	case strings.HasSuffix(name, "patch_embedding.weight"):
		return []int{d, 3, cfg.PatchSize, cfg.PatchSize}
	case strings.HasSuffix(name, "position_embedding.weight"):
		g := cfg.ImageSize / cfg.PatchSize
		return []int{g*g + 1, d}
	case name == "visual_projection.weight":
		return []int{cfg.ProjectionDim, d}
	case strings.HasSuffix(name, "fc1.weight"):
		return []int{m, d}
	case strings.HasSuffix(name, "fc1.bias"):
		return []int{m}
	case strings.HasSuffix(name, "fc2.weight"):
		return []int{d, m}
	case strings.HasSuffix(name, "proj.weight"):
		return []int{d, d}
	}
	return []int{d}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkForward times the real ViT-B/32 graph (random weights) on these
// kernels and reports ms per image of wall time and of CPU time.
func BenchmarkForward(b *testing.B) {
	cfg := weights.Preset("b32")
	rng := rand.New(rand.NewSource(1))
	for _, kname := range native.KernelNames()[1:] {
		for _, threads := range []int{1, 2} {
			o := native.New(threads)
			m, err := vit.Load(o, cfg, func(name string, _ []float32) ([]float32, []int, error) {
				shape := hfShape(cfg, name)
				n := 1
				for _, d := range shape {
					n *= d
				}
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(rng.NormFloat64() * 0.02)
				}
				return v, shape, nil
			})
			if err != nil {
				b.Fatal(err)
			}
			for _, batch := range []int{1, 8} {
				b.Run(fmt.Sprintf("%s/threads=%d/batch=%d", kname, threads, batch), func(b *testing.B) {
					defer native.UseKernel(kname)()
					px := make([]float32, batch*3*cfg.ImageSize*cfg.ImageSize)
					for i := range px {
						px[i] = float32(rng.NormFloat64())
					}
					// Steady state: the first forwards pack the weights
					// (prepack.go), and the load's garbage is collected.
					for i := 0; i < 3; i++ {
						if _, err := m.Forward(px, batch); err != nil {
							b.Fatal(err)
						}
					}
					runtime.GC()
					b.ResetTimer()
					cpu0 := cpuSeconds()
					for i := 0; i < b.N; i++ {
						if _, err := m.Forward(px, batch); err != nil {
							b.Fatal(err)
						}
					}
					imgs := float64(b.N * batch)
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/imgs/1e6, "ms/image")
					b.ReportMetric((cpuSeconds()-cpu0)*1e3/imgs, "cpu-ms/image")
				})
			}
			m.Dispose()
			o.Close()
		}
	}
}
