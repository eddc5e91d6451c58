package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imgembed/imgembed/host"
)

var (
	embOnce sync.Once
	emb     *host.Embedder
	embErr  error
)

// testEmbedder is one embedder of the tiny fixture model shared by the
// server tests (loading it per test would dominate their time).
func testEmbedder(t *testing.T) *host.Embedder {
	t.Helper()
	embOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imgembed-serve-test-")
		if err != nil {
			embErr = err
			return
		}
		emb, embErr = host.New(context.Background(), host.Options{
			Model: filepath.Join(testdata, "models", "tiny-f32.safetensors"), CacheDir: dir, Threads: 2, MaxBatch: 4})
	})
	if embErr != nil {
		t.Fatalf("loading the model: %v", embErr)
	}
	return emb
}

func testImages(t *testing.T) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, n := range []string{"astronaut.png", "chelsea.png", "coffee.png"} {
		b, err := os.ReadFile(filepath.Join(testdata, "images", n))
		if err != nil {
			t.Fatal(err)
		}
		m[n] = b
	}
	return m
}

var (
	directMu sync.Mutex
	direct   = map[string][]float32{}
)

// directEmbed is the Go API's answer for one image, to compare with.
func directEmbed(t *testing.T, name string, b []byte) []float32 {
	t.Helper()
	directMu.Lock()
	defer directMu.Unlock()
	if v, ok := direct[name]; ok {
		return v
	}
	v, err := testEmbedder(t).Embed(context.Background(), b)
	if err != nil {
		t.Fatalf("direct Embed %s: %v", name, err)
	}
	direct[name] = v
	return v
}

func testServeConfig() serveConfig {
	c := defaultServeConfig()
	c.maxBody = 4 << 20
	c.maxInputs = 8
	c.readTimeout = 5 * time.Second
	c.requestTimeout = 30 * time.Second
	c.allowPrivate = true
	return c
}

// startServer serves on a fresh 127.0.0.1 port; stop shuts it down
// gracefully and returns serve's error.
func startServer(t *testing.T, c serveConfig) (s *server, base string, stop func() error) {
	t.Helper()
	s = newServer(testEmbedder(t), "tiny-f32", c)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.serve(ctx, ln) }()
	var once sync.Once
	var serr error
	stop = func() error {
		once.Do(func() {
			cancel()
			serr = <-errc
		})
		return serr
	}
	t.Cleanup(func() { stop() })
	return s, "http://" + ln.Addr().String(), stop
}

type embedAnswer struct {
	Results []line   `json:"results"`
	Error   *errJSON `json:"error"`
}

func post(t *testing.T, url, ctype string, body []byte) (int, http.Header, embedAnswer) {
	t.Helper()
	resp, err := http.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var a embedAnswer
	raw, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("POST %s: Content-Type %q, body %q", url, resp.Header.Get("Content-Type"), raw)
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("POST %s: answer %q: %v", url, raw, err)
	}
	return resp.StatusCode, resp.Header, a
}

type part struct {
	field, file string
	data        []byte
}

func multipartBody(t *testing.T, parts ...part) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.file != "" {
			w, err = mw.CreateFormFile(p.field, p.file)
		} else {
			w, err = mw.CreateFormField(p.field)
		}
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// checkEmbedding compares a served embedding with the Go API's for the same
// image (a batch may sum in another order than a single call: 1e-6).
func checkEmbedding(t *testing.T, what string, got line, name string, imgs map[string][]byte) {
	t.Helper()
	if got.Error != nil {
		t.Errorf("%s: error %+v", what, got.Error)
		return
	}
	if d := maxDiff(got.Embedding, directEmbed(t, name, imgs[name])); d > 1e-6 {
		t.Errorf("%s: max abs diff to direct Embed %g", what, d)
	}
}

