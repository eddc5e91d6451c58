package host

import (
	"context"

	"github.com/imgembed/imgembed/wasm/api"
)

// Code is an error code shared with the JS package (ImageEmbeddingsError.code),
// so that the Go API, the Go command and the Node command report the same
// failure with the same word (package api's Code).
type Code = api.Code

// The codes, spelled exactly as in the JS package.
const (
	ModelNotLoaded         = api.ModelNotLoaded
	InvalidInput           = api.InvalidInput
	UnsupportedImageFormat = api.UnsupportedImageFormat
	CorruptImage           = api.CorruptImage
	ImageTooLarge          = api.ImageTooLarge
	DownloadFailed         = api.DownloadFailed
	Aborted                = api.Aborted
	InvalidModel           = api.InvalidModel
)

// Error is every error the package returns for a failed load or embedding
// (package api's Error). Compare with errors.Is against the Err* sentinels
// (they match by Code) or unwrap with errors.As to read Code and Message.
// When the cause is a Go error (a context cancellation, a network error) it
// is kept as Err, so errors.Is(err, context.Canceled) also works.
type Error = api.Error

// Sentinels for errors.Is; they match any *Error with the same Code.
var (
	ErrModelNotLoaded         = api.ErrModelNotLoaded
	ErrInvalidInput           = api.ErrInvalidInput
	ErrUnsupportedImageFormat = api.ErrUnsupportedImageFormat
	ErrCorruptImage           = api.ErrCorruptImage
	ErrImageTooLarge          = api.ErrImageTooLarge
	ErrDownloadFailed         = api.ErrDownloadFailed
	ErrAborted                = api.ErrAborted
	ErrInvalidModel           = api.ErrInvalidModel
)

// newError is api.New: the message, then ": " and the cause's text.
var newError = api.New

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
func asError(err error, fallback Code) *Error { return api.As(err, fallback) }
