package weights

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// Defaults of Hugging Face CLIPVisionConfig / CLIPImageProcessor that cannot
// be read from tensor shapes.
var (
	DefaultImageMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	DefaultImageStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

const (
	DefaultLayerNormEps = 1e-5
	DefaultActivation   = "quick_gelu"
	// DefaultHeadDim is the head width of every OpenAI CLIP ViT, used to
	// infer the head count (width / 64) when nothing states it.
	DefaultHeadDim = 64
	// maxInferredHeadsWidth is the widest tower whose head count is
	// inferred as width/64 (OpenAI ViT-L).
	maxInferredHeadsWidth = 1024
	// MaxLayers bounds the layer count a checkpoint may state or imply.
	MaxLayers = 1024
)

// Errors for configuration problems; *ConfigError and *MissingTensorsError
// wrap them.
var (
	// ErrInvalidConfig: a configuration value is missing, malformed or
	// inconsistent (heads not dividing the width, a non-square position
	// table, ...).
	ErrInvalidConfig = errors.New("invalid CLIP vision config")
	// ErrMissingTensors: the checkpoint lacks vision tensors or holds them
	// with the wrong shape or a non-float dtype.
	ErrMissingTensors = errors.New("checkpoint does not match the CLIP vision layout")
	// ErrOutOfRange: a finite weight does not fit the target dtype of a
	// conversion (|x| > 65504 for F16; within half a BF16 step of
	// MaxFloat32 for BF16).
	ErrOutOfRange = errors.New("value out of range for the target dtype")
)

// ConfigError names the config field (or metadata key) at fault.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("weights: %s: %s: %s", ErrInvalidConfig, e.Field, e.Reason)
}

func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// TensorProblem is one missing or mis-shaped tensor.
type TensorProblem struct {
	Name     string
	Want     []int // expected shape
	Got      []int // actual shape; nil if missing
	DType    safetensors.DType
	BadDType bool // present with a dtype the loader cannot decode
	// Quant is set for an I8 tensor that breaks the int8 scheme (CheckInt8).
	Quant    error
	Missing  bool
	Mismatch bool
}

func (p TensorProblem) String() string {
	switch {
	case p.Missing:
		return fmt.Sprintf("%s: missing (want shape %v)", p.Name, p.Want)
	case p.Quant != nil:
		return p.Quant.Error()
	case p.BadDType:
		return fmt.Sprintf("%s: dtype %s is not F32, F16, BF16, F64 or I8 (int8 scheme)", p.Name, p.DType)
	default:
		return fmt.Sprintf("%s: shape %v, want %v", p.Name, p.Got, p.Want)
	}
}

// MissingTensorsError lists every vision tensor that is missing, has the
// wrong shape, or has a dtype that cannot be decoded to float32.
type MissingTensorsError struct {
	Problems []TensorProblem
}

