package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"
	"unicode/utf8"
)

// checkLine requires b to be exactly one JSON object line that decodes to
// what l says (or to an InvalidModel error when l's embedding is not
// finite).
func checkLine(t *testing.T, l line, b []byte, failed bool) {
	t.Helper()
	if len(b) == 0 || b[len(b)-1] != '\n' || bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", b)
	}
	var got struct {
		Source    string    `json:"source"`
		File      string    `json:"file"`
		Embedding []float32 `json:"embedding"`
		Error     *errJSON  `json:"error"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%q is not JSON: %v", b, err)
	}
	if utf8.ValidString(l.Source) && got.Source != l.Source {
		t.Fatalf("source %q came back as %q", l.Source, got.Source)
	}
	finite := true
	for _, v := range l.Embedding {
		finite = finite && !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
	}
	switch {
	case !finite:
		if got.Error == nil || got.Error.Code != "InvalidModel" || got.Embedding != nil || !failed {
			t.Fatalf("non-finite embedding gave %q", b)
		}
	case l.Error != nil:
		if got.Error == nil || got.Error.Code != l.Error.Code || !failed {
			t.Fatalf("error line %q", b)
		}
	default:
		if failed || got.Error != nil || len(got.Embedding) != len(l.Embedding) {
			t.Fatalf("embedding line %q", b)
		}
		for i, v := range l.Embedding {
			if got.Embedding[i] != v {
				t.Fatalf("component %d: %v came back as %v", i, v, got.Embedding[i])
			}
		}
	}
}

func TestEncodeLineNeverFails(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, l := range []line{
		{Source: "a.png", Embedding: []float32{0.6, 0.8}},
		{Source: "nan.png", Embedding: []float32{0.6, nan}},
		{Source: "inf.png", Embedding: []float32{-inf, 0}},
		{Source: "bad\xff\xfename.png", Embedding: []float32{1}},
		{Source: "x", Error: &errJSON{Code: "CorruptImage", Message: "bad \xc3"}},
		{Source: "tiny", Embedding: []float32{math.SmallestNonzeroFloat32, math.MaxFloat32}},
	} {
		b, failed := encodeLine(l)
		checkLine(t, l, b, failed)
	}
}

// FuzzEncodeLine: whatever the source bytes and embedding bits (NaN, Inf,
// denormals), the JSON-lines writer gives one valid JSON line.
func FuzzEncodeLine(f *testing.F) {
	f.Add("a.png", []byte{0, 0, 0x80, 0x3f}, "")
	f.Add("bad\xffname", []byte{0, 0, 0xc0, 0x7f, 1, 0, 0x80, 0x7f}, "")
	f.Add("\u2028\"</script>", []byte{}, "CorruptImage")
	f.Fuzz(func(t *testing.T, src string, raw []byte, code string) {
		l := line{Source: src}
		if code != "" {
			l.Error = &errJSON{Code: code, Message: src}
		} else {
			for i := 0; i+4 <= len(raw); i += 4 {
				l.Embedding = append(l.Embedding, math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])))
			}
		}
		b, failed := encodeLine(l)
		if code != "" && !utf8.ValidString(code) {
			// The code comes back with U+FFFD replacements: only check shape.
			var v map[string]any
			if err := json.Unmarshal(b, &v); err != nil || !failed {
				t.Fatalf("%q: %v", b, err)
			}
			return
		}
		checkLine(t, l, b, failed)
	})
}
