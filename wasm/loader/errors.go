package loader

import (
	"strings"

	"github.com/imgembed/imgembed/wasm/api"
)

// Code and Error are the shared vocabulary's (package api); the loader
// produces DownloadFailed, InvalidModel and Aborted. The cause (e.g. a
// safetensors.FormatError) stays reachable through Unwrap.
type (
	Code  = api.Code
	Error = api.Error
)

// The codes the loader produces.
const (
	DownloadFailed = api.DownloadFailed
	InvalidModel   = api.InvalidModel
	Aborted        = api.Aborted
)

// Sentinels for errors.Is.
var (
	ErrDownloadFailed = api.ErrDownloadFailed
	ErrInvalidModel   = api.ErrInvalidModel
	ErrAborted        = api.ErrAborted
)

var newErr = api.New

// CodeOf returns the code of err when it is (or wraps) an *Error, else "".
func CodeOf(err error) Code { return api.CodeOf(err) }

// naming makes err's message name source once: most messages do already;
// the others get it in front, so callers never add it a second time.
func naming(err error, source string) error {
	if strings.Contains(api.MessageOf(err), source) {
		return err
	}
	return newErr(CodeOf(err), err, "%s", source)
}
