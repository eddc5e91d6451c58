package host

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// compiledFixture copies b32l2-f16 (a real-width ViT, so its linear weights
// are in panel layout) to a fresh directory, with the compiled-weights
// threshold lowered for it, and returns the copy, a fresh cache dir and a
// loader.
func compiledFixture(t *testing.T) (model, cache string, load func(noCache bool) (*Embedder, error)) {
	t.Helper()
	old := compiledMinBytes
	compiledMinBytes = 0
	t.Cleanup(func() { compiledMinBytes = old })
	dir := t.TempDir()
	model = filepath.Join(dir, "m.safetensors")
	b, err := os.ReadFile(modelPath("b32l2-f16"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(model, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cache = t.TempDir()
	load = func(noCache bool) (*Embedder, error) {
		return New(context.Background(), Options{Model: model, CacheDir: cache, NoCache: noCache, Threads: 2})
	}
	return model, cache, load
}

func compiledEntries(t *testing.T, cache string) []string {
	t.Helper()
	es, err := filepath.Glob(filepath.Join(cache, "compiled", "*.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// embedFixtures embeds the fixture photos and checks them against the
// goldens.
func embedFixtures(t *testing.T, e *Embedder) [][]float32 {
	t.Helper()
	golden := goldenEmbeddings(t, "b32l2-f16")
	var out [][]float32
	for _, name := range fixtureImages {
		got, err := e.Embed(context.Background(), filepath.Join(testdataDir, "images", name))
		if err != nil {
			t.Fatal(err)
		}
		if cos, _ := compare(got, golden["images/"+name]); cos < 0.99999 {
			t.Fatalf("%s: cosine %.7f to the golden", name, cos)
		}
		out = append(out, got)
	}
	return out
}

// TestCompiledWeights: the first load of a model file saves its compiled
// weights; the next load maps them instead of reading the file (shown by
// poisoning the file's tensor data under the same size and time: a
// deriving load refuses it) and embeds bit for bit as the first did.
// NoCache neither reads nor writes the entry.
func TestCompiledWeights(t *testing.T) {
	model, cache, load := compiledFixture(t)
	e, err := load(true)
	if err != nil {
		t.Fatal(err)
	}
	want := embedFixtures(t, e)
	e.Close()
	if es := compiledEntries(t, cache); len(es) != 0 {
		t.Fatalf("NoCache wrote %v", es)
	}

	e, err = load(false) // derives, then saves
	if err != nil {
		t.Fatal(err)
	}
	if got := embedFixtures(t, e); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatal("a deriving load with the cache on embeds differently")
	}
	e.Close()
	if es := compiledEntries(t, cache); len(es) != 1 {
		t.Fatalf("compiled entries after the first load: %v", es)
	}

	hits := compiledHits.Load()
	poisonTensors(t, model)
	if _, err := load(true); !isCode(err, InvalidModel) {
		t.Fatalf("a deriving load of the poisoned file: %v, want InvalidModel", err)
	}
	e, err = load(false)
	if err != nil {
		t.Fatalf("load from the compiled entry: %v", err)
	}
	defer e.Close()
	if got := embedFixtures(t, e); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatal("the compiled entry embeds differently from the derived model")
	}
	if compiledHits.Load() != hits+1 {
		t.Fatal("the load did not come from the compiled entry")
	}
}

// TestCompiledWeightsURL: a URL model's first load (a download) saves
// compiled weights for its download cache entry, and later loads map them;
// the embeddings stay the same throughout.
func TestCompiledWeightsURL(t *testing.T) {
	old := compiledMinBytes
	compiledMinBytes = 0
	t.Cleanup(func() { compiledMinBytes = old })
	srv := serveModel(t, modelPath("b32l2-f16"), true, nil)
	cache := t.TempDir()
	var want [][]float32
	for i := range 3 {
		hits := compiledHits.Load()
		e, err := New(context.Background(), Options{Model: srv.URL + "/m.safetensors", CacheDir: cache, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		got := embedFixtures(t, e)
		e.Close()
		if i == 0 {
			want = got
		} else if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("load %d embeds differently", i+1)
		}
		if n := len(compiledEntries(t, cache)); n != 1 {
			t.Fatalf("after load %d: %d compiled entries", i+1, n)
		}
		if hit := compiledHits.Load() > hits; hit != (i > 0) {
			t.Fatalf("load %d: from the compiled entry %v", i+1, hit)
		}
	}

	// With compiled weights, the download entry's tensors are not read:
	// poisoned in place (same size, time, inode), the load still maps the
	// compiled entry and embeds the same.
	dl, err := filepath.Glob(filepath.Join(cache, "models", "*.safetensors"))
	if err != nil || len(dl) != 1 {
		t.Fatalf("download cache entries %v (%v)", dl, err)
	}
	poisonTensors(t, dl[0])
	load := func() [][]float32 {
		t.Helper()
		e, err := New(context.Background(), Options{Model: srv.URL + "/m.safetensors", CacheDir: cache, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		return embedFixtures(t, e)
	}
	hits := compiledHits.Load()
	if got := load(); !slices.EqualFunc(got, want, slices.Equal) || compiledHits.Load() != hits+1 {
		t.Fatal("the poisoned download entry was read although compiled weights exist")
	}
	// Both damaged: the compiled entry fails its CRC, so the load checks the
	// download entry after all, finds it damaged, downloads the model again
	// and derives it.
	entry := compiledEntries(t, cache)[0]
	b, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(entry, b, 0o600); err != nil {
		t.Fatal(err)
	}
	hits = compiledHits.Load()
	if got := load(); !slices.EqualFunc(got, want, slices.Equal) || compiledHits.Load() != hits {
		t.Fatal("after both entries were damaged: wrong embeddings, or the damaged entry was used")
	}
}

// TestCompiledDamage: an entry with a flipped byte in its values or cut
// short is not used: the load derives the model again (right embeddings)
// and saves a good entry in its place. A changed model file gets its own
// entry, and the stale one goes.
func TestCompiledDamage(t *testing.T) {
	model, cache, load := compiledFixture(t)
	e, err := load(false)
	if err != nil {
		t.Fatal(err)
	}
	want := embedFixtures(t, e)
	e.Close()
	entry := compiledEntries(t, cache)[0]
	good, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	for name, damage := range map[string]func([]byte) []byte{
		"flipped value byte": func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b },
		"truncated":          func(b []byte) []byte { return b[:len(b)/3] },
		"no magic":           func(b []byte) []byte { b[0] = 'X'; return b },
		"offset past the end": func(b []byte) []byte {
			return editIndex(t, b, func(idx *compiledIndex) { idx.Tensors[3].Offset = math.MaxInt64 - 63 })
		},
		"wrong shape": func(b []byte) []byte {
			return editIndex(t, b, func(idx *compiledIndex) { idx.Tensors[0].Shape[0]++ })
		},
		"CRC of another tensor": func(b []byte) []byte {
			return editIndex(t, b, func(idx *compiledIndex) { idx.Tensors[8].CRC = idx.Tensors[9].CRC })
		},
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(entry, damage(slices.Clone(good)), 0o600); err != nil {
				t.Fatal(err)
			}
			hits := compiledHits.Load()
			e, err := load(false)
			if err != nil {
				t.Fatal(err)
			}
			got := embedFixtures(t, e)
			e.Close()
			if !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatal("embeddings differ after a damaged entry")
			}
			if compiledHits.Load() != hits {
				t.Fatal("the damaged entry was used")
			}
			now, err := os.ReadFile(entry)
			if err != nil || !slices.Equal(now, good) {
				t.Fatalf("the entry was not saved again (%v)", err)
			}
		})
	}

	// A new version of the model file: a new entry replaces the old one.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(model, later, later); err != nil {
		t.Fatal(err)
	}
	e, err = load(false)
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if es := compiledEntries(t, cache); len(es) != 1 || es[0] == entry {
		t.Fatalf("entries after the model changed: %v (old %s)", es, entry)
	}
}

// poisonTensors writes NaN (F16) into a vision tensor of the file in place
// and restores its time: the same size, time and inode, so the compiled
// entry still matches.
func poisonTensors(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ti, ok := sf.Tensor("vision_model.encoder.layers.1.mlp.fc2.weight")
	sf.Close()
	if !ok {
		t.Fatal("no fc2 weight")
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x00, 0x7e}, ti.Begin+64); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// editIndex rewrites an entry's index through edit.
func editIndex(t *testing.T, b []byte, edit func(*compiledIndex)) []byte {
	t.Helper()
	at := binary.LittleEndian.Uint64(b[8:16])
	var idx compiledIndex
	if err := json.Unmarshal(b[at:], &idx); err != nil {
		t.Fatal(err)
	}
	edit(&idx)
	raw, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	return append(b[:at], raw...)
}

func isCode(err error, c Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == c
}

// TestCompiledWeightsText: a model loaded with its text tower (both towers,
// or the text tower alone) gets compiled weights too, with the embedding
// tables and the logit scale, and later loads embed images and texts bit
// for bit as the deriving load did.
func TestCompiledWeightsText(t *testing.T) {
	old := compiledMinBytes
	compiledMinBytes = 0
	t.Cleanup(func() { compiledMinBytes = old })
	texts := []string{"a photo of a cat", "an astronaut", ""}
	img := filepath.Join(testdataDir, "images", "coffee.png")
	for name, o := range map[string]Options{"both": {Text: true}, "text only": {TextOnly: true}} {
		t.Run(name, func(t *testing.T) {
			o.Model, o.Tokenizer, o.CacheDir, o.Threads = modelPath("tiny-fullclip-f32"), tokenizerPath, t.TempDir(), 2
			var wantText [][]float32
			var wantImg []float32
			var wantScale float64
			for i := range 3 {
				hits := compiledHits.Load()
				e, err := New(context.Background(), o)
				if err != nil {
					t.Fatal(err)
				}
				got, err := e.EmbedText(context.Background(), texts...)
				if err != nil {
					t.Fatal(err)
				}
				var gotImg []float32
				if !o.TextOnly {
					if gotImg, err = e.Embed(context.Background(), img); err != nil {
						t.Fatal(err)
					}
				}
				scale := e.Config().Text.LogitScale
				e.Close()
				if i == 0 {
					wantText, wantImg, wantScale = got, gotImg, scale
				} else if !slices.EqualFunc(got, wantText, slices.Equal) || !slices.Equal(gotImg, wantImg) || scale != wantScale {
					t.Fatalf("load %d embeds differently (logit scale %v, was %v)", i+1, scale, wantScale)
				}
				if hit := compiledHits.Load() > hits; hit != (i > 0) {
					t.Fatalf("load %d: from the compiled entry %v", i+1, hit)
				}
			}
			if wantScale == 0 {
				t.Fatal("no logit scale to check")
			}
		})
	}
}

// TestBuildID: the test binary (ELF here) has a Go build ID note, read as
// the go command prints it.
func TestBuildID(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	id := elfGoBuildID(exe)
	if runtime.GOOS != "linux" {
		t.Skipf("not ELF: %q", id)
	}
	out, err := exec.Command("go", "tool", "buildid", exe).Output()
	if err != nil {
		t.Skipf("go tool buildid: %v", err)
	}
	if want := strings.TrimSpace(string(out)); id != want || buildID() != "go:"+want {
		t.Fatalf("build ID %q (buildID %q), go tool buildid says %q", id, buildID(), want)
	}
}
