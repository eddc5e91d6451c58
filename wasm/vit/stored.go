package vit

import (
	"fmt"
	"slices"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/weights"
)

// Weights returns the model's run-time weights (derived at load) in a fixed
// order, with their shapes: with Assemble, a model can be saved as loaded and
// put back together without deriving it again. The model keeps them; they
// are valid until Dispose. A model in the weights-on-the-left layout
// (ops.WeightsLeft) has none to give: Weights returns nil.
func (m *Model) Weights() []ops.Tensor {
	if m.left || m.o == nil {
		return nil
	}
	return m.all()
}

// WeightShapes lists the shapes of Weights' tensors for cfg, in order.
func WeightShapes(cfg weights.Config) [][]int {
	d, p, mlp, proj := cfg.HiddenSize, cfg.PatchSize, cfg.IntermediateSize, cfg.ProjectionDim
	shapes := [][]int{{3*p*p + 1, d}, {cfg.Patches() + 1, d}, {d}, {d}, {d, proj}, {proj}, {1}}
	for range cfg.NumLayers {
		shapes = append(shapes, []int{d, d}, []int{d}, []int{d, d}, []int{d}, []int{d, d}, []int{d},
			[]int{d, d}, []int{d}, []int{d, mlp}, []int{mlp}, []int{mlp, d}, []int{d})
	}
	return shapes
}

// Assemble makes a model of configuration cfg from the tensors that Weights
// returned for a model of the same configuration on a backend of the same
// kind (o must not want weights on the left). It takes ownership of ts:
// they are disposed with the model, or at once when Assemble fails (a
// count or a shape that does not fit cfg).
func Assemble(o ops.Ops, cfg weights.Config, ts []ops.Tensor) (_ *Model, err error) {
	defer func() {
		if err != nil {
			o.Dispose(ts...)
		}
	}()
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if ops.WeightsLeft(o) {
		return nil, fmt.Errorf("%w: assembling weights for a backend that wants them on the left", ErrUnsupported)
	}
	if cfg.LayerNormEps == 0 {
		cfg.LayerNormEps = 1e-5
	}
	shapes := WeightShapes(cfg)
	if len(ts) != len(shapes) {
		return nil, fmt.Errorf("%w: %d tensors to assemble, the configuration has %d", ErrUnsupported, len(ts), len(shapes))
	}
	for i, t := range ts {
		if t == nil || !slices.Equal(o.Shape(t), shapes[i]) {
			return nil, fmt.Errorf("%w: tensor %d to assemble is not %v", ErrUnsupported, i, shapes[i])
		}
	}
	m := &Model{o: o, cfg: cfg, embedW: ts[0], pos: ts[1], preG: ts[2], preB: ts[3], projW: ts[4], projB: ts[5], epsB: ts[6]}
	m.layers = make([]layer, cfg.NumLayers)
	for i := range m.layers {
		l, r := &m.layers[i], ts[7+12*i:]
		l.qW, l.qB, l.kW, l.kB, l.vW, l.vB = r[0], r[1], r[2], r[3], r[4], r[5]
		l.outW, l.outB, l.fc1W, l.fc1B, l.fc2W, l.fc2B = r[6], r[7], r[8], r[9], r[10], r[11]
	}
	return m, nil
}
