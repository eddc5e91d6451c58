package textmodel

import (
	"errors"
	"slices"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/ops/native"
)

// TestAssemble: a text tower put back together from copies of its Weights
// (through native.View, as from a file) meets the goldens and embeds bit
// for bit as the loaded one; a wrong count or table is refused.
func TestAssemble(t *testing.T) {
	o := native.New(2)
	defer o.Close()
	m := openModelOn(t, o, "tiny-fullclip-f32")
	ws, tokens, pos := m.Weights()
	shapes, _, _ := WeightShapes(m.Config())
	if len(ws) != len(shapes) || len(tokens) == 0 || len(pos) == 0 {
		t.Fatalf("%d weights (WeightShapes lists %d), tables of %d and %d", len(ws), len(shapes), len(tokens), len(pos))
	}
	views := func() []ops.Tensor {
		var out []ops.Tensor
		for i, w := range ws {
			v, code := o.Stored(w)
			if !slices.Equal(o.Shape(w), shapes[i]) {
				t.Fatalf("weight %d: shape %v, WeightShapes says %v", i, o.Shape(w), shapes[i])
			}
			x, err := o.View(slices.Clone(v), shapes[i], code, nil)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, x)
		}
		return out
	}
	a, err := Assemble(o, m.Config(), views(), slices.Clone(tokens), slices.Clone(pos))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Dispose()
	testGolden(t, a)
	rows := [][]int32{{49406, 320, 1125, 539, 320, 2368, 49407}, {49406, 1237, 49407}}
	for i := range rows {
		for j := range rows[i] {
			rows[i][j] %= int32(m.Config().VocabSize)
		}
		rows[i][len(rows[i])-1] = 1213
	}
	want, err := m.Forward(rows, 1213)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Forward(rows, 1213)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatal("the assembled tower embeds differently")
	}

	if _, err := Assemble(o, m.Config(), views()[1:], tokens, pos); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("one tensor short: %v", err)
	}
	if _, err := Assemble(o, m.Config(), views(), tokens[1:], pos); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("a short token table: %v", err)
	}
}
