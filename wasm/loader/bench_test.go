package loader

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// memEnv serves one file from memory in fixed-size chunks, honouring
// Range like a server would, so benchmarks measure the loader alone.
type memEnv struct {
	data  []byte
	chunk int
}

func (e *memEnv) Aborted() bool                 { return false }
func (e *memEnv) Alloc(n int64) (Buffer, error) { return make(Mem, n), nil }

func (e *memEnv) Fetch(_ string, r Request) (*Response, error) {
	rng := r.Range
	a, b := 0, len(e.data)
	status := 200
	if r, ok := strings.CutPrefix(rng, "bytes="); ok {
		s, t, _ := strings.Cut(r, "-")
		a, _ = strconv.Atoi(s)
		if t != "" {
			x, _ := strconv.Atoi(t)
			b = min(x+1, len(e.data))
		}
		status = 206
	}
	cr := "bytes " + strconv.Itoa(a) + "-" + strconv.Itoa(b-1) + "/" + strconv.Itoa(len(e.data))
	h := func(name string) string {
		if name == "content-range" && status == 206 {
			return cr
		}
		return ""
	}
	return &Response{Status: status, Header: h, Body: &memBody{b: e.data[a:b], chunk: e.chunk}}, nil
}

type memBody struct {
	b     []byte
	chunk int
}

func (m *memBody) Next() (Bytes, error) {
	if len(m.b) == 0 {
		return nil, io.EOF
	}
	n := min(m.chunk, len(m.b))
	c := Mem(m.b[:n])
	m.b = m.b[n:]
	return c, nil
}

func (m *memBody) Close() {}

// BenchmarkLoadRange: the whole-CLIP fixture through the Range path in 64
// KiB chunks (header parse, planning, assembly); bytes/s is of the file.
func BenchmarkLoadRange(b *testing.B) {
	data := readModelB(b, "tiny-fullclip-f32.safetensors")
	env := &memEnv{data: data, chunk: 64 << 10}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Load("mem://m", Options{Env: env}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen: validating a complete file already in memory.
func BenchmarkOpen(b *testing.B) {
	data := Mem(readModelB(b, "b32l2-f16.safetensors"))
	for b.Loop() {
		if _, err := Open(data, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func readModelB(b *testing.B, name string) []byte {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "models", name))
	if err != nil {
		b.Fatal(err)
	}
	return data
}
