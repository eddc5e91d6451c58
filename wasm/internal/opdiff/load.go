package opdiff

import (
	"bytes"
	"fmt"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/vit"
	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// LoadViT builds the CLIP vision graph on o from a safetensors file (any
// dtype DecodeFloat32 handles; the config is inferred from the header).
func LoadViT(o ops.Ops, path string) (*vit.Model, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opdiff: %w", err)
	}
	defer f.Close()
	return loadViT(o, path, f)
}

// LoadViTBytes is LoadViT from the file's bytes (in browsers, where there
// is no file system); name is for messages.
func LoadViTBytes(o ops.Ops, name string, b []byte) (*vit.Model, error) {
	f, err := safetensors.NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("opdiff: %s: %w", name, err)
	}
	return loadViT(o, name, f)
}

func loadViT(o ops.Ops, path string, f *safetensors.File) (*vit.Model, error) {
	cfg, err := weights.ConfigFrom(f.Header, nil)
	if err != nil {
		return nil, fmt.Errorf("opdiff: %s: %w", path, err)
	}
	m, err := vit.Load(o, cfg, weights.NewDecoder(f.Header, f.ReadAt).Get)
	if err != nil {
		return nil, fmt.Errorf("opdiff: %s: %w", path, err)
	}
	return m, nil
}
