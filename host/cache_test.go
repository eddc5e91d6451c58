package host

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestCacheDamageDetected: bytes flipped inside a cached model's tensor
// data, or an entry cut short, are detected on the next load: the entry is
// removed, the model downloaded again (and the embedding right), never used.
// With the server gone, the load fails with DownloadFailed naming the
// damaged cache. Both engines.
func TestCacheDamageDetected(t *testing.T) {
	for _, eng := range []Engine{EngineNative, EngineWasm} {
		t.Run(string(eng), func(t *testing.T) { testCacheDamage(t, eng) })
	}
}

func testCacheDamage(t *testing.T, eng Engine) {
	var reqs atomic.Int64
	srv := serveModel(t, modelPath("tiny-f32"), true, &reqs)
	url := srv.URL + "/m.safetensors"
	cache := t.TempDir()
	golden := goldenEmbeddings(t, "tiny-f32")["images/coffee.png"]
	img := filepath.Join(testdataDir, "images", "coffee.png")
	load := func() (*Embedder, error) {
		return New(context.Background(), Options{Model: url, CacheDir: cache, Threads: 1, Engine: eng})
	}
	check := func(e *Embedder) {
		t.Helper()
		got, err := e.Embed(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		if cos, _ := compare(got, golden); cos < 0.9999 {
			t.Fatalf("cosine %.6f", cos)
		}
	}
	e, err := load()
	if err != nil {
		t.Fatal(err)
	}
	check(e)
	e.Close()
	entries, _ := filepath.Glob(filepath.Join(cache, "models", "*.safetensors"))
	if len(entries) != 1 {
		t.Fatalf("cache entries %v", entries)
	}
	entry := entries[0]
	good, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(good, []byte(`"imgembed.sha256":"`)) {
		t.Fatal("the cache entry carries no digest")
	}
	for name, damage := range map[string]func([]byte) []byte{
		"flipped tensor byte": func(b []byte) []byte { b[len(b)-1000] ^= 0x01; return b },
		"truncated":           func(b []byte) []byte { return b[:len(b)/2] },
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(entry, damage(append([]byte(nil), good...)), 0o644); err != nil {
				t.Fatal(err)
			}
			before := reqs.Load()
			e, err := load()
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if reqs.Load() == before {
				t.Fatal("the damaged entry was used (no download)")
			}
			check(e)
			now, _ := os.ReadFile(entry)
			if !bytes.Equal(now, good) {
				t.Fatal("the entry was not replaced by a good copy")
			}
		})
	}
	t.Run("offline", func(t *testing.T) {
		b := append([]byte(nil), good...)
		b[len(b)-1000] ^= 0x01
		if err := os.WriteFile(entry, b, 0o644); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		_, err := load()
		var he *Error
		if !errors.As(err, &he) || he.Code != DownloadFailed || !strings.Contains(err.Error(), "cached copy") {
			t.Fatalf("err %v, want DownloadFailed about the damaged cached copy", err)
		}
		if _, err := os.Stat(entry); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the damaged entry is still there (%v)", err)
		}
	})
}

