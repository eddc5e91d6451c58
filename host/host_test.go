package host

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serveModel serves a model file over HTTP like Hugging Face does (Range,
// ETag), or without Range support (always 200 with the whole file).
func serveModel(t *testing.T, path string, ranges bool, requests *atomic.Int64) *httptest.Server {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests != nil {
			requests.Add(1)
		}
		if !ranges {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "model.safetensors", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLoadOverHTTP(t *testing.T) {
	golden := goldenEmbeddings(t, "tiny-f32")["images/coffee.png"]
	img := filepath.Join(testdataDir, "images", "coffee.png")
	for _, ranges := range []bool{true, false} {
		t.Run("ranges="+strconv.FormatBool(ranges), func(t *testing.T) {
			var reqs atomic.Int64
			srv := serveModel(t, modelPath("tiny-f32"), ranges, &reqs)
			cache := t.TempDir()
			var mu sync.Mutex
			var calls [][2]int64
			opts := Options{Model: srv.URL + "/openai/model.safetensors", CacheDir: cache, Threads: 2,
				Progress: func(l, n int64) { mu.Lock(); calls = append(calls, [2]int64{l, n}); mu.Unlock() }}
			e, err := New(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Embed(context.Background(), img)
			e.Close()
			if err != nil {
				t.Fatal(err)
			}
			if cos, _ := compare(got, golden); cos < 0.9999 {
				t.Fatalf("cosine %.6f", cos)
			}
			if len(calls) == 0 {
				t.Fatal("no progress reported")
			}
			last := calls[len(calls)-1]
			if last[0] != last[1] || last[1] <= 0 {
				t.Errorf("last progress call %v, want (total, total)", last)
			}
			for i := 1; i < len(calls); i++ {
				if calls[i][0] < calls[i-1][0] {
					t.Errorf("progress went backwards: %v", calls)
					break
				}
			}
			if ranges && reqs.Load() < 2 {
				t.Errorf("%d requests: expected a header Range request then tensor ranges", reqs.Load())
			}

			// The second load comes from the cache: no request at all, even
			// with the server gone.
			srv.Close()
			n := reqs.Load()
			e, err = New(context.Background(), opts)
			if err != nil {
				t.Fatalf("load from cache with the server down: %v", err)
			}
			got2, err := e.Embed(context.Background(), img)
			e.Close()
			if err != nil {
				t.Fatal(err)
			}
			if reqs.Load() != n {
				t.Errorf("cached load made %d requests", reqs.Load()-n)
			}
			for i := range got {
				if got[i] != got2[i] {
					t.Fatal("cached model gives a different embedding")
				}
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusNotFound)
	}))
	defer srv.Close()
	_, err := New(context.Background(), Options{Model: srv.URL + "/x.safetensors", CacheDir: t.TempDir()})
	if !errors.Is(err, ErrDownloadFailed) {
		t.Fatalf("404: %v, want DownloadFailed", err)
	}
	_, err = New(context.Background(), Options{Model: "http://127.0.0.1:9/x.safetensors", CacheDir: t.TempDir()})
	var he *Error
	if !errors.As(err, &he) || he.Code != DownloadFailed {
		t.Fatalf("unreachable: %v, want DownloadFailed", err)
	}
	_, err = New(context.Background(), Options{Model: filepath.Join(testdataDir, "images", "coffee.png"), CacheDir: t.TempDir()})
	if !errors.Is(err, ErrInvalidModel) {
		t.Fatalf("a PNG as model: %v, want InvalidModel", err)
	}
}

// TestCancelDownload: a server that sends the header and then stalls; the
// load must end promptly with Aborted when the context is cancelled.
func TestCancelDownload(t *testing.T) {
	data, err := os.ReadFile(modelPath("b32l2-f16"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK) // no Range support: one long body
		w.Write(data[:len(data)/4])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // stall until the client gives up
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	opts := Options{Model: srv.URL + "/m.safetensors", CacheDir: t.TempDir(), Threads: 1,
		Progress: func(l, n int64) {
			if l > 0 {
				once.Do(func() { time.AfterFunc(50*time.Millisecond, cancel) })
			}
		}}
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := New(ctx, opts)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrAborted) || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want Aborted wrapping context.Canceled", err)
		}
		t.Logf("cancelled mid-download, returned after %v", time.Since(start))
	case <-time.After(60 * time.Second):
		t.Fatal("New did not return after its context was cancelled mid-download")
	}
}

func TestCancelBetweenImages(t *testing.T) {
	e := newTestEmbedder(t, modelPath("tiny-f32"))
	img := filepath.Join(testdataDir, "images", "chelsea.png")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Embed(ctx, img); !errors.Is(err, ErrAborted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Embed with a cancelled context: %v", err)
	}
	if _, _, err := e.EmbedBatch(ctx, []any{img, img}); !errors.Is(err, ErrAborted) {
		t.Fatalf("EmbedBatch with a cancelled context: %v", err)
	}
	// Deadline mid-forward on a bigger model: returns promptly with Aborted,
	// and the embedder still works afterwards.
	big := newTestEmbedder(t, modelPath("b32l2-f16"))
	dctx, dcancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer dcancel()
	imgs := make([]any, 8)
	for i := range imgs {
		imgs[i] = img
	}
	if _, _, err := big.EmbedBatch(dctx, imgs); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrAborted) {
		t.Fatalf("EmbedBatch past its deadline: %v", err)
	}
	if _, err := big.Embed(context.Background(), img); err != nil {
		t.Fatalf("Embed after a cancelled call: %v", err)
	}
	if _, err := e.Embed(context.Background(), img); err != nil {
		t.Fatalf("Embed after a cancelled call: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newTestEmbedder(t, modelPath("tiny-f32"))
	golden := goldenEmbeddings(t, "tiny-f32")
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			img := fixtureImages[i%len(fixtureImages)]
			data, err := os.ReadFile(filepath.Join(testdataDir, "images", img))
			if err != nil {
				errs <- err
				return
			}
			var got []float32
			if i%2 == 0 {
				got, err = e.Embed(context.Background(), data)
			} else {
				got, err = e.Embed(context.Background(), bytes.NewReader(data))
			}
			if err != nil {
				errs <- err
				return
			}
			if cos, _ := compare(got, golden["images/"+img]); cos < 0.9999 {
				errs <- errors.New(img + ": wrong embedding under concurrency")
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClosed(t *testing.T) {
	e, err := New(context.Background(), Options{Model: modelPath("tiny-f32"), CacheDir: testCache(t), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	e.Close() // idempotent
	_, err = e.Embed(context.Background(), filepath.Join(testdataDir, "images", "coffee.png"))
	if !errors.Is(err, ErrModelNotLoaded) {
		t.Fatalf("Embed after Close: %v, want ModelNotLoaded", err)
	}
}

func TestSourceErrors(t *testing.T) {
	e := newTestEmbedder(t, modelPath("tiny-f32"))
	for _, src := range []any{nil, 42, "", filepath.Join(t.TempDir(), "missing.png")} {
		if _, err := e.Embed(context.Background(), src); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("Embed(%#v): %v, want InvalidInput", src, err)
		}
	}
	for src, code := range map[string]error{
		"\x89PNG\r\n\x1a\n": ErrCorruptImage,
		"GIF89a":            ErrCorruptImage,
		"hello":             ErrUnsupportedImageFormat,
	} {
		_, err := e.Embed(context.Background(), []byte(src))
		if !errors.Is(err, code) {
			t.Errorf("Embed(%q): %v, want %v", src, err, code)
		}
	}
	if _, err := e.EmbedPixels(context.Background(), make([]float32, 5)); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("EmbedPixels of the wrong size: %v", err)
	}
}

// TestURLSources: http(s) sources are fetched by the module through the
// host's fetch; file: and data: URLs are read by the host.
func TestURLSources(t *testing.T) {
	e := newTestEmbedder(t, modelPath("tiny-f32"))
	img := filepath.Join(testdataDir, "images", "coffee.png")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/coffee.png" {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	defer srv.Close()
	abs, _ := filepath.Abs(img)
	want := goldenEmbeddings(t, "tiny-f32")["images/coffee.png"]
	srcs := []any{srv.URL + "/coffee.png", "file://" + abs,
		"data:image/png;base64," + base64.StdEncoding.EncodeToString(data), srv.URL + "/missing.png"}
	embs, errs, err := e.EmbedBatch(context.Background(), srcs)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if errs[i] != nil {
			t.Fatalf("%.40s: %v", srcs[i], errs[i])
		}
		if cos, _ := compare(embs[i], want); cos < 0.9999 {
			t.Errorf("%.40s: cosine %.6f", srcs[i], cos)
		}
	}
	if !errors.Is(errs[3], ErrDownloadFailed) {
		t.Errorf("404 image URL: %v, want DownloadFailed", errs[3])
	}
}

func TestMaxPixels(t *testing.T) {
	e, err := New(context.Background(), Options{Model: modelPath("tiny-f32"), CacheDir: testCache(t), Threads: 1, MaxPixels: 300 * 300})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// chelsea is 451x300 (over the limit), the others are larger still.
	_, err = e.Embed(context.Background(), filepath.Join(testdataDir, "images", "chelsea.png"))
	if !errors.Is(err, ErrImageTooLarge) {
		t.Fatalf("451x300 with MaxPixels 90000: %v, want ImageTooLarge", err)
	}
	if _, err := e.EmbedPixels(context.Background(), goldenPixels(t, 64, "chelsea.png")); err != nil {
		t.Fatalf("pixels are not subject to MaxPixels: %v", err)
	}
}

// A Hugging Face id as the model: resolved against HF_ENDPOINT (a local
// server here); a local file of the same name wins.
func TestHubID(t *testing.T) {
	var reqs atomic.Int64
	srv := serveModel(t, modelPath("tiny-f32"), true, &reqs)
	t.Setenv("HF_ENDPOINT", srv.URL)
	golden := goldenEmbeddings(t, "tiny-f32")["images/coffee.png"]
	img, err := filepath.Abs(filepath.Join(testdataDir, "images", "coffee.png"))
	if err != nil {
		t.Fatal(err)
	}
	model, err := filepath.Abs(modelPath("tiny-f32"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme/tiny-clip@v2", "acme/local"} {
		dir := t.TempDir()
		if id == "acme/local" {
			os.Mkdir(filepath.Join(dir, "acme"), 0o755)
			data, _ := os.ReadFile(model)
			os.WriteFile(filepath.Join(dir, "acme", "local"), data, 0o644)
			t.Chdir(dir)
		}
		before := reqs.Load()
		e, err := New(context.Background(), Options{Model: id, CacheDir: t.TempDir(), Threads: 1})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		got, err := e.Embed(context.Background(), img)
		e.Close()
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if c, _ := compare(got, golden); c < 0.9999 {
			t.Errorf("%s: cosine %v", id, c)
		}
		if remote := reqs.Load() > before; remote != (id != "acme/local") {
			t.Errorf("%s: requests to the hub: %v", id, remote)
		}
	}
}
