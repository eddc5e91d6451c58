package host

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/wasm/vit"
	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// vitB32 is CLIP ViT-B/32's vision tower: 8.8 GFLOP per image.
func vitB32() weights.Config {
	return weights.Config{
		HiddenSize: 768, NumLayers: 12, NumHeads: 12, IntermediateSize: 3072,
		PatchSize: 32, ImageSize: 224, ProjectionDim: 512, LayerNormEps: 1e-5,
		Activation: "quick_gelu", ImageMean: weights.DefaultImageMean, ImageStd: weights.DefaultImageStd,
	}
}

// flopsPerImage counts multiply-adds x2 of the matrix products of one
// forward pass (the rest is noise): patch embedding, QKV, attention, output
// projection, MLP, final projection.
func flopsPerImage(c weights.Config) float64 {
	d, m, t := float64(c.HiddenSize), float64(c.IntermediateSize), float64(c.Patches()+1)
	p := float64(3 * c.PatchSize * c.PatchSize)
	perLayer := t*d*3*d + 2*t*t*d + t*d*d + 2*t*d*m
	return 2 * (t*p*d + float64(c.NumLayers)*perLayer + d*float64(c.ProjectionDim))
}

// randomTensors makes seeded random weights in the Hugging Face layout of
// cfg: LayerNorm gains near 1, biases and weights small, like a trained
// network's scale so activations stay finite.
func randomTensors(cfg weights.Config, seed uint64) map[string][]float32 {
	r := rand.New(rand.NewPCG(seed, 0x1111))
	out := map[string][]float32{}
	for name, shape := range weights.VisionTensors(cfg) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		scale := float32(0.02)
		base := float32(0)
		if strings.Contains(name, "norm") && strings.HasSuffix(name, ".weight") {
			base, scale = 1, 0.05
		}
		for i := range v {
			v[i] = base + scale*float32(r.NormFloat64())
		}
		out[name] = v
	}
	return out
}

// writeRandomModel writes cfg's vision tower with random weights as an F32
// safetensors file (config in __metadata__) and returns its path.
func writeRandomModel(tb testing.TB, dir string, cfg weights.Config, seed uint64) string {
	tb.Helper()
	ts := randomTensors(cfg, seed)
	shapes := weights.VisionTensors(cfg)
	var list []safetensors.Tensor
	for _, name := range weights.VisionTensorNames(cfg) {
		v := ts[name]
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		list = append(list, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shapes[name], Data: b})
	}
	path := filepath.Join(dir, "random.safetensors")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := safetensors.Write(f, list, cfg.Metadata()); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// nativeModel loads cfg's random weights straight into vit on native
// kernels: the graph without the wasm boundary.
func nativeModel(tb testing.TB, o *native.Ops, cfg weights.Config, ts map[string][]float32) *vit.Model {
	tb.Helper()
	shapes := weights.VisionTensors(cfg)
	m, err := vit.Load(o, cfg, func(name string) (ops.Tensor, error) {
		return o.Tensor(append([]float32(nil), ts[name]...), shapes[name]...), nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func randomPixels(n, size int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	px := make([]float32, n*3*size*size)
	for i := range px {
		px[i] = float32(r.NormFloat64())
	}
	return px
}

var (
	b32Once    sync.Once
	b32Tensors map[string][]float32
)

func b32Weights() map[string][]float32 {
	b32Once.Do(func() { b32Tensors = randomTensors(vitB32(), 32) })
	return b32Tensors
}

// BenchmarkNativeForward is the ViT-B/32 forward pass with the native
// kernels called directly from Go (no wasm, no tf boundary): the baseline
// for BenchmarkWazeroForward.
func BenchmarkNativeForward(b *testing.B) {
	cfg := vitB32()
	for _, batch := range []int{1, 8} {
		b.Run(batchName(batch), func(b *testing.B) {
			o := native.New(0)
			defer o.Close()
			m := nativeModel(b, o, cfg, b32Weights())
			defer m.Dispose()
			px := randomPixels(batch, cfg.ImageSize, 1)
			if _, err := m.Forward(px, batch); err != nil { // warm-up
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Forward(px, batch); err != nil {
					b.Fatal(err)
				}
			}
			reportPerImage(b, batch, cfg)
		})
	}
}

func batchName(n int) string { return fmt.Sprintf("batch=%d", n) }

func reportPerImage(b *testing.B, batch int, cfg weights.Config) {
	sec := b.Elapsed().Seconds() / float64(b.N) / float64(batch)
	b.ReportMetric(sec*1e3, "ms/image")
	b.ReportMetric(flopsPerImage(cfg)/sec/1e9, "GFLOP/s")
}

func TestFlopsPerImage(t *testing.T) {
	// The project quotes 8.8 GFLOP per ViT-B/32 image.
	if g := flopsPerImage(vitB32()) / 1e9; g < 8.6 || g > 9.0 {
		t.Fatalf("ViT-B/32 = %.2f GFLOP/image, want about 8.8", g)
	}
}
