package loader

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// rangeEnv is an Env over a file in memory that honours Range, handing
// out bodies in chunks of chunk bytes and counting the bytes it delivered
// (what a streamed load received), so a test can bound what the loader
// holds at any time without trusting the loader's own accounting.
type rangeEnv struct {
	data      []byte
	chunk     int
	delivered int64
	requests  int
}

func (e *rangeEnv) Aborted() bool                 { return false }
func (e *rangeEnv) Alloc(n int64) (Buffer, error) { return make(Mem, n), nil }

func (e *rangeEnv) Fetch(_ string, r Request) (*Response, error) {
	e.requests++
	size := int64(len(e.data))
	from, to := int64(0), size
	status := 200
	if a, b, ok := strings.Cut(strings.TrimPrefix(r.Range, "bytes="), "-"); ok && r.Range != "" {
		from, _ = strconv.ParseInt(a, 10, 64)
		if b != "" {
			end, _ := strconv.ParseInt(b, 10, 64)
			to = min(end+1, size)
		}
		status = 206
	}
	h := map[string]string{"content-range": fmt.Sprintf("bytes %d-%d/%d", from, to-1, size), "etag": `"v1"`}
	return &Response{Status: status, Header: func(k string) string { return h[strings.ToLower(k)] }, Body: &rangeBody{e: e, at: from, end: to}}, nil
}

type rangeBody struct {
	e       *rangeEnv
	at, end int64
}

func (b *rangeBody) Next() (Bytes, error) {
	if b.at >= b.end {
		return nil, io.EOF
	}
	n := min(int64(b.e.chunk), b.end-b.at)
	c := append(Mem(nil), b.e.data[b.at:b.at+n]...)
	b.at += n
	b.e.delivered += n
	return c, nil
}

func (b *rangeBody) Close() {}

// reordered rewrites a safetensors file with its tensors in name order, as
// Hugging Face's files are (pre_layrnorm after the encoder, layers.10
// before layers.2): not the order the graph reads them. With byRead, in
// the order the graph reads them.
func reordered(t *testing.T, data []byte, byRead bool) []byte {
	t.Helper()
	hl := binary.LittleEndian.Uint64(data[:8])
	h, err := safetensors.ParseHeader(data[8:8+hl], int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, ti := range h.Tensors {
		ts = append(ts, safetensors.Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: data[ti.Begin:ti.End]})
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	if byRead {
		f, err := OpenUnchecked(Mem(data), nil, Vision)
		if err != nil {
			t.Fatal(err)
		}
		rank := map[string]int{}
		for i, n := range f.Names {
			rank[n] = i + 1
		}
		sort.SliceStable(ts, func(i, j int) bool { return rank[ts[i].Name] < rank[ts[j].Name] })
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, ts, h.Metadata); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestStreamHoldsABoundedWindow reads every tensor through a streamed
// load, in the order the graph does, releasing each once read (as the
// module's getter does), and checks after each read that the bytes
// delivered minus those released never exceed the header, the window, the
// tensor being read and a chunk: the file is never held whole, whatever
// its tensor order. It also checks the bytes read and that nothing was
// downloaded twice beyond the gaps.
func TestStreamHoldsABoundedWindow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    []byte
		maxReqs int
	}{
		{"read order", reordered(t, readModel(t, "tiny-f32.safetensors"), true), 2},
		{"fixture order", readModel(t, "tiny-f32.safetensors"), 40},
		{"name order", reordered(t, readModel(t, "tiny-f32.safetensors"), false), 40},
		{"int8", readModel(t, "tiny-int8.safetensors"), 40},
		{"whole CLIP file", readModel(t, "tiny-fullclip-f32.safetensors"), 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const window, chunk = 64 << 10, 4 << 10
			env := &rangeEnv{data: tc.data, chunk: chunk}
			var reports int
			s, err := Stream("http://x/m", Options{Env: env, StreamWindow: window, MaxGap: 1 << 10, Progress: func(int64, int64) { reports++ }})
			if err != nil {
				t.Fatal(err)
			}
			f := s.File
			src, err := OpenUnchecked(Mem(tc.data), nil, Vision)
			if err != nil {
				t.Fatal(err)
			}
			var largest, released, peak int64
			for _, n := range f.Stored {
				ti, _ := f.Tensor(n)
				largest = max(largest, ti.Len())
			}
			hdr := 8 + int64(binary.LittleEndian.Uint64(tc.data[:8]))
			bound := max(hdr, 64<<10) + window + largest + chunk
			var read []string
			for _, name := range f.Names {
				read = append(read, weights.ScaleName(name), name)
			}
			for _, name := range read {
				ti, ok := f.Tensor(name)
				if !ok {
					continue
				}
				got := make([]byte, ti.Len())
				if err := s.Read(got, ti.Begin); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				want, _ := src.Tensor(name)
				if !bytes.Equal(got, tc.data[want.Begin:want.End]) {
					t.Fatalf("%s: bytes differ from the file's", name)
				}
				held := env.delivered - released
				peak = max(peak, held)
				if held > bound {
					t.Fatalf("after reading %s: %d bytes delivered and not yet released (bound %d; file %d)", name, held, bound, len(tc.data))
				}
				if s.Held() > held {
					t.Fatalf("Held() = %d, more than the %d bytes delivered and not released", s.Held(), held)
				}
				s.Release(ti.Begin)
				released += ti.Len()
			}
			if err := s.Finish(); err != nil {
				t.Fatal(err)
			}
			if s.Held() != 0 {
				t.Errorf("Held() = %d after every tensor was released", s.Held())
			}
			if env.requests > tc.maxReqs {
				t.Errorf("%d requests, want <= %d", env.requests, tc.maxReqs)
			}
			if env.delivered > hdr+f.WeightBytes+int64(env.requests)*(64<<10) {
				t.Errorf("%d bytes delivered for %d bytes of weights in %d requests", env.delivered, f.WeightBytes, env.requests)
			}
			if reports == 0 {
				t.Error("no progress reported")
			}
			t.Logf("file %d bytes, weights %d, peak held %d (bound %d), %d requests", len(tc.data), f.WeightBytes, peak, bound, env.requests)
		})
	}
}

