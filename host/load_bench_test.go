package host

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// BenchmarkLoad is host.New of a ViT-B/32-sized local file (random
// weights; F32 and its F16 and int8 conversions) with each engine at 2
// threads: read, decode, derive the run-time weights, hand them to the
// kernels (issue 8: the native load was most of the command's time).
// Close is outside the timed part. cpu-s/op is the process's CPU time
// (all threads) per load. The native engine also loads from its compiled
// weights ("compiled": saved by an untimed load first, then mapped).
func BenchmarkLoad(b *testing.B) {
	f32 := b32ModelFile(b)
	files := map[string]string{"F32": f32}
	for _, dt := range []string{"F16", "I8"} {
		files[dt] = convertedModel(b, f32, safetensors.DType(dt))
	}
	load := func(b *testing.B, o Options) {
		var cpu float64
		for i := 0; i < b.N; i++ {
			runtime.GC()
			b.StartTimer()
			c0 := cpuSeconds()
			e, err := New(context.Background(), o)
			cpu += cpuSeconds() - c0
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			e.Close()
		}
		// CPU time beside wall time: the machines are shared.
		b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
	}
	for _, eng := range []Engine{EngineNative, EngineWasm} {
		for _, dt := range []string{"F32", "F16", "I8"} {
			b.Run("engine="+string(eng)+"/dtype="+dt, func(b *testing.B) {
				load(b, Options{Engine: eng, Model: files[dt], NoCache: true, Threads: 2})
			})
		}
	}
	b.Run("engine=native/dtype=F32/compiled", func(b *testing.B) {
		o := Options{Model: f32, CacheDir: b.TempDir(), Threads: 2}
		e, err := New(context.Background(), o) // derives and saves
		if err != nil {
			b.Fatal(err)
		}
		e.Close()
		load(b, o)
	})
}

// convertedModel writes the converter's dtype version of src next to it
// (once per process).
func convertedModel(b *testing.B, src string, dtype safetensors.DType) string {
	b.Helper()
	out := strings.TrimSuffix(src, ".safetensors") + "-" + strings.ToLower(string(dtype)) + ".safetensors"
	if _, err := os.Stat(out); err == nil {
		return out
	}
	in, err := safetensors.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	cfg, err := weights.ConfigFrom(in.Header, nil)
	if err != nil {
		b.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(out), "converting")
	w, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	if err := weights.Convert(w, in, cfg, dtype); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, out); err != nil {
		b.Fatal(err)
	}
	return out
}
