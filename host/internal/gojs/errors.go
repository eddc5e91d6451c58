package gojs

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors (use errors.Is).
var (
	// ErrExited: the guest has exited (wasmExit); it can no longer be called.
	ErrExited = errors.New("gojs: guest program has exited")
	// ErrDeadlock: the host waited for the guest (exit, a promise), but no
	// timer, microtask or host work is pending that could ever make progress.
	ErrDeadlock = errors.New("gojs: deadlock: nothing pending that could make progress")
	// ErrClosed: the runtime was closed (Close, or a context cancelled while
	// guest code was running, which aborts the module).
	ErrClosed = errors.New("gojs: runtime closed")
	// ErrNotStarted: Call/Await/Poll before Start.
	ErrNotStarted = errors.New("gojs: guest not started")
	// ErrNotFunction: Call on a value that is not a callable function.
	ErrNotFunction = errors.New("gojs: value is not a function")
	// ErrGuestPanic: the guest panicked or hit a Go runtime fatal error.
	ErrGuestPanic = errors.New("gojs: guest panicked")
	// ErrTrap: the wasm code trapped (or a host import misbehaved).
	ErrTrap = errors.New("gojs: wasm trap")
	// ErrInvalidModule: NewRuntime got bytes that do not compile or are not
	// a GOOS=js GOARCH=wasm program.
	ErrInvalidModule = errors.New("gojs: invalid module")
	// ErrAlreadyStarted: Start (or Run) called a second time.
	ErrAlreadyStarted = errors.New("gojs: guest already started")
	// ErrArgsTooLong: argv and env do not fit below the guest's data segment.
	ErrArgsTooLong = errors.New("gojs: total length of command line and environment variables exceeds limit")
)

// ExitError reports that the guest exited while the host was waiting for
// something else (a Call or Await), or with a panic (see PanicError).
type ExitError struct {
	Code int
}

func (e *ExitError) Error() string { return fmt.Sprintf("gojs: guest exited with code %d", e.Code) }

// Is makes errors.Is(err, ErrExited) true.
func (e *ExitError) Is(target error) bool { return target == ErrExited }

// PanicError is a guest panic or Go runtime fatal error (including the
// guest's own "all goroutines are asleep - deadlock!"). Stderr holds the tail
// of what the guest wrote to stderr: the panic message and goroutine traces.
type PanicError struct {
	Code     int
	Stderr   string
	Deadlock bool // the guest runtime reported a deadlock
}

func (e *PanicError) Error() string {
	msg := firstLine(e.Stderr)
	return fmt.Sprintf("gojs: guest exited with code %d: %s", e.Code, msg)
}

// Is matches ErrGuestPanic, ErrExited and, for a reported deadlock,
// ErrDeadlock.
func (e *PanicError) Is(target error) bool {
	return target == ErrGuestPanic || target == ErrExited || (e.Deadlock && target == ErrDeadlock)
}

// TrapError wraps a wasm trap or a runtime failure inside wazero, with the
// guest's stderr tail.
type TrapError struct {
	Err    error
	Stderr string
}

func (e *TrapError) Error() string {
	s := "gojs: wasm trap: " + e.Err.Error()
	if e.Stderr != "" {
		s += "\nguest stderr:\n" + e.Stderr
	}
	return s
}

// Unwrap returns the wazero error.
func (e *TrapError) Unwrap() error { return e.Err }

// Is matches ErrTrap.
func (e *TrapError) Is(target error) bool { return target == ErrTrap }

// errStopped is classified into ErrClosed (Close) or the context's error
// when an import call finds the guest asked to stop.
var errStopped = errors.New("gojs: guest stopped")

// abortError carries a fatal condition (exit, trap, cancellation) out of a
// nested guest call: host imports re-panic with it so that wazero unwinds
// every guest frame up to the outermost entry.
type abortError struct{ err error }

func (a *abortError) Error() string { return a.err.Error() }
func (a *abortError) Unwrap() error { return a.err }

// isPanicText reports whether stderr text looks like a Go panic or fatal
// error, to tell a crash from a plain os.Exit(2).
func isPanicText(s string) bool {
	for _, p := range []string{"panic: ", "fatal error: ", "runtime: "} {
		if strings.HasPrefix(s, p) || strings.Contains(s, "\n"+p) {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	for _, p := range []string{"panic: ", "fatal error: "} {
		if i := strings.Index(s, p); i >= 0 {
			s = s[i:]
			break
		}
	}
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// HostPanicError is a panic in a host Func, thrown into JS as an Error; it
// comes back to Go (a rejected Await, a failed Call) inside an *Exception.
type HostPanicError struct {
	Func  string
	Value any
	Stack []byte
}

func (e *HostPanicError) Error() string {
	name := e.Func
	if name == "" {
		name = "anonymous"
	}
	return fmt.Sprintf("gojs: host function %s panicked: %v", name, e.Value)
}
