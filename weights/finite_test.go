package weights

import (
	"bytes"
	"encoding/binary"
	"errors"
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
