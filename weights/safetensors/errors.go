package safetensors

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps one of them
// (usually inside a *FormatError naming the tensor), so callers can test the
// class with errors.Is.
var (
	// ErrNotSafetensors: the bytes are not a safetensors file at all (empty,
	// text such as HTML or SVG, a header that is not a JSON object).
	ErrNotSafetensors = errors.New("not a safetensors file")
	// ErrHeaderTooLarge: the declared header length exceeds MaxHeaderLen.
	ErrHeaderTooLarge = errors.New("safetensors header too large")
	// ErrTruncated: the file ends before the header or the tensor data does.
	ErrTruncated = errors.New("safetensors file truncated")
	// ErrBadHeader: the header is not valid JSON of the expected structure.
	ErrBadHeader = errors.New("invalid safetensors header")
	// ErrBadOffsets: data_offsets are negative, reversed, overlapping, leave
	// gaps, do not start at 0 or do not end at the end of the file.
	ErrBadOffsets = errors.New("invalid tensor data offsets")
	// ErrShapeMismatch: a shape is invalid (negative, overflowing) or its
	// byte size differs from its data_offsets range, or a buffer passed to
	// a decode/encode function has the wrong length.
	ErrShapeMismatch = errors.New("tensor shape does not match its data")
	// ErrUnknownDType: a dtype this package does not know.
	ErrUnknownDType = errors.New("unknown tensor dtype")
	// ErrUnsupportedDType: a known dtype that the requested conversion does
	// not handle (for example decoding I64 as float32).
	ErrUnsupportedDType = errors.New("unsupported dtype for this operation")
	// ErrNotFound: the requested tensor is not in the file.
	ErrNotFound = errors.New("tensor not found")
	// ErrDuplicateTensor: two tensors share a name.
	ErrDuplicateTensor = errors.New("duplicate tensor name")
)

// FormatError describes a problem with one safetensors file. Tensor is the
// tensor concerned, or "" for file-level problems.
type FormatError struct {
	Tensor string
	Reason string
	Err    error // one of the sentinel errors above
}

// Error reads as a sentence for the person who chose the file: the
// sentinel's words then the detail, without a package prefix.
func (e *FormatError) Error() string {
	if e.Tensor != "" {
		return fmt.Sprintf("tensor %q: %s: %s", e.Tensor, e.Err, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.Err, e.Reason)
}

func (e *FormatError) Unwrap() error { return e.Err }

func errorf(sentinel error, tensor, format string, args ...any) error {
	return &FormatError{Tensor: tensor, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}
