package weights

import (
	"errors"
	"strings"
	"testing"

	"github.com/imgembed/imgembed/weights/safetensors"
)

func openFixture(t *testing.T, name string) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open("../testdata/models/" + name + ".safetensors")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestConfigFromFixtures(t *testing.T) {
	tiny := Config{HiddenSize: 128, NumLayers: 2, NumHeads: 2, IntermediateSize: 512, PatchSize: 16, ImageSize: 64,
		ProjectionDim: 32, LayerNormEps: 1e-5, Activation: "quick_gelu",
		ImageMean: [3]float32{0.48145466, 0.4578275, 0.40821073}, ImageStd: [3]float32{0.26862954, 0.26130258, 0.27577711}}
	b32l2 := tiny
	b32l2.HiddenSize, b32l2.NumLayers, b32l2.NumHeads, b32l2.IntermediateSize = 768, 2, 12, 3072
	b32l2.PatchSize, b32l2.ImageSize, b32l2.ProjectionDim = 32, 224, 512
	for name, want := range map[string]Config{
		"tiny-f32": tiny, "tiny-f16": tiny, "tiny-fullclip-f32": tiny, "b32l2-f16": b32l2,
	} {
		f := openFixture(t, name)
		got, err := ConfigFrom(f.Header, nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got != want {
			t.Errorf("%s: config\n got %+v\nwant %+v", name, got, want)
		}
	}
}

func TestHeadsFromMetadata(t *testing.T) {
	// tiny's width 128 would give 2 heads by width/64 too; a metadata value
	// of 4 must win, proving the metadata is read.
	f := openFixture(t, "tiny-f32")
	h := *f.Header
	h.Metadata = map[string]string{"num_attention_heads": "4"}
	c, err := ConfigFrom(&h, nil)
	if err != nil || c.NumHeads != 4 {
		t.Fatalf("heads %d, err %v; want 4", c.NumHeads, err)
	}
	h.Metadata = map[string]string{"num_attention_heads": "3"}
	if _, err := ConfigFrom(&h, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("3 heads for width 128: err %v, want ErrInvalidConfig", err)
	}
	h.Metadata = map[string]string{"num_attention_heads": "two"}
	var ce *ConfigError
	if _, err := ConfigFrom(&h, nil); !errors.As(err, &ce) || !strings.Contains(ce.Field, "num_attention_heads") {
		t.Fatalf("bad metadata: err %v", err)
	}
}

func TestKnownB32(t *testing.T) {
	m, ok := Lookup("openai/clip-vit-base-patch32")
	if !ok || m.URL != "https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/model.safetensors" {
		t.Fatalf("lookup: %v %+v", ok, m)
	}
	c := m.Config
	if c.HiddenSize != 768 || c.NumLayers != 12 || c.NumHeads != 12 || c.IntermediateSize != 3072 ||
		c.PatchSize != 32 || c.ImageSize != 224 || c.ProjectionDim != 512 || c.Patches() != 49 {
		t.Fatalf("b32 config %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