func (e *MissingTensorsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "weights: %s: %d tensor problem(s): ", ErrMissingTensors, len(e.Problems))
	for i, p := range e.Problems {
		if i == 6 {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap gives ErrMissingTensors and each problem's quantisation error, so
// that errors.Is(err, ErrInvalidQuant) tells a broken int8 file.
func (e *MissingTensorsError) Unwrap() []error {
	errs := []error{ErrMissingTensors}
	for _, p := range e.Problems {
		if p.Quant != nil {
			errs = append(errs, p.Quant)
		}
	}
	return errs
}

// Hugging Face key names of the CLIP vision tower.
const (
	keyClass    = "vision_model.embeddings.class_embedding"
	keyPatch    = "vision_model.embeddings.patch_embedding.weight"
	keyPosition = "vision_model.embeddings.position_embedding.weight"
	keyPreLN    = "vision_model.pre_layrnorm" // sic, as in transformers
	keyPostLN   = "vision_model.post_layernorm"
	keyProj     = "visual_projection.weight"
	layerPrefix = "vision_model.encoder.layers."
)

// VisionTensorNames returns the Hugging Face names of the vision tower in a
// fixed order: embeddings, pre-LayerNorm, each layer, post-LayerNorm,
// projection.
func VisionTensorNames(cfg Config) []string {
	names := []string{keyClass, keyPatch, keyPosition, keyPreLN + ".weight", keyPreLN + ".bias"}
	for i := 0; i < cfg.NumLayers; i++ {
		p := layerPrefix + strconv.Itoa(i) + "."
		for _, s := range layerTensorSuffixes {
			names = append(names, p+s)
		}
	}
	return append(names, keyPostLN+".weight", keyPostLN+".bias", keyProj)
}

// VisionTensors maps every tensor of the vision tower (as listed in the
// fixtures' README) to its expected shape. Linear weights are [out, in].
func VisionTensors(cfg Config) map[string][]int {
	d, m := cfg.HiddenSize, cfg.IntermediateSize
	out := make(map[string][]int, 8+16*cfg.NumLayers)
	for _, name := range VisionTensorNames(cfg) {
		var shape []int
		switch {
		case name == keyClass:
			shape = []int{d}
		case name == keyPatch:
			shape = []int{d, 3, cfg.PatchSize, cfg.PatchSize}
		case name == keyPosition:
			shape = []int{cfg.Patches() + 1, d}
		case name == keyProj:
			shape = []int{cfg.ProjectionDim, d}
		default:
			shape = layerTensorShape(name, d, m)
		}
		out[name] = shape
	}
	return out
}

// CheckVision verifies that h holds every vision tensor of cfg with the
// expected shape and a float dtype (F32, F16, BF16 or F64: what DecodeFloat32 reads),
// or I8 with scales following the int8 scheme (CheckInt8). It returns a
// *MissingTensorsError listing every problem, sorted by name. Tensors not
// in the vision tower (text model, logit_scale, position_ids) are ignored.
func CheckVision(h *safetensors.Header, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if problems := tensorProblems(h, VisionTensors(cfg), true); len(problems) > 0 {
		return &MissingTensorsError{Problems: problems}
	}
	return nil
}

// layerTensorShape is the shape of a transformer-block tensor (one of
// layerTensorSuffixes), or of a final LayerNorm's, in a tower of width d
// and MLP width m: the same in the vision and the text tower.
func layerTensorShape(name string, d, m int) []int {
	switch {
	case strings.HasSuffix(name, "mlp.fc1.weight"):
		return []int{m, d}
	case strings.HasSuffix(name, "mlp.fc1.bias"):
		return []int{m}
	case strings.HasSuffix(name, "mlp.fc2.weight"):
		return []int{d, m}
	case strings.HasSuffix(name, "_proj.weight"):
		return []int{d, d}
	default: // LayerNorm weights and biases, attention and fc2 biases
		return []int{d}
	}
}

// tensorProblems lists, sorted by name, the tensors of want (name -> shape)
// that h lacks or holds with another shape or an unusable dtype; with
// quantised, an I8 tensor passes when CheckInt8 accepts its layout.
func tensorProblems(h *safetensors.Header, want map[string][]int, quantised bool) []TensorProblem {
	var problems []TensorProblem
	for name, shape := range want {
		t, ok := h.Tensor(name)
		switch {
		case !ok:
			problems = append(problems, TensorProblem{Name: name, Want: shape, Missing: true})
		case !slices.Equal(t.Shape, shape):
			problems = append(problems, TensorProblem{Name: name, Want: shape, Got: t.Shape, DType: t.DType, Mismatch: true})
		case quantised && t.DType == safetensors.I8:
			if _, err := CheckInt8(h, name); err != nil {
				problems = append(problems, TensorProblem{Name: name, Want: shape, Got: t.Shape, DType: t.DType, BadDType: true, Quant: err})
			}
		case t.DType != safetensors.F32 && t.DType != safetensors.F16 && t.DType != safetensors.BF16 && t.DType != safetensors.F64:
			problems = append(problems, TensorProblem{Name: name, Want: shape, Got: t.Shape, DType: t.DType, BadDType: true})
		}
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Name < problems[j].Name })
	return problems
}

// Validate checks that the config describes a buildable vision tower.
func (c Config) Validate() error {
	pos := map[string]int{
		"hidden_size": c.HiddenSize, "num_hidden_layers": c.NumLayers, "num_attention_heads": c.NumHeads,
		"intermediate_size": c.IntermediateSize, "patch_size": c.PatchSize, "image_size": c.ImageSize,
		"projection_dim": c.ProjectionDim,
	}
	for _, k := range []string{"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "patch_size", "image_size", "projection_dim"} {
		if pos[k] <= 0 {
			return &ConfigError{Field: k, Reason: fmt.Sprintf("must be positive, is %d", pos[k])}
		}
		// Caps far above any CLIP (ViT-bigG: width 1664, 48 layers) keep a
		// hostile header from making the name lists and checks huge.
		limit := 1 << 16
		if k == "num_hidden_layers" {
			limit = MaxLayers
		}
		if pos[k] > limit {
			return &ConfigError{Field: k, Reason: fmt.Sprintf("%d exceeds the limit of %d", pos[k], limit)}
		}
	}
	if c.HiddenSize%c.NumHeads != 0 {
		return &ConfigError{Field: "num_attention_heads", Reason: fmt.Sprintf("%d heads do not divide hidden_size %d", c.NumHeads, c.HiddenSize)}
	}
	if c.ImageSize%c.PatchSize != 0 {
		return &ConfigError{Field: "patch_size", Reason: fmt.Sprintf("patch %d does not divide image_size %d", c.PatchSize, c.ImageSize)}
	}
	if !(c.LayerNormEps > 0 && c.LayerNormEps < 1) {
		return &ConfigError{Field: "layer_norm_eps", Reason: fmt.Sprintf("%g is not in (0, 1)", c.LayerNormEps)}
	}
	switch c.Activation {
	case "quick_gelu", "gelu":
	default:
		return &ConfigError{Field: "hidden_act", Reason: fmt.Sprintf("unsupported activation %q (want quick_gelu or gelu)", c.Activation)}
	}
	for i := 0; i < 3; i++ {
		if !(c.ImageStd[i] > 0) || math.IsInf(float64(c.ImageStd[i]), 0) {
			return &ConfigError{Field: "image_std", Reason: fmt.Sprintf("%v must be positive", c.ImageStd)}
		}
		if math.IsNaN(float64(c.ImageMean[i])) || math.IsInf(float64(c.ImageMean[i]), 0) {
			return &ConfigError{Field: "image_mean", Reason: fmt.Sprintf("%v is not finite", c.ImageMean)}
		}
	}
	return nil
}

// partial holds config values found in one source; nil = not stated.
type partial struct {
	hidden, layers, heads, mlp, patch, image, proj *int
	eps                                            *float64
	act                                            *string
	mean, std                                      *[3]float32
	positions                                      *int // rows of the position table (shapes only)
}

// ConfigFrom works out the vision config of a checkpoint. Each field comes
// from the first source that states it:
//  1. the file's __metadata__ (Config JSON tag names such as
//     "num_attention_heads"; written by Convert and Synthesize);
//  2. hfConfigJSON, a Hugging Face config.json (its vision_config plus the
//     top-level projection_dim; a bare CLIPVisionConfig also works; may be
//     nil);
//  3. the tensor shapes: width from class_embedding, layers from the keys
//     present, MLP width from fc1, patch from patch_embedding, image size
//     = sqrt(positions-1) x patch, projection from visual_projection, and
//     heads = width/64 for widths up to 1024 (every OpenAI CLIP; wider
//     OpenCLIP towers must state it);
//  4. the CLIP defaults: eps 1e-5, quick_gelu, OpenAI mean/std.
//
// The result is validated and checked against the tensors with
// CheckVision; on a *MissingTensorsError the inferred config is returned
// too, for diagnostics. Other errors are *ConfigError (ErrInvalidConfig).
func ConfigFrom(h *safetensors.Header, hfConfigJSON []byte) (Config, error) {
	meta, err := fromMetadata(h.Metadata)
	if err != nil {
		return Config{}, err
	}
	var hf partial
	if len(hfConfigJSON) > 0 {
		if hf, err = fromHFConfig(hfConfigJSON); err != nil {
			return Config{}, err
		}
	}
	shapes, err := fromShapes(h)
	if err != nil {
		return Config{}, err
	}
	var c Config
	pickInt := func(dst *int, srcs ...*int) {
		for _, s := range srcs {
			if s != nil {
				*dst = *s
				return
			}
		}
	}
	pickInt(&c.HiddenSize, meta.hidden, hf.hidden, shapes.hidden)
	pickInt(&c.NumLayers, meta.layers, hf.layers, shapes.layers)
	pickInt(&c.IntermediateSize, meta.mlp, hf.mlp, shapes.mlp)
	pickInt(&c.PatchSize, meta.patch, hf.patch, shapes.patch)
	pickInt(&c.ProjectionDim, meta.proj, hf.proj, shapes.proj)
	pickInt(&c.NumHeads, meta.heads, hf.heads)
	if c.NumHeads == 0 && c.HiddenSize > 0 {
		// width/64 holds for every OpenAI CLIP (B: 768/12, L: 1024/16) but
		// not for the wider OpenCLIP towers (H: 1280/16, g: 1408/16, bigG:
		// 1664/16), where it would silently give a wrong model.
		if c.HiddenSize > maxInferredHeadsWidth {
			return c, &ConfigError{Field: "num_attention_heads", Reason: fmt.Sprintf("not stated, and for width %d (wider than any OpenAI CLIP) width/%d is not reliable: pass config.json or record it with the converter", c.HiddenSize, DefaultHeadDim)}
		}
		if c.HiddenSize%DefaultHeadDim != 0 {
			return c, &ConfigError{Field: "num_attention_heads", Reason: fmt.Sprintf("not stated, and hidden_size %d is not a multiple of %d", c.HiddenSize, DefaultHeadDim)}
		}
		c.NumHeads = c.HiddenSize / DefaultHeadDim
	}
	pickInt(&c.ImageSize, meta.image, hf.image)
	if c.ImageSize == 0 && shapes.positions != nil && c.PatchSize > 0 {
		n := *shapes.positions - 1
		g := int(math.Sqrt(float64(n)) + 0.5)
		if n <= 0 || g*g != n {
			return c, &ConfigError{Field: "image_size", Reason: fmt.Sprintf("position table has %d rows: %d patches is not a square grid", n+1, n)}
		}
		c.ImageSize = g * c.PatchSize
	}
	c.LayerNormEps = DefaultLayerNormEps
	for _, s := range []*float64{hf.eps, meta.eps} { // later wins
		if s != nil {
			c.LayerNormEps = *s
		}
	}
	c.Activation = DefaultActivation
	for _, s := range []*string{hf.act, meta.act} {
		if s != nil {
			c.Activation = *s
		}
	}
	c.ImageMean, c.ImageStd = DefaultImageMean, DefaultImageStd
	for _, s := range []*[3]float32{hf.mean, meta.mean} {
		if s != nil {
			c.ImageMean = *s
		}
	}
	for _, s := range []*[3]float32{hf.std, meta.std} {
		if s != nil {
			c.ImageStd = *s
		}
	}
	if shapes.hidden == nil && meta.hidden == nil && hf.hidden == nil {
		return c, &ConfigError{Field: "hidden_size", Reason: "no " + keyClass + " tensor and no config states it: not a CLIP vision checkpoint"}
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, CheckVision(h, c)
}

func intp(v int) *int { return &v }

// fromShapes infers what the tensor shapes say.
func fromShapes(h *safetensors.Header) (partial, error) {
	var p partial
	if t, ok := h.Tensor(keyClass); ok && len(t.Shape) == 1 {
		p.hidden = intp(t.Shape[0])
	}
	if t, ok := h.Tensor(keyPatch); ok && len(t.Shape) == 4 && t.Shape[2] == t.Shape[3] {
		p.patch = intp(t.Shape[2])
	}
	if t, ok := h.Tensor(keyPosition); ok && len(t.Shape) == 2 {
		p.positions = intp(t.Shape[0])
	}
	if t, ok := h.Tensor(keyProj); ok && len(t.Shape) == 2 {
		p.proj = intp(t.Shape[0])
	}
	// The MLP width from fc1's bias ([mlp], unambiguous) or else its
	// weight ([mlp, width]).
	if t, ok := h.Tensor(layerPrefix + "0.mlp.fc1.bias"); ok && len(t.Shape) == 1 {
		p.mlp = intp(t.Shape[0])
	} else if t, ok := h.Tensor(layerPrefix + "0.mlp.fc1.weight"); ok && len(t.Shape) == 2 {
		p.mlp = intp(t.Shape[0])
	}
	layers := 0
	for _, t := range h.Tensors {
		rest, ok := strings.CutPrefix(t.Name, layerPrefix)
		if !ok {
			continue
		}
		idx, _, ok := strings.Cut(rest, ".")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || strconv.Itoa(i) != idx {
			continue
		}
		if i >= MaxLayers {
			return p, &ConfigError{Field: "num_hidden_layers", Reason: fmt.Sprintf("tensor %q has a layer index above the limit of %d layers", t.Name, MaxLayers)}
		}
		layers = max(layers, i+1)
	}
	if layers > 0 {
		p.layers = intp(layers)
	}
	return p, nil
}

// fromMetadata reads config values from __metadata__ strings. Keys are the
// Config JSON tag names; image_mean/image_std are JSON arrays or
// comma-separated numbers.
func fromMetadata(md map[string]string) (partial, error) {
	var p partial
	ints := map[string]**int{
		"hidden_size": &p.hidden, "num_hidden_layers": &p.layers, "num_attention_heads": &p.heads,
		"intermediate_size": &p.mlp, "patch_size": &p.patch, "image_size": &p.image, "projection_dim": &p.proj,
	}
	for k, dst := range ints {
		s, ok := md[k]
		if !ok {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v <= 0 {
			return p, &ConfigError{Field: "__metadata__." + k, Reason: fmt.Sprintf("%q is not a positive integer", s)}
		}
		*dst = intp(v)
	}
	if s, ok := md["layer_norm_eps"]; ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return p, &ConfigError{Field: "__metadata__.layer_norm_eps", Reason: fmt.Sprintf("%q is not a number", s)}
		}
		p.eps = &v
	}
	if s, ok := md["hidden_act"]; ok {
		p.act = &s
	}
	for _, k := range []string{"image_mean", "image_std"} {
		s, ok := md[k]
		if !ok {
			continue
		}
		v, err := parseTriple(s)
		if err != nil {
			return p, &ConfigError{Field: "__metadata__." + k, Reason: err.Error()}
		}
		if k == "image_mean" {
			p.mean = &v
		} else {
			p.std = &v
		}
	}
	return p, nil
}

func parseTriple(s string) ([3]float32, error) {
	var out [3]float32
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return out, fmt.Errorf("want 3 numbers, got %q", s)
	}
	for i, part := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(part), 32)
		if err != nil {
			return out, fmt.Errorf("%q is not a number", part)
		}
		out[i] = float32(v)
	}
	return out, nil
}

