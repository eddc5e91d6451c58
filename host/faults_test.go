package host

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// A fault is one hostile input or faulty server, run against both hosts
// (the Go API and the Node command) by TestFaultsBothHosts, which requires
// the same error code from both (and a message naming the fault).
type fault struct {
	name string
	// model serves the model at /model.safetensors (nil: the local
	// tiny-f32 fixture); each host gets its own server (fresh state).
	model func(t *testing.T) http.Handler
	// modelFile, when set, writes a local model file and returns its path.
	modelFile func(t *testing.T) string
	// image serves the input at /img (nil: image is a local path).
	image     func(t *testing.T) http.Handler
	imagePath string
	// imageFile, when set, writes a local image file and returns its path.
	imageFile func(t *testing.T) string
	code      Code
	// msg must match both hosts' messages; notMsg neither.
	msg, notMsg string
	// downloadTimeout, when set, is given to both hosts.
	downloadTimeout time.Duration
}

// versionedModel serves tiny-f32 whose contents (same size, new ETag)
// change on every request after the first: a file replaced during the
// download, again and again.
func versionedModel(t *testing.T) http.Handler {
	a := readFile(t, modelPath("tiny-f32"))
	h, err := safetensors.ReadHeader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(a)
	for i := h.DataStart; i < int64(len(b)); i += 4 {
		b[i] ^= 0x5a // the low mantissa byte: other, finite values
	}
	var n atomic.Int32
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, tag := a, `"a"`
		if n.Add(1)%2 == 0 {
			data, tag = b, `"b"`
		}
		w.Header().Set("ETag", tag)
		http.ServeContent(w, r, "m", time.Time{}, bytes.NewReader(data))
	})
}

// stallingModel answers the first request with part of its body, then
// sends nothing more until the client gives up; headersToo: it never
// answers at all.
func stallingModel(headersToo bool) func(t *testing.T) http.Handler {
	return func(t *testing.T) http.Handler {
		a := readFile(t, modelPath("tiny-f32"))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !headersToo {
				w.Header().Set("Content-Length", strconv.Itoa(len(a)))
				w.WriteHeader(200)
				w.Write(a[:len(a)/3])
				w.(http.Flusher).Flush()
			}
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
		})
	}
}

func statusServer(code int) func(t *testing.T) http.Handler {
	return func(*testing.T) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "server on fire", code)
		})
	}
}