// TestWasmEngineCacheStreamed: the wasm engine's cache adapter has the
// streamed methods, and the module uses them: a download is written with
// openWriter (never kept whole for put/putParts), a hit read with
// openReader (never get), the entry complete and the embeddings right both
// times; a download cut short leaves neither an entry nor a temporary file.
func TestWasmEngineCacheStreamed(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	noteCacheCallHook = func(m string) {
		mu.Lock()
		calls = append(calls, m)
		mu.Unlock()
	}
	t.Cleanup(func() { noteCacheCallHook = nil })
	took := func() []string {
		mu.Lock()
		defer mu.Unlock()
		c := calls
		calls = nil
		return c
	}
	golden := goldenEmbeddings(t, "tiny-f32")["images/coffee.png"]
	img := filepath.Join(testdataDir, "images", "coffee.png")
	model, err := os.ReadFile(modelPath("tiny-f32"))
	if err != nil {
		t.Fatal(err)
	}
	leftovers := func(t *testing.T, cache string) []string {
		t.Helper()
		parts, _ := filepath.Glob(filepath.Join(cache, "models", ".part-*"))
		return parts
	}
	for _, ranges := range []bool{true, false} {
		t.Run("ranges="+strconv.FormatBool(ranges), func(t *testing.T) {
			srv := serveModel(t, modelPath("tiny-f32"), ranges, nil)
			cache := t.TempDir()
			load := func() {
				t.Helper()
				e, err := New(context.Background(), Options{Engine: EngineWasm, Model: srv.URL + "/m.safetensors", CacheDir: cache, Threads: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				got, err := e.Embed(context.Background(), img)
				if err != nil {
					t.Fatal(err)
				}
				if cos, _ := compare(got, golden); cos < 0.9999 {
					t.Fatalf("cosine %.6f", cos)
				}
			}
			took()
			load()
			c := took()
			if !slices.Contains(c, "openWriter") || slices.Contains(c, "put") || slices.Contains(c, "putParts") {
				t.Fatalf("first load called %v: want openWriter, and neither put nor putParts", c)
			}
			entries, _ := filepath.Glob(filepath.Join(cache, "models", "*.safetensors"))
			if len(entries) != 1 {
				t.Fatalf("cache entries %v", entries)
			}
			if p := leftovers(t, cache); len(p) != 0 {
				t.Fatalf("temporary files left: %v", p)
			}
			entry, err := os.ReadFile(entries[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(entry, []byte(`"imgembed.sha256":"`)) || len(entry) < 8 {
				t.Fatal("the entry carries no digest")
			}
			load()
			c = took()
			if !slices.Contains(c, "openReader") || slices.Contains(c, "get") {
				t.Fatalf("second load called %v: want openReader and not get", c)
			}
		})
	}
	t.Run("cut short", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(model)))
			w.Write(model[:len(model)-len(model)/3])
		}))
		defer srv.Close()
		cache := t.TempDir()
		took()
		_, err := New(context.Background(), Options{Engine: EngineWasm, Model: srv.URL + "/m.safetensors", CacheDir: cache, Threads: 1})
		var he *Error
		if !errors.As(err, &he) || he.Code != DownloadFailed {
			t.Fatalf("err %v, want DownloadFailed", err)
		}
		if c := took(); !slices.Contains(c, "openWriter") {
			t.Fatalf("calls %v: the entry was not being streamed (the test checks nothing)", c)
		}
		entries, _ := filepath.Glob(filepath.Join(cache, "models", "*"))
		if p := leftovers(t, cache); len(entries) != 0 || len(p) != 0 {
			t.Fatalf("left in the cache: %v %v", entries, p)
		}
	})
}

// TestCacheWriter: the streamed entry is header + writes in order, visible
// only after commit; a wrong header length or abort leaves nothing.
func TestCacheWriter(t *testing.T) {
	fc := fileCache{dir: t.TempDir()}
	files := func() []string {
		all, _ := filepath.Glob(filepath.Join(fc.dir, "models", "*"))
		hidden, _ := filepath.Glob(filepath.Join(fc.dir, "models", ".*"))
		return append(all, hidden...)
	}
	w, err := fc.openWriter("k", 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"abc", "", "defg"} {
		if err := w.write([]byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(fc.path("k")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("entry visible before commit (%v)", err)
	}
	if err := w.commit([]byte("HEAD")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(fc.path("k")); err != nil || string(got) != "HEADabcdefg" {
		t.Fatalf("entry %q, %v", got, err)
	}
	if err := w.write([]byte("x")); err == nil {
		t.Fatal("write after commit succeeded")
	}
	if f := files(); len(f) != 1 {
		t.Fatalf("files %v", f)
	}

	w, err = fc.openWriter("bad", 4)
	if err != nil {
		t.Fatal(err)
	}
	w.write([]byte("abc"))
	if err := w.commit([]byte("HEADER")); err == nil || !strings.Contains(err.Error(), "header of 6 bytes, 4 expected") {
		t.Fatalf("err %v", err)
	}
	w, err = fc.openWriter("aborted", 0)
	if err != nil {
		t.Fatal(err)
	}
	w.write([]byte("abc"))
	w.abort()
	w.abort()
	if err := w.commit(nil); err == nil {
		t.Fatal("commit after abort succeeded")
	}
	if f := files(); len(f) != 1 {
		t.Fatalf("files %v, want only the committed entry", f)
	}
}
