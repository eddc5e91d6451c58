package weights

import "strings"

// Model is a published checkpoint the project knows how to load.
type Model struct {
	Name   string // short name, e.g. "clip-vit-base-patch32"
	Repo   string // Hugging Face repository
	URL    string // direct URL of model.safetensors
	Config Config // the vision config ConfigFrom infers from that file
}

// CLIPViTBasePatch32 is OpenAI's CLIP ViT-B/32 as published on Hugging
// Face (a whole CLIPModel file, F32; the vision tower is read from it).
var CLIPViTBasePatch32 = Model{
	Name:   "clip-vit-base-patch32",
	Repo:   "openai/clip-vit-base-patch32",
	URL:    "https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/model.safetensors",
	Config: Preset("b32"),
}

// Known lists the known models.
var Known = []Model{CLIPViTBasePatch32}

// Lookup finds a known model by Name or Repo (case-insensitive).
func Lookup(name string) (Model, bool) {
	for _, m := range Known {
		if strings.EqualFold(m.Name, name) || strings.EqualFold(m.Repo, name) {
			return m, true
		}
	}
	return Model{}, false
}

// Preset returns the vision config of a CLIP architecture by short name:
// "b32" (ViT-B/32), "b16" (ViT-B/16), "l14" (ViT-L/14) or "tiny" (the test
// fixtures' 128-wide, 2-layer model). It returns the zero Config for an
// unknown name.
func Preset(name string) Config {
	c := Config{
		LayerNormEps: DefaultLayerNormEps, Activation: DefaultActivation,
		ImageMean: DefaultImageMean, ImageStd: DefaultImageStd,
	}
	switch strings.ToLower(name) {
	case "b32":
		c.HiddenSize, c.NumLayers, c.NumHeads, c.IntermediateSize = 768, 12, 12, 3072
		c.PatchSize, c.ImageSize, c.ProjectionDim = 32, 224, 512
	case "b16":
		c.HiddenSize, c.NumLayers, c.NumHeads, c.IntermediateSize = 768, 12, 12, 3072
		c.PatchSize, c.ImageSize, c.ProjectionDim = 16, 224, 512
	case "l14":
		c.HiddenSize, c.NumLayers, c.NumHeads, c.IntermediateSize = 1024, 24, 16, 4096
		c.PatchSize, c.ImageSize, c.ProjectionDim = 14, 224, 768
	case "tiny":
		c.HiddenSize, c.NumLayers, c.NumHeads, c.IntermediateSize = 128, 2, 2, 512
		c.PatchSize, c.ImageSize, c.ProjectionDim = 16, 64, 32
	default:
		return Config{}
	}
	return c
}

// Presets lists the names Preset accepts.
var Presets = []string{"b32", "b16", "l14", "tiny"}
