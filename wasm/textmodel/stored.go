package textmodel

import (
	"fmt"
	"slices"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/weights"
)

// Weights returns the model's run-time weights (derived at load) in a fixed
// order, and its token and position embedding tables (Go memory, [V, D] and
// [ctx, D]): with Assemble, a model can be saved as loaded and put back
// together without deriving it again. The model keeps them; they are valid
// until Dispose. A model in the weights-on-the-left layout has none to
// give: Weights returns nils.
func (m *Model) Weights() (ts []ops.Tensor, tokens, pos []float32) {
	if m.left || m.o == nil {
		return nil, nil, nil
	}
	return m.all(), m.tokens, m.pos
}

// WeightShapes lists the shapes of Weights' tensors for cfg, in order, then
// those of the two tables.
func WeightShapes(cfg weights.TextConfig) (tensors [][]int, tokens, pos []int) {
	d, mlp := cfg.HiddenSize, cfg.IntermediateSize
	tensors = [][]int{{d, cfg.ProjectionDim}, {cfg.ProjectionDim}, {}, {}}
	for range cfg.NumLayers {
		tensors = append(tensors, []int{d, 3 * d}, []int{3 * d}, []int{d, d}, []int{d},
			[]int{d, mlp}, []int{mlp}, []int{mlp, d}, []int{d})
	}
	return tensors, []int{cfg.VocabSize, d}, []int{cfg.ContextLength, d}
}

// Assemble makes a model of configuration cfg from what Weights returned
// for a model of the same configuration on a backend of the same kind (o
// must not want weights on the left). It takes ownership of ts (disposed
// with the model, or at once when Assemble fails: a count or a shape that
// does not fit cfg); tokens and pos are used in place and must stay
// unchanged while the model lives.
func Assemble(o ops.Ops, cfg weights.TextConfig, ts []ops.Tensor, tokens, pos []float32) (_ *Model, err error) {
	defer func() {
		if err != nil {
			o.Dispose(ts...)
		}
	}()
	if cfg.LayerNormEps == 0 {
		cfg.LayerNormEps = weights.DefaultLayerNormEps
	}
	if cfg.Activation == "" {
		cfg.Activation = weights.DefaultActivation
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	if ops.WeightsLeft(o) {
		return nil, fmt.Errorf("%w: assembling weights for a backend that wants them on the left", ErrUnsupported)
	}
	shapes, tokShape, posShape := WeightShapes(cfg)
	if len(ts) != len(shapes) {
		return nil, fmt.Errorf("%w: %d tensors to assemble, the configuration has %d", ErrUnsupported, len(ts), len(shapes))
	}
	for i, t := range ts {
		if t == nil || !slices.Equal(o.Shape(t), shapes[i]) {
			return nil, fmt.Errorf("%w: tensor %d to assemble is not %v", ErrUnsupported, i, shapes[i])
		}
	}
	if len(tokens) != tokShape[0]*tokShape[1] || len(pos) != posShape[0]*posShape[1] {
		return nil, fmt.Errorf("%w: embedding tables of %d and %d values", ErrUnsupported, len(tokens), len(pos))
	}
	m := &Model{o: o, cfg: cfg, tokens: tokens, pos: pos, projW: ts[0], projB: ts[1], eps: ts[2], geluK: ts[3]}
	m.layers = make([]layer, cfg.NumLayers)
	for i := range m.layers {
		l, r := &m.layers[i], ts[4+8*i:]
		l.qkvW, l.qkvB, l.outW, l.outB = r[0], r[1], r[2], r[3]
		l.fc1W, l.fc1B, l.fc2W, l.fc2B = r[4], r[5], r[6], r[7]
	}
	return m, nil
}
