// Command server registers functions on globalThis for the host to call
// and waits until the host calls gojsShutdown, like the embedding module.
package main

import (
	"fmt"
	"syscall/js"
	"time"
)

func main() {
	g := js.Global()
	stop := make(chan int)
	fns := map[string]func(this js.Value, args []js.Value) any{
		"add": func(_ js.Value, a []js.Value) any { return a[0].Float() + a[1].Float() },
		// asyncDouble returns a Promise resolved later from a goroutine.
		"asyncDouble": func(_ js.Value, a []js.Value) any {
			x := a[0].Float()
			var exec js.Func
			exec = js.FuncOf(func(_ js.Value, pa []js.Value) any {
				resolve, reject := pa[0], pa[1]
				go func() {
					defer exec.Release()
					time.Sleep(2 * time.Millisecond)
					if x < 0 {
						reject.Invoke(g.Get("Error").New("negative"))
						return
					}
					resolve.Invoke(x * 2)
				}()
				return nil
			})
			return g.Get("Promise").New(exec)
		},
		// awaitHost awaits a host promise and returns a promise of its value + "!".
		"awaitHost": func(_ js.Value, a []js.Value) any {
			p := a[0]
			var exec js.Func
			exec = js.FuncOf(func(_ js.Value, pa []js.Value) any {
				resolve, reject := pa[0], pa[1]
				var then, catch js.Func
				then = js.FuncOf(func(_ js.Value, r []js.Value) any {
					resolve.Invoke(r[0].String() + "!")
					then.Release()
					catch.Release()
					exec.Release()
					return nil
				})
				catch = js.FuncOf(func(_ js.Value, r []js.Value) any {
					reject.Invoke(r[0])
					return nil
				})
				p.Call("then", then, catch)
				return nil
			})
			return g.Get("Promise").New(exec)
		},
		// callHost calls a host function with a callback (re-entrancy from the host side).
		"callHost": func(_ js.Value, a []js.Value) any {
			cb := js.FuncOf(func(_ js.Value, b []js.Value) any { return b[0].Int() + 1 })
			defer cb.Release()
			return a[0].Invoke(cb, a[1])
		},
		// scale multiplies a Float32Array in place through index access.
		"scale": func(_ js.Value, a []js.Value) any {
			arr, k := a[0], a[1].Float()
			for i := 0; i < arr.Length(); i++ {
				arr.SetIndex(i, arr.Index(i).Float()*k)
			}
			return arr.Length()
		},
		// bytes copies a Uint8Array into Go and back, reversed.
		"reverse": func(_ js.Value, a []js.Value) any {
			b := make([]byte, a[0].Length())
			js.CopyBytesToGo(b, a[0])
			for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
				b[i], b[j] = b[j], b[i]
			}
			out := g.Get("Uint8Array").New(len(b))
			js.CopyBytesToJS(out, b)
			return out
		},
		"throwing": func(_ js.Value, a []js.Value) any {
			// A host function that returns an error: recover the js.Error.
			defer func() {
				if r := recover(); r != nil {
					if e, ok := r.(js.Error); ok {
						fmt.Println("guest caught:", e.Get("message").String())
					}
				}
			}()
			a[0].Invoke()
			return "no throw"
		},
		// getLoop, copyIn and resolved are for the benchmarks.
		"getLoop": func(_ js.Value, a []js.Value) any {
			o, n, sum := a[0], a[1].Int(), 0.0
			for i := 0; i < n; i++ {
				sum += o.Get("x").Float()
			}
			return sum
		},
		"copyIn": func(_ js.Value, a []js.Value) any {
			b := make([]byte, a[0].Length())
			return js.CopyBytesToGo(b, a[0])
		},
		"resolved":     func(_ js.Value, a []js.Value) any { return g.Get("Promise").Call("resolve", a[0]) },
		"panicNow":     func(_ js.Value, a []js.Value) any { panic("guest panic in callback") },
		"gojsShutdown": func(_ js.Value, a []js.Value) any { stop <- a[0].Int(); return nil },
	}
	for name, fn := range fns {
		g.Set(name, js.FuncOf(fn))
	}
	fmt.Println("server ready")
	code := <-stop
	fmt.Println("server stopping", code)
}
