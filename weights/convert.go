package weights

import (
	"bufio"
	"fmt"
	"io"
	"math"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// Convert writes the vision tower of src (the tensors of VisionTensorNames)
// to w as dtype (F32, F16 or BF16), with cfg in __metadata__ so that
// ConfigFrom reads it back without a config.json. Everything else in src
// (text tower, logit_scale, position_ids) is left out. It streams one
// tensor at a time. Narrowing that turns a finite value into an infinity
// fails with ErrOutOfRange naming the tensor.
func Convert(w io.Writer, src *safetensors.File, cfg Config, dtype safetensors.DType) error {
	if err := CheckVision(src.Header, cfg); err != nil {
		return err
	}
	if dtype != safetensors.F32 && dtype != safetensors.F16 && dtype != safetensors.BF16 {
		return fmt.Errorf("weights: convert: %w: %s (want F32, F16 or BF16)", safetensors.ErrUnsupportedDType, dtype)
	}
	names := VisionTensorNames(cfg)
	shapes := VisionTensors(cfg)
	specs := make([]safetensors.Spec, len(names))
	for i, n := range names {
		specs[i] = safetensors.Spec{Name: n, DType: dtype, Shape: shapes[n]}
	}
	meta := cfg.Metadata()
	meta["format"] = "pt"
	bw := bufio.NewWriterSize(w, 1<<20)
	sw, err := safetensors.NewWriter(bw, specs, meta)
	if err != nil {
		return err
	}
	size, _ := dtype.Size()
	// The infinity bits of a 16-bit target: F16 overflows above 65504, BF16
	// when rounding carries a value near MaxFloat32 over.
	var inf uint16
	switch dtype {
	case safetensors.F16:
		inf = 0x7c00
	case safetensors.BF16:
		inf = 0x7f80
	}
	var out []byte
	for _, n := range names {
		vals, _, err := src.Float32(n)
		if err != nil {
			return fmt.Errorf("weights: convert: %w", err)
		}
		if cap(out) < len(vals)*size {
			out = make([]byte, len(vals)*size)
		}
		out = out[:len(vals)*size]
		if err := safetensors.EncodeFloat32(dtype, vals, out); err != nil {
			return fmt.Errorf("weights: convert %s: %w", n, err)
		}
		if inf != 0 {
			for i, v := range vals {
				if h := uint16(out[2*i]) | uint16(out[2*i+1])<<8; h&0x7fff == inf && !math.IsInf(float64(v), 0) {
					return fmt.Errorf("weights: convert %s[%d] = %g to %s: %w", n, i, v, dtype, ErrOutOfRange)
				}
			}
		}
		if _, err := sw.Write(out); err != nil {
			return err
		}
	}
	if err := sw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("weights: convert: %w", err)
	}
	return nil
}
