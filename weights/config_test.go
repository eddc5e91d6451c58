package weights

import (
	"bytes"
	"errors"
	"maps"
	"slices"
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

// header builds a header holding tensors of the given shapes (F32).
func header(t *testing.T, shapes map[string][]int, meta map[string]string) *safetensors.Header {
	t.Helper()
	var ts []safetensors.Tensor
	for n, s := range shapes {
		k := 1
		for _, d := range s {
			k *= d
		}
		ts = append(ts, safetensors.Tensor{Name: n, DType: safetensors.F32, Shape: s, Data: make([]byte, 4*k)})
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	h, err := safetensors.ReadHeader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCheckVisionListsEveryProblem(t *testing.T) {
	cfg := Preset("tiny")
	shapes := VisionTensors(cfg)
	if len(shapes) != 5+16*2+3 {
		t.Fatalf("%d vision tensors, want 40", len(shapes))
	}
	// Spot-check the README's layout: [out, in] linears, no biases on
	// the patch embedding and projection.
	for name, want := range map[string][]int{
		"vision_model.embeddings.class_embedding":               {128},
		"vision_model.embeddings.patch_embedding.weight":        {128, 3, 16, 16},
		"vision_model.embeddings.position_embedding.weight":     {17, 128},
		"vision_model.pre_layrnorm.weight":                      {128},
		"vision_model.post_layernorm.bias":                      {128},
		"vision_model.encoder.layers.1.self_attn.out_proj.bias": {128},
		"vision_model.encoder.layers.1.self_attn.q_proj.weight": {128, 128},
		"vision_model.encoder.layers.0.mlp.fc1.weight":          {512, 128},
		"vision_model.encoder.layers.0.mlp.fc1.bias":            {512},
		"vision_model.encoder.layers.0.mlp.fc2.weight":          {128, 512},
		"vision_model.encoder.layers.0.mlp.fc2.bias":            {128},
		"visual_projection.weight":                              {32, 128},
	} {
		if !slices.Equal(shapes[name], want) {
			t.Errorf("%s: %v, want %v", name, shapes[name], want)
		}
	}
	for _, n := range []string{"vision_model.embeddings.patch_embedding.bias", "visual_projection.bias"} {
		if _, ok := shapes[n]; ok {
			t.Errorf("%s listed", n)
		}
	}

	broken := maps.Clone(shapes)
	delete(broken, "vision_model.encoder.layers.1.mlp.fc2.bias")
	delete(broken, "vision_model.post_layernorm.weight")
	broken["vision_model.encoder.layers.0.mlp.fc1.weight"] = []int{128, 512} // transposed
	h := header(t, broken, nil)
	err := CheckVision(h, cfg)
	var me *MissingTensorsError
	if !errors.As(err, &me) || !errors.Is(err, ErrMissingTensors) {
		t.Fatalf("err %v", err)
	}
	var got []string
	for _, p := range me.Problems {
		got = append(got, p.String())
	}
	want := []string{
		"vision_model.encoder.layers.0.mlp.fc1.weight: shape [128 512], want [512 128]",
		"vision_model.encoder.layers.1.mlp.fc2.bias: missing (want shape [128])",
		"vision_model.post_layernorm.weight: missing (want shape [128])",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// ConfigFrom reports the same, and still returns the inferred config.
	c, err := ConfigFrom(h, nil)
	if !errors.As(err, &me) || len(me.Problems) != 3 || c.HiddenSize != 128 {
		t.Errorf("ConfigFrom: %+v, %v", c, err)
	}
}

func TestConfigFromHFConfigJSON(t *testing.T) {
	f := openFixture(t, "b32l2-f16")
	// A trimmed openai/clip-vit-base-patch32 config.json (CLIPConfig).
	hf := []byte(`{"architectures":["CLIPModel"],"model_type":"clip","projection_dim":512,
		"text_config":{"hidden_size":512,"num_attention_heads":8},
		"vision_config":{"hidden_size":768,"intermediate_size":3072,"num_attention_heads":12,
		"num_hidden_layers":2,"patch_size":32,"image_size":224,"layer_norm_eps":1e-05,"hidden_act":"quick_gelu","projection_dim":999}}`)
	c, err := ConfigFrom(f.Header, hf)
	if err != nil || c.NumHeads != 12 || c.ProjectionDim != 512 || c.ImageSize != 224 {
		t.Fatalf("%+v %v", c, err)
	}
	// config.json wins over width/64, and gelu is read.
	hf2 := []byte(`{"model_type":"clip","vision_config":{"num_attention_heads":16,"hidden_act":"gelu","layer_norm_eps":1e-6}}`)
	c, err = ConfigFrom(f.Header, hf2)
	if err != nil || c.NumHeads != 16 || c.Activation != "gelu" || c.LayerNormEps != 1e-6 {
		t.Fatalf("%+v %v", c, err)
	}
	// A bare CLIPVisionConfig (model_type clip_vision_model).
	hf3 := []byte(`{"model_type":"clip_vision_model","num_attention_heads":6,"projection_dim":512}`)
	if c, err = ConfigFrom(f.Header, hf3); err != nil || c.NumHeads != 6 {
		t.Fatalf("%+v %v", c, err)
	}
	// config.json contradicting the tensors: the mismatch is reported.
	hf4 := []byte(`{"vision_config":{"hidden_size":1024,"num_attention_heads":16,"intermediate_size":4096}}`)
	if _, err = ConfigFrom(f.Header, hf4); !errors.Is(err, ErrMissingTensors) {
		t.Fatalf("contradiction: %v", err)
	}
	for _, bad := range []string{`{`, `{"model_type":"bert"}`, `{"vision_config":{"hidden_size":"x"}}`} {
		if _, err := ConfigFrom(f.Header, []byte(bad)); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestConfigFromNotCLIP(t *testing.T) {
	h := header(t, map[string][]int{"bert.embeddings.word_embeddings.weight": {10, 4}}, nil)
	if _, err := ConfigFrom(h, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("non-CLIP file: %v", err)
	}
	shapes := VisionTensors(Preset("tiny"))
	shapes["vision_model.embeddings.position_embedding.weight"] = []int{18, 128} // 17 patches
	if _, err := ConfigFrom(header(t, shapes, nil), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("non-square grid: %v", err)
	}
	shapes = VisionTensors(Preset("tiny"))
	for n, s := range shapes {
		for i := range s {
			if s[i] == 128 {
				s[i] = 96 // width 96: not a multiple of 64, heads unstated
			}
		}
		shapes[n] = s
	}
	if _, err := ConfigFrom(header(t, shapes, nil), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("width 96 without heads: %v", err)
	}
	if c, err := ConfigFrom(header(t, shapes, map[string]string{"num_attention_heads": "3"}), nil); err != nil || c.NumHeads != 3 || c.HiddenSize != 96 {
		t.Errorf("width 96, 3 heads: %+v %v", c, err)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	c := Preset("l14")
	c.ImageMean = [3]float32{0.5, 0.25, 0.125}
	c.LayerNormEps = 1e-6
	c.Activation = "gelu"
	p, err := fromMetadata(c.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	if *p.hidden != 1024 || *p.heads != 16 || *p.mean != c.ImageMean || *p.std != c.ImageStd || *p.eps != 1e-6 || *p.act != "gelu" {
		t.Errorf("%+v", p)
	}
	if _, err := fromMetadata(map[string]string{"image_std": "1,2"}); !errors.Is(err, ErrInvalidConfig) {
		t.Error(err)
	}
	if v, err := parseTriple(" 1, 2.5 ,3"); err != nil || v != [3]float32{1, 2.5, 3} {
		t.Error(v, err)
	}
}

func TestWideTowerNeedsHeads(t *testing.T) {
	cfg := Preset("tiny")
	cfg.HiddenSize, cfg.NumHeads, cfg.NumLayers = 1280, 16, 1
	shapes := VisionTensors(cfg)
	if _, err := ConfigFrom(header(t, shapes, nil), nil); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "num_attention_heads") {
		t.Errorf("width 1280 without heads: %v", err)
	}
	c, err := ConfigFrom(header(t, shapes, nil), []byte(`{"vision_config":{"num_attention_heads":16,"hidden_act":"gelu"}}`))
	if err != nil || c.NumHeads != 16 || c.Activation != "gelu" {
		t.Errorf("%+v %v", c, err)
	}
	l14 := Preset("l14")
	l14.NumLayers = 1
	if c, err := ConfigFrom(header(t, VisionTensors(l14), nil), nil); err != nil || c != l14 {
		t.Errorf("ViT-L/14 inference: %+v %v", c, err)
	}
}
