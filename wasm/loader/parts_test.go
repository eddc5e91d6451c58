package loader

import (
	"bytes"
	"sort"
	"testing"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// TestMinPartBytes: with MinPartBytes, consecutive tensors share parts of
// at least that size; every tensor reads back as in the source file, and a
// part is handed back by Release only once all its tensors are released
// (a repeated Release counts once), in both download modes.
func TestMinPartBytes(t *testing.T) {
	data := readModel(t, "tiny-f32.safetensors")
	src, err := safetensors.ReadHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"range", "full"} {
		srv := newServer(t, data, mode)
		const min = 20000
		f, err := Load(srv.URL+"/m", Options{Env: &httpEnv{}, PrefixSize: 4096, MinPartBytes: min})
		if err != nil {
			t.Fatal(err)
		}
		p, ok := f.Data.(*Parts)
		if !ok {
			t.Fatalf("%s: data is %T", mode, f.Data)
		}
		bufs := p.Buffers()
		if len(bufs) >= 1+len(f.Stored) {
			t.Fatalf("%s: %d parts for %d tensors: none merged", mode, len(bufs), len(f.Stored))
		}
		for i, b := range bufs[1 : len(bufs)-1] {
			if b.Len() < min {
				t.Errorf("%s: part %d has %d bytes < %d", mode, i+1, b.Len(), min)
			}
		}
		// Each tensor's bytes are the source's.
		owner := map[int][]string{} // part index -> tensors
		for _, name := range f.Stored {
			ti, _ := f.Tensor(name)
			want, _ := src.Tensor(name)
			got := make([]byte, ti.Len())
			f.Data.CopyTo(got, ti.Begin)
			if !bytes.Equal(got, data[want.Begin:want.End]) {
				t.Fatalf("%s: %s differs from the source", mode, name)
			}
			i := sort.Search(len(p.offs), func(i int) bool { return p.offs[i] > ti.Begin }) - 1
			owner[i] = append(owner[i], name)
		}
		for i, names := range owner {
			for k, name := range names {
				ti, _ := f.Tensor(name)
				got := p.Release(ti.Begin)
				if again := p.Release(ti.Begin); again != nil {
					t.Fatalf("%s: releasing %s twice freed its part twice", mode, name)
				}
				if last := k == len(names)-1; (got != nil) != last {
					t.Fatalf("%s: part %d, tensor %d of %d (%s): Release returned %v", mode, i, k+1, len(names), name, got)
				}
			}
		}
	}
}