func TestServeGoodInputs(t *testing.T) {
	imgs := testImages(t)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := imgs[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer files.Close()
	_, base, _ := startServer(t, testServeConfig())

	ct, body := multipartBody(t,
		part{"image", "astronaut.png", imgs["astronaut.png"]},
		part{"image", "chelsea.png", imgs["chelsea.png"]},
		part{"image", "notes.txt", []byte("not an image")},
		part{"url", "", []byte(files.URL + "/coffee.png")},
	)
	status, _, a := post(t, base+"/v1/embed", ct, body)
	if status != 200 || len(a.Results) != 4 {
		t.Fatalf("multipart: status %d, %+v", status, a)
	}
	checkEmbedding(t, "multipart astronaut", a.Results[0], "astronaut.png", imgs)
	checkEmbedding(t, "multipart chelsea", a.Results[1], "chelsea.png", imgs)
	if a.Results[0].Source != "astronaut.png" || a.Results[3].Source != files.URL+"/coffee.png" {
		t.Errorf("sources %q, %q", a.Results[0].Source, a.Results[3].Source)
	}
	if e := a.Results[2].Error; e == nil || (e.Code != "UnsupportedImageFormat" && e.Code != "CorruptImage") {
		t.Errorf("text file as image: %+v", a.Results[2])
	}
	checkEmbedding(t, "multipart url", a.Results[3], "coffee.png", imgs)

	for _, ctype := range []string{"image/png", "application/octet-stream"} {
		status, _, a = post(t, base+"/v1/embed?source=mine", ctype, imgs["coffee.png"])
		if status != 200 || len(a.Results) != 1 || a.Results[0].Source != "mine" {
			t.Fatalf("raw %s: status %d, %+v", ctype, status, a)
		}
		checkEmbedding(t, "raw "+ctype, a.Results[0], "coffee.png", imgs)
	}

	req, _ := json.Marshal(map[string]any{"inputs": []string{
		files.URL + "/chelsea.png",
		"data:image/png;base64," + base64.StdEncoding.EncodeToString(imgs["astronaut.png"]),
		files.URL + "/missing.png",
		filepath.Join(testdata, "images", "coffee.png"), // a server path: refused
		"file:///etc/passwd",
	}})
	status, _, a = post(t, base+"/v1/embed", "application/json", req)
	if status != 200 || len(a.Results) != 5 {
		t.Fatalf("json: status %d, %+v", status, a)
	}
	checkEmbedding(t, "json url", a.Results[0], "chelsea.png", imgs)
	checkEmbedding(t, "json data url", a.Results[1], "astronaut.png", imgs)
	if e := a.Results[2].Error; e == nil || e.Code != "DownloadFailed" || !strings.Contains(e.Message, "404") {
		t.Errorf("missing URL: %+v", a.Results[2])
	}
	for _, r := range a.Results[3:] {
		if r.Error == nil || r.Error.Code != "InvalidInput" || r.Embedding != nil {
			t.Errorf("local path input %q: %+v", r.Source, r)
		}
	}

	// By default URLs may not reach loopback/private addresses.
	c := testServeConfig()
	c.allowPrivate = false
	_, base2, _ := startServer(t, c)
	req, _ = json.Marshal(map[string]any{"inputs": []string{files.URL + "/chelsea.png"}})
	status, _, a = post(t, base2+"/v1/embed", "application/json", req)
	if status != 200 || len(a.Results) != 1 || a.Results[0].Error == nil || a.Results[0].Error.Code != "DownloadFailed" ||
		!strings.Contains(a.Results[0].Error.Message, "not a public address") {
		t.Errorf("private URL with allowPrivate=false: %d %+v", status, a)
	}
}

func TestServeBadRequests(t *testing.T) {
	imgs := testImages(t)
	c := testServeConfig()
	c.maxBody = 600 << 10 // coffee.png (456 KiB) fits, astronaut.png (773 KiB) does not
	c.maxInputs = 3
	_, base, _ := startServer(t, c)
	url := base + "/v1/embed"

	big := imgs["astronaut.png"]
	ctm, tooMany := multipartBody(t, part{"a", "1", []byte("x")}, part{"a", "2", []byte("x")}, part{"a", "3", []byte("x")}, part{"a", "4", []byte("x")})
	ctBig, bigMultipart := multipartBody(t, part{"a", "a.png", big})
	cases := []struct {
		name   string
		ctype  string
		body   []byte
		chunk  bool // no Content-Length: the limit is hit while reading
		status int
		code   string
	}{
		{"oversized raw", "image/png", big, false, 413, codeBodyTooLarge},
		{"oversized raw chunked", "image/png", big, true, 413, codeBodyTooLarge},
		{"oversized multipart chunked", ctBig, bigMultipart, true, 413, codeBodyTooLarge},
		{"wrong content type", "text/plain", []byte("hello"), false, 415, codeUnsupportedMedia},
		{"no content type", "", imgs["coffee.png"], false, 415, codeUnsupportedMedia},
		{"malformed content type", "image/png; =x", imgs["coffee.png"], false, 415, codeUnsupportedMedia},
		{"malformed JSON", "application/json", []byte(`{"inputs": [`), false, 400, codeBadRequest},
		{"JSON with trailing data", "application/json", []byte(`{"inputs": ["data:,"]} {}`), false, 400, codeBadRequest},
		{"JSON inputs not strings", "application/json", []byte(`{"inputs": [1, 2]}`), false, 400, codeBadRequest},
		{"JSON without inputs", "application/json", []byte(`{}`), false, 400, codeBadRequest},
		{"JSON too many inputs", "application/json", []byte(`{"inputs": ["data:,", "data:,", "data:,", "data:,"]}`), false, 400, codeBadRequest},
		{"multipart without boundary", "multipart/form-data", []byte("--x\r\n"), false, 400, codeBadRequest},
		{"malformed multipart", "multipart/form-data; boundary=zzz", []byte("--zzz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nabc"), false, 400, codeBadRequest},
		{"multipart too many parts", ctm, tooMany, false, 400, codeBadRequest},
		{"empty raw body", "image/png", nil, false, 200, ""}, // one input that fails
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rd io.Reader = bytes.NewReader(tc.body)
			if tc.chunk {
				rd = io.MultiReader(rd) // hides the length: chunked
			}
			req, _ := http.NewRequest(http.MethodPost, url, rd)
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var a embedAnswer
			if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
				t.Fatalf("answer not JSON: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tc.status, a)
			}
			if tc.code == "" {
				if len(a.Results) != 1 || a.Results[0].Error == nil {
					t.Fatalf("want one failed input, got %+v", a)
				}
				return
			}
			if a.Error == nil || a.Error.Code != tc.code || a.Error.Message == "" {
				t.Fatalf("error %+v, want code %s", a.Error, tc.code)
			}
		})
	}

	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/v1/embed", 405, codeMethodNotAllowed},
		{"GET", "/nope", 404, codeNotFound},
		{"POST", "/healthz", 405, codeMethodNotAllowed},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var a embedAnswer
		json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if resp.StatusCode != tc.status || a.Error == nil || a.Error.Code != tc.code {
			t.Errorf("%s %s: %d %+v, want %d %s", tc.method, tc.path, resp.StatusCode, a.Error, tc.status, tc.code)
		}
	}

	// Still serving good requests after all that.
	status, _, a := post(t, url, "image/png", imgs["coffee.png"])
	if status != 200 || len(a.Results) != 1 {
		t.Fatalf("good request after bad ones: %d %+v", status, a)
	}
	checkEmbedding(t, "after bad requests", a.Results[0], "coffee.png", imgs)
}

