package safetensors

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// File is an open safetensors file: its validated header plus the reader
// the tensor bytes come from.
type File struct {
	*Header
	Size int64

	r      io.ReaderAt
	closer io.Closer
}

// Open opens and validates the safetensors file at path.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	sf, err := NewFile(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sf.closer = f
	return sf, nil
}

// NewFile validates the header of the size bytes held by r.
func NewFile(r io.ReaderAt, size int64) (*File, error) {
	h, err := ReadHeader(r, size)
	if err != nil {
		return nil, err
	}
	return &File{Header: h, Size: size, r: r}, nil
}

// Close closes the underlying file if Open opened it.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// Bytes reads the raw bytes of the named tensor into a new slice.
func (f *File) Bytes(name string) ([]byte, TensorInfo, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, t, &NotFoundError{Name: name}
	}
	buf := make([]byte, t.Len())
	if err := readFull(f.r, buf, t.Begin); err != nil {
		return nil, t, &FormatError{Tensor: name, Reason: "reading data: " + err.Error(), Err: ErrTruncated}
	}
	return buf, t, nil
}

// ReadAt reads len(p) bytes at absolute file offset off (the offsets of
// TensorInfo), failing on a short read.
func (f *File) ReadAt(p []byte, off int64) error { return readFull(f.r, p, off) }

// Float32 reads the named tensor and converts it to float32 (see
// DecodeFloat32 for the dtypes handled).
func (f *File) Float32(name string) ([]float32, TensorInfo, error) {
	buf, t, err := f.Bytes(name)
	if err != nil {
		return nil, t, err
	}
	out := make([]float32, t.NumElements())
	if err := DecodeFloat32(t.DType, buf, out); err != nil {
		var fe *FormatError
		if errors.As(err, &fe) { // name the tensor
			return nil, t, &FormatError{Tensor: name, Reason: fe.Reason, Err: fe.Err}
		}
		return nil, t, fmt.Errorf("safetensors: tensor %q: %w", name, err)
	}
	return out, t, nil
}

// NotFoundError reports a tensor name absent from the header.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("safetensors: no tensor %q", e.Name) }

// Is makes errors.Is(err, ErrNotFound) work.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }
