package host

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Headless conformance: the browser .wasm (embedded) under wazero with
// native kernels against the fixtures in testdata/ (ground truth from
// transformers; tolerances from the fixtures' README).

const testdataDir = "../testdata"

var fixtureModels = []string{"tiny-f32", "tiny-f16", "tiny-fullclip-f32", "b32l2-f16"}
var fixtureImages = []string{"astronaut.png", "chelsea.png", "coffee.png"}

// testCacheDir keeps tests off the user's cache (and shares the wazero
// compilation cache between the tests of one run).
var (
	cacheOnce sync.Once
	cacheDir  string
)

func testCache(t testing.TB) string {
	cacheOnce.Do(func() {
		d, err := os.MkdirTemp("", "imgembed-host-test-")
		if err != nil {
			t.Fatal(err)
		}
		cacheDir = d
	})
	return cacheDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cacheDir != "" {
		os.RemoveAll(cacheDir)
	}
	os.Exit(code)
}

func modelPath(name string) string {
	return filepath.Join(testdataDir, "models", name+".safetensors")
}

func goldenEmbeddings(t testing.TB, model string) map[string][]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, "golden", "embed-"+model+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g map[string][]float64
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func goldenPixels(t testing.TB, size int, image string) []float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, "golden", "pixels-"+itoa(size), image+".f32"))
	if err != nil {
		t.Fatal(err)
	}
	px := make([]float32, len(b)/4)
	for i := range px {
		px[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return px
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func compare(a []float32, b []float64) (cos, maxAbs float64) {
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), b[i]
		dot += x * y
		na += x * x
		nb += y * y
		maxAbs = math.Max(maxAbs, math.Abs(x-y))
	}
	return dot / math.Sqrt(na*nb), maxAbs
}

func newTestEmbedder(t testing.TB, model string) *Embedder {
	t.Helper()
	e, err := New(context.Background(), Options{Model: model, CacheDir: testCache(t), Threads: 2})
	if err != nil {
		t.Fatalf("New(%s): %v", model, err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestConformanceFixtures(t *testing.T) {
	for _, model := range fixtureModels {
		t.Run(model, func(t *testing.T) {
			e := newTestEmbedder(t, modelPath(model))
			cfg := e.Config()
			golden := goldenEmbeddings(t, model)
			if cfg.EmbeddingSize != len(golden["images/astronaut.png"]) {
				t.Fatalf("config %+v: embedding size, golden has %d", cfg, len(golden["images/astronaut.png"]))
			}
			for _, img := range fixtureImages {
				want := golden["images/"+img]
				// Forward pass fed the golden pixels.
				got, err := e.EmbedPixels(context.Background(), goldenPixels(t, cfg.ImageSize, img))
				if err != nil {
					t.Fatalf("%s: EmbedPixels: %v", img, err)
				}
				cos, maxAbs := compare(got, want)
				if cos < 0.99999 || maxAbs > 1e-4 {
					t.Errorf("%s/%s golden pixels: cosine %.7f (want >= 0.99999), max abs %.2e (want <= 1e-4)", model, img, cos, maxAbs)
				}
				// End to end from the image file.
				got, err = e.Embed(context.Background(), filepath.Join(testdataDir, "images", img))
				if err != nil {
					t.Fatalf("%s: Embed: %v", img, err)
				}
				if cos, _ := compare(got, want); cos < 0.9999 {
					t.Errorf("%s/%s end to end: cosine %.7f, want >= 0.9999", model, img, cos)
				}
				var n float64
				for _, v := range got {
					n += float64(v) * float64(v)
				}
				if math.Abs(n-1) > 1e-5 {
					t.Errorf("%s/%s: |embedding|^2 = %v, want 1", model, img, n)
				}
			}
		})
	}
}
