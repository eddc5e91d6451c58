package native

import (
	"math/rand"
	"slices"
	"testing"
)

// TestStoredView: a packed weight leaves through Stored and comes back
// through View (over a copy of its values, as from a file) giving the same
// products bit for bit, without being copied or packed again; release runs
// once, at Dispose, even in load mode (a view is never parked for reuse).
// A layout or shape that does not fit is refused.
func TestStoredView(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	o := New(2)
	defer o.Close()
	const m, k, n = 7, 600, 256
	w := randT(o, rng, k, n)
	a := randT(o, rng, m, k)
	for range packAfterUses {
		o.Dispose(o.MatMul(a, w, false, false))
	}
	want := o.Data(o.MatMul(a, w, false, false))
	values, code := o.Stored(w)
	if code == 0 {
		t.Fatal("the weight was not packed")
	}
	mapped := slices.Clone(values)
	released := 0
	v, err := o.View(mapped, []int{k, n}, code, func() { released++ })
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Data(o.MatMul(a, v, false, false)); !slices.Equal(got, want) {
		t.Fatal("products differ through the view")
	}
	if got, c := o.Stored(v); &got[0] != &mapped[0] || c != code {
		t.Fatal("the view copied or repacked its values")
	}
	if row := o.Data(v); !slices.Equal(row, o.Data(w)) {
		t.Fatal("row-major values differ through the view")
	}
	o.SetLoading(true)
	o.Dispose(v, v)
	o.SetLoading(false)
	if released != 1 {
		t.Fatalf("released %d times", released)
	}

	if _, err := o.View(mapped, []int{k, n}, code+1, nil); err == nil {
		t.Fatal("a foreign layout was accepted")
	}
	if _, err := o.View(mapped, []int{k, n + 1}, 0, nil); err == nil {
		t.Fatal("a shape that does not hold the values was accepted")
	}
	if _, err := o.View(mapped[:k*n/2], []int{k / 2, n}, code, nil); err == nil {
		t.Fatal("another shape's layout was accepted")
	}
}
