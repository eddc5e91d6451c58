// Package api is the vocabulary every part of imgembed shares: the error
// codes and the one Error type that carries them, the module protocol
// version, the input limits and the default model. The Go packages (loader,
// imagefile, the wasm module, host) use it directly; the JS package mirrors
// the codes (js/src/index.js, index.d.ts), which a test checks.
package api

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ProtocolVersion is globalThis.__imgembed.version, the version of the
// module's JS API (wasm/API.md); hosts refuse a module speaking another.
const ProtocolVersion = 1

// Limits and defaults both hosts and the module agree on.
const (
	// MaxImageFileBytes bounds one encoded image (a file, a download, a
	// caller's bytes): larger fails with ImageTooLarge before decoding.
	MaxImageFileBytes = 256 << 20
	// DefaultMaxPixels bounds width*height of one image unless the caller
	// sets another limit: 100 megapixels, far above any camera photo, far
	// below what would exhaust a browser tab (the RGB alone is 300 MB).
	DefaultMaxPixels = 100_000_000
	// DefaultMaxBatch is how many images go through the graph per forward
	// pass by default.
	DefaultMaxBatch = 8
	// DefaultFetchTimeout bounds fetching one image URL (response and
	// body) by default.
	DefaultFetchTimeout = 30 * time.Second
	// MaxPreprocessSize bounds the size argument of preprocess.
	MaxPreprocessSize = 4096
	// MaxTextBytes bounds one text input: longer strings are cut to this
	// many bytes (at a character boundary) before tokenising. The
	// tokenizer keeps 75 tokens, which no text needs more than a few
	// hundred bytes for; the cap keeps a 100 MB string from costing its
	// normalisation.
	MaxTextBytes = 1 << 20
)

// DefaultModel is OpenAI's CLIP ViT-B/32 on Hugging Face (the whole
// CLIPModel file; only the vision tensors are fetched where the server
// honours Range).
const DefaultModel = "https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/model.safetensors"

// Code names a class of failure; the same word in Go (Error.Code), in the
// module's rejections and in JS (ImageEmbeddingsError.code).
type Code string

// The codes. Adding one means adding it to js/src/index.js and index.d.ts
// too (TestJSCodes).
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

// Codes lists every code.
func Codes() []Code {
	return []Code{ModelNotLoaded, InvalidInput, UnsupportedImageFormat, CorruptImage,
		ImageTooLarge, DownloadFailed, Aborted, InvalidModel}
}

// Known reports whether c is one of Codes.
func (c Code) Known() bool {
	switch c {
	case ModelNotLoaded, InvalidInput, UnsupportedImageFormat, CorruptImage,
		ImageTooLarge, DownloadFailed, Aborted, InvalidModel:
		return true
	}
	return false
}

// Error is every failure imgembed reports. Message is the whole human
// text without the code; Err the Go cause, if any (kept for errors.Is and
// errors.As, e.g. context.Canceled).
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is is the one matching rule: target is an *Error with the same Code
// (the Err* sentinels carry only a Code).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is.
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

// New makes an *Error whose Message is the formatted text followed by
// ": " and the cause's text (an *Error cause contributes its Message only,
// so a code is never repeated).
func New(code Code, cause error, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if cause != nil {
		if c := MessageOf(cause); c != "" {
			if msg == "" {
				msg = c
			} else {
				msg += ": " + c
			}
		}
	}
	return &Error{Code: code, Message: msg, Err: cause}
}

// MessageOf is err's text without its code when err is (or wraps) an
// *Error, else err.Error().
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Message == "" {
			return string(e.Code)
		}
		return e.Message
	}
	return err.Error()
}

// CodeOf returns the code of err when it is (or wraps) an *Error, else "".
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// As converts any error to *Error: an *Error (or one it wraps) as is, a
// context cancellation or deadline as Aborted, anything else with the
// fallback code. nil stays nil.
func As(err error, fallback Code) *Error {
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
