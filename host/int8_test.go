package host

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestInt8Fixture: the int8 fixture (converted from tiny-f32) with both
// engines (native; the module under wazero), from a file and over HTTP,
// against the F32 goldens at cosine >= 0.999.
func TestInt8Fixture(t *testing.T) {
	golden := goldenEmbeddings(t, "tiny-f32")
	srv := serveModel(t, modelPath("tiny-int8"), true, nil)
	for _, engine := range []Engine{EngineNative, EngineWasm} {
		for _, src := range []string{modelPath("tiny-int8"), srv.URL + "/tiny-int8.safetensors"} {
			e, err := New(context.Background(), Options{Model: src, Engine: engine, NoCache: true, CacheDir: testCache(t), Threads: 1})
			if err != nil {
				t.Fatalf("%s %s: %v", engine, src, err)
			}
			for _, img := range fixtureImages {
				got, err := e.EmbedPixels(context.Background(), goldenPixels(t, e.Config().ImageSize, img))
				if err != nil {
					t.Fatal(err)
				}
				cos, _ := compare(got, golden["images/"+img])
				t.Logf("%s %s %s: cosine %.6f", engine, src, img, cos)
				if cos < 0.999 {
					t.Errorf("%s %s %s: cosine %.6f to the F32 golden, want >= 0.999", engine, src, img, cos)
				}
			}
			e.Close()
		}
	}
}

// TestInt8Malformed: an int8 file without its scheme metadata is refused
// with InvalidModel.
func TestInt8Malformed(t *testing.T) {
	b, err := os.ReadFile(modelPath("tiny-int8"))
	if err != nil {
		t.Fatal(err)
	}
	// Rename the scheme key in place (same length): the header stays valid
	// JSON and the I8 tensors lose their declared scheme.
	i := bytes.Index(b, []byte(`"imgembed.quantization"`))
	if i < 0 {
		t.Fatal("no scheme key in the fixture")
	}
	copy(b[i:], `"imgembed.quantizatioX"`)
	p := filepath.Join(t.TempDir(), "bad-int8.safetensors")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, engine := range []Engine{EngineNative, EngineWasm} {
		_, err = New(context.Background(), Options{Model: p, Engine: engine, NoCache: true, CacheDir: testCache(t), Threads: 1})
		var he *Error
		if !errors.As(err, &he) || he.Code != InvalidModel {
			t.Fatalf("%s: err %v, want InvalidModel", engine, err)
		}
	}
}
