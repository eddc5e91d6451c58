package imagefile

import (
	"os"
	"path/filepath"
	"testing"
)

// RowPacked must give exactly Row's pixels (R | B<<32 and G), for every row
// and for column windows that start and end on odd and even pixels (the
// chroma pairs of 4:2:x) and at the image's edges.
func TestRowPackedIsRow(t *testing.T) {
	files := []string{"chelsea-q95-420.jpg", "chelsea-q95-444.jpg", "chelsea-q95-420-progressive.jpg", "chelsea-q90.webp"}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		img, h, err := DecodeImage(data, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r := NewRows(img, h.Format)
		p, ok := r.(PackedRows)
		if !ok {
			t.Fatalf("%s: %T is not PackedRows", f, r)
		}
		w, ht := r.Size()
		windows := [][2]int{{0, w}, {1, w - 1}, {2, 7}, {3, 4}, {w / 3, 2 * w / 3}, {w - 5, w}}
		for _, win := range windows {
			x0, x1 := win[0], win[1]
			line := make([]byte, 3*(x1-x0))
			rb, g := make([]int64, x1-x0), make([]byte, x1-x0)
			for y := 0; y < ht; y++ {
				r.Row(y, x0, x1, line)
				p.RowPacked(y, x0, x1, rb, g)
				for i := range rb {
					want := int64(line[3*i]) | int64(line[3*i+2])<<32
					if rb[i] != want || g[i] != line[3*i+1] {
						t.Fatalf("%s row %d, x %d (window %d..%d): packed %x/%d, Row %v", f, y, x0+i, x0, x1, rb[i], g[i], line[3*i:3*i+3])
					}
				}
			}
		}
	}
}
