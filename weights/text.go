package weights

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// TextConfig describes a CLIP text tower (CLIPTextModelWithProjection).
type TextConfig struct {
	HiddenSize       int     `json:"hidden_size"` // width D (512 for ViT-B/32's text tower)
	NumLayers        int     `json:"num_hidden_layers"`
	NumHeads         int     `json:"num_attention_heads"`
	IntermediateSize int     `json:"intermediate_size"`
	VocabSize        int     `json:"vocab_size"`
	ContextLength    int     `json:"max_position_embeddings"` // 77
	ProjectionDim    int     `json:"projection_dim"`
	LayerNormEps     float64 `json:"layer_norm_eps"`
	Activation       string  `json:"hidden_act"`
}

// ErrNoTextTower is wrapped by *TextTensorsError: the checkpoint lacks
// (part of) the text tower, or holds it with wrong shapes or dtypes.
var ErrNoTextTower = errors.New("checkpoint has no complete CLIP text tower")

// TextTensorsError lists every text tensor that is missing, mis-shaped or
// of a dtype that cannot be decoded.
type TextTensorsError struct {
	Problems []TensorProblem
}

func (e *TextTensorsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "weights: %s: ", ErrNoTextTower)
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

func (e *TextTensorsError) Unwrap() error { return ErrNoTextTower }

// Hugging Face key names of the CLIP text tower.
const (
	KeyTokenEmbedding   = "text_model.embeddings.token_embedding.weight"
	keyTextPosition     = "text_model.embeddings.position_embedding.weight"
	keyFinalLN          = "text_model.final_layer_norm"
	keyTextProj         = "text_projection.weight"
	textLayerPrefix     = "text_model.encoder.layers."
	KeyLogitScale       = "logit_scale"
	textMetadataPrefix  = "text_"
	DefaultTextContext  = 77
	defaultTextHeadDim  = 64
	maxTextVocabulary   = 1 << 20
	maxTextContextWidth = 1 << 12
)

// TextTensorNames returns the Hugging Face names of the text tower in a
// fixed order: embeddings, each layer, final LayerNorm, projection.
func TextTensorNames(cfg TextConfig) []string {
	names := []string{KeyTokenEmbedding, keyTextPosition}
	for i := 0; i < cfg.NumLayers; i++ {
		p := textLayerPrefix + strconv.Itoa(i) + "."
		for _, s := range layerTensorSuffixes {
			names = append(names, p+s)
		}
	}
	return append(names, keyFinalLN+".weight", keyFinalLN+".bias", keyTextProj)
}

// TextLayerKey is the name of tensor rest (e.g. "mlp.fc1.weight") of text
// layer i.
func TextLayerKey(i int, rest string) string { return textLayerPrefix + strconv.Itoa(i) + "." + rest }

// Text key names for the graph.
const (
	KeyTextPosition = keyTextPosition
	KeyFinalLN      = keyFinalLN + "."
	KeyTextProj     = keyTextProj
)

// layerTensorSuffixes are the tensors of one transformer block, the same
// in the vision and the text tower.
var layerTensorSuffixes = []string{
	"layer_norm1.weight", "layer_norm1.bias",
	"self_attn.q_proj.weight", "self_attn.q_proj.bias",
	"self_attn.k_proj.weight", "self_attn.k_proj.bias",
	"self_attn.v_proj.weight", "self_attn.v_proj.bias",
	"self_attn.out_proj.weight", "self_attn.out_proj.bias",
	"layer_norm2.weight", "layer_norm2.bias",
	"mlp.fc1.weight", "mlp.fc1.bias",
	"mlp.fc2.weight", "mlp.fc2.bias",
}

// TextTensors maps every tensor of the text tower to its expected shape.
// Linear weights are [out, in].
func TextTensors(cfg TextConfig) map[string][]int {
	d, m := cfg.HiddenSize, cfg.IntermediateSize
	out := make(map[string][]int, 5+16*cfg.NumLayers)
	for _, name := range TextTensorNames(cfg) {
		var shape []int
		switch {
		case name == KeyTokenEmbedding:
			shape = []int{cfg.VocabSize, d}
		case name == keyTextPosition:
			shape = []int{cfg.ContextLength, d}
		case name == keyTextProj:
			shape = []int{cfg.ProjectionDim, d}
		default:
			shape = layerTensorShape(name, d, m)
		}
		out[name] = shape
	}
	return out
}

// HasText reports whether the file has a text tower at all (its token
// embedding), the cheap test before TextConfigFrom.
func HasText(h *safetensors.Header) bool {
	_, ok := h.Tensor(KeyTokenEmbedding)
	return ok
}

// CheckText verifies that h holds every text tensor of cfg with the
// expected shape and a float dtype; it returns a *TextTensorsError listing
// every problem, sorted by name.
func CheckText(h *safetensors.Header, cfg TextConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if problems := tensorProblems(h, TextTensors(cfg), false); len(problems) > 0 {
		return &TextTensorsError{Problems: problems}
	}
	return nil
}

