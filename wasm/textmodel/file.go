package textmodel

import (
	"fmt"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// LoadFile loads the text tower of an open whole-CLIP safetensors file
// through o.Tensor, decoding F16/BF16 to float32 one tensor at a time.
func LoadFile(o ops.Ops, f *safetensors.File, hfConfigJSON []byte) (*Model, error) {
	cfg, err := weights.TextConfigFrom(f.Header, hfConfigJSON) // includes CheckText
	if err != nil {
		return nil, err
	}
	return Load(o, cfg, func(name string) (ops.Tensor, error) {
		data, info, err := f.Float32(name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		return o.Tensor(data, info.Shape...), nil
	})
}
