package api

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func jsSource(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "js", "src", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sorted(cs []string) []string {
	cs = slices.Clone(cs)
	slices.Sort(cs)
	return cs
}

func goCodes() []string {
	var out []string
	for _, c := range Codes() {
		out = append(out, string(c))
	}
	return sorted(out)
}

// TestJSCodes checks that the JS package lists exactly Codes(): the
// ErrorCodes object of index.js, the ErrorCode union of index.d.ts, and
// that no JS source sets a code outside them.
func TestJSCodes(t *testing.T) {
	want := goCodes()

	js := jsSource(t, "index.js")
	obj := regexp.MustCompile(`(?s)export const ErrorCodes = Object\.freeze\(\{(.*?)\}\)`).FindStringSubmatch(js)
	if obj == nil {
		t.Fatal("index.js: no `export const ErrorCodes = Object.freeze({...})`")
	}
	var fromJS []string
	for _, m := range regexp.MustCompile(`(\w+):\s*'(\w+)'`).FindAllStringSubmatch(obj[1], -1) {
		if m[1] != m[2] {
			t.Errorf("index.js: ErrorCodes.%s = %q: key and value differ", m[1], m[2])
		}
		fromJS = append(fromJS, m[2])
	}
	if got := sorted(fromJS); !slices.Equal(got, want) {
		t.Errorf("index.js ErrorCodes = %v, Go = %v", got, want)
	}

	dts := jsSource(t, "index.d.ts")
	union := regexp.MustCompile(`(?s)export type ErrorCode =(.*?);`).FindStringSubmatch(dts)
	if union == nil {
		t.Fatal("index.d.ts: no `export type ErrorCode = ...;`")
	}
	var fromDTS []string
	for _, m := range regexp.MustCompile(`'(\w+)'`).FindAllStringSubmatch(union[1], -1) {
		fromDTS = append(fromDTS, m[1])
	}
	if got := sorted(fromDTS); !slices.Equal(got, want) {
		t.Errorf("index.d.ts ErrorCode = %v, Go = %v", got, want)
	}

	// No ninth code invented elsewhere: every literal assigned to a code
	// in the package's sources is one of the list.
	files, err := filepath.Glob(filepath.Join("..", "..", "js", "src", "*.*s"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no js sources: %v", err)
	}
	set := regexp.MustCompile(`\bcode\s*(?:=|:)\s*'(\w+)'`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range set.FindAllStringSubmatch(string(b), -1) {
			if !Code(m[1]).Known() {
				t.Errorf("%s sets code %q, not one of %v", filepath.Base(f), m[1], want)
			}
		}
	}
}

func TestKnown(t *testing.T) {
	for _, c := range Codes() {
		if !c.Known() {
			t.Errorf("%s not Known", c)
		}
	}
	if Code("BackendInitFailed").Known() || Code("").Known() {
		t.Error("unknown code reported Known")
	}
}

func TestErrorIs(t *testing.T) {
	e := New(CorruptImage, nil, "bad %s", "jpeg")
	if !errors.Is(e, ErrCorruptImage) || errors.Is(e, ErrInvalidInput) {
		t.Error("Is must match by code only")
	}
	// Matching does not depend on the target's message: one rule.
	if !errors.Is(e, &Error{Code: CorruptImage, Message: "other"}) {
		t.Error("Is must ignore the target's message")
	}
	wrapped := fmt.Errorf("context: %w", e)
	if !errors.Is(wrapped, ErrCorruptImage) || CodeOf(wrapped) != CorruptImage {
		t.Error("wrapped error lost its code")
	}
	if CodeOf(errors.New("x")) != "" {
		t.Error("CodeOf of a plain error must be empty")
	}
}

func TestNewMessage(t *testing.T) {
	inner := New(UnsupportedImageFormat, nil, "unrecognised leading bytes %q", "this is ")
	outer := New(UnsupportedImageFormat, inner, "photo.png")
	if got, want := outer.Error(), `UnsupportedImageFormat: photo.png: unrecognised leading bytes "this is "`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if strings.Count(outer.Error(), string(UnsupportedImageFormat)) != 1 {
		t.Errorf("code repeated in %q", outer.Error())
	}
	if !errors.Is(outer, ErrUnsupportedImageFormat) || errors.Unwrap(outer) != inner {
		t.Error("cause not kept")
	}
	plain := New(DownloadFailed, errors.New("connection refused"), "fetching %s", "http://x")
	if got := plain.Message; got != "fetching http://x: connection refused" {
		t.Errorf("Message = %q", got)
	}
}

func TestAs(t *testing.T) {
	if As(nil, InvalidInput) != nil {
		t.Error("As(nil) != nil")
	}
	e := New(ImageTooLarge, nil, "big")
	if As(fmt.Errorf("w: %w", e), InvalidInput) != e {
		t.Error("As must return the wrapped *Error")
	}
	a := As(context.Canceled, InvalidInput)
	if a.Code != Aborted || !errors.Is(a, context.Canceled) {
		t.Errorf("context.Canceled -> %v", a)
	}
	if c := As(errors.New("x"), InvalidModel).Code; c != InvalidModel {
		t.Errorf("fallback code %s", c)
	}
}
