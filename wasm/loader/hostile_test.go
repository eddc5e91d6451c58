package loader

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// otherVersion returns data with every tensor value changed (the low
// mantissa byte of each float32 flipped: still finite) and the same size:
// a new version of the file that only its validator tells apart.
func otherVersion(t *testing.T, data []byte) []byte {
	t.Helper()
	h, err := safetensors.ReadHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(data)
	for i := h.DataStart; i < int64(len(b)); i += 4 {
		b[i] ^= 0x5a
	}
	return b
}

// versionServer serves one of two versions of a file at /m. flip decides,
// per request number (1-based), whether that request sees version B.
// validator is how a version is told apart: "etag" (strong ETag),
// "weak" (weak ETag), "lastmod" (Last-Modified only). With honour the
// server evaluates If-Range and If-Match (http.ServeContent); without it
// the server ignores them and answers the range of whatever version it
// now has (the loader must then notice by the validator).
type versionServer struct {
	*httptest.Server
	requests atomic.Int32
	ifRange  atomic.Int32 // requests that carried If-Range
}

func newVersionServer(t *testing.T, a, b []byte, validator string, honour bool, flip func(n int32) bool) *versionServer {
	s := &versionServer{}
	modA := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	modB := modA.Add(time.Hour)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.requests.Add(1)
		if r.Header.Get("If-Range") != "" {
			s.ifRange.Add(1)
		}
		data, tag, mod := a, "a1", modA
		if flip(n) {
			data, tag, mod = b, "b2", modB
		}
		switch validator {
		case "etag":
			w.Header().Set("ETag", `"`+tag+`"`)
		case "weak":
			w.Header().Set("ETag", `W/"`+tag+`"`)
		}
		if !honour {
			r.Header.Del("If-Range")
			r.Header.Del("If-Match")
		}
		http.ServeContent(w, r, "m", mod, bytes.NewReader(data))
	}))
	t.Cleanup(s.Close)
	return s
}

// TestChangedDuringDownload: a file that changes between the header read
// and the range reads (same size, new validator) is never assembled from
// both versions nor cached: the load starts over once and gets the new
// version whole, or, when the file changes again, fails with
// DownloadFailed "changed during download". Every validator kind, with
// servers that honour If-Range/If-Match and servers that ignore them.
func TestChangedDuringDownload(t *testing.T) {
	a := readModel(t, "tiny-fullclip-f32.safetensors")
	b := otherVersion(t, a)
	for _, validator := range []string{"etag", "weak", "lastmod"} {
		for _, honour := range []bool{true, false} {
			name := validator
			if !honour {
				name += "/ignores-conditions"
			}
			t.Run(name+"/once", func(t *testing.T) {
				// Request 1 (header prefix) sees A, everything after sees B.
				s := newVersionServer(t, a, b, validator, honour, func(n int32) bool { return n > 1 })
				cache := &memCache{}
				f, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, Cache: cache, PrefixSize: 4096})
				if err != nil {
					t.Fatal(err)
				}
				sameTensors(t, f, b)
				if cache.puts != 1 {
					t.Fatalf("%d cache puts", cache.puts)
				}
				g, err := Open(cache.m[CacheKey(s.URL+"/m")], nil)
				if err != nil {
					t.Fatal(err)
				}
				sameTensors(t, g, b)
				if honour && validator != "weak" && s.ifRange.Load() == 0 {
					t.Fatal("no request carried If-Range")
				}
			})
			t.Run(name+"/always", func(t *testing.T) {
				// The version alternates on every request.
				s := newVersionServer(t, a, b, validator, honour, func(n int32) bool { return n%2 == 0 })
				cache := &memCache{}
				_, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, Cache: cache, PrefixSize: 4096})
				if CodeOf(err) != DownloadFailed || !strings.Contains(err.Error(), "changed during download") {
					t.Fatalf("got %v, want DownloadFailed: changed during download", err)
				}
				if cache.puts != 0 {
					t.Fatalf("a mixed file was cached (%d puts)", cache.puts)
				}
			})
		}
	}
}

