package weights

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// TestDecoderRefusesNonFinite: with CheckFinite (NewDecoder's default) a
// NaN or an infinity fails Get/Into/Float32 with *NonFiniteError naming
// the tensor and the element, for F32 (read straight into the caller's
// memory) and F16 (decoded in chunks, the bad value in a later chunk);
// without it the values come through.
func TestDecoderRefusesNonFinite(t *testing.T) {
	f32 := make([]byte, 4*100)
	for i := 0; i < 100; i++ {
		binary.LittleEndian.PutUint32(f32[4*i:], 0x3f800000) // 1
	}
	binary.LittleEndian.PutUint32(f32[4*37:], 0x7f800000) // +inf
	f16 := make([]byte, 2*100)
	for i := 0; i < 100; i++ {
		binary.LittleEndian.PutUint16(f16[2*i:], 0x3c00)
	}
	binary.LittleEndian.PutUint16(f16[2*91:], 0x7e00) // NaN
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, []safetensors.Tensor{
		{Name: "a", DType: safetensors.F32, Shape: []int{10, 10}, Data: f32},
		{Name: "b", DType: safetensors.F16, Shape: []int{100}, Data: f16},
	}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.NewFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		at   int64
	}{{"a", 37}, {"b", 91}} {
		d := NewDecoder(f.Header, f.ReadAt)
		d.Chunk = 16
		_, _, err := d.Get(c.name, nil)
		var nf *NonFiniteError
		if !errors.As(err, &nf) || nf.Tensor != c.name || nf.Element != c.at {
			t.Errorf("%s: %v, want a NonFiniteError at element %d", c.name, err, c.at)
		}
		d.CheckFinite = false
		if v, shape, err := d.Get(c.name, make([]float32, 100)); err != nil || len(v) != 100 || len(shape) == 0 {
			t.Errorf("%s unchecked: %v", c.name, err)
		}
	}
}

// TestDecoderThreadsF32: a large F32 tensor read in pieces at once comes
// back whole, and the first bad element is the one reported even when a
// later piece also has one.
func TestDecoderThreadsF32(t *testing.T) {
	const n = 1 << 20
	data := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(i)))
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, []safetensors.Tensor{{Name: "w", DType: safetensors.F32, Shape: []int{n}, Data: data}}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.NewFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(f.Header, f.ReadAt)
	d.Threads = 3
	v, _, err := d.Get("w", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range v {
		if x != float32(i) {
			t.Fatalf("element %d = %v", i, x)
		}
	}
	raw := buf.Bytes()
	ti, _ := f.Header.Tensor("w")
	binary.LittleEndian.PutUint32(raw[ti.Begin+4*900000:], 0x7f800000)
	binary.LittleEndian.PutUint32(raw[ti.Begin+4*400000:], 0x7fc00000)
	var nf *NonFiniteError
	if _, _, err := d.Get("w", nil); !errors.As(err, &nf) || nf.Element != 400000 {
		t.Fatalf("%v, want the NaN at 400000", err)
	}
}

// TestDecoderThreadsMatch: F16 and int8 tensors decoded in pieces at once
// (Threads 3) equal the one-piece decode, element for element.
func TestDecoderThreadsMatch(t *testing.T) {
	cfg := Preset("tiny")
	cfg.HiddenSize, cfg.IntermediateSize, cfg.NumLayers = 512, 2048, 1 // fc1: 1 Mi elements
	var f32 bytes.Buffer
	if err := Synthesize(&f32, cfg, SynthOptions{Seed: 5}); err != nil {
		t.Fatal(err)
	}
	src, err := safetensors.NewFile(bytes.NewReader(f32.Bytes()), int64(f32.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range []safetensors.DType{safetensors.F16, safetensors.I8} {
		var out bytes.Buffer
		if err := Convert(&out, src, cfg, dt); err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.NewFile(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil {
			t.Fatal(err)
		}
		name := "vision_model.encoder.layers.0.mlp.fc1.weight"
		one := NewDecoder(f.Header, f.ReadAt)
		want, _, err := one.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		three := NewDecoder(f.Header, f.ReadAt)
		three.Threads = 3
		got, _, err := three.Get(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1<<20 || len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", dt, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: element %d: %v, want %v", dt, i, got[i], want[i])
			}
		}
	}
}
