package loader

import (
	"errors"
	"fmt"
)

// Code is the error code the JS package exposes as ImageEmbeddingsError.code.
type Code string

// The codes the loader produces.
const (
	DownloadFailed Code = "DownloadFailed"
	InvalidModel   Code = "InvalidModel"
	Aborted        Code = "Aborted"
)

// Error is every error Load and Open return. Match a class with errors.Is
// against ErrDownloadFailed, ErrInvalidModel or ErrAborted; the cause (e.g.
// a safetensors.FormatError) stays reachable through Unwrap.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	s := string(e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches an *Error with the same Code (the sentinels carry only a Code).
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Message == "" && t.Err == nil && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrDownloadFailed = &Error{Code: DownloadFailed}
	ErrInvalidModel   = &Error{Code: InvalidModel}
	ErrAborted        = &Error{Code: Aborted}
)

func newErr(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

// CodeOf returns the code of err when it is (or wraps) an *Error, else "".
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
