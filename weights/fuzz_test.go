package weights

import (
	"bytes"
	"errors"
	"testing"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// FuzzConfigFrom feeds arbitrary metadata values, config.json bytes and
// layer indices: ConfigFrom must not panic, must fail only with
// ErrInvalidConfig or ErrMissingTensors, and any config it accepts must
// validate and match the tensors.
func FuzzConfigFrom(f *testing.F) {
	f.Add("num_attention_heads", "2", []byte(nil), "0")
	f.Add("image_mean", "[1,2,3]", []byte(`{"vision_config":{"hidden_size":128}}`), "1")
	f.Add("num_hidden_layers", "99999999999", []byte(`{"model_type":"clip_vision_model","patch_size":0}`), "1023")
	f.Add("layer_norm_eps", "NaN", []byte(`{"vision_config":null,"projection_dim":-1}`), "01")
	f.Fuzz(func(t *testing.T, key, value string, hf []byte, layer string) {
		cfg := Preset("tiny")
		cfg.NumLayers = 1
		shapes := VisionTensors(cfg)
		shapes["vision_model.encoder.layers."+layer+".extra"] = []int{1}
		var ts []safetensors.Tensor
		for n, s := range shapes {
			k := 1
			for _, d := range s {
				k *= d
			}
			ts = append(ts, safetensors.Tensor{Name: n, DType: safetensors.F16, Shape: s, Data: make([]byte, 2*k)})
		}
		var buf bytes.Buffer
		if err := safetensors.Write(&buf, ts, map[string]string{key: value}); err != nil {
			return // e.g. invalid UTF-8 in the metadata
		}
		h, err := safetensors.ReadHeader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		c, err := ConfigFrom(h, hf)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) && !errors.Is(err, ErrMissingTensors) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted invalid config %+v: %v", c, err)
		}
		if err := CheckVision(h, c); err != nil {
			t.Fatalf("accepted mismatching config: %v", err)
		}
	})
}