// shortImage declares the image's whole length and sends half of it.
func shortImage(t *testing.T) http.Handler {
	png := readFile(t, filepath.Join(testdataDir, "images", "coffee.png"))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Length", strconv.Itoa(len(png)))
		w.WriteHeader(200)
		w.Write(png[:len(png)/2])
		// Returning with fewer bytes than declared: net/http closes the
		// connection, and the client sees the body end early.
	})
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editedModel writes tiny-f32 with tensor name's elements changed by edit
// (given the tensor's raw F32 bytes).
func editedModel(name string, edit func(b []byte)) func(t *testing.T) string {
	return func(t *testing.T) string {
		data := readFile(t, modelPath("tiny-f32"))
		h, err := safetensors.ReadHeader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		ti, ok := h.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		edit(data[ti.Begin:ti.End])
		p := filepath.Join(t.TempDir(), "edited.safetensors")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func setNaN(b []byte) { copy(b[12:], []byte{1, 0, 0xc0, 0x7f}) }
func setInf(b []byte) { copy(b[4:], []byte{0, 0, 0x80, 0xff}) }
func zero(b []byte)   { clear(b) }

// imageBytes writes b as an image file.
func imageBytes(name string, b func() []byte) func(t *testing.T) string {
	return func(t *testing.T) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// lyingPNG is a PNG signature and an IHDR declaring 10000x10000 RGBA
// (100 MP, within the pixel limit), and nothing else: 33 bytes (a real
// one needs at least ~390 KB: deflate compresses at most 1032:1).
func lyingPNG() []byte {
	ihdr := []byte{0, 0, 0x27, 0x10, 0, 0, 0x27, 0x10, 8, 6, 0, 0, 0}
	b := append([]byte("\x89PNG\r\n\x1a\n"), 0, 0, 0, 13)
	b = append(b, "IHDR"...)
	b = append(b, ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[12:]))
}

// manyScansJPEG is a progressive JPEG header with 5000 scans.
func manyScansJPEG() []byte {
	b := []byte{0xff, 0xd8, 0xff, 0xc2, 0, 11, 8, 0, 64, 0, 64, 1, 1, 0x11, 0}
	for i := 0; i < 5000; i++ {
		b = append(b, 0xff, 0xda, 0, 8, 1, 1, 0, 1, 63, 0, 0x5a)
	}
	return append(b, 0xff, 0xd9)
}

// specialFile makes a FIFO, a symlink to /dev/urandom or a 3 GB sparse
// file (no disk used) as an image input.
func specialFile(kind string) func(t *testing.T) string {
	return func(t *testing.T) string {
		p := filepath.Join(t.TempDir(), kind+".png")
		var err error
		switch kind {
		case "fifo":
			err = syscall.Mkfifo(p, 0o644)
		case "urandom-link":
			err = os.Symlink("/dev/urandom", p)
		case "sparse-3GB":
			var f *os.File
			if f, err = os.Create(p); err == nil {
				err = f.Truncate(3 << 30)
				f.Close()
			}
		}
		if err != nil {
			t.Skipf("cannot make a %s here: %v", kind, err)
		}
		return p
	}
}

// faults is the table of TestFaultsBothHosts.
var faults = []fault{
	{name: "model changes during download", model: versionedModel, code: DownloadFailed, msg: "changed during download"},
	{name: "model stalls mid-body", model: stallingModel(false), code: DownloadFailed, msg: "stalled", downloadTimeout: time.Second},
	{name: "model server never answers", model: stallingModel(true), code: DownloadFailed, msg: "stalled", downloadTimeout: time.Second},
	{name: "model server answers 500", model: statusServer(500), code: DownloadFailed, msg: "HTTP 500", notMsg: "offline"},
	{name: "image cut short of its Content-Length", image: shortImage, code: DownloadFailed},
	{name: "/dev/zero as an image", imagePath: "/dev/zero", code: InvalidInput},
	{name: "FIFO as an image", imageFile: specialFile("fifo"), code: InvalidInput},
	{name: "symlink to /dev/urandom as an image", imageFile: specialFile("urandom-link"), code: InvalidInput},
	{name: "3 GB image file", imageFile: specialFile("sparse-3GB"), code: ImageTooLarge},
	{name: "tiny PNG declaring 10000x10000", imageFile: imageBytes("lie.png", lyingPNG), code: CorruptImage, msg: "too small to hold"},
	{name: "JPEG with 5000 scans", imageFile: imageBytes("scans.jpg", manyScansJPEG), code: CorruptImage, msg: "scans"},
	{name: "NaN weight", modelFile: editedModel("vision_model.encoder.layers.0.mlp.fc1.weight", setNaN), code: InvalidModel, msg: "vision_model.encoder.layers.0.mlp.fc1.weight"},
	{name: "infinite weight", modelFile: editedModel("visual_projection.weight", setInf), code: InvalidModel, msg: "visual_projection.weight"},
	{name: "zero projection (zero-norm output)", modelFile: editedModel("visual_projection.weight", zero), code: InvalidModel, msg: "zero-norm"},
}

// TestFaultsBothHosts runs every fault of the table against the Go API
// (both engines: native, and the browser module under wazero) and the Node
// command, and requires the same code from all.
func TestFaultsBothHosts(t *testing.T) {
	node := nodeCLI(t)
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			for _, eng := range []Engine{EngineNative, EngineWasm} {
				goCode, goMsg := runGoFault(t, f, eng)
				t.Logf("go %s: %s: %s", eng, goCode, goMsg)
				checkFault(t, "go "+string(eng), f, goCode, goMsg)
			}
			if node == nil {
				return
			}
			nodeCode, nodeMsg := runNodeFault(t, node, f)
			t.Logf("node: %s: %s", nodeCode, nodeMsg)
			checkFault(t, "node", f, nodeCode, nodeMsg)
		})
	}
}

func checkFault(t *testing.T, host string, f fault, code Code, msg string) {
	t.Helper()
	if code != f.code {
		t.Errorf("%s: code %q, want %q (%s)", host, code, f.code, msg)
	}
	if f.msg != "" && !strings.Contains(msg, f.msg) {
		t.Errorf("%s: message %q does not say %q", host, msg, f.msg)
	}
	if f.notMsg != "" && strings.Contains(msg, f.notMsg) {
		t.Errorf("%s: message %q says %q", host, msg, f.notMsg)
	}
}

// faultSources starts the fault's servers and returns the model and image
// arguments.
func faultSources(t *testing.T, f fault) (model, image string) {
	model, _ = filepath.Abs(modelPath("tiny-f32"))
	if f.modelFile != nil {
		model = f.modelFile(t)
	}
	if f.model != nil {
		srv := httptest.NewServer(f.model(t))
		t.Cleanup(srv.Close)
		model = srv.URL + "/model.safetensors"
	}
	image, _ = filepath.Abs(filepath.Join(testdataDir, "images", "coffee.png"))
	if f.imagePath != "" {
		image = f.imagePath
	}
	if f.imageFile != nil {
		image = f.imageFile(t)
	}
	if f.image != nil {
		srv := httptest.NewServer(f.image(t))
		t.Cleanup(srv.Close)
		image = srv.URL + "/img"
	}
	return model, image
}

