package textmodel

import (
	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// LoadFile loads the text tower of an open whole-CLIP safetensors file,
// decoding F16/BF16 to float32 one tensor at a time.
func LoadFile(o ops.Ops, f *safetensors.File, hfConfigJSON []byte) (*Model, error) {
	cfg, err := weights.TextConfigFrom(f.Header, hfConfigJSON) // includes CheckText
	if err != nil {
		return nil, err
	}
	return Load(o, cfg, weights.NewDecoder(f.Header, f.ReadAt).Get)
}
