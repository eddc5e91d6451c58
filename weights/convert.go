package weights

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// ConvertOptions choose the output of ConvertWith.
type ConvertOptions struct {
	// DType is F32, F16, BF16, or I8 for the int8 scheme (see MetaQuant):
	// matrix-product weights int8 with F32 scales, the rest F16.
	DType safetensors.DType
	// GroupSize (I8 only): 0 gives one scale per output channel; N gives a
	// scale per run of N input elements (N must divide every row).
	GroupSize int
}

// Convert writes the vision tower of src (the tensors of VisionTensorNames)
// to w as dtype (F32, F16, BF16 or I8), with cfg in __metadata__ so that
// ConfigFrom reads it back without a config.json. See ConvertWith.
func Convert(w io.Writer, src *safetensors.File, cfg Config, dtype safetensors.DType) error {
	return ConvertWith(w, src, cfg, ConvertOptions{DType: dtype})
}

// ConvertWith writes the vision tower of src to w. Everything else in src
// (text tower, logit_scale, position_ids) is left out. It streams one
// tensor at a time. Narrowing that turns a finite value into an infinity
// fails with ErrOutOfRange naming the tensor.
func ConvertWith(w io.Writer, src *safetensors.File, cfg Config, o ConvertOptions) error {
	if err := CheckVision(src.Header, cfg); err != nil {
		return err
	}
	dtype := o.DType
	if dtype != safetensors.F32 && dtype != safetensors.F16 && dtype != safetensors.BF16 && dtype != safetensors.I8 {
		return fmt.Errorf("weights: convert: %w: %s (want F32, F16, BF16 or I8)", safetensors.ErrUnsupportedDType, dtype)
	}
	names := VisionTensorNames(cfg)
	shapes := VisionTensors(cfg)
	type item struct {
		name   string
		dtype  safetensors.DType
		groups int    // I8: scales per row
		scale  string // I8: its scale tensor
	}
	var items []item
	for _, n := range names {
		it := item{name: n, dtype: dtype}
		if dtype == safetensors.I8 {
			it.dtype = safetensors.F16
			if IsMatMulWeight(n) {
				rowLen := 1
				for _, d := range shapes[n][1:] {
					rowLen *= d
				}
				g, err := quantGroupsOf(rowLen, o.GroupSize)
				if err != nil {
					return fmt.Errorf("%w (%s)", err, n)
				}
				it.dtype, it.groups, it.scale = safetensors.I8, g, ScaleName(n)
			}
		}
		items = append(items, it)
	}
	// Laid out by element size, largest first (F32 scales, F16, I8), so
	// that every tensor starts aligned to its element size for readers that
	// view the bytes in place. The int8 weights are read and quantised
	// twice (once for their scales, once for their values): the file is
	// written as a stream and never held whole.
	var specs []safetensors.Spec
	for _, it := range items {
		if it.scale != "" {
			sh := []int{shapes[it.name][0]}
			if it.groups > 1 {
				sh = append(sh, it.groups)
			}
			specs = append(specs, safetensors.Spec{Name: it.scale, DType: safetensors.F32, Shape: sh})
		}
	}
	for _, it := range items {
		if it.scale == "" {
			specs = append(specs, safetensors.Spec{Name: it.name, DType: it.dtype, Shape: shapes[it.name]})
		}
	}
	for _, it := range items {
		if it.scale != "" {
			specs = append(specs, safetensors.Spec{Name: it.name, DType: it.dtype, Shape: shapes[it.name]})
		}
	}
	meta := cfg.Metadata()
	meta["format"] = "pt"
	if dtype == safetensors.I8 {
		meta[MetaQuant] = QuantInt8
		meta[MetaQuantVersion] = QuantVersion
		meta[MetaQuantGroup] = strconv.Itoa(max(0, o.GroupSize))
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	sw, err := safetensors.NewWriter(bw, specs, meta)
	if err != nil {
		return err
	}
	quantise := func(it item) ([]byte, []float32, error) {
		vals, _, err := src.Float32(it.name)
		if err != nil {
			return nil, nil, fmt.Errorf("weights: convert: %w", err)
		}
		rows := shapes[it.name][0]
		q := make([]byte, len(vals))
		scales := make([]float32, rows*it.groups)
		if err := QuantizeInt8(vals, rows, it.groups, q, scales); err != nil {
			return nil, nil, fmt.Errorf("weights: convert %s: %w", it.name, err)
		}
		return q, scales, nil
	}
	var out []byte
	for _, it := range items { // the scales
		if it.scale == "" {
			continue
		}
		_, scales, err := quantise(it)
		if err != nil {
			return err
		}
		if out, err = encode(safetensors.F32, it.scale, scales, out); err != nil {
			return err
		}
		if _, err := sw.Write(out); err != nil {
			return err
		}
	}
	for _, it := range items { // the float tensors
		if it.scale != "" {
			continue
		}
		vals, _, err := src.Float32(it.name)
		if err != nil {
			return fmt.Errorf("weights: convert: %w", err)
		}
		if out, err = encode(it.dtype, it.name, vals, out); err != nil {
			return err
		}
		if _, err := sw.Write(out); err != nil {
			return err
		}
	}
	for _, it := range items { // the int8 values
		if it.scale == "" {
			continue
		}
		q, _, err := quantise(it)
		if err != nil {
			return err
		}
		if _, err := sw.Write(q); err != nil {
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

// encode narrows vals to dtype into out (reused when large enough), failing
// when a finite value becomes an infinity.
func encode(dtype safetensors.DType, name string, vals []float32, out []byte) ([]byte, error) {
	size, _ := dtype.Size()
	if cap(out) < len(vals)*size {
		out = make([]byte, len(vals)*size)
	}
	out = out[:len(vals)*size]
	if err := safetensors.EncodeFloat32(dtype, vals, out); err != nil {
		return out, fmt.Errorf("weights: convert %s: %w", name, err)
	}
	// The infinity bits of a 16-bit target: F16 overflows above 65504, BF16
	// when rounding carries a value near MaxFloat32 over.
	var inf uint16
	switch dtype {
	case safetensors.F16:
		inf = 0x7c00
	case safetensors.BF16:
		inf = 0x7f80
	}
	if inf != 0 {
		for i, v := range vals {
			if h := uint16(out[2*i]) | uint16(out[2*i+1])<<8; h&0x7fff == inf && !math.IsInf(float64(v), 0) {
				return out, fmt.Errorf("weights: convert %s[%d] = %g to %s: %w", name, i, v, dtype, ErrOutOfRange)
			}
		}
	}
	return out, nil
}
