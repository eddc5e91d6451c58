package host

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgembed/imgembed/host/internal/gojs"
)

// TestAbortController checks the AbortController global on its own: abort
// sets .aborted and .reason, fires each 'abort' listener once (not removed
// ones) and is idempotent.
func TestAbortController(t *testing.T) {
	v, err := abortControllerClass().Construct(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := v.(*gojs.Object)
	sig := c.Get("signal").(*gojs.Object)
	if sig.Get("aborted") != false || sig.Get("reason") != nil {
		t.Fatalf("fresh signal: aborted %v reason %v", sig.Get("aborted"), sig.Get("reason"))
	}
	var fired, removedFired int
	l := gojs.NewFunc("l", func(gojs.Value, []gojs.Value) (gojs.Value, error) { fired++; return nil, nil })
	r := gojs.NewFunc("r", func(gojs.Value, []gojs.Value) (gojs.Value, error) { removedFired++; return nil, nil })
	call := func(o *gojs.Object, m string, args ...gojs.Value) {
		t.Helper()
		if _, err := o.Get(m).(*gojs.Function).Call(o, args); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	call(sig, "addEventListener", "abort", l)
	call(sig, "addEventListener", "abort", l) // a duplicate is ignored, as in the DOM
	call(sig, "addEventListener", "abort", r)
	call(sig, "removeEventListener", "abort", r)
	call(c, "abort", "why")
	call(c, "abort", "again")
	if fired != 1 || removedFired != 0 {
		t.Errorf("listener fired %d times (want 1), removed listener %d (want 0)", fired, removedFired)
	}
	if sig.Get("aborted") != true || sig.Get("reason") != "why" {
		t.Errorf("aborted %v reason %v, want true, why", sig.Get("aborted"), sig.Get("reason"))
	}
	if _, err := sig.Get("throwIfAborted").(*gojs.Function).Call(sig, nil); err == nil {
		t.Error("throwIfAborted on an aborted signal did not throw")
	}

	// abort() without a reason gives an AbortError.
	v, _ = abortControllerClass().Construct(nil)
	c = v.(*gojs.Object)
	call(c, "abort")
	if name := gojs.GetProperty(c.Get("signal"), "reason"); gojs.GetProperty(name, "name") != "AbortError" {
		t.Errorf("default reason %v, want an AbortError", name)
	}
}

// TestFetchTimeoutCancelsRequest: an image URL whose server never answers
// (no headers), or stalls in the body, fails with DownloadFailed after
// Options.FetchTimeout, and the host's HTTP request is cancelled (the
// server sees its context end) instead of living on; the next call works.
func TestFetchTimeoutCancelsRequest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testdataDir, "images", "coffee.png"))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	cancelled := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/coffee.png":
			w.Write(data)
			return
		case "/body.png":
			w.Header().Set("Content-Length", "100000")
			w.WriteHeader(http.StatusOK)
			w.Write(data[:64])
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
			cancelled <- r.URL.Path
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // before srv.Close, which waits for the handlers

	const timeout = 300 * time.Millisecond
	e, err := New(context.Background(), Options{Model: modelPath("tiny-f32"), CacheDir: testCache(t), Threads: 1, FetchTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	want := goldenEmbeddings(t, "tiny-f32")["images/coffee.png"]

	for _, path := range []string{"/headers.png", "/body.png"} {
		start := time.Now()
		_, err := e.Embed(context.Background(), srv.URL+path)
		took := time.Since(start)
		if !errors.Is(err, ErrDownloadFailed) {
			t.Fatalf("%s: %v, want DownloadFailed", path, err)
		}
		if took < timeout || took > 20*time.Second {
			t.Errorf("%s: failed after %v, want about %v", path, took, timeout)
		}
		select {
		case got := <-cancelled:
			if got != path {
				t.Errorf("cancelled request %s, want %s", got, path)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the server's request context was not cancelled after the time-out", path)
		}
		emb, err := e.Embed(context.Background(), srv.URL+"/coffee.png")
		if err != nil {
			t.Fatalf("after the %s time-out: %v", path, err)
		}
		if cos, _ := compare(emb, want); cos < 0.9999 {
			t.Errorf("after the %s time-out: cosine %.6f", path, cos)
		}
	}
}
