package host

import (
	"context"
	"errors"
	"fmt"
)

// Code is an error code shared with the JS package (ImageEmbeddingsError.code),
// so that the Go API, the Go command and the Node command report the same
// failure with the same word.
type Code string

// The codes, spelled exactly as in the JS package.
const (
	ModelNotLoaded         Code = "ModelNotLoaded"
	InvalidInput           Code = "InvalidInput"
	UnsupportedImageFormat Code = "UnsupportedImageFormat"
	CorruptImage           Code = "CorruptImage"
	ImageTooLarge          Code = "ImageTooLarge"
	DownloadFailed         Code = "DownloadFailed"
	Aborted                Code = "Aborted"
	InvalidModel           Code = "InvalidModel"
)

// Error is every error the package returns for a failed load or embedding.
// Compare with errors.Is against the Err* sentinels (they match by Code) or
// unwrap with errors.As to read Code and Message. When the cause is a Go
// error (a context cancellation, a network error) it is kept as Err, so
// errors.Is(err, context.Canceled) also works.
type Error struct {
	Code    Code
	Message string
	Err     error // cause, may be nil
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "imgembed: " + string(e.Code)
	}
	return "imgembed: " + string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code (the sentinels
// below carry only a Code).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// Sentinels for errors.Is; they match any *Error with the same Code.
var (
	ErrModelNotLoaded         = &Error{Code: ModelNotLoaded}
	ErrInvalidInput           = &Error{Code: InvalidInput}
	ErrUnsupportedImageFormat = &Error{Code: UnsupportedImageFormat}
	ErrCorruptImage           = &Error{Code: CorruptImage}
	ErrImageTooLarge          = &Error{Code: ImageTooLarge}
	ErrDownloadFailed         = &Error{Code: DownloadFailed}
	ErrAborted                = &Error{Code: Aborted}
	ErrInvalidModel           = &Error{Code: InvalidModel}
)

func newError(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

// abortedError wraps a context error as an Aborted *Error that still
// satisfies errors.Is(err, context.Canceled / DeadlineExceeded).
func abortedError(ctx context.Context, what string) *Error {
	cause := context.Cause(ctx)
	if cause == nil {
		cause = context.Canceled
	}
	return &Error{Code: Aborted, Message: what + ": " + cause.Error(), Err: cause}
}

// asError converts any error to *Error, keeping an *Error as is.
func asError(err error, fallback Code) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: Aborted, Message: err.Error(), Err: err}
	}
	return &Error{Code: fallback, Message: err.Error(), Err: err}
}
