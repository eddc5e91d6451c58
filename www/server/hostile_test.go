package server

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestModelsOnlyRegularSafetensors: /models/ lists and serves exactly the
// top-level regular .safetensors files (symlinks inside the folder
// included); a symlink out of it, a FIFO, a directory or another file type
// is neither listed nor served, and the FIFO does not hang the request.
func TestModelsOnlyRegularSafetensors(t *testing.T) {
	repo, weights := fakeRepo(t)
	base := filepath.Dir(weights)
	if err := os.WriteFile(filepath.Join(base, "outside.safetensors"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustLink := func(old, name string) {
		if err := os.Symlink(old, filepath.Join(weights, name)); err != nil {
			t.Fatal(err)
		}
	}
	mustLink(filepath.Join(base, "outside.safetensors"), "out.safetensors")
	mustLink("tiny.safetensors", "alias.safetensors")
	mustLink(filepath.Join(base, "nowhere"), "dangling.safetensors")
	if err := os.Mkdir(filepath.Join(weights, "dir.safetensors"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(weights, "fifo.safetensors"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Repo: repo, Weights: weights})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ts := httptest.NewServer(h)
	defer ts.Close()
	ts.Client().Timeout = 5 * time.Second

	_, body := get(t, ts, "/models/", nil)
	var list []ModelFile
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "alias.safetensors,tiny.safetensors" {
		t.Fatalf("listed %v", names)
	}
	for _, m := range list {
		if resp, _ := get(t, ts, m.URL, nil); resp.StatusCode != 200 {
			t.Errorf("%s listed but %d", m.URL, resp.StatusCode)
		}
	}
	for _, p := range []string{"out.safetensors", "dangling.safetensors", "dir.safetensors", "fifo.safetensors", "notes.txt"} {
		if resp, _ := get(t, ts, "/models/"+p, nil); resp.StatusCode != 404 {
			t.Errorf("/models/%s: %d, want 404", p, resp.StatusCode)
		}
	}
}

// TestServerTimeouts: connections that send no request, sit idle after
// one, or never read a response are closed by NewServer's timeouts.
func TestServerTimeouts(t *testing.T) {
	big := strings.Repeat("x", 64<<20)
	var closed atomic.Int32
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write([]byte(big)) // fails once the write stall deadline passes
			return
		}
		w.Write([]byte("ok"))
	}), 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond)
	srv.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	waitClosed := func(what string, n int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for closed.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the server did not close the connection", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// 1. Connects and sends nothing.
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	waitClosed("no request", 1)
	// 2. One request, then an idle keep-alive connection.
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	buf := make([]byte, 512)
	if _, err := c2.Read(buf); err != nil {
		t.Fatal(err)
	}
	waitClosed("idle keep-alive", 2)
	// 3. Asks for 64 MB and never reads.
	c3, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if tc, ok := c3.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	c3.Write([]byte("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"))
	waitClosed("never reads", 3)
}

func TestListenWarning(t *testing.T) {
	lo := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8080}
	if w := ListenWarning(lo, "models"); w != "" {
		t.Errorf("loopback: %q", w)
	}
	if w := ListenWarning(&net.TCPAddr{IP: net.ParseIP("::1")}, ""); w != "" {
		t.Errorf("::1: %q", w)
	}
	for _, ip := range []string{"0.0.0.0", "::", "192.168.1.5"} {
		w := ListenWarning(&net.TCPAddr{IP: net.ParseIP(ip), Port: 8080}, "testdata/models")
		if !strings.HasPrefix(w, "warning:") || !strings.Contains(w, "testdata/models") {
			t.Errorf("%s: %q", ip, w)
		}
	}
}
