package benchphotos

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/imgembed/imgembed/wasm/embed"
	"github.com/imgembed/imgembed/weights"
)

// BenchmarkPrepare is decode + Pillow-exact preprocessing (bytes -> 3 x
// 224 x 224) of each photo of the mixed set through embed.Images.Prepare,
// what both engines run per image in front of the model, and of the whole
// set ("all"). cpu-ms/op is process CPU time (all threads), the number to
// compare on a shared machine; run with -cpu 1 for one core. Images.Threads
// is GOMAXPROCS, so -cpu 2 shows a large photo's resample split in two
// (wall time; the JPEG/PNG decoding itself stays on one core).
//
//	go test ./host/internal/benchphotos -run '^$' -bench Prepare -cpu 1,2 -count 5
func BenchmarkPrepare(b *testing.B) {
	paths, err := WriteMixed(b.TempDir(), "../../..")
	if err != nil {
		b.Fatal(err)
	}
	files := make([][]byte, len(paths))
	for i, p := range paths {
		if files[i], err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
	im := embed.Images{Size: 224, Mean: weights.DefaultImageMean, Std: weights.DefaultImageStd, Threads: runtime.GOMAXPROCS(0)}
	dst := make([]float32, im.RowLen())
	run := func(b *testing.B, files [][]byte) {
		ctx := context.Background()
		start := cpuNanos()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for _, f := range files {
				if err := im.Prepare(ctx, embed.Input{Bytes: f}, dst); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(cpuNanos()-start)/1e6/float64(b.N), "cpu-ms/op")
	}
	b.Run("all", func(b *testing.B) { run(b, files) })
	for i, p := range paths {
		b.Run(filepath.Base(p), func(b *testing.B) { run(b, files[i:i+1]) })
	}
	// Not in the set: the 12 MP photo as a phone stores a portrait shot
	// (EXIF orientation 6), which takes the rotated path.
	b.Run("big12mp-exif6.jpg", func(b *testing.B) { run(b, [][]byte{withOrientation6(Photo12MP())}) })
}

// withOrientation6 puts an APP1 Exif segment with Orientation = 6 right
// after a JPEG's SOI.
func withOrientation6(j []byte) []byte {
	exif := []byte{'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 1, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0}
	out := append([]byte{}, j[:2]...)
	out = append(out, 0xFF, 0xE1, byte((len(exif)+2)>>8), byte(len(exif)+2))
	out = append(out, exif...)
	return append(out, j[2:]...)
}

// cpuNanos is the process's user+system CPU time.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
