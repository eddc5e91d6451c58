package safetensors

import (
	"encoding/binary"
	"math"
	"sync"
	"unsafe"
)

// littleEndian reports whether float32 in memory has the file's byte order
// (true on amd64, arm64 and wasm).
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// f16Table maps every binary16 bit pattern to float32 bits: 256 KB, built
// on first use, and several times faster than branching per value on
// checkpoints whose values are spread over many exponents.
var f16Table = sync.OnceValue(func() *[1 << 16]uint32 {
	var t [1 << 16]uint32
	for i := range t {
		t[i] = math.Float32bits(Float16ToFloat32(uint16(i)))
	}
	return &t
})

// DecodeFloat32 converts little-endian elements of dtype in src to float32
// in dst. F32, F16, BF16 and F64 are supported; len(src) must be exactly
// len(dst) elements. F16 and BF16 convert exactly (every value, subnormals,
// infinities and NaN payload class included); F64 rounds to nearest.
func DecodeFloat32(dtype DType, src []byte, dst []float32) error {
	if err := checkFloat32Conv(dtype, len(src), len(dst), "cannot decode %s as float32"); err != nil {
		return err
	}
	switch dtype {
	case F32:
		if littleEndian && len(dst) > 0 {
			// The file's bytes are the in-memory representation: one memmove
			// (viewing dst as bytes is always aligned).
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst)), src)
			return nil
		}
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		tab := f16Table()
		src = src[:2*len(dst)]
		for i := range dst {
			dst[i] = math.Float32frombits(tab[uint16(src[2*i])|uint16(src[2*i+1])<<8])
		}
	case BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	}
	return nil
}

// EncodeFloat32 writes src as little-endian elements of dtype (F32, F16,
// BF16 or F64) into dst, which must be exactly len(src) elements long.
// Narrowing rounds to nearest, ties to even, as PyTorch's .half() and
// .bfloat16() do; values beyond the F16 range become infinities.
func EncodeFloat32(dtype DType, src []float32, dst []byte) error {
	if err := checkFloat32Conv(dtype, len(dst), len(src), "cannot encode float32 as %s"); err != nil {
		return err
	}
	switch dtype {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToFloat16(v))
		}
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToBFloat16(v))
		}
	case F64:
		for i, v := range src {
			binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(float64(v)))
		}
	}
	return nil
}

// checkFloat32Conv validates a conversion between n float32 values and
// nBytes bytes of dtype; unsupported (with one %s for the dtype) describes
// the direction for an ErrUnsupportedDType error.
func checkFloat32Conv(dtype DType, nBytes, n int, unsupported string) error {
	size, known := dtype.Size()
	if !known {
		return errorf(ErrUnknownDType, "", "dtype %q", dtype)
	}
	switch dtype {
	case F32, F16, BF16, F64:
	default:
		return errorf(ErrUnsupportedDType, "", unsupported, dtype)
	}
	if nBytes != n*size {
		return errorf(ErrShapeMismatch, "", "%d bytes of %s for %d float32 values (want %d bytes)", nBytes, dtype, n, n*size)
	}
	return nil
}

// Float16ToFloat32 converts IEEE 754 binary16 bits to float32 (exact).
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: value = mant * 2^-24, exactly representable in float32.
		f := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(f))
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// Float32ToFloat16 converts to binary16, rounding to nearest even. NaN stays
// NaN (quiet), overflow becomes ±Inf, tiny values become subnormals or ±0.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign // rounds to zero (even below half the smallest subnormal)
		}
		m := mant | 0x800000 // implicit bit
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || rem == half && r&1 == 1 {
			r++
		}
		return sign | uint16(r) // a carry into bit 10 yields the smallest normal, correctly
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && r&1 == 1 {
		r++ // may carry into the exponent, up to Inf: still correct
	}
	return sign | uint16(r)
}

// Float32ToBFloat16 converts to bfloat16, rounding to nearest even; NaN
// stays a quiet NaN.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// DequantizeInt8 converts int8 values (I8, one byte each) to float32 with
// symmetric scales: dst[i] = int8(src[i]) * scales[(first+i)/groupLen],
// where first is the index of src[0] in its tensor, so a tensor can be
// decoded in chunks that do not start on a group boundary. scales must
// cover every group the chunk touches.
func DequantizeInt8(src []byte, scales []float32, groupLen, first int, dst []float32) error {
	if len(src) != len(dst) {
		return errorf(ErrShapeMismatch, "", "%d bytes of I8 for %d float32 values", len(src), len(dst))
	}
	if groupLen <= 0 || first < 0 {
		return errorf(ErrShapeMismatch, "", "group length %d, first element %d", groupLen, first)
	}
	if len(dst) == 0 {
		return nil
	}
	if last := (first + len(dst) - 1) / groupLen; last >= len(scales) {
		return errorf(ErrShapeMismatch, "", "element %d needs scale %d of %d", first+len(dst)-1, last, len(scales))
	}
	for i := 0; i < len(dst); {
		g := (first + i) / groupLen
		end := min(len(dst), (g+1)*groupLen-first)
		s := scales[g]
		for j := i; j < end; j++ {
			dst[j] = float32(int8(src[j])) * s
		}
		i = end
	}
	return nil
}