func runGoFault(t *testing.T, f fault, eng Engine) (Code, string) {
	model, image := faultSources(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := New(ctx, Options{Model: model, CacheDir: testCache(t), NoCache: true, Threads: 2, DownloadTimeout: f.downloadTimeout, Engine: eng})
	if err == nil {
		defer e.Close()
		_, err = e.Embed(ctx, image)
	}
	if err == nil {
		return "", ""
	}
	var he *Error
	if !errors.As(err, &he) {
		return "untyped", err.Error()
	}
	return he.Code, he.Error()
}

// nodeCLI returns the command line that runs the Node command, or nil (and
// the test logs why) when Node or the build is missing.
func nodeCLI(t *testing.T) []string {
	if testing.Short() {
		t.Log("-short: the Node half of the fault table is skipped")
		return nil
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Log("node is not installed: the Node half of the fault table is skipped")
		return nil
	}
	root, _ := filepath.Abs("..")
	cli := filepath.Join(root, "js", "bin", "imgembed.mjs")
	for _, need := range []string{cli, filepath.Join(root, "node_modules", "@tensorflow", "tfjs-backend-wasm"), filepath.Join(root, "js", "dist", "imgembed.wasm")} {
		if _, err := os.Stat(need); err != nil {
			t.Logf("%s is missing (run `npm ci` and `make build`): the Node half of the fault table is skipped", need)
			return nil
		}
	}
	return []string{node, cli}
}

var nodeLoadErr = regexp.MustCompile(`cannot load the model: (\w+): (.*)`)

func runNodeFault(t *testing.T, node []string, f fault) (Code, string) {
	model, image := faultSources(t, f)
	args := append(append([]string(nil), node[1:]...), "--no-cache", "--model", model)
	if f.downloadTimeout > 0 {
		args = append(args, "--download-timeout", strconv.FormatFloat(f.downloadTimeout.Seconds(), 'f', -1, 64))
	}
	args = append(args, image)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node[0], args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("node did not finish in 60 s\n%s", stderr.String())
	}
	if m := nodeLoadErr.FindStringSubmatch(stderr.String()); m != nil {
		return Code(m[1]), m[2]
	}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var l struct {
			Error *struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("node printed %q: %v", sc.Text(), err)
		}
		if l.Error != nil {
			return Code(l.Error.Code), l.Error.Message
		}
	}
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	return "", ""
}

// TestNonFinitePixels: {pixels} holding a NaN or an infinity fail with
// InvalidInput (the JS half is in js/test/hostile.test.mjs), and the model
// stays usable.
func TestNonFinitePixels(t *testing.T) {
	for _, eng := range []Engine{EngineNative, EngineWasm} {
		t.Run(string(eng), func(t *testing.T) { nonFinitePixels(t, eng) })
	}
}

