package embed

import (
	"math"
	"testing"
)

// firstNonFinite finds NaN and ±Inf at every position (both halves of its
// uint64 pairs, the odd tail, an unaligned start) and nothing in finite
// extremes.
func TestFirstNonFinite(t *testing.T) {
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7fc00001), math.Float32frombits(0xff800001)}
	good := []float32{0, float32(math.Copysign(0, -1)), 1, -2.5, math.MaxFloat32, -math.MaxFloat32,
		math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, math.Float32frombits(0x7f7fffff), math.Float32frombits(0x00800000)}
	buf := make([]float32, 40)
	for off := range 3 {
		for n := range 20 {
			v := buf[off : off+n]
			for i := range v {
				v[i] = good[(i+n)%len(good)]
			}
			if got := firstNonFinite(v); got != -1 {
				t.Fatalf("offset %d, %d finite values: %d", off, n, got)
			}
			for at := range n {
				for _, b := range bad {
					v[at] = b
					if got := firstNonFinite(v); got != at {
						t.Fatalf("offset %d, n %d: %v at %d found at %d", off, n, b, at, got)
					}
					// A second one later does not change the answer.
					if at+1 < n {
						v[n-1] = b
						if got := firstNonFinite(v); got != at {
							t.Fatalf("offset %d, n %d: first of two at %d found at %d", off, n, at, got)
						}
						v[n-1] = good[(n-1+n)%len(good)]
					}
					v[at] = good[(at+n)%len(good)]
				}
			}
		}
	}
}
