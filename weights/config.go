// Package weights reads CLIP vision checkpoints: the safetensors format,
// Hugging Face key names, config inference and dtype conversion.
package weights

// Config describes a CLIP vision tower and its preprocessing.
type Config struct {
	HiddenSize       int     `json:"hidden_size"`       // width D (768 for ViT-B/32)
	NumLayers        int     `json:"num_hidden_layers"` // encoder layers
	NumHeads         int     `json:"num_attention_heads"`
	IntermediateSize int     `json:"intermediate_size"` // MLP width
	PatchSize        int     `json:"patch_size"`
	ImageSize        int     `json:"image_size"`
	ProjectionDim    int     `json:"projection_dim"` // embedding length
	LayerNormEps     float64 `json:"layer_norm_eps"`
	Activation       string  `json:"hidden_act"` // "quick_gelu" (OpenAI CLIP) or "gelu"

	// Preprocessing (CLIPImageProcessor).
	ImageMean [3]float32 `json:"image_mean"`
	ImageStd  [3]float32 `json:"image_std"`
}

// Patches is the number of patch tokens, (ImageSize/PatchSize)^2.
func (c Config) Patches() int { g := c.ImageSize / c.PatchSize; return g * g }
