package gojs

import (
	"context"
	"strings"
	"testing"

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
