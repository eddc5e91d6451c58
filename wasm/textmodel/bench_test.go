package textmodel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/weights"
)

// b32Text is the text tower of OpenAI CLIP ViT-B/32.
var b32Text = weights.TextConfig{HiddenSize: 512, NumLayers: 12, NumHeads: 8, IntermediateSize: 2048, VocabSize: 49408,
	ContextLength: 77, ProjectionDim: 512, LayerNormEps: 1e-5, Activation: "quick_gelu"}

// randomModel builds a model of cfg's size with random weights.
func randomModel(b *testing.B, o ops.Ops, cfg weights.TextConfig) *Model {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	shapes := weights.TextTensors(cfg)
	m, err := Load(o, cfg, func(name string, _ []float32) ([]float32, []int, error) {
		shape := shapes[name]
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * 0.02)
		}
		return v, shape, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Dispose)
	return m
}

// BenchmarkForward: ViT-B/32's text tower (random weights) on the Go
// kernels, per string, at batch 1 and 16, for texts of 16 tokens (a
// caption; the graph runs only to the last EOS) and 77 (the maximum).
// ns/op is per call; the "ms/string" metric divides by the batch, and
// GFLOP/s counts the matrix products.
func BenchmarkForward(b *testing.B) {
	o := native.New(0)
	m := randomModel(b, o, b32Text)
	const eos = 49407
	for _, tokens := range []int{16, 77} {
		for _, batch := range []int{1, 16} {
			b.Run(fmt.Sprintf("tokens=%d/batch=%d", tokens, batch), func(b *testing.B) {
				rows := make([][]int32, batch)
				for i := range rows {
					row := make([]int32, 77)
					row[0] = 49406
					for j := 1; j < tokens-1; j++ {
						row[j] = int32(300 + i + j)
					}
					for j := tokens - 1; j < 77; j++ {
						row[j] = eos
					}
					rows[i] = row
				}
				b.ResetTimer()
				for range b.N {
					if _, err := m.Forward(rows, eos); err != nil {
						b.Fatal(err)
					}
				}
				perString := float64(b.Elapsed().Nanoseconds()) / float64(b.N*batch)
				b.ReportMetric(perString/1e6, "ms/string")
				b.ReportMetric(FLOPs(b32Text, tokens)/perString, "GFLOP/s")
			})
		}
	}
}
