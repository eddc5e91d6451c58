package host

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSoak is `make soak` (skipped unless IMGEMBED_SOAK is a duration, e.g.
// 60s): for that long, the Go API on both engines and the Node package (a
// driver process) embed the same mixed list of good and hostile inputs
// round after round, from local files and from faulty local servers, and
// now and then load models from faulty servers. Every round must give the
// same codes as the table below and the same embeddings as the first
// round (and as the other hosts), and memory must stay flat.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("IMGEMBED_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set IMGEMBED_SOAK to a duration (make soak SOAK=60s)")
	}
	dir := t.TempDir()
	img := func(n string) string { p, _ := filepath.Abs(filepath.Join(testdataDir, "images", n)); return p }
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	png := readFile(t, img("chelsea.png"))
	fifo := filepath.Join(dir, "fifo.png")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sparse := specialFile("sparse-3GB")(t)

	// One set of servers per host: the changing model alternates per
	// request, which concurrent hosts would interleave.
	type servers struct{ img, model string }
	newServers := func() servers {
		mux := http.NewServeMux()
		mux.Handle("/good.png", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(png) }))
		mux.Handle("/short.png", shortImage(t))
		mux.Handle("/500.png", statusServer(500)(t))
		mux.Handle("/stall.png", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(png)))
			w.Write(png[:100])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Second):
			}
		}))
		mux.Handle("/changing.safetensors", versionedModel(t))
		mux.Handle("/stall.safetensors", stallingModel(false)(t))
		mux.Handle("/500.safetensors", statusServer(500)(t))
		mux.Handle("/nan.safetensors", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.ServeFile(w, r, editedModelPath)
		}))
		s := httptest.NewServer(mux)
		t.Cleanup(s.Close)
		return servers{img: s.URL, model: s.URL}
	}
	editedModelPath = editedModel("vision_model.encoder.layers.0.mlp.fc1.weight", setNaN)(t)

	type input struct {
		src  func(s servers) string
		code Code
	}
	local := func(p string) func(servers) string { return func(servers) string { return p } }
	url := func(p string) func(servers) string { return func(s servers) string { return s.img + p } }
	inputs := []input{
		{local(img("astronaut.png")), ""},
		{local(img("chelsea.png")), ""},
		{url("/good.png"), ""},
		{local(write("empty.png", nil)), UnsupportedImageFormat},
		{local(write("truncated.png", png[:len(png)/3])), CorruptImage},
		{local(write("lie.png", lyingPNG())), CorruptImage},
		{local(write("scans.jpg", manyScansJPEG())), CorruptImage},
		{local("/dev/zero"), InvalidInput},
		{local(fifo), InvalidInput},
		{local(sparse), ImageTooLarge},
		{local(filepath.Join(dir, "missing.png")), InvalidInput},
		{url("/short.png"), DownloadFailed},
		{url("/500.png"), DownloadFailed},
		{url("/stall.png"), DownloadFailed},
		{local(img("coffee.png")), ""},
	}
	faultModels := []struct {
		path string
		code Code
	}{
		{"/changing.safetensors", DownloadFailed},
		{"/stall.safetensors", DownloadFailed},
		{"/500.safetensors", DownloadFailed},
		{"/nan.safetensors", InvalidModel},
	}
	const loadEvery = 5
	fetchTimeout, downloadTimeout := time.Second, time.Second
	mp, _ := filepath.Abs(modelPath("tiny-f32"))

	// A round's outcome in any host.
	type round struct {
		codes []string
		sums  []float64
		loads []string
		mem   float64 // bytes: Go heap in use after GC; Node RSS
	}
	var mu sync.Mutex
	results := map[string][]round{}
	record := func(host string, r round) {
		mu.Lock()
		results[host] = append(results[host], r)
		mu.Unlock()
	}
	checksum := func(v []float32) float64 {
		var s float64
		for i, x := range v {
			s += float64(x) * float64(i+1)
		}
		return s
	}

	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	// The Go hosts, one goroutine per engine.
	for _, eng := range []Engine{EngineNative, EngineWasm} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newServers()
			srcs := make([]any, len(inputs))
			for i, in := range inputs {
				srcs[i] = in.src(s)
			}
			e, err := New(context.Background(), Options{Model: mp, CacheDir: testCache(t), Threads: 1, Engine: eng, FetchTimeout: fetchTimeout})
			if err != nil {
				t.Errorf("%s: %v", eng, err)
				return
			}
			defer e.Close()
			for n := 0; time.Now().Before(deadline); n++ {
				embs, errs, err := e.EmbedBatch(context.Background(), srcs)
				if err != nil {
					t.Errorf("%s round %d: %v", eng, n, err)
					return
				}
				r := round{codes: make([]string, len(srcs)), sums: make([]float64, len(srcs))}
				for i := range srcs {
					if errs[i] != nil {
						r.codes[i] = string(asError(errs[i], "untyped").Code)
					} else {
						r.sums[i] = checksum(embs[i])
					}
				}
				// A faulty load on the wasm engine starts a whole module
				// instance (seconds): rarer there.
				every := loadEvery
				if eng == EngineWasm {
					every = 5 * loadEvery
				}
				if n%every == 1 {
					for _, f := range faultModels {
						m, err := New(context.Background(), Options{Model: s.model + f.path, CacheDir: testCache(t), NoCache: true, Threads: 1, Engine: eng, DownloadTimeout: downloadTimeout})
						if err == nil {
							m.Close()
							r.loads = append(r.loads, "")
						} else {
							r.loads = append(r.loads, string(asError(err, "untyped").Code))
						}
					}
				}
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				r.mem = float64(ms.HeapInuse)
				record("go-"+string(eng), r)
			}
		}()
	}
	// The Node host.
	if node := nodeCLI(t); node != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newServers()
			var srcs []string
			for _, in := range inputs {
				srcs = append(srcs, in.src(s))
			}
			var fm []string
			for _, f := range faultModels {
				fm = append(fm, s.model+f.path)
			}
			cfg, _ := json.Marshal(map[string]any{
				"model": mp, "inputs": srcs, "faultModels": fm, "loadEvery": loadEvery,
				"seconds": time.Until(deadline).Seconds(), "fetchTimeoutMs": fetchTimeout.Milliseconds(), "downloadTimeoutMs": downloadTimeout.Milliseconds(),
			})
			driver := filepath.Join(filepath.Dir(node[1]), "..", "testlib", "soak-driver.mjs")
			cmd := exec.Command(node[0], "--expose-gc", driver, string(cfg))
			cmd.Stderr = os.Stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Error(err)
				return
			}
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<24)
			for sc.Scan() {
				var l struct {
					Codes []string
					Sums  []float64
					Loads []string
					RSS   float64
				}
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					t.Errorf("node printed %q", sc.Text())
					continue
				}
				record("node", round{codes: l.Codes, sums: l.Sums, loads: l.Loads, mem: l.RSS})
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("node driver: %v", err)
			}
		}()
	}
	wg.Wait()

	// Codes, results and memory.
	ref := results["go-native"]
	if len(ref) == 0 {
		t.Fatal("the native engine ran no round")
	}
	hosts := []string{"go-native", "go-wasm"}
	if nodeCLI(t) != nil {
		hosts = append(hosts, "node")
	}
	for _, h := range hosts {
		rs := results[h]
		counts := map[string]int{}
		loads := 0
		for n, r := range rs {
			for i, in := range inputs {
				counts[r.codes[i]]++
				if r.codes[i] != string(in.code) {
					t.Errorf("%s round %d input %d (%s): code %q, want %q", h, n, i, in.src(servers{img: "<srv>"}), r.codes[i], in.code)
					continue
				}
				if in.code == "" && math.Abs(r.sums[i]-ref[0].sums[i]) > 1e-3*math.Max(1, math.Abs(ref[0].sums[i])) {
					t.Errorf("%s round %d input %d: checksum %v, native round 0 %v", h, n, i, r.sums[i], ref[0].sums[i])
				}
			}
			for k, c := range r.loads {
				loads++
				if c != string(faultModels[k].code) {
					t.Errorf("%s round %d: loading %s gave %q, want %q", h, n, faultModels[k].path, c, faultModels[k].code)
				}
			}
		}
		// Flat memory: after a warm-up quarter, the peak of the last third
		// of the rounds may exceed that of the first third by 10% + 32 MB.
		var grew string
		if len(rs) >= 8 {
			w := rs[len(rs)/4:]
			peak := func(rs []round) float64 {
				m := 0.0
				for _, r := range rs {
					m = math.Max(m, r.mem)
				}
				return m
			}
			a, b := peak(w[:len(w)/3]), peak(w[len(w)-len(w)/3:])
			grew = fmt.Sprintf("memory %.1f MB -> %.1f MB", a/1e6, b/1e6)
			if b > 1.1*a+32e6 {
				t.Errorf("%s: memory grew: %s", h, grew)
			}
		} else {
			t.Errorf("%s: only %d rounds: too few to judge memory (raise SOAK)", h, len(rs))
		}
		var cs []string
		for c, n := range counts {
			if c == "" {
				c = "ok"
			}
			cs = append(cs, fmt.Sprintf("%s=%d", c, n))
		}
		sort.Strings(cs)
		t.Logf("soak %s: %d rounds, %d inputs (%s), %d faulty loads, %s", h, len(rs), len(rs)*len(inputs), strings.Join(cs, " "), loads, grew)
	}
}

// editedModelPath is the NaN-weight model the soak's server hands out.
var editedModelPath string
