package gojs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

func startServer(b *testing.B) *Runtime {
	b.Helper()
	rt, _ := newRuntime(b, "server", Config{})
	if err := rt.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	return rt
}

// BenchmarkCallGuest: one host -> guest js.FuncOf call and back.
func BenchmarkCallGuest(b *testing.B) {
	rt := startServer(b)
	// A cancellable context, as embedders use.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	add := rt.Global().Get("add")
	b.ResetTimer()
	for range b.N {
		if v, err := rt.Call(ctx, add, nil, 1, 2); err != nil || v != float64(3) {
			b.Fatal(v, err)
		}
	}
}

// BenchmarkAwaitGuestPromise: a guest call returning a resolved Promise,
// awaited from Go (microtasks included).
func BenchmarkAwaitGuestPromise(b *testing.B) {
	rt := startServer(b)
	ctx := context.Background()
	fn := rt.Global().Get("resolved")
	b.ResetTimer()
	for range b.N {
		p, err := rt.Call(ctx, fn, nil, 5)
		if err != nil {
			b.Fatal(err)
		}
		if v, err := rt.Await(ctx, p); err != nil || v != float64(5) {
			b.Fatal(v, err)
		}
	}
}

// BenchmarkGuestValueGet: js.Value.Get from the guest (valueGet import,
// including the getsp re-read); ns/op is per Get.
func BenchmarkGuestValueGet(b *testing.B) {
	rt := startServer(b)
	ctx := context.Background()
	obj := NewObject(map[string]Value{"x": 1})
	b.ResetTimer()
	if v, err := rt.Call(ctx, rt.Global().Get("getLoop"), nil, obj, b.N); err != nil || v != float64(b.N) {
		b.Fatal(v, err)
	}
}

// BenchmarkCopyBytesToGo: 1 MiB through js.CopyBytesToGo per op.
func BenchmarkCopyBytesToGo(b *testing.B) {
	rt := startServer(b)
	ctx := context.Background()
	u8 := NewUint8Array(make([]byte, 1<<20))
	fn := rt.Global().Get("copyIn")
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for range b.N {
		if _, err := rt.Call(ctx, fn, nil, u8); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCloseOnContextDone runs the same loop-heavy guest code (testdata
// exit "work": byte loops, calls, a sort; no host calls) with wazero's
// WithCloseOnContextDone on and off: the price of its termination checks.
func BenchmarkCloseOnContextDone(b *testing.B) {
	for _, on := range []bool{true, false} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			rc := wazero.NewRuntimeConfig().WithCloseOnContextDone(on).WithCompilationCache(sharedCache())
			for range b.N {
				b.StopTimer()
				rt, out := newRuntime(b, "exit", Config{Args: []string{"js", "work"}, RuntimeConfig: rc})
				b.StartTimer()
				if code, err := rt.Run(context.Background()); err != nil || code != 0 {
					b.Fatal(code, err)
				}
				b.StopTimer()
				if !strings.Contains(out.stdout.String(), "work ") {
					b.Fatalf("stdout %q", out.stdout.String())
				}
				rt.Close(context.Background())
				b.StartTimer()
			}
		})
	}
}

// TestMeasureGuest: GuestTime counts the guest's own code and not the
// host's import functions: a guest loop whose every Get takes the host 2 ms
// accounts far less than the 40 ms the host spent; a loop of cheap Gets
// accounts part of the call's wall time; nothing is counted while off.
func TestMeasureGuest(t *testing.T) {
	rt, _ := newRuntime(t, "server", Config{RuntimeConfig: noCloseConfig()})
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	loop := rt.Global().Get("getLoop")
	slow := NewObject(nil)
	slow.Dynamic = func(name string) (Value, bool) {
		if name != "x" {
			return nil, false
		}
		time.Sleep(2 * time.Millisecond)
		return 1, true
	}
	if _, err := rt.Call(ctx, loop, nil, slow, 5); err != nil || rt.GuestTime() != 0 {
		t.Fatalf("off: %v, guest time %v", err, rt.GuestTime())
	}
	rt.MeasureGuest(true)
	start := time.Now()
	if v, err := rt.Call(ctx, loop, nil, slow, 20); err != nil || v != float64(20) {
		t.Fatal(v, err)
	}
	wall := time.Since(start)
	g := rt.GuestTime()
	// o.Get("x") is one valueGet per iteration.
	if n := rt.ImportCalls()["syscall/js.valueGet"]; n < 20 || n > 40 {
		t.Fatalf("20 o.Get calls counted as %d valueGet imports (all: %v)", n, rt.ImportCalls())
	}
	if wall < 40*time.Millisecond || g <= 0 || g > wall/4 {
		t.Fatalf("host-bound loop: guest %v of %v wall, want > 0 and well under the host's 40 ms", g, wall)
	}
	fast := NewObject(map[string]Value{"x": 1})
	start = time.Now()
	if v, err := rt.Call(ctx, loop, nil, fast, 200000); err != nil || v != float64(200000) {
		t.Fatal(v, err)
	}
	wall = time.Since(start)
	if d := rt.GuestTime() - g; d <= 0 || d > wall {
		t.Fatalf("guest-bound loop: guest %v of %v wall", d, wall)
	}
	rt.MeasureGuest(false)
	g = rt.GuestTime()
	rt.Call(ctx, loop, nil, fast, 1000)
	if rt.GuestTime() != g {
		t.Fatal("counted while off")
	}
	if n := rt.ImportCalls()["syscall/js.valueGet"]; n < 200020 || n > 200040 {
		t.Fatalf("valueGet imports %d, want 200020 (+ a few), none while off", n)
	}
}
