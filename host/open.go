package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/imgembed/imgembed/wasm/api"
)

// openImage reads the image file at path for both engines, the API and the
// command. Only regular files are read: the file is opened non-blocking
// where the OS has it (a FIFO then cannot hang the open) and checked with
// fstat on the open descriptor (no race with a rename), so devices
// (/dev/zero, /dev/urandom), symlinks to them, FIFOs and directories fail
// with InvalidInput at once. A file over api.MaxImageFileBytes fails with
// ImageTooLarge before any byte is read, and the read is bounded anyway (a
// file that grows meanwhile).
func openImage(path string) ([]byte, error) {
	f, err := openNonBlocking(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &Error{Code: InvalidInput, Message: fmt.Sprintf("cannot read %s: no such file", path), Err: err}
		}
		return nil, newError(InvalidInput, unwrapPath(err), "cannot read %s", path)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, newError(InvalidInput, unwrapPath(err), "cannot read %s", path)
	}
	if !st.Mode().IsRegular() {
		return nil, newError(InvalidInput, nil, "cannot read %s: %s", path, kindOf(st.Mode()))
	}
	if st.Size() > api.MaxImageFileBytes {
		return nil, newError(ImageTooLarge, nil, "%s is %d bytes, more than the limit of %d", path, st.Size(), int64(api.MaxImageFileBytes))
	}
	b := make([]byte, 0, st.Size()+1)
	for {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > api.MaxImageFileBytes {
			return nil, newError(ImageTooLarge, nil, "%s grew beyond the limit of %d bytes while read", path, int64(api.MaxImageFileBytes))
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, newError(InvalidInput, unwrapPath(err), "cannot read %s", path)
		}
		if len(b) == cap(b) { // the file grew: read on, bounded by the cap
			b = append(b, 0)[:len(b)]
		}
	}
}

// unwrapPath drops the *PathError's op and path (the message names the
// path already).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory, not an image file"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO), not a regular file"
	case m&fs.ModeSocket != 0:
		return "a socket, not a regular file"
	case m&fs.ModeDevice != 0:
		return "a device, not a regular file"
	}
	return "not a regular file"
}

// fileOpener is embed.Opener over openImage.
type fileOpener struct{}

func (fileOpener) Open(ctx context.Context, path string) ([]byte, error) {
	if ctx.Err() != nil {
		return nil, abortedError(ctx, "reading "+path)
	}
	return openImage(path)
}
