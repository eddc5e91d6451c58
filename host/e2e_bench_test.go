package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/imgembed/imgembed/host/internal/benchphotos"
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

// photo12MP is benchphotos.Photo12MP, made once per test binary.
func photo12MP(b *testing.B) []byte {
	jpeg12Once.Do(func() { jpeg12 = benchphotos.Photo12MP() })
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
