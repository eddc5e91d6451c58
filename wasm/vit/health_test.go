package vit

import (
	"errors"
	"math"
	"testing"
)

func TestCheckEmbedding(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(-1))
	for _, c := range []struct {
		row []float32
		ok  bool
	}{
		{[]float32{0.6, 0.8}, true},
		{[]float32{1, 0, 0}, true},
		{[]float32{0, 0, 0}, false},
		{[]float32{nan, 0, 0}, false},
		{[]float32{0.6, inf}, false},
		{nil, false},
	} {
		err := CheckEmbedding(c.row)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrDegenerate)) {
			t.Errorf("%v: %v", c.row, err)
		}
	}
	// normalize gives a zero row a zero row (and CheckEmbedding refuses it).
	rows := normalize([]float32{0, 0, 3, 4}, 2, 2)
	if CheckEmbedding(rows[0]) == nil || CheckEmbedding(rows[1]) != nil {
		t.Fatalf("normalize: %v", rows)
	}
}
