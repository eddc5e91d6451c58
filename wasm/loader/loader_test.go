package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// httpEnv is an Env over net/http with Go-heap buffers.
type httpEnv struct {
	client  *http.Client
	aborted atomic.Bool
	// abortAfter, when > 0, aborts after that many chunks.
	abortAfter int32
	chunks     atomic.Int32
	requests   []Request
}

func (e *httpEnv) Aborted() bool { return e.aborted.Load() }

func (e *httpEnv) Alloc(n int64) (Buffer, error) { return make(Mem, n), nil }

func (e *httpEnv) Fetch(url string, r Request) (*Response, error) {
	e.requests = append(e.requests, r)
	ctx, cancel := context.WithCancelCause(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	for k, v := range map[string]string{"Range": r.Range, "If-Range": r.IfRange, "If-Match": r.IfMatch, "If-None-Match": r.IfNoneMatch} {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	c := e.client
	if c == nil {
		c = http.DefaultClient
	}
	// The stall timer cancels the request when it fires; every chunk that
	// arrives resets it.
	var timer *time.Timer
	if r.Stall > 0 {
		timer = time.AfterFunc(r.Stall, func() { cancel(ErrStalled) })
	}
	resp, err := c.Do(req)
	if err != nil {
		if context.Cause(ctx) == ErrStalled {
			err = fmt.Errorf("%w: %v", ErrStalled, err)
		}
		cancel(nil)
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header.Get, Body: &httpBody{e: e, r: resp.Body, ctx: ctx, cancel: cancel, timer: timer, stall: r.Stall}}, nil
}

type httpBody struct {
	e      *httpEnv
	r      io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	stall  time.Duration
}

func (b *httpBody) Next() (Bytes, error) {
	if b.timer != nil {
		b.timer.Reset(b.stall)
	}
	buf := make([]byte, 16<<10)
	n, err := b.r.Read(buf)
	if err != nil && context.Cause(b.ctx) == ErrStalled {
		return nil, fmt.Errorf("%w: %v", ErrStalled, err)
	}
	if n > 0 {
		if k := b.e.chunks.Add(1); b.e.abortAfter > 0 && k >= b.e.abortAfter {
			b.e.aborted.Store(true)
		}
		return Mem(buf[:n]), nil
	}
	if err == nil {
		return Mem(nil), nil
	}
	return nil, err
}

func (b *httpBody) Close() {
	if b.timer != nil {
		b.timer.Stop()
	}
	b.r.Close()
	b.cancel(nil)
}

// memCache is a Cache in a map.
type memCache struct {
	mu      sync.Mutex
	m       map[string]Mem
	puts    int
	deletes int
}

func (c *memCache) Get(k string) Bytes {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.m[k]; ok {
		// A copy: the loader owns what Get returns (as the JS adapters'
		// callers do).
		return append(Mem(nil), b...)
	}
	return nil
}

func (c *memCache) Put(k string, b Bytes) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]Mem{}
	}
	buf := make(Mem, b.Len())
	b.CopyTo(buf, 0)
	c.m[k] = buf
	c.puts++
}

func (c *memCache) Delete(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
	c.deletes++
}

