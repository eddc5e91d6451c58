// Command memprobe measures the memory of loading one model with the Go
// API (host.New) and embedding one image: peak RSS (getrusage) and settled
// RSS after a collection, above the RSS before the load, as multiples of
// the model's F32 weight bytes. The model is served from a local HTTP
// server that streams it from disk (no copy of the file in this process);
// the cache is off unless -cache-dir is given. One JSON line on stdout.
// Used by js/bench/mem.mjs (make bench-mem).
//
//	go run ./host/internal/memprobe [-engine native|wasm] [-cache-dir DIR] MODEL.safetensors
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imgembed/imgembed/host"
	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func maxRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return ru.Maxrss * 1024
}

// f32Bytes is the size of the vision tower as F32, whatever the file's dtype.
func f32Bytes(path string) (int64, string, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	cfg, err := weights.ConfigFrom(f.Header, nil)
	if err != nil {
		return 0, "", err
	}
	var n int64
	dtype := ""
	for name, shape := range weights.VisionTensors(cfg) {
		k := int64(1)
		for _, d := range shape {
			k *= int64(d)
		}
		n += 4 * k
		if t, _ := f.Tensor(name); weights.IsMatMulWeight(name) {
			dtype = string(t.DType)
		}
	}
	return n, dtype, nil
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-f32" { // only the F32 size
		f32, _, err := f32Bytes(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "memprobe:", err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(map[string]any{"f32Bytes": f32})
		return
	}
	engine := host.EngineNative
	cacheDir := ""
	args := os.Args[1:]
	for len(args) >= 3 {
		switch args[0] {
		case "-engine":
			engine = host.Engine(args[1])
		case "-cache-dir":
			cacheDir = args[1]
		default:
			fmt.Fprintln(os.Stderr, "memprobe: unknown flag", args[0])
			os.Exit(2)
		}
		args = args[2:]
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: memprobe [-f32] [-engine native|wasm] [-cache-dir DIR] MODEL.safetensors")
		os.Exit(2)
	}
	path := args[0]
	f32, dtype, err := f32Bytes(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memprobe:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "memprobe:", err)
		os.Exit(1)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, path)
	}))
	url := "http://" + ln.Addr().String() + "/" + filepath.Base(path)
	runtime.GC()
	debug.FreeOSMemory()
	before := rss()
	t0 := time.Now()
	opts := host.Options{Model: url, NoCache: true, CacheDir: os.TempDir(), Engine: engine}
	if cacheDir != "" {
		// The model cache on: an empty DIR measures a download written to
		// it, a filled one a hit read from it.
		opts.NoCache, opts.CacheDir = false, cacheDir
	}
	e, err := host.New(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memprobe:", err)
		os.Exit(1)
	}
	loadMs := time.Since(t0).Milliseconds()
	img := make([]float32, 3*e.Config().ImageSize*e.Config().ImageSize)
	if _, err := e.EmbedPixels(context.Background(), img); err != nil {
		fmt.Fprintln(os.Stderr, "memprobe: embed:", err)
		os.Exit(1)
	}
	peak := maxRSS()
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(200 * time.Millisecond)
	settled := rss()
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"loader":                "go-" + string(engine),
		"cacheDir":              cacheDir,
		"file":                  path,
		"dtype":                 dtype,
		"f32Bytes":              f32,
		"loadMs":                loadMs,
		"rssBefore":             before,
		"peakRSS":               peak,
		"settledRSS":            settled,
		"peakCopiesOfF32":       float64(peak-before) / float64(f32),
		"settledCopiesOfF32":    float64(settled-before) / float64(f32),
		"peakAbsoluteCopiesF32": float64(peak) / float64(f32),
	})
	e.Close()
}
