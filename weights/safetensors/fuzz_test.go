package safetensors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzReadHeader checks that no input panics, that every error is a typed
// *FormatError wrapping a sentinel, and that every accepted header satisfies
// the format's invariants and survives a write/read round trip.
// Seed corpus: testdata/fuzz/FuzzReadHeader (regenerate with
// IMGEMBED_WRITE_FUZZ_CORPUS=1 go test -run TestWriteFuzzCorpus).
func FuzzReadHeader(f *testing.F) {
	for _, c := range hostile() {
		if len(c.data) < 1<<16 {
			f.Add(c.data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := read(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Err == nil {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		prev := h.DataStart
		for _, ti := range h.Tensors {
			if ti.Begin != prev || ti.End < ti.Begin || ti.End > int64(len(data)) {
				t.Fatalf("bad offsets accepted: %+v after %d", ti, prev)
			}
			bits, ok := ti.DType.Bits()
			if n, ok2 := byteSize(ti.Shape, bits); !ok || !ok2 || n != ti.Len() {
				t.Fatalf("size mismatch accepted: %+v", ti)
			}
			if got, ok := h.Tensor(ti.Name); !ok || got.Begin != ti.Begin {
				t.Fatalf("lookup %q failed", ti.Name)
			}
			prev = ti.End
		}
		if prev != int64(len(data)) {
			t.Fatalf("data section not covered: %d of %d", prev, len(data))
		}
		ts := make([]Tensor, len(h.Tensors))
		for i, ti := range h.Tensors {
			ts[i] = Tensor{ti.Name, ti.DType, ti.Shape, data[ti.Begin:ti.End]}
		}
		var buf bytes.Buffer
		if err := Write(&buf, ts, h.Metadata); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		h2, err := read(buf.Bytes())
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if len(h2.Tensors) != len(h.Tensors) || len(h2.Metadata) != len(h.Metadata) {
			t.Fatalf("round trip changed the header")
		}
		for k, v := range h.Metadata {
			if h2.Metadata[k] != v {
				t.Fatalf("metadata %q changed", k)
			}
		}
		for _, ti := range h.Tensors {
			t2, ok := h2.Tensor(ti.Name)
			if !ok || !bytes.Equal(buf.Bytes()[t2.Begin:t2.End], data[ti.Begin:ti.End]) {
				t.Fatalf("tensor %q changed", ti.Name)
			}
		}
	})
}

// TestWriteFuzzCorpus (re)writes the committed seed corpus: a valid file,
// truncations of it, and the hostile cases.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("IMGEMBED_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set IMGEMBED_WRITE_FUZZ_CORPUS=1 to regenerate testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReadHeader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(name string, data []byte) {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := Write(&buf, sampleTensors(), map[string]string{"format": "pt", "num_attention_heads": "2"}); err != nil {
		t.Fatal(err)
	}
	valid := buf.Bytes()
	put("valid", valid)
	put("truncated-data", valid[:len(valid)-3])
	put("truncated-header", valid[:40])
	put("truncated-length", valid[:5])
	for _, c := range hostile() {
		if len(c.data) < 1<<16 {
			name := []byte(c.name)
			for i, ch := range name {
				if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9') {
					name[i] = '-'
				}
			}
			put("hostile-"+string(name), c.data)
		}
	}
}
