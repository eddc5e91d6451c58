package vit

import (
	"errors"
	"fmt"
	"math"
)

// ErrDegenerate is the cause of CheckEmbedding's errors.
var ErrDegenerate = errors.New("degenerate embedding")

// CheckEmbedding reports whether row, an output of Forward, is a usable
// unit vector. A row with a NaN or an infinity, or whose norm before
// normalisation was zero (normalize leaves it all zeros), is not: the
// weights or the input produced no direction, and handing it out as a
// "unit" vector would corrupt every similarity computed with it.
func CheckEmbedding(row []float32) error {
	var ss float64
	for _, v := range row {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: the model produced a non-finite embedding", ErrDegenerate)
		}
		ss += float64(v) * float64(v)
	}
	if ss < 0.25 { // a normalised row has ss = 1 (to rounding)
		return fmt.Errorf("%w: the model produced a zero-norm embedding (no direction to normalise)", ErrDegenerate)
	}
	return nil
}
