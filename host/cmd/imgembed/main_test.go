package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const testdata = "../../../testdata"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	tmpRoot   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tmpRoot != "" {
		os.RemoveAll(tmpRoot)
	}
	os.Exit(code)
}

// command builds the imgembed binary once per test run: the tests run it as
// a child process, as a user would, to check exit codes, output lines and
// the child's peak memory.
func command(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		tmpRoot, buildErr = os.MkdirTemp("", "imgembed-cmd-test-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(tmpRoot, "imgembed")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, binPath)
	}
	return binPath
}

type result struct {
	lines  []line
	stderr string
	code   int
	maxRSS int64 // bytes
}

func runCmd(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(command(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A cache inside the test's temp dir: never the user's.
	cmd.Env = append(os.Environ(), "IMGEMBED_CACHE_DIR="+filepath.Join(tmpRoot, "cache"), "IMGEMBED_MODEL=")
	cmd.Env = append(cmd.Env, env...)
	err := cmd.Run()
	r := result{stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running imgembed: %v", err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && runtime.GOOS == "linux" {
		r.maxRSS = ru.Maxrss * 1024 // KiB on Linux
	}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line is not JSON: %q: %v", sc.Text(), err)
		}
		r.lines = append(r.lines, l)
	}
	return r
}

// pngHeader is a PNG whose IHDR claims w x h pixels, followed by a tiny
// IDAT and IEND: a decoder that trusts it and allocates first would need
// w*h*4 bytes.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		b.Write(n[:])
		c := crc32.NewIEEE()
		c.Write([]byte(typ))
		c.Write(data)
		b.WriteString(typ)
		b.Write(data)
		binary.BigEndian.PutUint32(n[:], c.Sum32())
		b.Write(n[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(testdata, "images", "chelsea.png")
	png, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	rnd := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	files := map[string][]byte{
		"truncated.png": png[:len(png)/2],
		"empty.png":     {},
		"random.bin":    rnd,
		"image.svg":     []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>`),
		"page.html":     []byte("<!DOCTYPE html><html><head><title>x</title></head><body><img src=a.png></body></html>"),
		"huge.png":      pngHeader(60000, 60000),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	args := []string{"--model", filepath.Join(testdata, "models", "tiny-f32.safetensors"), "--batch", "3",
		good, p("truncated.png"), p("empty.png"), p("random.bin"), filepath.Join(testdata, "images", "coffee.png"),
		p("image.svg"), p("page.html"), p("huge.png"), p("missing.png"), filepath.Join(testdata, "images", "astronaut.png")}
	res := runCmd(t, nil, args...)
	if res.code != exitFailed {
		t.Fatalf("exit code %d, want %d (some inputs failed)\nstderr: %s", res.code, exitFailed, res.stderr)
	}
	srcs := args[4:]
	if len(res.lines) != len(srcs) {
		t.Fatalf("%d output lines for %d inputs", len(res.lines), len(srcs))
	}
	want := map[string]string{ // "" = must embed
		good:               "",
		p("truncated.png"): "CorruptImage",
		p("empty.png"):     "*",
		p("random.bin"):    "UnsupportedImageFormat",
		srcs[4]:            "",
		p("image.svg"):     "UnsupportedImageFormat",
		p("page.html"):     "UnsupportedImageFormat",
		p("huge.png"):      "ImageTooLarge",
		p("missing.png"):   "InvalidInput",
		srcs[len(srcs)-1]:  "",
	}
	codes := map[string]bool{"InvalidInput": true, "UnsupportedImageFormat": true, "CorruptImage": true, "ImageTooLarge": true}
	for i, l := range res.lines {
		if l.Source != srcs[i] {
			t.Errorf("line %d is for %q, want %q (input order)", i, l.Source, srcs[i])
			continue
		}
		w := want[l.Source]
		switch {
		case w == "":
			if l.Error != nil || len(l.Embedding) != 32 {
				t.Errorf("%s: want a 32-d embedding, got error %+v (%d values)", l.Source, l.Error, len(l.Embedding))
			}
		case l.Error == nil:
			t.Errorf("%s: embedded, want error %s", l.Source, w)
		case w == "*" && !codes[l.Error.Code], w != "*" && l.Error.Code != w:
			t.Errorf("%s: error %s (%s), want %s", l.Source, l.Error.Code, l.Error.Message, w)
		case l.Error.Message == "":
			t.Errorf("%s: error %s without a message", l.Source, l.Error.Code)
		}
	}
	t.Logf("child peak RSS %.0f MB", float64(res.maxRSS)/1e6)
	if res.maxRSS > 1<<30 {
		t.Errorf("child peak RSS %d bytes, want under 1 GiB", res.maxRSS)
	}
}

func TestAllGood(t *testing.T) {
	model := filepath.Join(testdata, "models", "tiny-f32.safetensors")
	img := filepath.Join(testdata, "images", "coffee.png")
	res := runCmd(t, nil, "--model", model, img, img)
	if res.code != exitOK {
		t.Fatalf("exit %d, want 0; stderr %s", res.code, res.stderr)
	}
	if len(res.lines) != 2 || res.lines[0].Error != nil {
		t.Fatalf("lines %+v", res.lines)
	}
	var gold map[string][]float64
	b, err := os.ReadFile(filepath.Join(testdata, "golden", "embed-tiny-f32.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &gold); err != nil {
		t.Fatal(err)
	}
	want := gold["images/coffee.png"]
	var dot float64
	for i, v := range res.lines[0].Embedding {
		dot += float64(v) * want[i]
	}
	if dot < 0.9999 {
		t.Errorf("cosine to golden %.6f, want >= 0.9999", dot)
	}
	for i := range res.lines[0].Embedding {
		if res.lines[0].Embedding[i] != res.lines[1].Embedding[i] {
			t.Fatal("the same image embedded twice differs")
		}
	}
}

func TestUsageAndModelErrors(t *testing.T) {
	img := filepath.Join(testdata, "images", "coffee.png")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		msg  string
	}{
		{"no images", nil, []string{"--model", "x"}, "usage"},
		{"bad flag", nil, []string{"--nope", img}, "flag provided but not defined"},
		{"bad batch", nil, []string{"--batch", "0", img}, "--batch"},
		{"missing model", nil, []string{"--model", "/nonexistent/model.safetensors", img}, "does not exist"},
		{"not a model", nil, []string{"--model", img, img}, "InvalidModel"},
		// Offline: the default model URL pointed at a port nothing listens
		// on, through the environment as a user behind a firewall would see.
		{"offline", []string{"IMGEMBED_MODEL=http://127.0.0.1:9/model.safetensors"}, []string{img}, "offline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCmd(t, tc.env, tc.args...)
			if res.code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %s", res.code, exitUsage, res.stderr)
			}
			if len(res.lines) != 0 {
				t.Errorf("output lines on a usage/model error: %+v", res.lines)
			}
			if !strings.Contains(res.stderr, tc.msg) {
				t.Errorf("stderr %q does not mention %q", res.stderr, tc.msg)
			}
		})
	}
}

func TestPreprocessCommand(t *testing.T) {
	out := t.TempDir()
	img := filepath.Join(testdata, "images", "astronaut.png")
	res := runCmd(t, nil, "preprocess", "--size", "64", "--out", out, img)
	if res.code != exitOK {
		t.Fatalf("exit %d; stderr %s", res.code, res.stderr)
	}
	got, err := os.ReadFile(filepath.Join(out, "astronaut.png.f32"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(testdata, "golden", "pixels-64", "astronaut.png.f32"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d bytes, want %d", len(got), len(want))
	}
	// Within one 8-bit level (1/255/std ~ 0.015) of Pillow everywhere.
	var maxd float64
	for i := 0; i < len(got); i += 4 {
		a := math.Float32frombits(binary.LittleEndian.Uint32(got[i:]))
		b := math.Float32frombits(binary.LittleEndian.Uint32(want[i:]))
		maxd = math.Max(maxd, math.Abs(float64(a-b)))
	}
	if maxd > 0.016 {
		t.Errorf("max difference from the golden pixels %.4f, want <= one level", maxd)
	}
}

// TestDefaultModelDownloadedOnce: the default model (here redirected to a
// local server through IMGEMBED_MODEL) is downloaded with progress on
// stderr the first time and comes from the cache afterwards, without a
// single request.
func TestDefaultModelDownloadedOnce(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testdata, "models", "tiny-fullclip-f32.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var reqs atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		http.ServeContent(w, r, "model.safetensors", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	cache := t.TempDir()
	env := []string{"IMGEMBED_MODEL=" + srv.URL + "/openai/clip/resolve/main/model.safetensors", "IMGEMBED_CACHE_DIR=" + cache}
	img := filepath.Join(testdata, "images", "astronaut.png")
	first := runCmd(t, env, img)
	if first.code != exitOK || len(first.lines) != 1 || first.lines[0].Error != nil {
		t.Fatalf("first run: exit %d, %+v\n%s", first.code, first.lines, first.stderr)
	}
	if !strings.Contains(first.stderr, "downloading the model") || !strings.Contains(first.stderr, "100%") {
		t.Errorf("first run stderr has no progress: %q", first.stderr)
	}
	n := reqs.Load()
	second := runCmd(t, env, img)
	if second.code != exitOK || strings.Contains(second.stderr, "downloading") {
		t.Fatalf("second run: exit %d, stderr %q", second.code, second.stderr)
	}
	if reqs.Load() != n {
		t.Errorf("second run made %d requests, want 0 (cached)", reqs.Load()-n)
	}
	for i, v := range first.lines[0].Embedding {
		if second.lines[0].Embedding[i] != v {
			t.Fatal("cached model gives another embedding")
		}
	}
}

// TestSourceNamesAndSpecialFiles: a file name that is not UTF-8 is printed
// as the caller's bytes (surrogateescape), a FIFO and /dev/zero fail at
// once with InvalidInput and the image after them is embedded, with both
// engines giving the same embedding.
func TestSourceNamesAndSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	img, err := os.ReadFile(filepath.Join(testdata, "images", "coffee.png"))
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "caf\xe9-\xff.png") // Latin-1 é and a stray byte
	if err := os.WriteFile(name, img, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "pipe.png")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(testdata, "models", "tiny-f32.safetensors")
	var embs [][]float32
	for _, engine := range []string{"native", "wasm"} {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		cmd := exec.CommandContext(ctx, command(t), "--engine", engine, "--model", model, fifo, "/dev/zero", name)
		cmd.Env = append(os.Environ(), "IMGEMBED_CACHE_DIR="+filepath.Join(tmpRoot, "cache"))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("%s: imgembed still running after 120 s (a FIFO blocked it?)", engine)
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailed {
			t.Fatalf("%s: %v, want exit 1; stderr %s", engine, err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		if len(lines) != 3 {
			t.Fatalf("%s: %d lines:\n%s", engine, len(lines), stdout.String())
		}
		wantSrc := `{"source":"` + strings.ReplaceAll(dir, `\`, `\\`) + `/caf\udce9-\udcff.png","embedding":[`
		if !strings.HasPrefix(lines[2], wantSrc) {
			t.Errorf("%s: line %.120s..., want it to start %s", engine, lines[2], wantSrc)
		}
		var ls [3]line
		for i := range ls {
			if err := json.Unmarshal([]byte(lines[i]), &ls[i]); err != nil {
				t.Fatalf("%s: line %d: %v", engine, i, err)
			}
		}
		for i := 0; i < 2; i++ {
			if ls[i].Error == nil || ls[i].Error.Code != "InvalidInput" {
				t.Errorf("%s: %s: %+v, want InvalidInput", engine, ls[i].Source, ls[i].Error)
			}
		}
		if ls[0].Source != fifo {
			t.Errorf("%s: source %q, want %q", engine, ls[0].Source, fifo)
		}
		embs = append(embs, ls[2].Embedding)
	}
	if len(embs[0]) == 0 || len(embs[0]) != len(embs[1]) {
		t.Fatalf("embedding lengths %d, %d", len(embs[0]), len(embs[1]))
	}
	for i := range embs[0] {
		if d := embs[0][i] - embs[1][i]; d > 1e-6 || d < -1e-6 {
			t.Fatalf("native and wasm differ at %d: %v vs %v", i, embs[0][i], embs[1][i])
		}
	}
}

func TestQuoteSource(t *testing.T) {
	for in, want := range map[string]string{
		"a.png":           `"a.png"`,
		"é \"q\" \\ \n":   `"é \"q\" \\ \u000a"`,
		"bad\xff\xfe.png": `"bad\udcff\udcfe.png"`,
		"\xe2\x82":        `"\udce2\udc82"`, // a truncated 3-byte sequence
		"日本\u2028":        `"日本\u2028"`,
	} {
		got := string(quoteSource(in))
		if got != want {
			t.Errorf("quoteSource(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("%s is not JSON: %v", got, err)
		}
	}
}
