package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// TestNonFiniteWeightsRefused: a NaN or an infinity in a weight of a
// local file fails the load with InvalidModel naming the tensor, in both
// engines (the native engine finds it while decoding, in its one read of
// the file), F32 and F16.
func TestNonFiniteWeightsRefused(t *testing.T) {
	for _, c := range []struct{ model, tensor string }{
		{"tiny-f32", "vision_model.encoder.layers.1.mlp.fc2.weight"},
		{"tiny-f16", "vision_model.embeddings.position_embedding.weight"},
		{"tiny-f32", "visual_projection.weight"},
	} {
		b, err := os.ReadFile(modelPath(c.model))
		if err != nil {
			t.Fatal(err)
		}
		h, err := safetensors.ReadHeader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		ti, ok := h.Tensor(c.tensor)
		if !ok {
			t.Fatalf("%s has no %s", c.model, c.tensor)
		}
		size, _ := ti.DType.Size()
		at := ti.Begin + 5*int64(size)
		if size == 4 {
			binary.LittleEndian.PutUint32(b[at:], 0x7fc00000) // NaN
		} else {
			binary.LittleEndian.PutUint16(b[at:], 0xfc00) // -inf
		}
		p := filepath.Join(t.TempDir(), c.model+"-poisoned.safetensors")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, engine := range []Engine{EngineNative, EngineWasm} {
			_, err := New(context.Background(), Options{Model: p, Engine: engine, NoCache: true, CacheDir: testCache(t), Threads: 2})
			var he *Error
			if !errors.As(err, &he) || he.Code != InvalidModel || !strings.Contains(err.Error(), c.tensor) {
				t.Errorf("%s %s %s: %v, want InvalidModel naming the tensor", engine, c.model, c.tensor, err)
			}
		}
	}
}