// TestConditionalHeaders: requests after the first carry the first
// response's strong ETag in If-Range and If-Match; a weak ETag is never
// sent (it cannot match a strong comparison).
func TestConditionalHeaders(t *testing.T) {
	a := readModel(t, "tiny-fullclip-f32.safetensors")
	for _, c := range []struct{ validator, ifRange, ifMatch string }{
		{"etag", `"a1"`, `"a1"`},
		{"weak", "", ""},
		{"lastmod", "Thu, 01 Jan 2026 00:00:00 GMT", ""},
	} {
		s := newVersionServer(t, a, a, c.validator, true, func(int32) bool { return false })
		e := &httpEnv{}
		f, err := Load(s.URL+"/m", Options{Env: e, PrefixSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		sameTensors(t, f, a)
		if len(e.requests) < 2 {
			t.Fatalf("%s: %d requests", c.validator, len(e.requests))
		}
		if r := e.requests[0]; r.IfRange != "" || r.IfMatch != "" {
			t.Fatalf("%s: the first request is conditional: %+v", c.validator, r)
		}
		for _, r := range e.requests[1:] {
			if r.IfRange != c.ifRange || r.IfMatch != c.ifMatch {
				t.Fatalf("%s: request %+v, want If-Range %q If-Match %q", c.validator, r, c.ifRange, c.ifMatch)
			}
			if r.Stall != DefaultStallTimeout {
				t.Fatalf("%s: stall %v", c.validator, r.Stall)
			}
		}
	}
}

// TestStalledDownload: a server that stops sending mid-body (or never
// answers) fails the load with DownloadFailed "stalled" after the stall
// timeout instead of hanging.
func TestStalledDownload(t *testing.T) {
	data := readModel(t, "tiny-fullclip-f32.safetensors")
	for _, where := range []string{"headers", "prefix", "tensors"} {
		t.Run(where, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				k := n.Add(1)
				stallNow := where == "headers" || (where == "tensors" && k > 1)
				if where == "headers" {
					<-r.Context().Done()
					return
				}
				if !stallNow && where == "prefix" {
					// Half the prefix, then nothing.
					w.Header().Set("Content-Range", "bytes 0-4095/"+itoa(len(data)))
					w.Header().Set("Content-Length", "4096")
					w.WriteHeader(206)
					w.Write(data[:2048])
					w.(http.Flusher).Flush()
					<-r.Context().Done()
					return
				}
				if stallNow {
					w.Header().Set("Content-Length", itoa(len(data)))
					w.WriteHeader(200)
					w.Write(data[:len(data)/2])
					w.(http.Flusher).Flush()
					<-r.Context().Done()
					return
				}
				http.ServeContent(w, r, "m", time.Time{}, bytes.NewReader(data))
			}))
			defer srv.Close()
			t0 := time.Now()
			_, err := Load(srv.URL+"/m", Options{Env: &httpEnv{}, PrefixSize: 4096, StallTimeout: 300 * time.Millisecond})
			if CodeOf(err) != DownloadFailed || !strings.Contains(err.Error(), "stalled") {
				t.Fatalf("got %v, want DownloadFailed stalled", err)
			}
			if d := time.Since(t0); d > 10*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// poison returns a copy of the file data with element k of tensor name set
// to a non-finite value (all exponent bits set, mantissa from nan).
func poison(t *testing.T, data []byte, name string, k int64, nan bool) []byte {
	t.Helper()
	h, err := safetensors.ReadHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	ti, ok := h.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	b := bytes.Clone(data)
	size, _ := ti.DType.Size()
	at := ti.Begin + k*int64(size)
	switch ti.DType {
	case safetensors.F32:
		v := uint32(0x7f800000)
		if nan {
			v |= 1
		}
		binary.LittleEndian.PutUint32(b[at:], v)
	case safetensors.F16:
		v := uint16(0x7c00)
		if nan {
			v |= 1
		}
		binary.LittleEndian.PutUint16(b[at:], v)
	default:
		t.Fatalf("dtype %s", ti.DType)
	}
	return b
}

// TestNonFiniteWeights: a NaN or an infinity anywhere in a needed tensor
// fails Open and Load with InvalidModel naming the tensor (it would make
// every embedding NaN); nothing is cached.
func TestNonFiniteWeights(t *testing.T) {
	for _, c := range []struct {
		file, tensor string
		k            int64
		nan          bool
	}{
		{"tiny-f32.safetensors", "vision_model.encoder.layers.0.mlp.fc1.weight", 7, true},
		{"tiny-f32.safetensors", "visual_projection.weight", 0, false},
		{"tiny-f16.safetensors", "vision_model.embeddings.patch_embedding.weight", 3, true},
		{"tiny-fullclip-f32.safetensors", "vision_model.post_layernorm.bias", 1, false},
	} {
		data := poison(t, readModel(t, c.file), c.tensor, c.k, c.nan)
		_, err := Open(Mem(data), nil)
		if CodeOf(err) != InvalidModel || !strings.Contains(err.Error(), c.tensor) {
			t.Fatalf("%s %s: Open: %v, want InvalidModel naming the tensor", c.file, c.tensor, err)
		}
		srv := newVersionServer(t, data, data, "etag", true, func(int32) bool { return false })
		cache := &memCache{}
		_, err = Load(srv.URL+"/m", Options{Env: &httpEnv{}, Cache: cache, PrefixSize: 4096})
		if CodeOf(err) != InvalidModel || !strings.Contains(err.Error(), c.tensor) || cache.puts != 0 {
			t.Fatalf("%s %s: Load: %v (%d puts), want InvalidModel naming the tensor", c.file, c.tensor, err, cache.puts)
		}
	}
	// The untouched files load.
	for _, file := range []string{"tiny-f32.safetensors", "tiny-f16.safetensors"} {
		if _, err := Open(Mem(readModel(t, file)), nil); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
}

// TestFiniteScanner: the word-parallel scanner finds the first NaN or
// infinity at every position, for every float size, and nothing in finite
// data (including the largest finite values and negative zeros).
func TestFiniteScanner(t *testing.T) {
	for _, c := range []struct {
		dtype      safetensors.DType
		size       int
		bad, large []byte // one non-finite and one finite (max) element, little-endian
	}{
		{safetensors.F32, 4, []byte{0, 0, 0x80, 0x7f}, []byte{0xff, 0xff, 0x7f, 0xff}},
		{safetensors.F32, 4, []byte{1, 0, 0xc0, 0xff}, []byte{0, 0, 0, 0x80}},
		{safetensors.F16, 2, []byte{0x00, 0x7c}, []byte{0xff, 0x7b}},
		{safetensors.F16, 2, []byte{0x01, 0xfe}, []byte{0xff, 0xfb}},
		{safetensors.BF16, 2, []byte{0x80, 0x7f}, []byte{0x7f, 0x7f}},
		{safetensors.F64, 8, []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x7f}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xef, 0x7f}},
	} {
		scan := func(p []byte) int { return weights.NonFinite(c.dtype, p) }
		for _, n := range []int{1, 3, 7, 16, 37, 64} {
			p := bytes.Repeat(c.large, n)
			if got := scan(p); got != -1 {
				t.Fatalf("%s n=%d finite: %d", c.dtype, n, got)
			}
			for k := 0; k < n; k++ {
				q := bytes.Clone(p)
				copy(q[k*c.size:], c.bad)
				if k+2 < n {
					copy(q[(k+2)*c.size:], c.bad) // a later one must not win
				}
				if got := scan(q); got != k {
					t.Fatalf("%s n=%d: non-finite at %d found at %d", c.dtype, n, k, got)
				}
			}
		}
	}
}
