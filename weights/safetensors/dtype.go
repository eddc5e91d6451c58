package safetensors

// DType is a safetensors dtype name as written in the header ("F32", ...).
type DType string

// The dtypes of the safetensors specification.
const (
	BOOL    DType = "BOOL"
	U8      DType = "U8"
	I8      DType = "I8"
	U16     DType = "U16"
	I16     DType = "I16"
	F16     DType = "F16"
	BF16    DType = "BF16"
	U32     DType = "U32"
	I32     DType = "I32"
	F32     DType = "F32"
	U64     DType = "U64"
	I64     DType = "I64"
	F64     DType = "F64"
	C64     DType = "C64"
	F8E4M3  DType = "F8_E4M3"
	F8E5M2  DType = "F8_E5M2"
	F8E8M0  DType = "F8_E8M0"
	F6E2M3  DType = "F6_E2M3"
	F6E3M2  DType = "F6_E3M2"
	F4      DType = "F4"
	unknown DType = ""
)

// dtypeBits lists every known dtype with its element size in bits. The
// sub-byte float formats (F4, F6_*) are recognised so that files holding
// them can still be opened; their tensors must then cover whole bytes.
var dtypeBits = map[DType]int{
	BOOL: 8, U8: 8, I8: 8, F8E4M3: 8, F8E5M2: 8, F8E8M0: 8,
	U16: 16, I16: 16, F16: 16, BF16: 16,
	U32: 32, I32: 32, F32: 32,
	U64: 64, I64: 64, F64: 64, C64: 64,
	F6E2M3: 6, F6E3M2: 6, F4: 4,
}

// Bits returns the element size in bits and whether the dtype is known.
func (d DType) Bits() (int, bool) {
	b, ok := dtypeBits[d]
	return b, ok
}

// Size returns the element size in bytes (0 for sub-byte dtypes) and whether
// the dtype is known.
func (d DType) Size() (int, bool) {
	b, ok := dtypeBits[d]
	return b / 8, ok
}

// Known reports whether d is a dtype of the specification.
func (d DType) Known() bool { _, ok := dtypeBits[d]; return ok }

// intern returns the package constant spelled s, so that parsing a header
// with thousands of tensors allocates no dtype strings.
func intern(s []byte) (DType, bool) {
	switch string(s) {
	case "BOOL":
		return BOOL, true
	case "U8":
		return U8, true
	case "I8":
		return I8, true
	case "U16":
		return U16, true
	case "I16":
		return I16, true
	case "F16":
		return F16, true
	case "BF16":
		return BF16, true
	case "U32":
		return U32, true
	case "I32":
		return I32, true
	case "F32":
		return F32, true
	case "U64":
		return U64, true
	case "I64":
		return I64, true
	case "F64":
		return F64, true
	case "C64":
		return C64, true
	case "F8_E4M3":
		return F8E4M3, true
	case "F8_E5M2":
		return F8E5M2, true
	case "F8_E8M0":
		return F8E8M0, true
	case "F6_E2M3":
		return F6E2M3, true
	case "F6_E3M2":
		return F6E3M2, true
	case "F4":
		return F4, true
	}
	return unknown, false
}