func readModel(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "models", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// server serves data at /m; mode "range" honours Range (http.ServeContent),
// "full" ignores it. It counts requests and body bytes written.
type server struct {
	*httptest.Server
	requests atomic.Int32
	sent     atomic.Int64
}

type countWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

func newServer(t *testing.T, data []byte, mode string) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		cw := countWriter{w, &s.sent}
		switch mode {
		case "range":
			w.Header().Set("ETag", `"v1"`)
			http.ServeContent(cw, r, "m.safetensors", time.Time{}, bytes.NewReader(data))
		case "full":
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			cw.Write(data)
		case "404":
			http.NotFound(w, r)
		case "500":
			http.Error(w, "boom", 500)
		case "drop": // promise everything, send half, hang up
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			cw.Write(data[:len(data)/2])
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

type progressLog struct {
	calls [][2]int64
}

func (p *progressLog) fn(l, tot int64) { p.calls = append(p.calls, [2]int64{l, tot}) }

func (p *progressLog) check(t *testing.T) {
	t.Helper()
	if len(p.calls) == 0 {
		t.Fatal("no progress reported")
	}
	prev := -1.0
	for _, c := range p.calls {
		fr := float64(c[0]) / float64(c[1])
		if c[1] <= 0 || fr < prev || fr > 1 {
			t.Fatalf("progress not monotonic in [0,1]: %v", p.calls)
		}
		prev = fr
	}
	last := p.calls[len(p.calls)-1]
	if last[0] != last[1] {
		t.Fatalf("last progress %v is not exactly 1", last)
	}
}

// sameTensors checks that every needed tensor of f has the bytes of the
// same tensor in the original file.
func sameTensors(t *testing.T, f *File, orig []byte) {
	t.Helper()
	h, err := safetensors.ReadHeader(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range f.Names {
		a, ok := f.Tensor(name)
		b, ok2 := h.Tensor(name)
		if !ok || !ok2 {
			t.Fatalf("tensor %s missing", name)
		}
		got := make([]byte, a.Len())
		f.Data.CopyTo(got, a.Begin)
		if !bytes.Equal(got, orig[b.Begin:b.End]) {
			t.Fatalf("tensor %s bytes differ", name)
		}
		if a.DType == safetensors.F32 && a.Begin%4 != 0 {
			t.Fatalf("tensor %s at %d is not 4-aligned", name, a.Begin)
		}
	}
}

func TestOpenFixtures(t *testing.T) {
	for _, c := range []struct {
		file  string
		dtype safetensors.DType
		heads int
	}{
		{"tiny-f32.safetensors", safetensors.F32, 2},
		{"tiny-f16.safetensors", safetensors.F16, 2},
		{"tiny-fullclip-f32.safetensors", safetensors.F32, 2},
		{"b32l2-f16.safetensors", safetensors.F16, 12},
	} {
		f, err := Open(Mem(readModel(t, c.file)), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if f.DType != c.dtype || f.Config.NumHeads != c.heads || len(f.Names) == 0 {
			t.Fatalf("%s: dtype %s heads %d names %d", c.file, f.DType, f.Config.NumHeads, len(f.Names))
		}
	}
}

func TestOpenRejects(t *testing.T) {
	good := readModel(t, "tiny-f32.safetensors")
	for name, data := range map[string][]byte{
		"empty":     nil,
		"html":      []byte("<!doctype html><html>not a model</html>"),
		"truncated": good[:len(good)-100],
		"short":     good[:5],
	} {
		_, err := Open(Mem(data), nil)
		if !errors.Is(err, ErrInvalidModel) {
			t.Errorf("%s: err %v, want InvalidModel", name, err)
		}
	}
}

func TestRangeFullCLIP(t *testing.T) {
	data := readModel(t, "tiny-fullclip-f32.safetensors")
	s := newServer(t, data, "range")
	var p progressLog
	cache := &memCache{}
	f, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, Cache: cache, Progress: p.fn, PrefixSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	p.check(t)
	sameTensors(t, f, data)
	var need int64
	for _, n := range f.Names {
		ti, _ := f.Tensor(n)
		need += ti.Len()
	}
	// Only the header, the vision tensors and at most the 64 KiB gap slack
	// may travel; the text tower must not.
	if sent := s.sent.Load(); sent >= int64(len(data)) || sent > need+4096+2*(64<<10) {
		t.Fatalf("sent %d bytes of a %d-byte file for %d needed", sent, len(data), need)
	}
	if f.Downloaded != s.sent.Load() {
		t.Errorf("Downloaded %d, server sent %d", f.Downloaded, s.sent.Load())
	}
	if f.Header.Metadata[MetaETag] != `"v1"` || f.Header.Metadata[MetaLength] != fmt.Sprint(len(data)) {
		t.Errorf("metadata %v", f.Header.Metadata)
	}
	if _, ok := f.Tensor("logit_scale"); ok {
		t.Error("text tensors in the assembled file")
	}
	// The assembled file is a valid vision-only safetensors file.
	g, err := Open(f.Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Config != f.Config {
		t.Fatalf("config %+v != %+v", g.Config, f.Config)
	}
	// Second load: from the cache, after one revalidation answered 304
	// (no body).
	before, sent := s.requests.Load(), s.sent.Load()
	var p2 progressLog
	f2, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, Cache: cache, Progress: p2.fn})
	if err != nil {
		t.Fatal(err)
	}
	if !f2.FromCache || s.requests.Load() != before+1 || s.sent.Load() != sent {
		t.Fatalf("second load: fromCache %v, %d new requests, %d body bytes", f2.FromCache, s.requests.Load()-before, s.sent.Load()-sent)
	}
	p2.check(t)
	sameTensors(t, f2, data)
}

func TestHeaderLongerThanPrefix(t *testing.T) {
	data := readModel(t, "tiny-f32.safetensors")
	for _, mode := range []string{"range", "full"} {
		s := newServer(t, data, mode)
		var p progressLog
		f, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, Progress: p.fn, PrefixSize: 16})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		p.check(t)
		sameTensors(t, f, data)
	}
}

func TestRangeIgnored(t *testing.T) {
	data := readModel(t, "tiny-fullclip-f32.safetensors")
	s := newServer(t, data, "full")
	var p progressLog
	cache := &memCache{}
	f, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, Progress: p.fn, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	p.check(t)
	sameTensors(t, f, data)
	if s.requests.Load() != 1 || f.Downloaded != int64(len(data)) {
		t.Fatalf("%d requests, %d bytes; want 1 full download of %d", s.requests.Load(), f.Downloaded, len(data))
	}
	if last := p.calls[len(p.calls)-1]; last[1] != int64(len(data)) {
		t.Fatalf("progress total %d, want the file length %d", last[1], len(data))
	}
	if cache.puts != 1 {
		t.Fatalf("%d cache puts", cache.puts)
	}
}

func TestFailures(t *testing.T) {
	data := readModel(t, "tiny-fullclip-f32.safetensors")
	for _, c := range []struct {
		mode string
		data []byte
		want error
	}{
		{"404", data, ErrDownloadFailed},
		{"500", data, ErrDownloadFailed},
		{"drop", data, ErrDownloadFailed},
		{"range", data[:len(data)-1000], ErrInvalidModel},
		{"full", data[:len(data)-1000], ErrInvalidModel},
		{"range", []byte("<html>oops</html>"), ErrInvalidModel},
	} {
		s := newServer(t, c.data, c.mode)
		cache := &memCache{}
		_, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, Cache: cache})
		if !errors.Is(err, c.want) {
			t.Errorf("%s (%d bytes): err %v, want %v", c.mode, len(c.data), err, c.want)
		}
		if cache.puts != 0 {
			t.Errorf("%s: cached a failed download", c.mode)
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Load("http://"+addr+"/m", Options{Env: &httpEnv{}})
	if !errors.Is(err, ErrDownloadFailed) {
		t.Fatalf("err %v", err)
	}
}

func TestAbort(t *testing.T) {
	data := readModel(t, "tiny-fullclip-f32.safetensors")
	for _, mode := range []string{"range", "full"} {
		s := newServer(t, data, mode)
		cache := &memCache{}
		_, err := Load(s.URL+"/m", Options{Env: &httpEnv{abortAfter: 2}, Cache: cache, PrefixSize: 4096})
		if !errors.Is(err, ErrAborted) || cache.puts != 0 {
			t.Fatalf("%s: err %v, puts %d", mode, err, cache.puts)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	for in, want := range map[string][3]int64{
		"bytes 0-99/1000":  {0, 1000, 1},
		"bytes 10-19/*":    {10, -1, 1},
		"bytes */1000":     {0, 0, 0},
		"items 0-1/2":      {0, 0, 0},
		"bytes 5-9/banana": {0, 0, 0},
	} {
		s, n, ok := parseContentRange(in)
		if ok != (want[2] == 1) || ok && (s != want[0] || n != want[1]) {
			t.Errorf("%q: %d %d %v", in, s, n, ok)
		}
	}
}

// A server that honours Range for the header prefix only and then ignores
// it: the loader must take the full body of the second response.
func TestRangeThenIgnored(t *testing.T) {
	data := readModel(t, "tiny-fullclip-f32.safetensors")
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			http.ServeContent(w, r, "m", time.Time{}, bytes.NewReader(data))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data)
	}))
	defer srv.Close()
	var p progressLog
	f, err := Load(srv.URL+"/m", Options{Env: &httpEnv{}, Progress: p.fn, PrefixSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	p.check(t)
	sameTensors(t, f, data)
	if n.Load() != 2 {
		t.Fatalf("%d requests, want 2", n.Load())
	}
}

// A 206 without a readable Content-Range (CORS hides it unless exposed):
// the body is taken as the range requested.
func TestRangeWithoutContentRange(t *testing.T) {
	data := readModel(t, "tiny-fullclip-f32.safetensors")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a, b int
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b); err != nil {
			t.Errorf("range %q: %v", r.Header.Get("Range"), err)
		}
		b = min(b, len(data)-1)
		w.WriteHeader(206)
		w.Write(data[a : b+1])
	}))
	defer srv.Close()
	var p progressLog
	f, err := Load(srv.URL+"/m", Options{Env: &httpEnv{}, Progress: p.fn, PrefixSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	p.check(t)
	sameTensors(t, f, data)
}

// overlongEnv answers Range requests from memory like memEnv but keeps
// every 206 body going after the bytes asked for (a broken or hostile
// server), failing once junkLimit extra chunks have been read in all.
type overlongEnv struct {
	memEnv
	junk      int
	junkLimit int
	// ignoreRange: every response is a 200 of the whole file, then junk.
	ignoreRange bool
}

func (e *overlongEnv) Fetch(url string, rq Request) (*Response, error) {
	if e.ignoreRange {
		rq.Range = ""
	}
	r, err := e.memEnv.Fetch(url, rq)
	if err != nil {
		return r, err
	}
	r.Body = &overlongBody{Body: r.Body, e: e}
	return r, nil
}

type overlongBody struct {
	Body
	e *overlongEnv
}

func (b *overlongBody) Next() (Bytes, error) {
	c, err := b.Body.Next()
	if err != io.EOF {
		return c, err
	}
	if b.e.junk++; b.e.junk > b.e.junkLimit {
		return nil, errors.New("read too far past the requested range")
	}
	return make(Mem, 4096), nil
}

// TestRangeBodyLongerThanAsked: the bytes past a Range response's requested
// end are not read (an endless 206 body would otherwise never finish), and
// the weights are still right.
func TestRangeBodyLongerThanAsked(t *testing.T) {
	data := readModel(t, "tiny-fullclip-f32.safetensors")
	e := &overlongEnv{memEnv: memEnv{data: data, chunk: 4096}, junkLimit: 1000}
	f, err := Load("mem", Options{Env: e, PrefixSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	sameTensors(t, f, data)
	if e.junk != 0 {
		t.Fatalf("%d chunks read past the requested ranges", e.junk)
	}
}

// TestFullBodyLongerThanFile: a 200 body is not read past the end of the
// data section its header declares.
func TestFullBodyLongerThanFile(t *testing.T) {
	data := readModel(t, "tiny-fullclip-f32.safetensors")
	e := &overlongEnv{memEnv: memEnv{data: data, chunk: 4096}, junkLimit: 1000, ignoreRange: true}
	var p progressLog
	f, err := Load("mem", Options{Env: e, Progress: p.fn})
	if err != nil {
		t.Fatal(err)
	}
	p.check(t)
	sameTensors(t, f, data)
	if e.junk != 0 || f.Downloaded != int64(len(data)) {
		t.Fatalf("%d chunks read past the file, %d bytes downloaded of %d", e.junk, f.Downloaded, len(data))
	}
}
