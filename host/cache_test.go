package host

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
