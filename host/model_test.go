package host

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/imgembed/imgembed/wasm/embed"
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
	shapes := weights.VisionTensors(cfg)
	for _, name := range weights.VisionTensorNames(cfg) { // fixed order: same seed, same weights
		shape := shapes[name]
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
func writeRandomModel(tb testing.TB, dir string, cfg weights.Config, ts map[string][]float32) string {
	tb.Helper()
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
	m, err := vit.Load(o, cfg, func(name string, _ []float32) ([]float32, []int, error) {
		return ts[name], shapes[name], nil
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
			cpuStart = cpuSeconds()
			for i := 0; i < b.N; i++ {
				if _, err := m.Forward(px, batch); err != nil {
					b.Fatal(err)
				}
			}
			reportPerImage(b, batch, cfg)
		})
	}
}

// cpuStart is the process CPU time when the running forward benchmark's
// timed loop began (CPU time says more than wall time on a shared machine).
var cpuStart float64

func batchName(n int) string { return fmt.Sprintf("batch=%d", n) }

func reportPerImage(b *testing.B, batch int, cfg weights.Config) {
	sec := b.Elapsed().Seconds() / float64(b.N) / float64(batch)
	if cpuStart != 0 {
		b.ReportMetric((cpuSeconds()-cpuStart)*1e3/float64(b.N)/float64(batch), "cpu-ms/image")
	}
	b.ReportMetric(sec*1e3, "ms/image")
	b.ReportMetric(flopsPerImage(cfg)/sec/1e9, "GFLOP/s")
}

func TestFlopsPerImage(t *testing.T) {
	// The project quotes 8.8 GFLOP per ViT-B/32 image.
	if g := flopsPerImage(vitB32()) / 1e9; g < 8.6 || g > 9.0 {
		t.Fatalf("ViT-B/32 = %.2f GFLOP/image, want about 8.8", g)
	}
}

var (
	b32FileOnce sync.Once
	b32File     string
)

// b32ModelFile writes the same random ViT-B/32 weights as b32Weights to a
// temporary safetensors file once per test binary.
func b32ModelFile(b *testing.B) string {
	b32FileOnce.Do(func() {
		dir, err := os.MkdirTemp(testCache(b), "b32-")
		if err != nil {
			b.Fatal(err)
		}
		b32File = writeRandomModel(b, dir, vitB32(), b32Weights())
	})
	return b32File
}

// BenchmarkWazeroForward is the ViT-B/32 forward pass of the browser
// module under wazero, its tf calls served by the native kernels: compare
// with BenchmarkNativeForward for the cost of the wasm/tf boundary. Inputs
// are preprocessed pixels, so decoding is not measured.
func BenchmarkWazeroForward(b *testing.B) {
	cfg := vitB32()
	path := b32ModelFile(b)
	for _, batch := range []int{1, 8} {
		b.Run(batchName(batch), func(b *testing.B) {
			e, err := New(context.Background(), Options{Engine: EngineWasm, Model: path, CacheDir: testCache(b), Threads: runtime.NumCPU()})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			px := randomPixels(batch, cfg.ImageSize, 1)
			in := make([]embed.Input, batch)
			n := 3 * cfg.ImageSize * cfg.ImageSize
			for i := range in {
				in[i] = embed.Input{Pixels: px[i*n : (i+1)*n]}
			}
			run := func() {
				err := e.eng.each(context.Background(), in, func(_ int, r embed.Result) {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			run() // warm-up
			b.ResetTimer()
			cpuStart = cpuSeconds()
			for i := 0; i < b.N; i++ {
				run()
			}
			reportPerImage(b, batch, cfg)
		})
	}
}

// TestWazeroEqualsNativeB32 checks the benchmark's premise on the real
// ViT-B/32 shape: the module under wazero computes what vit on native
// kernels computes, to float32 rounding (same kernels, same graph).
func TestWazeroEqualsNativeB32(t *testing.T) {
	if testing.Short() {
		t.Skip("ViT-B/32 sized; skipped with -short")
	}
	cfg := vitB32()
	path := writeRandomModel(t, t.TempDir(), cfg, b32Weights())
	e := newTestEmbedder(t, path)
	if c := e.Config(); c.Layers != 12 || c.HiddenSize != 768 || c.EmbeddingSize != 512 || c.ImageSize != 224 || c.Heads != 12 {
		t.Fatalf("config %+v", c)
	}
	px := randomPixels(1, cfg.ImageSize, 9)
	got, err := e.EmbedPixels(context.Background(), px)
	if err != nil {
		t.Fatal(err)
	}
	o := native.New(2)
	defer o.Close()
	m := nativeModel(t, o, cfg, b32Weights())
	defer m.Dispose()
	want, err := m.Forward(px, 1)
	if err != nil {
		t.Fatal(err)
	}
	w64 := make([]float64, len(want[0]))
	for i, v := range want[0] {
		w64[i] = float64(v)
	}
	cos, maxAbs := compare(got, w64)
	if cos < 0.999999 || maxAbs > 1e-5 {
		t.Fatalf("wazero vs native: cosine %.8f, max abs %.2e", cos, maxAbs)
	}
}

// BenchmarkTinyForward measures the fixed cost of one forward call through
// the module (promise, input copy, ~90 tf calls of a 2-layer model on 64x64
// pixels), where the arithmetic itself is negligible.
func BenchmarkTinyForward(b *testing.B) {
	e := newTestEmbedder(b, modelPath("tiny-f32"))
	px := goldenPixels(b, 64, "coffee.png")
	if _, err := e.EmbedPixels(context.Background(), px); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.EmbedPixels(context.Background(), px); err != nil {
			b.Fatal(err)
		}
	}
}
