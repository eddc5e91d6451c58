package loader

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// digestCache is a memCache whose Digest is the host's (counted), to check
// the Digester path gives the same digests as the Go fallback.
type digestCache struct {
	memCache
	digests int
}

func (c *digestCache) Digest(b Bytes) ([32]byte, error) {
	c.digests++
	buf := make([]byte, b.Len())
	b.CopyTo(buf, 0)
	return sha256.Sum256(buf), nil
}

// TestCacheDigest: a cached entry carries the SHA-256 of its bytes (with
// the digest's own characters as '0'), whether computed by the cache's
// Digester or in Go.
func TestCacheDigest(t *testing.T) {
	data := readModel(t, "tiny-f16.safetensors")
	s := newServer(t, data, "range")
	for _, c := range []Cache{&memCache{}, &digestCache{}} {
		if _, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, Cache: c}); err != nil {
			t.Fatal(err)
		}
		b := c.Get(CacheKey(s.URL + "/m"))
		f, err := Open(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := f.Header.Metadata[MetaDigest]
		raw := make([]byte, b.Len())
		b.CopyTo(raw, 0)
		zeroed := bytes.Replace(raw, []byte(want), []byte(strings.Repeat("0", 64)), 1)
		// SHA-256 of the SHA-256s of the header and of each tensor, in
		// file order.
		h, err := safetensors.ReadHeader(bytes.NewReader(zeroed), int64(len(zeroed)))
		if err != nil {
			t.Fatal(err)
		}
		ts := append([]safetensors.TensorInfo(nil), h.Tensors...)
		sort.Slice(ts, func(i, j int) bool { return ts[i].Begin < ts[j].Begin })
		hd := sha256.Sum256(zeroed[:h.DataStart])
		list := append([]byte(nil), hd[:]...)
		for _, ti := range ts {
			if ti.End > ti.Begin {
				s := sha256.Sum256(zeroed[ti.Begin:ti.End])
				list = append(list, s[:]...)
			}
		}
		if sum := sha256.Sum256(list); hex.EncodeToString(sum[:]) != want {
			t.Fatalf("%T: entry digest %s is not the digest of the entry", c, want)
		}
		if dc, ok := c.(*digestCache); ok && dc.digests == 0 {
			t.Fatal("the cache's Digester was not used")
		}
	}
}

// TestCacheDamage: a damaged cache entry (a flipped tensor byte, a flipped
// header byte, cut short, no digest, a digest of another file) is detected
// on load, deleted and downloaded again, never used; the fresh entry is
// valid. With the server gone, the load fails with DownloadFailed saying
// the cached copy was damaged.
func TestCacheDamage(t *testing.T) {
	data := readModel(t, "tiny-f32.safetensors")
	s := newServer(t, data, "range")
	url := s.URL + "/m"
	cache := &memCache{}
	good, err := Load(url, Options{Env: &httpEnv{}, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	entry := append([]byte(nil), cache.m[CacheKey(url)]...)
	dataStart := good.Header.DataStart
	flip := func(at int64) func([]byte) []byte {
		return func(b []byte) []byte { b[at] ^= 0x10; return b }
	}
	digestHex := good.Header.Metadata[MetaDigest]
	damages := map[string]func([]byte) []byte{
		"tensor byte flipped": flip(dataStart + (int64(len(entry))-dataStart)/2),
		"last byte flipped":   flip(int64(len(entry)) - 1),
		"header config changed": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"layer_norm_eps":"1e-05"`), []byte(`"layer_norm_eps":"1e-06"`), 1)
		},
		"truncated": func(b []byte) []byte { return b[:len(b)-4096] },
		"no digest": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"`+MetaDigest+`"`), []byte(`"imgembed.sha257"`), 1)
		},
		"digest flipped": func(b []byte) []byte {
			i := bytes.Index(b, []byte(digestHex))
			b[i] ^= 1
			return b
		},
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			bad := damage(append([]byte(nil), entry...))
			if name == "header config changed" && bytes.Equal(bad, entry) {
				t.Fatal("the damage changed nothing")
			}
			cache.m[CacheKey(url)] = bad
			deletes := cache.deletes
			before := s.requests.Load()
			f, err := Load(url, Options{Env: &httpEnv{}, Cache: cache})
			if err != nil {
				t.Fatal(err)
			}
			if f.FromCache || s.requests.Load() == before {
				t.Fatal("the damaged entry was used")
			}
			if cache.deletes != deletes+1 {
				t.Fatalf("entry not deleted (%d deletes)", cache.deletes-deletes)
			}
			sameTensors(t, f, data)
			// The re-downloaded entry is whole again and serves the next load.
			before = s.requests.Load()
			f, err = Load(url, Options{Env: &httpEnv{}, Cache: cache, NoRevalidate: true})
			if err != nil || !f.FromCache || s.requests.Load() != before {
				t.Fatalf("after repair: err %v, from cache %v, %d requests", err, f != nil && f.FromCache, s.requests.Load()-before)
			}
		})
	}
	t.Run("offline", func(t *testing.T) {
		bad := flip(dataStart + 10)(append([]byte(nil), entry...))
		cache.m[CacheKey(url)] = bad
		s.Close()
		_, err := Load(url, Options{Env: &httpEnv{}, Cache: cache})
		if !errors.Is(err, ErrDownloadFailed) || !strings.Contains(err.Error(), "cached copy") {
			t.Fatalf("err %v, want DownloadFailed about the damaged cached copy", err)
		}
		if _, ok := cache.m[CacheKey(url)]; ok {
			t.Fatal("the damaged entry is still cached")
		}
		t.Log(err)
	})
}

