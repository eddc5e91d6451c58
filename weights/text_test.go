package weights

import (
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/weights/safetensors"
)

func openHeader(t *testing.T, name string) *safetensors.Header {
	t.Helper()
	f, err := safetensors.Open(filepath.Join("..", "testdata", "models", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f.Header
}

func TestTextConfigFrom(t *testing.T) {
	h := openHeader(t, "tiny-fullclip-f32.safetensors")
	want := TextConfig{HiddenSize: 64, NumLayers: 2, NumHeads: 2, IntermediateSize: 256, VocabSize: 1214,
		ContextLength: 77, ProjectionDim: 32, LayerNormEps: 1e-5, Activation: "quick_gelu"}
	c, err := TextConfigFrom(h, nil)
	if err != nil || c != want {
		t.Fatalf("TextConfigFrom = %+v, %v; want %+v", c, err, want)
	}

	// Without the metadata the heads come from config.json, else width/64.
	bare := *h
	bare.Metadata = maps.Clone(h.Metadata)
	delete(bare.Metadata, "text_num_attention_heads")
	if c, err := TextConfigFrom(&bare, nil); err != nil || c.NumHeads != 1 {
		t.Errorf("no metadata: heads %d, %v; want 64/64 = 1", c.NumHeads, err)
	}
	hf := []byte(`{"model_type":"clip","projection_dim":32,"text_config":{"num_attention_heads":4,"hidden_act":"quick_gelu"},"vision_config":{"num_attention_heads":2}}`)
	if c, err := TextConfigFrom(&bare, hf); err != nil || c.NumHeads != 4 {
		t.Errorf("config.json: heads %d, %v; want 4", c.NumHeads, err)
	}
	// The metadata wins over config.json.
	if c, err := TextConfigFrom(h, hf); err != nil || c.NumHeads != 2 {
		t.Errorf("metadata and config.json: heads %d, %v; want 2", c.NumHeads, err)
	}
	// The round trip through TextMetadata.
	md := *h
	md.Metadata = want.TextMetadata()
	if c, err := TextConfigFrom(&md, nil); err != nil || c != want {
		t.Errorf("TextMetadata round trip: %+v, %v", c, err)
	}
	// Heads that do not divide the width.
	md.Metadata = map[string]string{"text_num_attention_heads": "3"}
	if _, err := TextConfigFrom(&md, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("3 heads for width 64: %v", err)
	}
	md.Metadata = map[string]string{"text_num_attention_heads": "two"}
	if _, err := TextConfigFrom(&md, nil); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "text_num_attention_heads") {
		t.Errorf("heads \"two\": %v", err)
	}
}

func TestTextMissing(t *testing.T) {
	// A vision-only file names the missing text tensors.
	_, err := TextConfigFrom(openHeader(t, "tiny-f32.safetensors"), nil)
	var te *TextTensorsError
	if !errors.As(err, &te) || !errors.Is(err, ErrNoTextTower) || !strings.Contains(err.Error(), KeyTokenEmbedding+": missing") {
		t.Fatalf("vision-only: %v", err)
	}
	// A whole file with one text tensor removed names that tensor.
	full := openHeader(t, "tiny-fullclip-f32.safetensors")
	h := safetensors.Header{Metadata: full.Metadata} // built by hand: Tensor scans the list
	var kept []safetensors.TensorInfo
	for _, ti := range full.Tensors {
		if ti.Name != "text_model.encoder.layers.1.mlp.fc2.bias" {
			kept = append(kept, ti)
		}
	}
	h.Tensors = kept
	if _, err := TextConfigFrom(&h, nil); !errors.Is(err, ErrNoTextTower) || !strings.Contains(err.Error(), "layers.1.mlp.fc2.bias: missing") {
		t.Errorf("one tensor missing: %v", err)
	}
}
