package host

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// repoPhotos are the photos in the repository (PNG fixtures, the JPEG test
// images incl. a progressive one, the benchmark's astronaut JPEG).
func repoPhotos(b *testing.B) []any {
	var srcs []any
	for _, img := range fixtureImages {
		srcs = append(srcs, filepath.Join(testdataDir, "images", img))
	}
	for _, p := range []string{
		"../wasm/imagefile/testdata/chelsea-q95-444.jpg",
		"../wasm/imagefile/testdata/chelsea-q95-420.jpg",
		"../wasm/imagefile/testdata/chelsea-q95-420-progressive.jpg",
		"../js/bench/astronaut.jpg",
	} {
		if _, err := os.Stat(p); err != nil {
			b.Fatal(err)
		}
		srcs = append(srcs, p)
	}
	return srcs
}

var (
	jpeg12Once sync.Once
	jpeg12     []byte
)

// photo12MP is a 4000x3000 quality-90 JPEG made here (not committed): a
// smooth gradient plus a fixed pseudo-random texture, so that its entropy-
// coded data is as dense as a camera photo's (a few MB).
func photo12MP(b *testing.B) []byte {
	jpeg12Once.Do(func() {
		const W, H = 4000, 3000
		m := image.NewYCbCr(image.Rect(0, 0, W, H), image.YCbCrSubsampleRatio420)
		seed := uint32(12345)
		for y := 0; y < H; y++ {
			for x := 0; x < W; x++ {
				seed = seed*1664525 + 1013904223
				m.Y[y*m.YStride+x] = byte(min(max(40+150*x/W+50*y/H+int(seed>>24)%25-12, 0), 255))
			}
		}
		for y := 0; y < H/2; y++ {
			for x := 0; x < W/2; x++ {
				m.Cb[y*m.CStride+x] = byte(90 + 80*x/(W/2))
				m.Cr[y*m.CStride+x] = byte(170 - 60*y/(H/2))
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
			panic(err)
		}
		jpeg12 = buf.Bytes()
	})
	return jpeg12
}

// BenchmarkEndToEnd is per-image ms of the whole path, decode + preprocess
// + forward, for the ViT-B/32 size (random weights), through the public
// API (EmbedBatch over all the images of a set, MaxBatch 8) of each engine,
// at all cores: the repository's photos, and 8 copies of a 12 MP JPEG
// (given as bytes).
func BenchmarkEndToEnd(b *testing.B) {
	path := b32ModelFile(b)
	sets := map[string]func() []any{
		"photos": func() []any { return repoPhotos(b) },
		"12MP": func() []any {
			p := photo12MP(b)
			srcs := make([]any, 8)
			for i := range srcs {
				srcs[i] = p
			}
			return srcs
		},
	}
	for _, eng := range []Engine{EngineNative, EngineWasm} {
		for _, set := range []string{"photos", "12MP"} {
			b.Run("engine="+string(eng)+"/"+set, func(b *testing.B) {
				e, err := New(context.Background(), Options{Engine: eng, Model: path, CacheDir: testCache(b), Threads: runtime.NumCPU()})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close()
				srcs := sets[set]()
				run := func() {
					_, errs, err := e.EmbedBatch(context.Background(), srcs)
					if err != nil {
						b.Fatal(err)
					}
					for i, err := range errs {
						if err != nil {
							b.Fatalf("%v: %v", srcs[i], err)
						}
					}
				}
				run() // warm-up
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					run()
				}
				b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N)/float64(len(srcs)), "ms/image")
			})
		}
	}
}

// BenchmarkConcurrentCallers is per-image ms when 16 goroutines each embed
// one photo at a time (a server's one-image requests), native engine, all
// cores: maxbatch=1 runs every call's image as its own pass; maxbatch=8
// lets the engine merge the images waiting while a pass runs.
func BenchmarkConcurrentCallers(b *testing.B) {
	path := b32ModelFile(b)
	photos := repoPhotos(b)
	for _, mb := range []int{1, 8} {
		b.Run(fmt.Sprintf("maxbatch=%d", mb), func(b *testing.B) {
			e, err := New(context.Background(), Options{Model: path, CacheDir: testCache(b), Threads: runtime.NumCPU(), MaxBatch: mb})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			const callers, each = 16, 2
			run := func() {
				var wg sync.WaitGroup
				for c := range callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for k := range each {
							if _, err := e.Embed(context.Background(), photos[(c+k)%len(photos)]); err != nil {
								b.Error(err)
							}
						}
					}()
				}
				wg.Wait()
			}
			run() // warm-up
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run()
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N)/float64(callers*each), "ms/image")
		})
	}
}
