package derive

import (
	"fmt"
	"testing"
)

// BenchmarkWrite derives ViT-B/32-sized linear layers, row-major and in
// package native's AVX2 panels, (fc1 [3072, 768]
// with a LayerNorm fold; fc2 [768, 3072] centred; a head-minor q).
func BenchmarkWrite(b *testing.B) {
	d, m := 768, 3072
	gain, shift := make([]float32, d), make([]float32, d)
	for i := range gain {
		gain[i], shift[i] = 1+float32(i%7)/10, float32(i%5)/10
	}
	cases := map[string]Linear{
		"fc1": {W: make([]float32, m*d), B: make([]float32, m), Out: m, In: d, Gain: gain, Shift: shift, Scale: 1.702},
		"fc2": {W: make([]float32, d*m), B: make([]float32, d), Out: d, In: m, InScale: 1 / 1.702, Centre: true},
		"q":   {W: make([]float32, d*d), B: make([]float32, d), Out: d, In: d, Gain: gain, Shift: shift, Perm: func(r int) int { return (r%64)*12 + r/64 }},
	}
	for _, name := range []string{"fc1", "fc2", "q"} {
		for _, threads := range []int{1, 2} {
			l := cases[name]
			l.Threads = threads
			for i := range l.W {
				l.W[i] = float32(i%1000) / 1000
			}
			dst, bias := make([]float32, l.In*l.Out), make([]float32, l.Out)
			b.Run(fmt.Sprintf("%s/threads=%d", name, threads), func(b *testing.B) {
				b.SetBytes(int64(4 * len(l.W)))
				for i := 0; i < b.N; i++ {
					l.Write(dst, l.Out, 0, bias)
				}
			})
			b.Run(fmt.Sprintf("%s/panels/threads=%d", name, threads), func(b *testing.B) {
				b.SetBytes(int64(4 * len(l.W)))
				for i := 0; i < b.N; i++ {
					l.WritePanels(dst, 16, 256, bias)
				}
			})
		}
	}
}