// TestStreamWholeFileAtOnce: a server that ignores Range sends the whole
// file; a streamed load still reads each tensor as it passes, and a body
// that ends early fails with DownloadFailed.
func TestStreamWholeFileAtOnce(t *testing.T) {
	data := readModel(t, "tiny-f32.safetensors")
	env := &wholeEnv{rangeEnv{data: data, chunk: 4 << 10}, 0}
	s, err := Stream("http://x/m", Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range s.File.Names {
		ti, _ := s.File.Tensor(name)
		if err := s.Read(make([]byte, ti.Len()), ti.Begin); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s.Release(ti.Begin)
	}
	if err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if env.requests != 1 {
		t.Errorf("%d requests, want 1", env.requests)
	}

	env = &wholeEnv{rangeEnv{data: data, chunk: 4 << 10}, int64(len(data) / 2)}
	s, err = Stream("http://x/m", Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	var rerr error
	for _, name := range s.File.Names {
		ti, _ := s.File.Tensor(name)
		if rerr = s.Read(make([]byte, ti.Len()), ti.Begin); rerr != nil {
			break
		}
	}
	s.Close()
	if CodeOf(rerr) != DownloadFailed {
		t.Fatalf("a whole-file body cut at half: %v, want DownloadFailed", rerr)
	}
}

// wholeEnv answers every request with the whole file (200), cut after cut
// bytes when cut > 0.
type wholeEnv struct {
	rangeEnv
	cut int64
}

func (e *wholeEnv) Fetch(_ string, _ Request) (*Response, error) {
	e.requests++
	end := int64(len(e.data))
	if e.cut > 0 {
		end = e.cut
	}
	h := map[string]string{"content-length": strconv.Itoa(len(e.data))}
	return &Response{Status: 200, Header: func(k string) string { return h[strings.ToLower(k)] }, Body: &rangeBody{e: &e.rangeEnv, at: 0, end: end}}, nil
}

// TestStreamCaches: with a cache the streamed download is kept and cached
// at Finish, and the next Stream is served from the cache.
func TestStreamCaches(t *testing.T) {
	data := readModel(t, "tiny-f32.safetensors")
	env := &rangeEnv{data: data, chunk: 4 << 10}
	c := &memCache{}
	s, err := Stream("http://x/m", Options{Env: env, Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range s.File.Names[:3] { // the rest is fetched by Finish
		ti, _ := s.File.Tensor(name)
		if err := s.Read(make([]byte, ti.Len()), ti.Begin); err != nil {
			t.Fatal(err)
		}
		s.Release(ti.Begin)
	}
	if err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if c.puts != 1 {
		t.Fatalf("%d cache puts, want 1", c.puts)
	}
	s, err = Stream("http://x/m", Options{Env: env, Cache: c, NoRevalidate: true})
	if err != nil {
		t.Fatal(err)
	}
	if !s.File.FromCache {
		t.Fatal("second load not from the cache")
	}
}

// streamCache is a memCache whose entries are written as streams
// (StreamCache); it records the most bytes written but not yet committed
// and whether an entry was aborted.
type streamCache struct {
	memCache
	aborts int
}

type memWriter struct {
	c    *streamCache
	key  string
	buf  []byte
	done bool
}

func (c *streamCache) Writer(key string, headerLen int64) (CacheWriter, error) {
	return &memWriter{c: c, key: key, buf: make([]byte, headerLen)}, nil
}

func (w *memWriter) Write(b Bytes) error {
	p := make([]byte, b.Len())
	b.CopyTo(p, 0)
	w.buf = append(w.buf, p...)
	return nil
}

func (w *memWriter) Commit(h Bytes) error {
	h.CopyTo(w.buf[:h.Len()], 0)
	w.c.Put(w.key, Mem(w.buf))
	w.done = true
	return nil
}

func (w *memWriter) Abort() {
	if !w.done {
		w.c.aborts++
	}
}

// TestStreamWritesTheCacheAsItReads: with a StreamCache the entry is
// written tensor by tensor as they are read, so the load still holds a
// bounded window (delivered minus released); the committed entry is a
// valid cache entry (digest checked by the next load, which is served from
// it); a load that fails leaves no entry.
func TestStreamWritesTheCacheAsItReads(t *testing.T) {
	data := reordered(t, readModel(t, "tiny-f32.safetensors"), false)
	const window, chunk = 64 << 10, 4 << 10
	env := &rangeEnv{data: data, chunk: chunk}
	c := &streamCache{}
	s, err := Stream("http://x/m", Options{Env: env, Cache: c, StreamWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	var released, largest int64
	for _, n := range s.File.Stored {
		ti, _ := s.File.Tensor(n)
		largest = max(largest, ti.Len())
	}
	bound := int64(64<<10) + window + 2*largest + chunk
	for _, name := range readNames(s.File.Names) {
		ti, ok := s.File.Tensor(name)
		if !ok {
			continue
		}
		if err := s.Read(make([]byte, ti.Len()), ti.Begin); err != nil {
			t.Fatal(err)
		}
		if held := env.delivered - released; held > bound {
			t.Fatalf("after %s: %d bytes delivered and not released (bound %d)", name, held, bound)
		}
		s.Release(ti.Begin)
		released += ti.Len()
	}
	if err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if c.puts != 1 {
		t.Fatalf("%d entries committed, want 1", c.puts)
	}
	before := env.requests
	s2, err := Stream("http://x/m", Options{Env: env, Cache: c, NoRevalidate: true})
	if err != nil {
		t.Fatal(err)
	}
	if !s2.File.FromCache || env.requests != before {
		t.Fatalf("second load: from cache %v, %d more requests", s2.File.FromCache, env.requests-before)
	}
	// The entry's tensors are the file's.
	for _, name := range s2.File.Stored {
		ti, _ := s2.File.Tensor(name)
		got := make([]byte, ti.Len())
		if err := s2.Read(got, ti.Begin); err != nil {
			t.Fatal(err)
		}
		src, _ := OpenUnchecked(Mem(data), nil, Vision)
		want, _ := src.Tensor(name)
		if !bytes.Equal(got, data[want.Begin:want.End]) {
			t.Fatalf("cached %s differs", name)
		}
	}

	// A failed build: Close drops the entry.
	c2 := &streamCache{}
	s3, err := Stream("http://x/m", Options{Env: &rangeEnv{data: data, chunk: chunk}, Cache: c2})
	if err != nil {
		t.Fatal(err)
	}
	ti, _ := s3.File.Tensor(s3.File.Names[0])
	if err := s3.Read(make([]byte, ti.Len()), ti.Begin); err != nil {
		t.Fatal(err)
	}
	s3.Release(ti.Begin)
	s3.Close()
	if c2.puts != 0 || c2.aborts != 1 {
		t.Fatalf("after a failed build: %d entries, %d aborts; want 0, 1", c2.puts, c2.aborts)
	}
}

// readingCache is a streamCache whose entries are also read as streams
// (CacheReader), in chunks, counting the bytes it delivered.
type readingCache struct {
	streamCache
	env *rangeEnv // delivered counts here
}

func (c *readingCache) Reader(key string) (Body, bool) {
	c.mu.Lock()
	b, ok := c.m[key]
	c.mu.Unlock()
	if !ok {
		return nil, true
	}
	return &rangeBody{e: &rangeEnv{data: b, chunk: c.env.chunk}, at: 0, end: int64(len(b))}, true
}

// TestStreamReadsTheCacheAsAStream: a cache hit is read tensor by tensor
// (a bounded window held, no request), its digest checked at Finish; a
// flipped byte or a cut entry is Damaged after the build and deleted, and
// the next load (DamagedCache) downloads.
func TestStreamReadsTheCacheAsAStream(t *testing.T) {
	data := readModel(t, "tiny-f32.safetensors")
	const chunk = 4 << 10
	env := &rangeEnv{data: data, chunk: chunk}
	c := &readingCache{env: env}
	build := func(s *Streamed, bound int64) error {
		var largest int64
		for _, n := range s.File.Stored {
			ti, _ := s.File.Tensor(n)
			largest = max(largest, ti.Len())
		}
		for _, name := range readNames(s.File.Names) {
			ti, ok := s.File.Tensor(name)
			if !ok {
				continue
			}
			if err := s.Read(make([]byte, ti.Len()), ti.Begin); err != nil {
				return err
			}
			if h := s.Held(); bound > 0 && h > bound+largest {
				t.Fatalf("after %s: %d bytes held", name, h)
			}
			s.Release(ti.Begin)
		}
		return s.Finish()
	}
	s, err := Stream("http://x/m", Options{Env: env, Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := build(s, 0); err != nil {
		t.Fatal(err)
	}
	good := append([]byte(nil), c.m[CacheKey("http://x/m")]...)

	reqs := env.requests
	s, err = Stream("http://x/m", Options{Env: env, Cache: c, NoRevalidate: true})
	if err != nil {
		t.Fatal(err)
	}
	if !s.File.FromCache || env.requests != reqs {
		t.Fatalf("hit: FromCache %v, %d requests", s.File.FromCache, env.requests-reqs)
	}
	if err := build(s, 2*chunk); err != nil {
		t.Fatalf("an intact entry: %v", err)
	}

	for what, damage := range map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { b[len(b)-777] ^= 4; return b },
		"cut short":    func(b []byte) []byte { return b[:len(b)-5000] },
	} {
		c.m[CacheKey("http://x/m")] = damage(append([]byte(nil), good...))
		s, err := Stream("http://x/m", Options{Env: env, Cache: c, NoRevalidate: true})
		if err != nil {
			t.Fatal(err)
		}
		err = build(s, 0)
		if err != nil && s.Err() != nil {
			err = s.Failed(err)
		}
		why, ok := Damaged(err)
		if !ok {
			t.Fatalf("%s: %v, want Damaged", what, err)
		}
		if _, still := c.m[CacheKey("http://x/m")]; still {
			t.Fatalf("%s: the damaged entry was not deleted", what)
		}
		reqs := env.requests
		s, err = Stream("http://x/m", Options{Env: env, Cache: c, DamagedCache: why})
		if err != nil {
			t.Fatal(err)
		}
		if s.File.FromCache || env.requests == reqs {
			t.Fatalf("%s: the load after damage did not download", what)
		}
		if err := build(s, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.m[CacheKey("http://x/m")], good) {
			t.Fatalf("%s: entry not restored", what)
		}
	}
}
