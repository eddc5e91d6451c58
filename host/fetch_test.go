package host

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		h          string
		size       int64
		start, end int64
		ok         bool
	}{
		{"bytes=0-65535", 100, 0, 99, true}, // clamped, as servers do
		{"bytes=10-19", 100, 10, 19, true},
		{"bytes=90-", 100, 90, 99, true},
		{"bytes=-10", 100, 90, 99, true},
		{"bytes=100-", 100, 0, 0, false},
		{"bytes=5-4", 100, 0, 0, false},
		{"bytes=0-1,4-5", 100, 0, 0, false},
		{"items=0-1", 100, 0, 0, false},
		{"bytes=x-1", 100, 0, 0, false},
	} {
		s, e, ok := parseRange(tc.h, tc.size)
		if ok != tc.ok || (ok && (s != tc.start || e != tc.end)) {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v; want %d, %d, %v", tc.h, tc.size, s, e, ok, tc.start, tc.end, tc.ok)
		}
	}
}

// TestLocalFetch: local files answer Range requests like an HTTP server,
// so the module's Range loader behaves the same on disk as on the network.
func TestLocalFetch(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.bin")
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := doFetch(ctx, http.DefaultClient, p, map[string]string{"Range": "bytes=100-199"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.body)
	r.body.Close()
	if r.status != 206 || r.header.Get("Content-Range") != "bytes 100-199/1000" || string(b) != string(data[100:200]) {
		t.Fatalf("range: status %d, Content-Range %q, %d bytes", r.status, r.header.Get("Content-Range"), len(b))
	}
	r, err = doFetch(ctx, http.DefaultClient, "file://"+p, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(r.body)
	r.body.Close()
	if r.status != 200 || len(b) != 1000 || r.header.Get("Content-Length") != "1000" {
		t.Fatalf("whole file: status %d, %d bytes", r.status, len(b))
	}
	r, err = doFetch(ctx, http.DefaultClient, p, map[string]string{"Range": "bytes=2000-"})
	if err != nil || r.status != 416 {
		t.Fatalf("unsatisfiable range: %v, %+v", err, r)
	}
	if _, err := doFetch(ctx, http.DefaultClient, p+".missing", nil); !errors.Is(err, errFetch) {
		t.Fatalf("missing file: %v, want errFetch", err)
	}
	if _, err := doFetch(ctx, http.DefaultClient, "ftp://example.com/x", nil); !errors.Is(err, errFetch) {
		t.Fatalf("unsupported scheme: %v", err)
	}
}

func TestFileCache(t *testing.T) {
	c := fileCache{dir: t.TempDir()}
	if b, err := c.get("k"); b != nil || err != nil {
		t.Fatalf("miss: %v %v", b, err)
	}
	if err := c.put("k", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if b, err := c.get("k"); string(b) != "hello" || err != nil {
		t.Fatalf("hit: %q %v", b, err)
	}
	if b, _ := c.get("other"); b != nil {
		t.Fatal("keys collide")
	}
}