func TestServeHealthAndModel(t *testing.T) {
	_, base, _ := startServer(t, testServeConfig())
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 200 || h["status"] != "ok" {
		t.Errorf("healthz: %d %v", resp.StatusCode, h)
	}
	resp, err = http.Get(base + "/v1/model")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Config host.Config    `json:"config"`
		Limits map[string]any `json:"limits"`
	}
	json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if m.Config != testEmbedder(t).Config() || m.Limits["maxInputs"] != float64(8) {
		t.Errorf("model: %+v", m)
	}
}

// TestServeSlowClient: a client that sends part of its body and stalls is
// answered 408 after the read timeout; requests meanwhile are unaffected.
func TestServeSlowClient(t *testing.T) {
	imgs := testImages(t)
	c := testServeConfig()
	c.readTimeout = 700 * time.Millisecond
	_, base, _ := startServer(t, c)
	// Before Dial: the server's read deadline may start as soon as it
	// accepts, before Dial returns here.
	start := time.Now()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/embed HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", len(imgs["coffee.png"]))
	conn.Write(imgs["coffee.png"][:1000])

	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, a := post(t, base+"/v1/embed", "image/png", imgs["chelsea.png"])
			if status != 200 || len(a.Results) != 1 {
				t.Errorf("request beside the slow client: %d %+v", status, a)
				return
			}
			checkEmbedding(t, "beside the slow client", a.Results[0], "chelsea.png", imgs)
		}()
	}
	wg.Wait()

	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("slow client: no answer: %v", err)
	}
	var a embedAnswer
	json.NewDecoder(resp.Body).Decode(&a)
	if resp.StatusCode != http.StatusRequestTimeout || a.Error == nil || a.Error.Code != codeTimeout {
		t.Errorf("slow client: %d %+v", resp.StatusCode, a.Error)
	}
	if el := time.Since(start); el < c.readTimeout {
		t.Errorf("slow client answered after %v, before the read timeout", el)
	}
}

