package loader

import (
	"bytes"
	"errors"
	"testing"

	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// TestInt8RangeLoad: over Range requests, an int8 file yields its I8
// tensors and their scales (and nothing else), with the scheme kept in the
// assembled file's metadata.
func TestInt8RangeLoad(t *testing.T) {
	data := readModel(t, "tiny-int8.safetensors")
	s := newServer(t, data, "range")
	f, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, PrefixSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if f.DType != safetensors.I8 {
		t.Fatalf("dtype %s", f.DType)
	}
	if f.Header.Metadata[weights.MetaQuant] != weights.QuantInt8 {
		t.Fatalf("metadata %v", f.Header.Metadata)
	}
	if len(f.Stored) != len(f.Names)+2+6*f.Config.NumLayers {
		t.Fatalf("%d stored tensors for %d names", len(f.Stored), len(f.Names))
	}
	sameTensors(t, f, data)
	orig, _ := safetensors.ReadHeader(bytes.NewReader(data), int64(len(data)))
	for _, n := range f.Stored {
		a, _ := f.Tensor(n)
		b, _ := orig.Tensor(n)
		got := make([]byte, a.Len())
		f.Data.CopyTo(got, a.Begin)
		if !bytes.Equal(got, data[b.Begin:b.End]) {
			t.Fatalf("%s differs", n)
		}
	}
	if f.WeightBytes > int64(len(data)) || f.WeightBytes < int64(len(data))*9/10 {
		t.Fatalf("weight bytes %d of a %d-byte file", f.WeightBytes, len(data))
	}
}

// TestInt8Rejects: malformed quantised files are InvalidModel, whether
// opened from bytes or downloaded.
func TestInt8Rejects(t *testing.T) {
	good := readModel(t, "tiny-int8.safetensors")
	src, err := safetensors.NewFile(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	const w = "vision_model.encoder.layers.0.self_attn.q_proj.weight"
	build := func(meta func(map[string]string), edit func(*safetensors.Tensor) bool) []byte {
		var ts []safetensors.Tensor
		for _, ti := range src.Tensors {
			b, _, _ := src.Bytes(ti.Name)
			x := safetensors.Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b}
			if edit(&x) {
				ts = append(ts, x)
			}
		}
		m := map[string]string{}
		for k, v := range src.Metadata {
			m[k] = v
		}
		meta(m)
		var buf bytes.Buffer
		if err := safetensors.Write(&buf, ts, m); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	same := func(map[string]string) {}
	for name, data := range map[string][]byte{
		"missing scale": build(same, func(x *safetensors.Tensor) bool { return x.Name != weights.ScaleName(w) }),
		"scale shape": build(same, func(x *safetensors.Tensor) bool {
			if x.Name == weights.ScaleName(w) {
				x.Shape, x.Data = []int{x.Shape[0] - 1}, x.Data[4:]
			}
			return true
		}),
		"scale dtype": build(same, func(x *safetensors.Tensor) bool {
			if x.Name == weights.ScaleName(w) {
				x.DType = safetensors.I32
			}
			return true
		}),
		"weight dtype U8": build(same, func(x *safetensors.Tensor) bool {
			if x.Name == w {
				x.DType = safetensors.U8
			}
			return true
		}),
		"no scheme": build(func(m map[string]string) { delete(m, weights.MetaQuant) }, func(*safetensors.Tensor) bool { return true }),
	} {
		if _, err := Open(Mem(data), nil); !errors.Is(err, ErrInvalidModel) {
			t.Errorf("%s: open: %v, want InvalidModel", name, err)
		}
		s := newServer(t, data, "range")
		if _, err := Load(s.URL+"/m", Options{Env: &httpEnv{}, PrefixSize: 4096}); !errors.Is(err, ErrInvalidModel) {
			t.Errorf("%s: load: %v, want InvalidModel", name, err)
		}
	}
}
