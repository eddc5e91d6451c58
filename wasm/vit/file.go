package vit

import (
	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// LoadFile loads a model from an open safetensors file, decoding F16/BF16
// to float32 (and dequantising int8, see weights.MetaQuant) in the Go heap
// one tensor at a time; a NaN or infinity in a weight fails the load.
func LoadFile(o ops.Ops, f *safetensors.File, hfConfigJSON []byte) (*Model, error) {
	cfg, err := weights.ConfigFrom(f.Header, hfConfigJSON) // includes CheckVision
	if err != nil {
		return nil, err
	}
	return Load(o, cfg, weights.NewDecoder(f.Header, f.ReadAt).Get)
}
