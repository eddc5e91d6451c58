package vit

import (
	"errors"
	"slices"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/weights"
)

// TestAssemble: a model put back together from copies of its Weights (as
// from a file, through native.View) embeds bit for bit as the loaded one;
// a wrong count or shape is refused, and the tensors handed over are
// disposed either way.
func TestAssemble(t *testing.T) {
	cfg := weights.Preset("tiny")
	cfg.HiddenSize, cfg.NumHeads, cfg.IntermediateSize = 128, 4, 512 // panels on the linear weights
	o := native.New(2)
	defer o.Close()
	m := randomModel(t, o, cfg)
	defer m.Dispose()
	ws := m.Weights()
	shapes := WeightShapes(cfg)
	if len(ws) != len(shapes) {
		t.Fatalf("%d weights, WeightShapes lists %d", len(ws), len(shapes))
	}
	released := 0
	views := func() []ops.Tensor {
		var out []ops.Tensor
		for i, w := range ws {
			v, code := o.Stored(w)
			if !slices.Equal(o.Shape(w), shapes[i]) {
				t.Fatalf("weight %d: shape %v, WeightShapes says %v", i, o.Shape(w), shapes[i])
			}
			x, err := o.View(slices.Clone(v), shapes[i], code, func() { released++ })
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, x)
		}
		return out
	}
	packed := 0
	for _, w := range ws {
		if _, code := o.Stored(w); code != 0 {
			packed++
		}
	}
	if packed == 0 {
		t.Fatal("no weight in panel layout: the test would not cover them")
	}

	px := make([]float32, 2*3*cfg.ImageSize*cfg.ImageSize)
	for i := range px {
		px[i] = float32(i%251)/125 - 1
	}
	want, err := m.Forward(px, 2)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Assemble(o, cfg, views())
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Forward(px, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatal("the assembled model embeds differently")
	}
	a.Dispose()
	if released != len(ws) {
		t.Fatalf("%d of %d views released by Dispose", released, len(ws))
	}

	released = 0
	short := views()[1:]
	if _, err := Assemble(o, cfg, short); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("one tensor short: %v", err)
	}
	if released != len(short) {
		t.Fatalf("%d of %d tensors released after a refused count", released, len(short))
	}
	released = 0
	swapped := views()
	swapped[0], swapped[1] = swapped[1], swapped[0]
	if _, err := Assemble(o, cfg, swapped); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("swapped tensors: %v", err)
	}
	if released != len(swapped) {
		t.Fatalf("%d of %d tensors released after a refused shape", released, len(swapped))
	}
}