func nonFinitePixels(t *testing.T, eng Engine) {
	mp, _ := filepath.Abs(modelPath("tiny-f32"))
	e, err := New(context.Background(), Options{Model: mp, CacheDir: testCache(t), Threads: 2, Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s := e.Config().ImageSize
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		px := make([]float32, 3*s*s)
		px[len(px)/2] = bad
		_, err := e.EmbedPixels(context.Background(), px)
		if !errors.Is(err, ErrInvalidInput) {
			t.Fatalf("%v in pixels: %v, want InvalidInput", bad, err)
		}
	}
	px := make([]float32, 3*s*s)
	for i := range px {
		px[i] = float32(i%7) / 7
	}
	v, err := e.EmbedPixels(context.Background(), px)
	if err != nil || len(v) != e.Config().EmbeddingSize {
		t.Fatalf("finite pixels after the bad ones: %v", err)
	}
}

// TestNonUTF8NameBothHosts: a file whose name is not UTF-8 is read by its
// bytes in both hosts (the Go API given the path's bytes; the Node command
// given them as its argument, which it prints surrogate-escaped, as the Go
// command does) and both embed it alike.
func TestNonUTF8NameBothHosts(t *testing.T) {
	dir := t.TempDir()
	name := "bad\xff\xfename.png"
	if err := os.WriteFile(filepath.Join(dir, name), readFile(t, filepath.Join(testdataDir, "images", "coffee.png")), 0o644); err != nil {
		t.Skipf("this file system refuses non-UTF-8 names: %v", err)
	}
	mp, _ := filepath.Abs(modelPath("tiny-f32"))
	e := newTestEmbedder(t, mp)
	goEmb, err := e.Embed(context.Background(), filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("Go API: %v", err)
	}
	node := nodeCLI(t)
	if node == nil {
		return
	}
	cmd := exec.Command(node[0], node[1], "--no-cache", "--model", mp, name)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	if want := `{"source":"bad\udcff\udcfename.png","embedding":[`; !strings.HasPrefix(stdout.String(), want) {
		t.Fatalf("node printed %.80q, want it to start %q", stdout.String(), want)
	}
	var l struct{ Embedding []float64 }
	if err := json.Unmarshal(stdout.Bytes(), &l); err != nil || len(l.Embedding) != len(goEmb) {
		t.Fatalf("node line %.80q: %v", stdout.String(), err)
	}
	for i, v := range l.Embedding {
		if math.Abs(v-float64(goEmb[i])) > 1e-5 {
			t.Fatalf("component %d: node %v, Go %v", i, v, goEmb[i])
		}
	}
}

// TestCacheDamageBothHosts (item 4, built by the weights lane; this is the
// cross-host check): bytes flipped inside a cached model's tensor data are
// detected on the next load in every host — the entry is not used, the
// model is downloaded again and embeds exactly as before.
func TestCacheDamageBothHosts(t *testing.T) {
	img, _ := filepath.Abs(filepath.Join(testdataDir, "images", "coffee.png"))
	type run func(cacheDir, model string) []float64
	goRun := func(eng Engine) run {
		return func(cacheDir, model string) []float64 {
			e, err := New(context.Background(), Options{Model: model, CacheDir: cacheDir, Threads: 2, Engine: eng})
			if err != nil {
				t.Fatalf("%s: %v", eng, err)
			}
			defer e.Close()
			v, err := e.Embed(context.Background(), img)
			if err != nil {
				t.Fatalf("%s: %v", eng, err)
			}
			out := make([]float64, len(v))
			for i, x := range v {
				out[i] = float64(x)
			}
			return out
		}
	}
	hosts := map[string]run{"go-native": goRun(EngineNative), "go-wasm": goRun(EngineWasm)}
	if node := nodeCLI(t); node != nil {
		hosts["node"] = func(cacheDir, model string) []float64 {
			cmd := exec.Command(node[0], node[1], "--model", model, img)
			cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cacheDir)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("node: %v\n%s", err, stderr.String())
			}
			var l struct{ Embedding []float64 }
			if err := json.Unmarshal(stdout.Bytes(), &l); err != nil || len(l.Embedding) == 0 {
				t.Fatalf("node printed %.100q: %v", stdout.String(), err)
			}
			return l.Embedding
		}
	}
	for name, embed := range hosts {
		t.Run(name, func(t *testing.T) {
			// Counts the body bytes sent: a revalidation request of a
			// cache hit (ETag, 1 byte) must not pass for a new download.
			data := readFile(t, modelPath("tiny-f32"))
			var sent atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"v1"`)
				http.ServeContent(countingWriter{w, &sent}, r, "m", time.Time{}, bytes.NewReader(data))
			}))
			defer srv.Close()
			dir := t.TempDir()
			model := srv.URL + "/model.safetensors"
			first := embed(dir, model)
			var cached []string
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() && strings.HasSuffix(p, ".safetensors") {
					cached = append(cached, p)
				}
				return nil
			})
			if len(cached) != 1 {
				t.Fatalf("cache files: %v", cached)
			}
			b := readFile(t, cached[0])
			for i := len(b) * 3 / 4; i < len(b)*3/4+16; i++ {
				b[i] ^= 0x01 // the lowest mantissa bit: finite, a tiny change
			}
			if err := os.WriteFile(cached[0], b, 0o644); err != nil {
				t.Fatal(err)
			}
			firstBytes := sent.Load()
			second := embed(dir, model)
			if again := sent.Load() - firstBytes; again < firstBytes/2 {
				t.Fatalf("the damaged cache entry was used: %d bytes downloaded again (first load %d)", again, firstBytes)
			}
			for i := range first {
				if math.Abs(first[i]-second[i]) > 1e-6 {
					t.Fatalf("component %d: %v before the damage, %v after", i, first[i], second[i])
				}
			}
		})
	}
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	k, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(k))
	return k, err
}

// TestMaxDecodeBytes: Options.MaxDecodeBytes reaches the decoder on both
// engines (the Node half is in js/test/hostile.test.mjs): an image whose
// decoding would exceed it fails with ImageTooLarge.
func TestMaxDecodeBytes(t *testing.T) {
	mp, _ := filepath.Abs(modelPath("tiny-f32"))
	img, _ := filepath.Abs(filepath.Join(testdataDir, "images", "coffee.png"))
	for _, eng := range []Engine{EngineNative, EngineWasm} {
		e, err := New(context.Background(), Options{Model: mp, CacheDir: testCache(t), Threads: 2, Engine: eng, MaxDecodeBytes: 100_000})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Embed(context.Background(), img)
		e.Close()
		if !errors.Is(err, ErrImageTooLarge) || !strings.Contains(err.Error(), "budget") {
			t.Errorf("%s: %v, want ImageTooLarge over the budget", eng, err)
		}
	}
}
