package weights

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// SynthOptions controls Synthesize.
type SynthOptions struct {
	Seed  uint64
	DType safetensors.DType // F32 (default), F16 or BF16
	// Full also writes a few text-tower tensors, text_projection,
	// logit_scale and the int64 position_ids buffers, like a whole
	// CLIPModel checkpoint; vision loaders must ignore them.
	Full bool
	// Bare writes only {"format": "pt"} as metadata, like a raw Hugging
	// Face file; otherwise the config is written too (Config.Metadata).
	Bare bool
}

// Synthesize streams a seeded random checkpoint of cfg in the exact
// Hugging Face layout (vision tower + visual_projection) to w. The init
// follows the brief for test models: weights ~ N(0, 0.02), biases ~
// N(0, 0.01), LayerNorm weight 1 and bias 0. Each tensor has its own PCG
// stream seeded by (Seed, FNV-1a of its name), so the output is identical
// for a seed and a tensor's values do not depend on which other tensors
// are present (a 2-layer model shares its layers with the 12-layer one).
// Memory use is a few hundred KB whatever the model size.
func Synthesize(w io.Writer, cfg Config, opts SynthOptions) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	dtype := opts.DType
	if dtype == "" {
		dtype = safetensors.F32
	}
	if dtype != safetensors.F32 && dtype != safetensors.F16 && dtype != safetensors.BF16 {
		return fmt.Errorf("weights: synthesize: %w: %s (want F32, F16 or BF16)", safetensors.ErrUnsupportedDType, dtype)
	}
	specs := synthSpecs(cfg, dtype, opts.Full)
	meta := map[string]string{"format": "pt"}
	if !opts.Bare {
		for k, v := range cfg.Metadata() {
			meta[k] = v
		}
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	sw, err := safetensors.NewWriter(bw, specs, meta)
	if err != nil {
		return err
	}
	const chunk = 1 << 16
	vals := make([]float32, chunk)
	buf := make([]byte, 8*chunk)
	for _, s := range specs {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		if s.DType == safetensors.I64 { // position_ids: 0..n-1
			for i := 0; i < n; i++ {
				for b := 0; b < 8; b++ {
					buf[b] = byte(uint64(i) >> (8 * b))
				}
				if _, err := sw.Write(buf[:8]); err != nil {
					return err
				}
			}
			continue
		}
		gen := synthInit(s.Name, opts.Seed)
		size, _ := s.DType.Size()
		for done := 0; done < n; done += chunk {
			m := min(chunk, n-done)
			gen(vals[:m])
			if err := safetensors.EncodeFloat32(s.DType, vals[:m], buf[:m*size]); err != nil {
				return err
			}
			if _, err := sw.Write(buf[:m*size]); err != nil {
				return err
			}
		}
	}
	if err := sw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("weights: synthesize: %w", err)
	}
	return nil
}

// synthSpecs lists the tensors: int64 buffers first (8-byte alignment),
// then the vision tower in VisionTensorNames order, then the text extras.
func synthSpecs(cfg Config, dtype safetensors.DType, full bool) []safetensors.Spec {
	var specs []safetensors.Spec
	tw := min(512, max(cfg.HiddenSize/2, 8)) // text width of the extras
	const vocab, ctx = 1000, 77
	if full {
		specs = append(specs,
			safetensors.Spec{Name: "vision_model.embeddings.position_ids", DType: safetensors.I64, Shape: []int{1, cfg.Patches() + 1}},
			safetensors.Spec{Name: "text_model.embeddings.position_ids", DType: safetensors.I64, Shape: []int{1, ctx}},
		)
	}
	shapes := VisionTensors(cfg)
	for _, name := range VisionTensorNames(cfg) {
		specs = append(specs, safetensors.Spec{Name: name, DType: dtype, Shape: shapes[name]})
	}
	if full {
		for _, s := range []safetensors.Spec{
			{Name: "text_model.embeddings.token_embedding.weight", Shape: []int{vocab, tw}},
			{Name: "text_model.embeddings.position_embedding.weight", Shape: []int{ctx, tw}},
			// A text layer: a loader that counts layers by a loose
			// "layers." match would be fooled by these.
			{Name: "text_model.encoder.layers.0.self_attn.q_proj.weight", Shape: []int{tw, tw}},
			{Name: "text_model.encoder.layers.0.self_attn.q_proj.bias", Shape: []int{tw}},
			{Name: "text_model.encoder.layers.0.mlp.fc1.weight", Shape: []int{4 * tw, tw}},
			{Name: "text_model.final_layer_norm.weight", Shape: []int{tw}},
			{Name: "text_model.final_layer_norm.bias", Shape: []int{tw}},
			{Name: "text_projection.weight", Shape: []int{cfg.ProjectionDim, tw}},
			{Name: "logit_scale", Shape: []int{}},
		} {
			s.DType = dtype
			specs = append(specs, s)
		}
	}
	return specs
}

// synthInit returns the value generator for one tensor.
func synthInit(name string, seed uint64) func([]float32) {
	h := fnv.New64a()
	h.Write([]byte(name))
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	constant := func(v float32) func([]float32) {
		return func(dst []float32) {
			for i := range dst {
				dst[i] = v
			}
		}
	}
	normal := func(std float64) func([]float32) {
		return func(dst []float32) {
			for i := range dst {
				dst[i] = float32(r.NormFloat64() * std)
			}
		}
	}
	isLN := strings.Contains(name, "layer_norm") || strings.Contains(name, "layrnorm") || strings.Contains(name, "layernorm")
	switch {
	case name == "logit_scale":
		return constant(float32(math.Log(1 / 0.07)))
	case isLN && strings.HasSuffix(name, ".weight"):
		return constant(1)
	case isLN && strings.HasSuffix(name, ".bias"):
		return constant(0)
	case strings.HasSuffix(name, ".bias"):
		return normal(0.01)
	default:
		return normal(0.02)
	}
}
