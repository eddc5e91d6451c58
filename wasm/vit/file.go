package vit

import (
	"fmt"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// LoadFile loads a model from an open safetensors file through o.Tensor,
// decoding F16/BF16 to float32 (and dequantising int8, see
// weights.MetaQuant) in the Go heap one tensor at a time. It is
// the path for Go programs and tests; the browser module instead hands tfjs
// views of the downloaded bytes.
func LoadFile(o ops.Ops, f *safetensors.File, hfConfigJSON []byte) (*Model, error) {
	cfg, err := weights.ConfigFrom(f.Header, hfConfigJSON) // includes CheckVision
	if err != nil {
		return nil, err
	}
	dec := weights.NewDecoder(f.Header, f.ReadAt)
	return Load(o, cfg, func(name string) (ops.Tensor, error) {
		data, info, err := dec.Float32(name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		return o.Tensor(data, info.Shape...), nil
	})
}