// Validate checks that the config describes a buildable text tower.
func (c TextConfig) Validate() error {
	for _, f := range []struct {
		name  string
		v     int
		limit int
	}{
		{"text hidden_size", c.HiddenSize, 1 << 16},
		{"text num_hidden_layers", c.NumLayers, MaxLayers},
		{"text num_attention_heads", c.NumHeads, 1 << 16},
		{"text intermediate_size", c.IntermediateSize, 1 << 18},
		{"text vocab_size", c.VocabSize, maxTextVocabulary},
		{"text max_position_embeddings", c.ContextLength, maxTextContextWidth},
		{"projection_dim", c.ProjectionDim, 1 << 16},
	} {
		if f.v <= 0 {
			return &ConfigError{Field: f.name, Reason: fmt.Sprintf("must be positive, is %d", f.v)}
		}
		if f.v > f.limit {
			return &ConfigError{Field: f.name, Reason: fmt.Sprintf("%d exceeds the limit of %d", f.v, f.limit)}
		}
	}
	if c.HiddenSize%c.NumHeads != 0 {
		return &ConfigError{Field: "text num_attention_heads", Reason: fmt.Sprintf("%d heads do not divide hidden_size %d", c.NumHeads, c.HiddenSize)}
	}
	if !(c.LayerNormEps > 0 && c.LayerNormEps < 1) {
		return &ConfigError{Field: "text layer_norm_eps", Reason: fmt.Sprintf("%g is not in (0, 1)", c.LayerNormEps)}
	}
	if c.Activation != "quick_gelu" && c.Activation != "gelu" {
		return &ConfigError{Field: "text hidden_act", Reason: fmt.Sprintf("unsupported activation %q (want quick_gelu or gelu)", c.Activation)}
	}
	return nil
}