// TestRevalidate: a cache hit costs one conditional request; 304 keeps the
// copy (no body sent); a new ETag replaces it with the new file; an
// unreachable server keeps the copy; NoRevalidate makes no request.
func TestRevalidate(t *testing.T) {
	v1 := readModel(t, "tiny-f32.safetensors")
	v2 := readModel(t, "tiny-f16.safetensors")
	var mu sync.Mutex
	cur, etag := v1, `"v1"`
	var reqs, sent atomic.Int64
	var lastINM atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		lastINM.Store(r.Header.Get("If-None-Match"))
		mu.Lock()
		data, tag := cur, etag
		mu.Unlock()
		w.Header().Set("ETag", tag)
		http.ServeContent(countWriter{w, &sent}, r, "m.safetensors", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	url := srv.URL + "/m"
	cache := &memCache{}
	if _, err := Load(url, Options{Env: &httpEnv{}, Cache: cache}); err != nil {
		t.Fatal(err)
	}
	// Unchanged: one request, answered 304.
	r0, s0 := reqs.Load(), sent.Load()
	f, err := Load(url, Options{Env: &httpEnv{}, Cache: cache})
	if err != nil || !f.FromCache {
		t.Fatalf("unchanged: %v, from cache %v", err, f != nil && f.FromCache)
	}
	if reqs.Load() != r0+1 || sent.Load() != s0 || lastINM.Load() != `"v1"` {
		t.Fatalf("unchanged: %d requests, %d body bytes, If-None-Match %q", reqs.Load()-r0, sent.Load()-s0, lastINM.Load())
	}
	// NoRevalidate: no request at all.
	r0 = reqs.Load()
	if f, err := Load(url, Options{Env: &httpEnv{}, Cache: cache, NoRevalidate: true}); err != nil || !f.FromCache || reqs.Load() != r0 {
		t.Fatalf("NoRevalidate: %v, %d requests", err, reqs.Load()-r0)
	}
	// Changed on the server: the new file is downloaded and cached.
	mu.Lock()
	cur, etag = v2, `"v2"`
	mu.Unlock()
	f, err = Load(url, Options{Env: &httpEnv{}, Cache: cache})
	if err != nil || f.FromCache || f.DType != "F16" {
		t.Fatalf("changed: %v, from cache %v, dtype %v", err, f != nil && f.FromCache, f.DType)
	}
	if f, err = Load(url, Options{Env: &httpEnv{}, Cache: cache}); err != nil || !f.FromCache || f.DType != "F16" {
		t.Fatalf("after the change: %v", err)
	}
	// Server gone: the cached copy is used.
	srv.Close()
	if f, err = Load(url, Options{Env: &httpEnv{}, Cache: cache}); err != nil || !f.FromCache {
		t.Fatalf("offline: %v", err)
	}
}