// hfVision is the subset of a Hugging Face CLIP(Vision)Config we read.
type hfVision struct {
	HiddenSize       *int        `json:"hidden_size"`
	NumLayers        *int        `json:"num_hidden_layers"`
	NumHeads         *int        `json:"num_attention_heads"`
	IntermediateSize *int        `json:"intermediate_size"`
	PatchSize        *int        `json:"patch_size"`
	ImageSize        *int        `json:"image_size"`
	ProjectionDim    *int        `json:"projection_dim"`
	LayerNormEps     *float64    `json:"layer_norm_eps"`
	Activation       *string     `json:"hidden_act"`
	ImageMean        *[3]float32 `json:"image_mean"`
	ImageStd         *[3]float32 `json:"image_std"`
}

func fromHFConfig(data []byte) (partial, error) {
	var top struct {
		hfVision
		ModelType    string          `json:"model_type"`
		VisionConfig json.RawMessage `json:"vision_config"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return partial{}, &ConfigError{Field: "config.json", Reason: err.Error()}
	}
	v := top.hfVision // a bare CLIPVisionConfig (model_type clip_vision_model)
	if len(top.VisionConfig) > 0 && string(top.VisionConfig) != "null" {
		v = hfVision{}
		if err := json.Unmarshal(top.VisionConfig, &v); err != nil {
			return partial{}, &ConfigError{Field: "config.json vision_config", Reason: err.Error()}
		}
		if top.ProjectionDim != nil { // CLIPConfig keeps the projection at top level
			v.ProjectionDim = top.ProjectionDim
		}
		if top.ImageMean != nil {
			v.ImageMean = top.ImageMean
		}
		if top.ImageStd != nil {
			v.ImageStd = top.ImageStd
		}
	} else if top.ModelType != "" && top.ModelType != "clip_vision_model" && top.ModelType != "clip" {
		return partial{}, &ConfigError{Field: "config.json model_type", Reason: fmt.Sprintf("%q is not a CLIP model", top.ModelType)}
	}
	return partial{
		hidden: v.HiddenSize, layers: v.NumLayers, heads: v.NumHeads, mlp: v.IntermediateSize,
		patch: v.PatchSize, image: v.ImageSize, proj: v.ProjectionDim,
		eps: v.LayerNormEps, act: v.Activation, mean: v.ImageMean, std: v.ImageStd,
	}, nil
}

// Metadata returns the config as __metadata__ entries (Config JSON tag
// names) that ConfigFrom reads back; the converter writes them.
func (c Config) Metadata() map[string]string {
	triple := func(v [3]float32) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	return map[string]string{
		"hidden_size":         strconv.Itoa(c.HiddenSize),
		"num_hidden_layers":   strconv.Itoa(c.NumLayers),
		"num_attention_heads": strconv.Itoa(c.NumHeads),
		"intermediate_size":   strconv.Itoa(c.IntermediateSize),
		"patch_size":          strconv.Itoa(c.PatchSize),
		"image_size":          strconv.Itoa(c.ImageSize),
		"projection_dim":      strconv.Itoa(c.ProjectionDim),
		"layer_norm_eps":      strconv.FormatFloat(c.LayerNormEps, 'g', -1, 64),
		"hidden_act":          c.Activation,
		"image_mean":          triple(c.ImageMean),
		"image_std":           triple(c.ImageStd),
	}
}
