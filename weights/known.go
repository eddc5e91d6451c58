package weights

import "strings"

// Model is a published checkpoint the project knows how to load.
type Model struct {
	Name   string // short name, e.g. "clip-vit-base-patch32"
	Repo   string // Hugging Face repository
	URL    string // direct URL of model.safetensors
	Config Config // the vision config ConfigFrom infers from that file
	// VisionBytes is what the image loader downloads of the F32 file
	// (Range requests for the vision tensors only).
	VisionBytes int64
}

func openAI(name, preset string) Model {
	m := Model{Name: name, Repo: "openai/" + name, Config: Preset(preset)}
	m.URL, _ = HubFile(m.Repo, "model.safetensors")
	m.VisionBytes = 4 * m.Config.NumParams()
	return m
}

// OpenAI's CLIP models as published on Hugging Face: whole CLIPModel
// files in F32, from which the vision tower is read.
var (
	CLIPViTBasePatch32     = openAI("clip-vit-base-patch32", "b32")
	CLIPViTBasePatch16     = openAI("clip-vit-base-patch16", "b16")
	CLIPViTLargePatch14    = openAI("clip-vit-large-patch14", "l14")
	CLIPViTLargePatch14336 = openAI("clip-vit-large-patch14-336", "l14-336")
)

// Known lists the known models.
var Known = []Model{CLIPViTBasePatch32, CLIPViTBasePatch16, CLIPViTLargePatch14, CLIPViTLargePatch14336}

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
// "b32" (ViT-B/32), "b16" (ViT-B/16), "l14" (ViT-L/14), "l14-336" (ViT-L/14
// at 336 pixels) or "tiny" (the test
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
	case "l14-336":
		c.HiddenSize, c.NumLayers, c.NumHeads, c.IntermediateSize = 1024, 24, 16, 4096
		c.PatchSize, c.ImageSize, c.ProjectionDim = 14, 336, 768
	case "tiny":
		c.HiddenSize, c.NumLayers, c.NumHeads, c.IntermediateSize = 128, 2, 2, 512
		c.PatchSize, c.ImageSize, c.ProjectionDim = 16, 64, 32
	default:
		return Config{}
	}
	return c
}

// Presets lists the names Preset accepts.
var Presets = []string{"b32", "b16", "l14", "l14-336", "tiny"}

// NumParams is the number of vision-tower weights (the tensors
// VisionTensors lists).
func (c Config) NumParams() int64 {
	var n int64
	for _, shape := range VisionTensors(c) {
		k := int64(1)
		for _, d := range shape {
			k *= int64(d)
		}
		n += k
	}
	return n
}
