package gojs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// Guest programs in testdata/<name> are built with GOOS=js GOARCH=wasm once
// per test binary, into a temporary directory removed by TestMain.
var (
	buildDir string
	buildsMu sync.Mutex
	builds   = map[string]*build{}
)

type build struct {
	once sync.Once
	path string
	wasm []byte
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gojs-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func goTool(t testing.TB) string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Skip("go tool not found")
	}
	return p
}

// buildProg returns the path and bytes of testdata/<name> built for js/wasm.
func buildProg(t testing.TB, name string) (string, []byte) {
	t.Helper()
	buildsMu.Lock()
	b, ok := builds[name]
	if !ok {
		b = &build{}
		builds[name] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() {
		// Read the sources so that go test's cache notices when they change
		// (the go build subprocess is invisible to it).
		srcs, _ := filepath.Glob(filepath.Join("testdata", name, "*.go"))
		for _, src := range srcs {
			_, _ = os.ReadFile(src)
		}
		b.path = filepath.Join(buildDir, name+".wasm")
		cmd := exec.Command(goTool(t), "build", "-o", b.path, "./testdata/"+name)
		cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("building testdata/%s: %v\n%s", name, err, out)
			return
		}
		b.wasm, b.err = os.ReadFile(b.path)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path, b.wasm
}

type output struct {
	stdout, stderr bytes.Buffer
}

func newRuntime(t testing.TB, name string, cfg Config) (*Runtime, *output) {
	t.Helper()
	_, wasm := buildProg(t, name)
	out := &output{}
	cfg.Stdout, cfg.Stderr = &out.stdout, &out.stderr
	rt, err := NewRuntime(context.Background(), wasm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt, out
}

func runProg(t testing.TB, name string, cfg Config, timeout time.Duration) (*output, int, error) {
	t.Helper()
	rt, out := newRuntime(t, name, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	code, err := rt.Run(ctx)
	return out, code, err
}

func TestHello(t *testing.T) {
	out, code, err := runProg(t, "hello", Config{Env: map[string]string{"GOJS_TEST": "v1"}}, time.Minute)
	if err != nil || code != 0 {
		t.Fatalf("code %d, err %v; stderr:\n%s", code, err, out.stderr.String())
	}
	want := "hello, world\nargs: true\nenv GOJS_TEST: v1\nyear ok: true\ngetwd error: false true\n"
	if got := out.stdout.String(); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	if got := out.stderr.String(); got != "to stderr\nprintln works\n" {
		t.Errorf("stderr: %q", got)
	}
}

func TestJSValues(t *testing.T) {
	rt, out := newRuntime(t, "jsvalues", Config{})
	type snap struct {
		live, tableLen int
		keptID         uint32
		keptRefs       int64
	}
	snaps := map[string]snap{}
	rt.Global().Set("gojsReport", NewFunc("gojsReport", func(_ Value, args []Value) (Value, error) {
		s := snap{live: rt.LiveRefs(), tableLen: len(rt.table.values)}
		if len(args) > 1 {
			id, refs, ok := rt.ID(args[1])
			if !ok {
				return nil, errors.New("kept object has no id")
			}
			s.keptID, s.keptRefs = id, refs
		}
		snaps[args[0].(string)] = s
		return nil, nil
	}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, err := rt.Run(ctx)
	if err != nil || code != 0 {
		t.Fatalf("code %d, err %v; stderr:\n%s", code, err, out.stderr.String())
	}
	stdout := out.stdout.String()
	for _, line := range []string{
		"unknown global undefined: true",
		"unknown property undefined: true",
		"number string: 0.1 1e+21 -2.5e-7 42 123456789012 1.5e+300  true",
		"equal same value: true true",
		"String(): Error: bad thing [object Object] null 1,2,3 42",
		"fib(12) via callbacks: 144",
		"deep recursion: 200",
		"method this: T:3",
		"then chain: 20 true",
		"new Promise resolved from goroutine: later true",
		"rejected: nope false",
		"finally keeps rejection: r false [finally]",
		"all: 3 1 2 3 true",
		"microtask order: [sync micro]",
		"slept at least 20ms: true",
		"goroutine wakeups: 2 1 0",
		"subarray: 3 2 3 8",
		"copyBytesToGo: 3 [44 4 5 0]",
		"float32 bytes: [205 204 204 61]",
		"Int32Array: 4 -5 true false",
		"CopyBytesToGo on Float32Array panics: true",
		"structuredClone detaches: true 0 0 0 0 0 true",
		"detached errors:  TypeError",
		"structuredClone moves: 8 7 0",
		"duplicate transfer: DataCloneError 4",
		"done",
	} {
		if !strings.Contains(stdout, line+"\n") {
			t.Errorf("stdout lacks %q", line)
		}
	}

	before, alloc, after := snaps["refs-before"], snaps["refs-allocated"], snaps["refs-after-gc"]
	if before.keptID < numPredefined || before.keptRefs < 1 {
		t.Errorf("kept object: id %d refs %d", before.keptID, before.keptRefs)
	}
	if after.keptID != before.keptID {
		t.Errorf("kept object changed id across GC: %d -> %d", before.keptID, after.keptID)
	}
	if alloc.live < before.live+2000 {
		t.Errorf("2000 strings should hold 2000 ids: live %d -> %d", before.live, alloc.live)
	}
	if after.live > alloc.live-1500 {
		t.Errorf("finalizeRef after runtime.GC freed too little: live %d -> %d", alloc.live, after.live)
	}
	for _, id := range rt.table.pool {
		if id < numPredefined {
			t.Fatalf("predefined id %d in the free pool", id)
		}
	}
	if rt.table.values[idGlobal] != Value(rt.global) || rt.table.values[idGo] != Value(rt.goObj) || rt.table.values[idNull] != Null {
		t.Error("predefined ids changed")
	}
	// Freed ids are reused: the table did not grow by the freed amount later.
	if grown := len(rt.table.values) - alloc.tableLen; grown > 1000 {
		t.Errorf("table grew by %d after GC freed ids", grown)
	}
}

func TestInvalidModules(t *testing.T) {
	ctx := context.Background()
	if _, err := NewRuntime(ctx, []byte("not wasm"), Config{}); !errors.Is(err, ErrInvalidModule) {
		t.Errorf("garbage: %v", err)
	}
	// A valid module that is not a Go js/wasm program (no run/resume/getsp).
	empty := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	if _, err := NewRuntime(ctx, empty, Config{}); !errors.Is(err, ErrInvalidModule) {
		t.Errorf("empty module: %v", err)
	}
	rt, _ := newRuntime(t, "exit", Config{Args: []string{"js", strings.Repeat("x", 9000)}})
	if err := rt.Start(ctx); !errors.Is(err, ErrArgsTooLong) {
		t.Errorf("long args: %v", err)
	}
	rt, _ = newRuntime(t, "exit", Config{Args: []string{"js", "ok"}})
	if _, err := rt.Call(ctx, NewFunc("f", nil), nil); !errors.Is(err, ErrNotStarted) {
		t.Errorf("call before start: %v", err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx); !errors.Is(err, ErrAlreadyStarted) {
		t.Errorf("second start: %v", err)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		mode string
		code int
		out  string
	}{
		{"ok", 0, "mode ok\nend ok\n"},
		{"exit3", 3, "mode exit3\n"},
		{"nested-exit", 4, "mode nested-exit\n"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			out, code, err := runProg(t, "exit", Config{Args: []string{"js", tc.mode}}, time.Minute)
			if err != nil || code != tc.code {
				t.Fatalf("code %d err %v, want code %d", code, err, tc.code)
			}
			if out.stdout.String() != tc.out {
				t.Errorf("stdout %q, want %q", out.stdout.String(), tc.out)
			}
		})
	}
}

func TestGuestFS(t *testing.T) {
	out, code, err := runProg(t, "exit", Config{Args: []string{"js", "fs"}}, time.Minute)
	if err != nil || code != 0 {
		t.Fatalf("code %d err %v\n%s", code, err, out.stderr.String())
	}
	want := "mode fs\n" +
		"read: open /etc/hostname: not implemented on js\n" +
		"write: open /tmp/x: not implemented on js\n" +
		"stat: stat /: not implemented on js\n" +
		"pid: -1\n" +
		"end fs\n"
	if got := out.stdout.String(); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
}

func TestGuestPanic(t *testing.T) {
	for mode, msg := range map[string]string{
		"panic":     "panic: assignment to entry in nil map",
		"panic-msg": "panic: boom from guest",
	} {
		t.Run(mode, func(t *testing.T) {
			_, code, err := runProg(t, "exit", Config{Args: []string{"js", mode}}, time.Minute)
			var pe *PanicError
			if code != 2 || !errors.As(err, &pe) || !errors.Is(err, ErrGuestPanic) {
				t.Fatalf("code %d err %v: want 2 and a PanicError", code, err)
			}
			if !strings.Contains(pe.Stderr, msg) || !strings.Contains(pe.Stderr, "goroutine 1 [running]") {
				t.Errorf("stderr %q lacks %q", pe.Stderr, msg)
			}
			if !strings.Contains(err.Error(), msg) {
				t.Errorf("error %q lacks %q", err, msg)
			}
			if errors.Is(err, ErrDeadlock) {
				t.Error("a panic is not a deadlock")
			}
		})
	}
}

func TestDeadlock(t *testing.T) {
	start := time.Now()
	_, code, err := runProg(t, "exit", Config{Args: []string{"js", "deadlock"}}, time.Minute)
	if !errors.Is(err, ErrDeadlock) || code != 2 {
		t.Fatalf("code %d err %v: want ErrDeadlock", code, err)
	}
	if !strings.Contains(err.Error(), "all goroutines are asleep") {
		t.Errorf("error %q lacks the guest's deadlock message", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("deadlock took %v to report", d)
	}
}

func TestVirtualClock(t *testing.T) {
	start := time.Now()
	out, code, err := runProg(t, "exit", Config{Args: []string{"js", "sleep"}, VirtualClock: true}, time.Minute)
	if err != nil || code != 0 {
		t.Fatalf("code %d err %v", code, err)
	}
	if !strings.Contains(out.stdout.String(), "woke after an hour\n") {
		t.Errorf("stdout %q", out.stdout.String())
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("virtual hour took %v", d)
	}
}

func TestCancelWhileIdle(t *testing.T) {
	rt, _ := newRuntime(t, "exit", Config{Args: []string{"js", "sleep"}})
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := rt.Wait(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancel took %v", d)
	}
	// The guest was only waiting: it is still usable.
	if exited, _ := rt.Exited(); exited || rt.stateErr() != nil {
		t.Errorf("runtime unusable after idle cancel: %v", rt.stateErr())
	}
}

func TestCancelBusyGuest(t *testing.T) {
	rt, _ := newRuntime(t, "exit", Config{Args: []string{"js", "spin"}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := rt.Run(ctx)
	if !errors.Is(err, ErrClosed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrClosed and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("cancel took %v", d)
	}
	if _, err := rt.Call(context.Background(), NewFunc("f", func(Value, []Value) (Value, error) { return 1, nil }), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call after abort: %v, want ErrClosed", err)
	}
}

var errHostSentinel = errors.New("host sentinel")

func TestServerAPI(t *testing.T) {
	rt, out := newRuntime(t, "server", Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := out.stdout.String(); got != "server ready\n" {
		t.Fatalf("after Start stdout %q", got)
	}
	g := rt.Global()

	t.Run("call", func(t *testing.T) {
		v, err := rt.Call(ctx, g.Get("add"), nil, 2, 3.5)
		if err != nil || v != 5.5 {
			t.Fatalf("add: %v %v", v, err)
		}
	})
	t.Run("await guest promise", func(t *testing.T) {
		p, err := rt.Call(ctx, g.Get("asyncDouble"), nil, 21)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.(*Promise); !ok {
			t.Fatalf("asyncDouble returned %T", p)
		}
		v, err := rt.Await(ctx, p)
		if err != nil || v != float64(42) {
			t.Fatalf("await: %v %v", v, err)
		}
		p, _ = rt.Call(ctx, g.Get("asyncDouble"), nil, -1)
		_, err = rt.Await(ctx, p)
		var exc *Exception
		if !errors.As(err, &exc) || ToString(GetProperty(exc.Value, "message")) != "negative" {
			t.Fatalf("rejection: %v", err)
		}
	})
	t.Run("host work completing while the loop looks is never a deadlock", func(t *testing.T) {
		// Async's complete posts, then releases its count: a loop that saw
		// no post and then a zero count must look again (it once reported
		// a deadlock here, about one await in thousands under load).
		for i := 0; i < 20000; i++ {
			v, err := rt.Await(ctx, rt.Go(func() (Value, error) { return float64(i), nil }))
			if err != nil || v != float64(i) {
				t.Fatalf("await %d: %v %v", i, v, err)
			}
		}
	})
	t.Run("guest awaits host work", func(t *testing.T) {
		hp := rt.Go(func() (Value, error) { time.Sleep(10 * time.Millisecond); return "hi", nil })
		p, err := rt.Call(ctx, g.Get("awaitHost"), nil, hp)
		if err != nil {
			t.Fatal(err)
		}
		v, err := rt.Await(ctx, p)
		if err != nil || v != "hi!" {
			t.Fatalf("await: %v %v", v, err)
		}
		hp = rt.Go(func() (Value, error) { return nil, fmt.Errorf("download: %w", errHostSentinel) })
		p, _ = rt.Call(ctx, g.Get("awaitHost"), nil, hp)
		_, err = rt.Await(ctx, p)
		if !errors.Is(err, errHostSentinel) {
			t.Fatalf("host error through guest: %v", err)
		}
	})
	t.Run("async completion from another goroutine", func(t *testing.T) {
		p, resolve, _ := rt.NewPromise()
		complete := rt.Async()
		go func() {
			time.Sleep(5 * time.Millisecond)
			complete(func() { resolve("posted") })
		}()
		v, err := rt.Await(ctx, p)
		if err != nil || v != "posted" {
			t.Fatalf("%v %v", v, err)
		}
	})
	t.Run("reentrant host function", func(t *testing.T) {
		depth := 0
		hf := NewFunc("hf", func(_ Value, args []Value) (Value, error) {
			depth++
			return rt.Invoke(args[0], nil, args[1])
		})
		v, err := rt.Call(ctx, g.Get("callHost"), nil, hf, 41)
		if err != nil || v != float64(42) || depth != 1 {
			t.Fatalf("%v %v depth %d", v, err, depth)
		}
	})
	t.Run("typed arrays", func(t *testing.T) {
		f := []float32{1, 2, 3}
		v, err := rt.Call(ctx, g.Get("scale"), nil, NewFloat32Array(f), 2)
		if err != nil || v != float64(3) {
			t.Fatalf("%v %v", v, err)
		}
		if f[0] != 2 || f[1] != 4 || f[2] != 6 {
			t.Errorf("scaled in place: %v", f)
		}
		v, err = rt.Call(ctx, g.Get("reverse"), nil, NewUint8Array([]byte("abcdef")))
		ta, ok := v.(*TypedArray)
		if err != nil || !ok || string(ta.Bytes()) != "fedcba" {
			t.Fatalf("reverse: %v %v", v, err)
		}
	})
	t.Run("host error becomes js exception", func(t *testing.T) {
		bad := NewFunc("bad", func(Value, []Value) (Value, error) { return nil, errors.New("host says no") })
		out.stdout.Reset()
		if _, err := rt.Call(ctx, g.Get("throwing"), nil, bad); err != nil {
			t.Fatal(err)
		}
		if got := out.stdout.String(); got != "guest caught: host says no\n" {
			t.Errorf("stdout %q", got)
		}
	})
	t.Run("host timers", func(t *testing.T) {
		var order []string
		rt.Post(func() {
			rt.SetTimeout(func() { order = append(order, "go 10ms") }, 10*time.Millisecond)
			cb := NewFunc("cb", func(_ Value, a []Value) (Value, error) { order = append(order, "js "+ToString(a[0])); return nil, nil })
			if _, err := rt.Invoke(g.Get("setTimeout"), nil, cb, 1, "1ms"); err != nil {
				t.Error(err)
			}
			id := rt.SetTimeout(func() { order = append(order, "cleared") }, time.Millisecond)
			rt.ClearTimeout(id)
		})
		start := time.Now()
		if err := rt.Poll(ctx, func() bool { return len(order) == 2 }); err != nil {
			t.Fatal(err)
		}
		if order[0] != "js 1ms" || order[1] != "go 10ms" || time.Since(start) < 10*time.Millisecond {
			t.Errorf("timers %v after %v", order, time.Since(start))
		}
	})
	t.Run("host panic becomes js exception", func(t *testing.T) {
		boom := NewFunc("boom", func(Value, []Value) (Value, error) { panic("kernel misuse") })
		out.stdout.Reset()
		if _, err := rt.Call(ctx, g.Get("throwing"), nil, boom); err != nil {
			t.Fatal(err)
		}
		if got := out.stdout.String(); got != "guest caught: gojs: host function boom panicked: kernel misuse\n" {
			t.Errorf("stdout %q", got)
		}
		_, err := rt.Call(ctx, boom, nil)
		var hp *HostPanicError
		if !errors.As(err, &hp) || hp.Value != "kernel misuse" || len(hp.Stack) == 0 {
			t.Errorf("direct call: %v", err)
		}
		if v, err := rt.Call(ctx, g.Get("add"), nil, 1, 2); err != nil || v != float64(3) {
			t.Errorf("guest unusable after host panic: %v %v", v, err)
		}
	})
	t.Run("await cancellation and deadlock", func(t *testing.T) {
		p, _, _ := rt.NewPromise()
		complete := rt.Async() // keeps the loop waiting rather than deadlocked
		cctx, ccancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer ccancel()
		if _, err := rt.Await(cctx, p); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("await with cancelled ctx: %v", err)
		}
		complete(func() {})
		if _, err := rt.Await(ctx, p); !errors.Is(err, ErrDeadlock) {
			t.Fatalf("await of a promise nothing can settle: %v", err)
		}
		if v, err := rt.Call(ctx, g.Get("add"), nil, 1, 1); err != nil || v != float64(2) {
			t.Fatalf("guest unusable after deadlock report: %v %v", v, err)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		out.stdout.Reset()
		// main returns within this call, so the call reports the exit.
		if _, err := rt.Call(ctx, g.Get("gojsShutdown"), nil, 7); !errors.Is(err, ErrExited) {
			t.Fatalf("shutdown call: %v, want ErrExited", err)
		}
		code, err := rt.Wait(ctx)
		if err != nil || code != 0 {
			t.Fatalf("code %d err %v", code, err)
		}
		if got := out.stdout.String(); got != "server stopping 7\n" {
			t.Errorf("stdout %q", got)
		}
		if _, err := rt.Call(ctx, g.Get("add"), nil, 1, 1); !errors.Is(err, ErrExited) {
			t.Errorf("call after exit: %v", err)
		}
	})
}

func TestPanicInCallback(t *testing.T) {
	rt, _ := newRuntime(t, "server", Config{})
	ctx := context.Background()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := rt.Call(ctx, rt.Global().Get("panicNow"), nil)
	var pe *PanicError
	if !errors.As(err, &pe) || !strings.Contains(pe.Stderr, "guest panic in callback") {
		t.Fatalf("err %v", err)
	}
	if _, err := rt.Call(ctx, rt.Global().Get("add"), nil, 1, 2); !errors.Is(err, ErrExited) {
		t.Errorf("after panic: %v", err)
	}
}

// TestNodeParity runs the same binaries under Node's wasm_exec and compares
// stdout and exit codes with the wazero host.
func TestNodeParity(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	out, err := exec.Command(goTool(t), "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	execJS := filepath.Join(strings.TrimSpace(string(out)), "lib", "wasm", "wasm_exec_node.js")
	for _, tc := range []struct {
		prog string
		args []string
	}{
		{"hello", nil},
		{"jsvalues", nil},
		{"exit", []string{"ok"}},
		{"exit", []string{"exit3"}},
		{"exit", []string{"nested-exit"}},
		{"exit", []string{"panic-msg"}},
		{"exit", []string{"deadlock"}},
	} {
		t.Run(tc.prog+strings.Join(tc.args, "_"), func(t *testing.T) {
			path, _ := buildProg(t, tc.prog)
			cmd := exec.Command(node, append([]string{"--stack-size=8192", execJS, path}, tc.args...)...)
			cmd.Env = append(os.Environ(), "GOJS_TEST=parity")
			var nodeOut, nodeErr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &nodeOut, &nodeErr
			nodeCode := 0
			if err := cmd.Run(); err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatal(err)
				}
				nodeCode = ee.ExitCode()
			}
			wout, code, _ := runProg(t, tc.prog, Config{Args: append([]string{"js"}, tc.args...),
				Env: map[string]string{"GOJS_TEST": "parity"}}, time.Minute)
			if code != nodeCode {
				t.Errorf("exit code: wazero %d, node %d", code, nodeCode)
			}
			if wout.stdout.String() != nodeOut.String() {
				t.Errorf("stdout differs\nwazero:\n%s\nnode:\n%s", wout.stdout.String(), nodeOut.String())
			}
			if nodeCode == 2 && firstLine(wout.stderr.String()) != firstLine(nodeErr.String()) {
				t.Errorf("panic line: wazero %q, node %q", firstLine(wout.stderr.String()), firstLine(nodeErr.String()))
			}
		})
	}
}

func TestConcurrentCallers(t *testing.T) {
	rt, _ := newRuntime(t, "server", Config{})
	ctx := context.Background()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	add := rt.Global().Get("add") // read before the goroutines: the global is loop-owned
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				v, err := rt.Call(ctx, add, nil, g, i)
				if err == nil && v != float64(g+i) {
					err = fmt.Errorf("add(%d, %d) = %v", g, i, v)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCloseStopsBusyGuest(t *testing.T) {
	rt, _ := newRuntime(t, "exit", Config{Args: []string{"js", "spin"}})
	go func() {
		time.Sleep(200 * time.Millisecond)
		rt.Close(context.Background())
	}()
	start := time.Now()
	_, err := rt.Run(context.Background())
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("err %v, want ErrClosed", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("close took %v", d)
	}
}

// noCloseConfig is the fast wazero configuration the imgembed host uses:
// no termination checks in compiled code.
func noCloseConfig() wazero.RuntimeConfig {
	return wazero.NewRuntimeConfig().WithCloseOnContextDone(false).WithCompilationCache(sharedCache())
}

// Without WithCloseOnContextDone, a cancelled context still stops a busy
// guest at its next import call, and the runtime then refuses calls.
func TestCancelBusyGuestAtImport(t *testing.T) {
	rt, _ := newRuntime(t, "exit", Config{Args: []string{"js", "spin-clock"}, RuntimeConfig: noCloseConfig()})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := rt.Run(ctx)
	if !errors.Is(err, ErrClosed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrClosed and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("cancel took %v", d)
	}
	if _, err := rt.Call(context.Background(), NewFunc("f", func(Value, []Value) (Value, error) { return 1, nil }), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call after abort: %v, want ErrClosed", err)
	}
}

// Close from another goroutine stops a busy guest at its next import call.
func TestCloseBusyGuestAtImport(t *testing.T) {
	rt, _ := newRuntime(t, "exit", Config{Args: []string{"js", "spin-clock"}, RuntimeConfig: noCloseConfig()})
	time.AfterFunc(200*time.Millisecond, func() { rt.Close(context.Background()) })
	start := time.Now()
	_, err := rt.Run(context.Background())
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("err %v, want ErrClosed", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("close took %v", d)
	}
}

// A context that ended while the runtime was idle does not poison the
// next call with a fresh context (the stop flag is per loop method).
func TestStopFlagResetsPerCall(t *testing.T) {
	rt, _ := newRuntime(t, "server", Config{RuntimeConfig: noCloseConfig()})
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	add := rt.Global().Get("add")
	if v, err := rt.Call(ctx, add, nil, 1, 2); err != nil || v != float64(3) {
		t.Fatal(v, err)
	}
	cancel()
	if v, err := rt.Call(context.Background(), add, nil, 2, 2); err != nil || v != float64(4) {
		t.Fatalf("after an idle cancel: %v %v", v, err)
	}
}