// holdEngine takes every compute slot, as long-running requests would.
func holdEngine(s *server) (release func()) {
	for i := 0; i < cap(s.compute); i++ {
		s.compute <- struct{}{}
	}
	return func() {
		for i := 0; i < cap(s.compute); i++ {
			<-s.compute
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServeQueueFull(t *testing.T) {
	imgs := testImages(t)
	c := testServeConfig()
	c.concurrency, c.queue = 1, 1
	s, base, _ := startServer(t, c)
	release := holdEngine(s)
	type res struct {
		status int
		a      embedAnswer
	}
	out := make(chan res, 2)
	for i := 0; i < 2; i++ {
		go func() {
			st, _, a := post(t, base+"/v1/embed", "image/png", imgs["coffee.png"])
			out <- res{st, a}
		}()
	}
	waitFor(t, "two admitted requests", func() bool { return len(s.admit) == 2 })
	status, hdr, a := post(t, base+"/v1/embed", "image/png", imgs["coffee.png"])
	if status != 503 || a.Error == nil || a.Error.Code != codeOverloaded || hdr.Get("Retry-After") == "" {
		t.Errorf("third request with the queue full: %d %+v Retry-After %q", status, a.Error, hdr.Get("Retry-After"))
	}
	release()
	for i := 0; i < 2; i++ {
		r := <-out
		if r.status != 200 || len(r.a.Results) != 1 {
			t.Fatalf("queued request: %d %+v", r.status, r.a)
		}
		checkEmbedding(t, "queued request", r.a.Results[0], "coffee.png", imgs)
	}
	// Capacity is back.
	if status, _, _ := post(t, base+"/v1/embed", "image/png", imgs["coffee.png"]); status != 200 {
		t.Errorf("after the queue drained: %d", status)
	}
}

// TestServeLoad: 4 clients x 6 requests, good and bad (wrong content type,
// oversized) interleaved, and a client that stalls mid-body all the while,
// against a server with concurrency 2 and a queue of 4; every good result
// equals the Go API's, every bad request gets its typed error, the stalled
// one 408, and no slot is left held.
func TestServeLoad(t *testing.T) {
	imgs := testImages(t)
	names := []string{"astronaut.png", "chelsea.png", "coffee.png"}
	for _, n := range names {
		directEmbed(t, n, imgs[n])
	}
	c := testServeConfig()
	c.concurrency, c.queue = 2, 4
	c.maxBody = 3 << 20
	c.readTimeout = time.Second
	s, base, _ := startServer(t, c)

	slow, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /v1/embed HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", len(imgs["coffee.png"]))
	slow.Write(imgs["coffee.png"][:100])
	slowAnswer := make(chan string, 1)
	go func() {
		slow.SetReadDeadline(time.Now().Add(60 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
		if err != nil {
			slowAnswer <- err.Error()
			return
		}
		var a embedAnswer
		json.NewDecoder(resp.Body).Decode(&a)
		slowAnswer <- fmt.Sprintf("%d %s", resp.StatusCode, a.Error.Code)
	}()

	oversized := bytes.Repeat([]byte{0x89}, int(c.maxBody)+1)
	var wg sync.WaitGroup
	for client := 0; client < 4; client++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 6; r++ {
				k := (client + r) % 3
				switch r % 4 {
				case 0: // a batch of 1..3 images
					var parts []part
					for j := 0; j <= k; j++ {
						n := names[(k+j)%3]
						parts = append(parts, part{"image", n, imgs[n]})
					}
					ct, body := multipartBody(t, parts...)
					status, _, a := post(t, base+"/v1/embed", ct, body)
					if status != 200 || len(a.Results) != len(parts) {
						t.Errorf("client %d req %d: %d %+v", client, r, status, a.Error)
						continue
					}
					for j, l := range a.Results {
						checkEmbedding(t, fmt.Sprintf("client %d req %d #%d", client, r, j), l, parts[j].file, imgs)
					}
				case 1: // one raw image
					status, _, a := post(t, base+"/v1/embed", "image/png", imgs[names[k]])
					if status != 200 || len(a.Results) != 1 {
						t.Errorf("client %d req %d: %d %+v", client, r, status, a.Error)
						continue
					}
					checkEmbedding(t, fmt.Sprintf("client %d req %d", client, r), a.Results[0], names[k], imgs)
				case 2: // wrong content type
					status, _, a := post(t, base+"/v1/embed", "text/csv", []byte("a,b"))
					if status != 415 || a.Error == nil || a.Error.Code != codeUnsupportedMedia {
						t.Errorf("client %d req %d: %d %+v", client, r, status, a.Error)
					}
				case 3: // oversized
					status, _, a := post(t, base+"/v1/embed", "image/png", oversized)
					if status != 413 || a.Error == nil || a.Error.Code != codeBodyTooLarge {
						t.Errorf("client %d req %d: %d %+v", client, r, status, a.Error)
					}
				}
			}
		}()
	}
	wg.Wait()
	if got := <-slowAnswer; got != "408 "+codeTimeout {
		t.Errorf("stalled client: %s, want 408 %s", got, codeTimeout)
	}
	waitFor(t, "every slot to be released", func() bool { return len(s.admit) == 0 && len(s.compute) == 0 })
}

// TestServeShutdown: shutting down stops accepting connections and lets
// the request in flight finish with its result.
func TestServeShutdown(t *testing.T) {
	imgs := testImages(t)
	s, base, stop := startServer(t, testServeConfig())
	release := holdEngine(s)
	type res struct {
		status int
		a      embedAnswer
	}
	out := make(chan res, 1)
	go func() {
		st, _, a := post(t, base+"/v1/embed", "image/png", imgs["chelsea.png"])
		out <- res{st, a}
	}()
	waitFor(t, "the request to be admitted", func() bool { return len(s.admit) == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-stopped:
		t.Fatalf("serve returned (%v) with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	release()
	r := <-out
	if r.status != 200 || len(r.a.Results) != 1 {
		t.Fatalf("request in flight during shutdown: %d %+v", r.status, r.a)
	}
	checkEmbedding(t, "in flight during shutdown", r.a.Results[0], "chelsea.png", imgs)
	if err := <-stopped; err != nil {
		t.Errorf("serve after shutdown: %v", err)
	}
}

func TestNonLoopbackWarning(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		warn bool
	}{{"127.0.0.1", false}, {"::1", false}, {"0.0.0.0", true}, {"::", true}, {"192.168.1.2", true}} {
		w := nonLoopbackWarning(&net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 80})
		if (w != "") != tc.warn {
			t.Errorf("%s: warning %q", tc.ip, w)
		}
	}
}

// TestServeCommand runs `imgembed serve` as a process: it prints where it
// listens, answers, and on SIGTERM finishes and exits 0.
func TestServeCommand(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM")
	}
	imgs := testImages(t)
	cmd := exec.Command(command(t), "serve", "--addr", "127.0.0.1:0",
		"--model", filepath.Join(testdata, "models", "tiny-f32.safetensors"))
	cmd.Env = append(os.Environ(), "IMGEMBED_CACHE_DIR="+filepath.Join(tmpRoot, "cache"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	re := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
			break
		}
	}
	if base == "" {
		t.Fatalf("no listening line: %q", lines)
	}
	rest := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(stderr)
		rest <- string(b)
	}()
	status, _, a := post(t, base+"/v1/embed", "image/png", imgs["astronaut.png"])
	if status != 200 || len(a.Results) != 1 {
		t.Fatalf("%d %+v", status, a)
	}
	checkEmbedding(t, "command", a.Results[0], "astronaut.png", imgs)
	cmd.Process.Signal(syscall.SIGTERM)
	// All of stderr first: Wait closes the pipe once the process is gone,
	// which could cut the reader short of the last line.
	tail := <-rest
	err = cmd.Wait()
	if err != nil || !strings.Contains(tail, "stopped") {
		t.Errorf("after SIGTERM: %v, stderr %q", err, tail)
	}
	for _, l := range lines {
		if strings.Contains(l, "warning") {
			t.Errorf("loopback address warned: %q", l)
		}
	}
}
