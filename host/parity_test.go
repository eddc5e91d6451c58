package host

import (
	"context"
	"math"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestEngineParity: the native engine and the .wasm module under wazero
// give the same embeddings (max abs diff <= 1e-6) for every fixture model,
// fed the golden pixels and end to end from the image files (decode,
// EXIF, resize run natively vs inside the module), one by one and in a
// batch.
func TestEngineParity(t *testing.T) {
	models := append(append([]string{}, fixtureModels...), "tiny-int8")
	images := []string{}
	for _, img := range fixtureImages {
		images = append(images, filepath.Join(testdataDir, "images", img))
	}
	for _, jpg := range []string{"chelsea-q95-420.jpg", "chelsea-q95-420-progressive.jpg"} {
		images = append(images, filepath.Join("..", "wasm", "imagefile", "testdata", jpg))
	}
	ctx := context.Background()
	for _, model := range models {
		t.Run(model, func(t *testing.T) {
			engines := map[Engine]*Embedder{}
			for _, eng := range []Engine{EngineNative, EngineWasm} {
				e, err := New(ctx, Options{Engine: eng, Model: modelPath(model), CacheDir: testCache(t), Threads: 2, MaxBatch: 3})
				if err != nil {
					t.Fatalf("%s: %v", eng, err)
				}
				t.Cleanup(func() { e.Close() })
				engines[eng] = e
			}
			nat, wz := engines[EngineNative], engines[EngineWasm]
			if nat.Config() != wz.Config() {
				t.Errorf("config: native %+v, wasm %+v", nat.Config(), wz.Config())
			}
			size := nat.Config().ImageSize
			for _, img := range fixtureImages {
				px := goldenPixels(t, size, img)
				a, err := nat.EmbedPixels(ctx, px)
				if err != nil {
					t.Fatal(err)
				}
				b, err := wz.EmbedPixels(ctx, px)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxDiff(a, b); d > 1e-6 {
					t.Errorf("%s golden pixels: max abs diff %.3g", img, d)
				}
			}
			// The module runs the graph on the host's fused kernels
			// (tf.imgembed), not on their spelling with tf functions.
			calls := wz.eng.(*engine).ns.K.Calls()
			for _, op := range []string{"imgembed.linear", "imgembed.normRows", "imgembed.attention"} {
				if calls[op] == 0 {
					t.Errorf("the wasm engine never called tf.%s (calls: %v)", op, calls)
				}
			}
			for _, op := range []string{"fused.matMul", "depthwiseConv2d", "softmax", "rsqrt", "sigmoid"} {
				if calls[op] != 0 {
					t.Errorf("the wasm engine called tf.%s %d times: a fused op spelled (calls: %v)", op, calls[op], calls)
				}
			}
			srcs := make([]any, len(images))
			for i, p := range images {
				srcs[i] = p
			}
			na, nerrs, err := nat.EmbedBatch(ctx, srcs)
			if err != nil {
				t.Fatal(err)
			}
			wa, werrs, err := wz.EmbedBatch(ctx, srcs)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range images {
				if nerrs[i] != nil || werrs[i] != nil {
					t.Fatalf("%s: native %v, wasm %v", p, nerrs[i], werrs[i])
				}
				if d := maxDiff(na[i], wa[i]); d > 1e-6 {
					t.Errorf("%s end to end: max abs diff %.3g", filepath.Base(p), d)
				}
				one, err := nat.Embed(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxDiff(one, na[i]); d > 1e-6 {
					t.Errorf("%s native alone vs in a batch: max abs diff %.3g", filepath.Base(p), d)
				}
			}
			// The preprocessing alone is bit-identical.
			for _, p := range images {
				a, err := nat.Preprocess(ctx, p, size)
				if err != nil {
					t.Fatal(err)
				}
				b, err := wz.Preprocess(ctx, p, size)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxDiff(a, b); d != 0 {
					t.Errorf("%s preprocess: max abs diff %.3g, want 0", filepath.Base(p), d)
				}
			}
		})
	}
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// TestEnginesShareCache: a URL model downloaded and cached by one engine is
// loaded from the cache by the other (one cache layout), both ways, with
// one request only (the revalidation of the cached copy's ETag), and gives
// the same embedding.
func TestEnginesShareCache(t *testing.T) {
	var reqs atomic.Int64
	srv := serveModel(t, modelPath("tiny-f32"), true, &reqs)
	img := filepath.Join(testdataDir, "images", "coffee.png")
	for _, order := range [][2]Engine{{EngineWasm, EngineNative}, {EngineNative, EngineWasm}} {
		cache := t.TempDir()
		url := srv.URL + "/m-" + string(order[0]) + ".safetensors"
		var embs [][]float32
		for k, eng := range order {
			before := reqs.Load()
			e, err := New(context.Background(), Options{Engine: eng, Model: url, CacheDir: cache, Threads: 1})
			if err != nil {
				t.Fatalf("%s: %v", eng, err)
			}
			if n := reqs.Load() - before; (k == 0 && n < 2) || (k == 1 && n != 1) {
				t.Errorf("%s (load %d): %d requests", eng, k+1, n)
			}
			v, err := e.Embed(context.Background(), img)
			e.Close()
			if err != nil {
				t.Fatal(err)
			}
			embs = append(embs, v)
		}
		if d := maxDiff(embs[0], embs[1]); d > 1e-6 {
			t.Errorf("%v: max abs diff %.3g", order, d)
		}
	}
}
