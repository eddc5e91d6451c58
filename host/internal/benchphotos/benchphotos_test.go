package benchphotos

import (
	"bytes"
	"image"
	"os"
	"path/filepath"
	"testing"

	_ "golang.org/x/image/webp"
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"
)

// TestWriteMixed: 18 photos, each a decodable image of the format and size
// its name promises, the 12 MP JPEG the same bytes as Photo12MP.
func TestWriteMixed(t *testing.T) {
	dir := t.TempDir()
	paths, err := WriteMixed(dir, "../../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 18 {
		t.Fatalf("%d photos, want 18", len(paths))
	}
	want := map[string]struct {
		format string
		w, h   int
	}{
		"big12mp.jpg":         {"jpeg", 4000, 3000},
		"astronaut-2400.png":  {"png", 2400, 1800},
		"astronaut-16bit.png": {"png", 512, 512},
		"coffee.gif":          {"gif", 0, 0},
		"chelsea-exif6.jpg":   {"jpeg", 0, 0},
		"coffee-gray.jpg":     {"jpeg", 0, 0},
		"chelsea-palette.png": {"png", 0, 0},
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if w, ok := want[filepath.Base(p)]; ok {
			if format != w.format || w.w > 0 && (cfg.Width != w.w || cfg.Height != w.h) {
				t.Errorf("%s: %s %dx%d, want %s %dx%d", p, format, cfg.Width, cfg.Height, w.format, w.w, w.h)
			}
		}
		if filepath.Base(p) == "big12mp.jpg" && !bytes.Equal(b, Photo12MP()) {
			t.Errorf("big12mp.jpg is not Photo12MP")
		}
	}
}