// TextConfigFrom works out the text config of a whole-CLIP checkpoint. Each
// field comes from the first source that states it:
//  1. __metadata__ keys "text_" + the Hugging Face name, e.g.
//     "text_num_attention_heads";
//  2. hfConfigJSON's text_config (plus the top-level projection_dim), or a
//     bare CLIPTextConfig;
//  3. the tensor shapes (width and vocabulary from the token embedding,
//     context from the position table, layers from the keys, MLP from fc1,
//     projection from text_projection), and heads = width/64;
//  4. eps 1e-5, quick_gelu.
//
// A file without text_model.embeddings.token_embedding.weight (a vision-only
// file) gives a *TextTensorsError naming the missing tensors.
func TextConfigFrom(h *safetensors.Header, hfConfigJSON []byte) (TextConfig, error) {
	if !HasText(h) {
		var problems []TensorProblem
		for _, name := range []string{KeyTokenEmbedding, keyTextPosition, keyFinalLN + ".weight", keyTextProj} {
			if _, ok := h.Tensor(name); !ok {
				problems = append(problems, TensorProblem{Name: name, Missing: true})
			}
		}
		return TextConfig{}, &TextTensorsError{Problems: problems}
	}
	md := make(map[string]string)
	for k, v := range h.Metadata {
		if rest, ok := strings.CutPrefix(k, textMetadataPrefix); ok {
			md[rest] = v
		}
	}
	meta, err := fromMetadata(md)
	if err != nil {
		if ce, ok := err.(*ConfigError); ok {
			ce.Field = strings.Replace(ce.Field, "__metadata__.", "__metadata__."+textMetadataPrefix, 1)
		}
		return TextConfig{}, err
	}
	var metaVocab, metaCtx *int
	for k, dst := range map[string]**int{"vocab_size": &metaVocab, "max_position_embeddings": &metaCtx} {
		if s, ok := md[k]; ok {
			v, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || v <= 0 {
				return TextConfig{}, &ConfigError{Field: "__metadata__." + textMetadataPrefix + k, Reason: fmt.Sprintf("%q is not a positive integer", s)}
			}
			*dst = &v
		}
	}
	if s, ok := h.Metadata["projection_dim"]; ok && meta.proj == nil {
		// The vision projection_dim, when the converter recorded it, is
		// the shared embedding size.
		if v, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && v > 0 {
			meta.proj = &v
		}
	}
	var hf hfText
	if len(hfConfigJSON) > 0 {
		if hf, err = textFromHFConfig(hfConfigJSON); err != nil {
			return TextConfig{}, err
		}
	}
	var sh hfText
	if t, ok := h.Tensor(KeyTokenEmbedding); ok && len(t.Shape) == 2 {
		sh.VocabSize, sh.HiddenSize = intp(t.Shape[0]), intp(t.Shape[1])
	}
	if t, ok := h.Tensor(keyTextPosition); ok && len(t.Shape) == 2 {
		sh.ContextLength = intp(t.Shape[0])
	}
	if t, ok := h.Tensor(keyTextProj); ok && len(t.Shape) == 2 {
		sh.ProjectionDim = intp(t.Shape[0])
	}
	if t, ok := h.Tensor(textLayerPrefix + "0.mlp.fc1.bias"); ok && len(t.Shape) == 1 {
		sh.IntermediateSize = intp(t.Shape[0])
	}
	layers := 0
	for _, t := range h.Tensors {
		rest, ok := strings.CutPrefix(t.Name, textLayerPrefix)
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || strconv.Itoa(i) != idx {
			continue
		}
		if i >= MaxLayers {
			return TextConfig{}, &ConfigError{Field: "text num_hidden_layers", Reason: fmt.Sprintf("tensor %q has a layer index above the limit of %d layers", t.Name, MaxLayers)}
		}
		layers = max(layers, i+1)
	}
	if layers > 0 {
		sh.NumLayers = intp(layers)
	}
	pick := func(srcs ...*int) int {
		for _, s := range srcs {
			if s != nil {
				return *s
			}
		}
		return 0
	}
	c := TextConfig{
		HiddenSize:       pick(meta.hidden, hf.HiddenSize, sh.HiddenSize),
		NumLayers:        pick(meta.layers, hf.NumLayers, sh.NumLayers),
		IntermediateSize: pick(meta.mlp, hf.IntermediateSize, sh.IntermediateSize),
		VocabSize:        pick(metaVocab, hf.VocabSize, sh.VocabSize),
		ContextLength:    pick(metaCtx, hf.ContextLength, sh.ContextLength),
		ProjectionDim:    pick(meta.proj, hf.ProjectionDim, sh.ProjectionDim),
		NumHeads:         pick(meta.heads, hf.NumHeads),
		LayerNormEps:     DefaultLayerNormEps,
		Activation:       DefaultActivation,
	}
	if c.NumHeads == 0 && c.HiddenSize > 0 {
		if c.HiddenSize%defaultTextHeadDim != 0 {
			return c, &ConfigError{Field: "text num_attention_heads", Reason: fmt.Sprintf("not stated, and hidden_size %d is not a multiple of %d", c.HiddenSize, defaultTextHeadDim)}
		}
		c.NumHeads = c.HiddenSize / defaultTextHeadDim
	}
	for _, s := range []*float64{hf.LayerNormEps, meta.eps} {
		if s != nil {
			c.LayerNormEps = *s
		}
	}
	for _, s := range []*string{hf.Activation, meta.act} {
		if s != nil {
			c.Activation = *s
		}
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, CheckText(h, c)
}

// hfText is the subset of a Hugging Face CLIPTextConfig we read.
type hfText struct {
	HiddenSize       *int     `json:"hidden_size"`
	NumLayers        *int     `json:"num_hidden_layers"`
	NumHeads         *int     `json:"num_attention_heads"`
	IntermediateSize *int     `json:"intermediate_size"`
	VocabSize        *int     `json:"vocab_size"`
	ContextLength    *int     `json:"max_position_embeddings"`
	ProjectionDim    *int     `json:"projection_dim"`
	LayerNormEps     *float64 `json:"layer_norm_eps"`
	Activation       *string  `json:"hidden_act"`
}

func textFromHFConfig(data []byte) (hfText, error) {
	var top struct {
		hfText
		ModelType  string          `json:"model_type"`
		TextConfig json.RawMessage `json:"text_config"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return hfText{}, &ConfigError{Field: "config.json", Reason: err.Error()}
	}
	if len(top.TextConfig) > 0 && string(top.TextConfig) != "null" {
		var t hfText
		if err := json.Unmarshal(top.TextConfig, &t); err != nil {
			return hfText{}, &ConfigError{Field: "config.json text_config", Reason: err.Error()}
		}
		if top.ProjectionDim != nil { // CLIPConfig keeps it at top level
			t.ProjectionDim = top.ProjectionDim
		}
		return t, nil
	}
	if top.ModelType == "clip_text_model" {
		return top.hfText, nil
	}
	// A config.json without text_config (e.g. a CLIPVisionConfig) says
	// nothing about the text tower.
	return hfText{}, nil
}

// TextMetadata returns the text config as __metadata__ entries
// ("text_" + Hugging Face name) that TextConfigFrom reads back.
func (c TextConfig) TextMetadata() map[string]string {
	return map[string]string{
		"text_hidden_size":             strconv.Itoa(c.HiddenSize),
		"text_num_hidden_layers":       strconv.Itoa(c.NumLayers),
		"text_num_attention_heads":     strconv.Itoa(c.NumHeads),
		"text_intermediate_size":       strconv.Itoa(c.IntermediateSize),
		"text_vocab_size":              strconv.Itoa(c.VocabSize),
		"text_max_position_embeddings": strconv.Itoa(c.ContextLength),
		"text_projection_dim":          strconv.Itoa(c.ProjectionDim),
		"text_layer_norm_eps":          strconv.FormatFloat(c.LayerNormEps, 'g', -1, 64),
		"text_hidden_act":              c.Activation,
	}
}
