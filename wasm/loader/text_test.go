package loader

import (
	"errors"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/weights"
)

// bytesOf sums the stored size of names in the source file data.
func bytesOf(t *testing.T, data []byte, names []string) int64 {
	t.Helper()
	f, err := OpenTowers(Mem(data), nil, Vision|Text)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, name := range names {
		ti, ok := f.Header.Tensor(name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		n += ti.Len()
	}
	return n
}

// TestRangeTextOnly: a text load fetches the header and the text tensors
// of a whole-CLIP file, not the vision tower; the assembled file reopens
// with the same text config; a second load comes from the cache under its
// own key.
func TestRangeTextOnly(t *testing.T) {
	data := readModel(t, "tiny-fullclip-f32.safetensors")
	s := newServer(t, data, "range")
	cache := &memCache{}
	var p progressLog
	f, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, Cache: cache, Progress: p.fn, PrefixSize: 4096, Towers: Text})
	if err != nil {
		t.Fatal(err)
	}
	p.check(t)
	sameTensors(t, f, data)
	if f.Text == nil || f.Text.VocabSize != 1214 || f.Text.NumHeads != 2 || f.Config != (weights.Config{}) {
		t.Fatalf("text %+v, vision %+v", f.Text, f.Config)
	}
	if len(f.Names) != len(weights.TextTensorNames(*f.Text))+1 {
		t.Fatalf("%d names", len(f.Names))
	}
	for _, name := range f.Names {
		if !strings.HasPrefix(name, "text_") && name != weights.KeyLogitScale {
			t.Fatalf("%s in a text load", name)
		}
	}
	textBytes := bytesOf(t, data, f.Names)
	vcfg, err := Open(Mem(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	visionBytes := bytesOf(t, data, vcfg.Names)
	sent := s.sent.Load()
	t.Logf("sent %d bytes: text tensors %d, vision tensors %d, file %d", sent, textBytes, visionBytes, len(data))
	if sent > textBytes+4096+2*(64<<10) || sent > int64(len(data))-visionBytes {
		t.Fatalf("sent %d bytes for %d bytes of text tensors (file %d, vision %d)", sent, textBytes, len(data), visionBytes)
	}
	if f.Downloaded != sent {
		t.Errorf("Downloaded %d, server sent %d", f.Downloaded, sent)
	}
	g, err := OpenTowers(f.Data, nil, Text)
	if err != nil || *g.Text != *f.Text {
		t.Fatalf("reopened: %v %+v", err, g)
	}
	if _, err := Open(f.Data, nil); !errors.Is(err, ErrInvalidModel) {
		t.Errorf("the text-only file opened as a vision model: %v", err)
	}
	before := s.requests.Load()
	f2, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, Cache: cache, Towers: Text, NoRevalidate: true})
	if err != nil || !f2.FromCache || s.requests.Load() != before {
		t.Fatalf("second load: %v, fromCache %v, %d requests", err, f2 != nil && f2.FromCache, s.requests.Load()-before)
	}
	// A vision load of the same URL is another cache entry.
	if _, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, Cache: cache}); err != nil || s.requests.Load() == before {
		t.Fatalf("vision load after text: %v, %d requests", err, s.requests.Load()-before)
	}
	if len(cache.m) != 2 {
		t.Errorf("%d cache entries, want 2", len(cache.m))
	}
}

// TestRangeBoth: one load of both towers fetches each tensor once.
func TestRangeBoth(t *testing.T) {
	data := readModel(t, "tiny-fullclip-f32.safetensors")
	s := newServer(t, data, "range")
	f, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, PrefixSize: 4096, Towers: Vision | Text})
	if err != nil {
		t.Fatal(err)
	}
	sameTensors(t, f, data)
	if f.Text == nil || f.Config.NumHeads != 2 {
		t.Fatalf("configs %+v %+v", f.Config, f.Text)
	}
	need := bytesOf(t, data, f.Names)
	if sent := s.sent.Load(); sent > need+4096+2*(64<<10) || sent > int64(len(data)) {
		t.Fatalf("sent %d for %d needed (file %d)", sent, need, len(data))
	}
	g, err := OpenTowers(f.Data, nil, Vision|Text)
	if err != nil || g.Config != f.Config || *g.Text != *f.Text {
		t.Fatalf("reopened: %v", err)
	}
}

// TestNoTextTower: a vision-only file asked for its text tower is
// InvalidModel naming the missing tensors, over the network and in memory.
func TestNoTextTower(t *testing.T) {
	data := readModel(t, "tiny-f32.safetensors")
	s := newServer(t, data, "range")
	_, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, Towers: Text})
	if !errors.Is(err, ErrInvalidModel) || !errors.Is(err, weights.ErrNoTextTower) || !strings.Contains(err.Error(), weights.KeyTokenEmbedding) {
		t.Errorf("Load: %v", err)
	}
	_, err = OpenTowers(Mem(data), nil, Vision|Text)
	if !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), weights.KeyTokenEmbedding) {
		t.Errorf("OpenTowers: %v", err)
	}
}
