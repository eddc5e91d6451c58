// Command jsvalues exercises syscall/js against the host's JS realm and
// prints deterministic results, so that its stdout can be compared between
// Node and the wazero host. Hooks named gojsReport are called only when the
// host defines them.
package main

import (
	"fmt"
	"runtime"
	"syscall/js"
	"time"
)

var global = js.Global()

// report lets the wazero test host inspect its value table at a phase.
func report(phase string, vals ...any) {
	if r := global.Get("gojsReport"); r.Type() == js.TypeFunction {
		r.Invoke(append([]any{phase}, vals...)...)
	}
}

func main() {
	values()
	refs()
	reentrant()
	promises()
	timers()
	typedArrays()
	detaching()
	fmt.Println("done")
}

func values() {
	fmt.Println("unknown global undefined:", global.Get("noSuchGlobal").IsUndefined())
	fmt.Println("unknown property undefined:", global.Get("fs").Get("noSuchProperty").IsUndefined())
	fmt.Println("typeof Object:", global.Get("Object").Type())
	o := global.Get("Object").New()
	o.Set("a", 1.5)
	o.Set("s", "str")
	o.Set("b", true)
	o.Set("n", nil)
	fmt.Println("get:", o.Get("a").Float(), o.Get("s").String(), o.Get("b").Bool(), o.Get("n").IsNull(), o.Get("zz").IsUndefined())
	o.Delete("a")
	fmt.Println("deleted:", o.Get("a").IsUndefined())
	fmt.Println("string roundtrip:", js.ValueOf("héllo😀").String())
	fmt.Println("number string:", js.ValueOf([]any{0.1, 1e21, -2.5e-7, 42, 123456789012, 1.5e300, nil, true}).Call("join", " ").String())
	a := js.ValueOf([]any{1, "two", []any{3.0}, map[string]any{"k": "v"}})
	fmt.Println("array:", a.Length(), a.Index(1).String(), a.Index(2).Index(0).Int(), a.Index(3).Get("k").String())
	fmt.Println("instanceof Array:", a.InstanceOf(global.Get("Array")), "instanceof Object:", a.InstanceOf(global.Get("Object")))
	fmt.Println("equal same value:", global.Get("Object").Equal(global.Get("Object")), js.ValueOf("x").Equal(js.ValueOf("x")))
	fmt.Println("nan:", js.ValueOf(js.ValueOf(0.0).Float()/js.ValueOf(0.0).Float()).IsNaN(), "zero:", js.ValueOf(0).Int())
	err := js.Global().Get("Error").New("bad thing")
	fmt.Println("error:", err.Get("message").String(), err.InstanceOf(global.Get("Error")))
	str := global.Get("String")
	fmt.Println("String():", str.Invoke(err).String(), str.Invoke(o).String(), str.Invoke(js.Null()).String(),
		str.Invoke(js.ValueOf([]any{1, []any{2, 3}})).String(), global.Get("Number").Invoke("42").Int())
	func() {
		defer func() { fmt.Println("calling a non-function recovered:", recover() != nil) }()
		o.Call("noSuchMethod")
	}()
	fmt.Println("date offset is a number:", global.Get("Date").New().Call("getTimezoneOffset").Type() == js.TypeNumber)
	fmt.Println("performance.now >= 0:", global.Get("performance").Call("now").Float() >= 0)
	enc := global.Get("TextEncoder").New().Call("encode", "añb")
	fmt.Println("TextEncoder:", enc.Length(), global.Get("TextDecoder").New().Call("decode", enc).String())
}

func refs() {
	kept := global.Get("Object").New()
	global.Set("kept", kept)
	k1, k2 := global.Get("kept"), global.Get("kept")
	fmt.Println("same object equal:", k1.Equal(k2))
	report("refs-before", kept)
	for i := 0; i < 2000; i++ {
		s := js.ValueOf(fmt.Sprint("temporary string ", i))
		_ = s.Type()
	}
	report("refs-allocated")
	for i := 0; i < 5; i++ {
		runtime.GC()
		time.Sleep(time.Millisecond) // let the finalizer goroutine run
	}
	report("refs-after-gc", kept)
	fmt.Println("kept still usable:", global.Get("kept").Equal(kept))
}

func reentrant() {
	// Go -> JS -> Go -> JS ...: fib through js.FuncOf wrappers.
	var fib js.Func
	fib = js.FuncOf(func(this js.Value, args []js.Value) any {
		n := args[0].Int()
		if n < 2 {
			return n
		}
		return fib.Invoke(n-1).Int() + fib.Invoke(n-2).Int()
	})
	defer fib.Release()
	fmt.Println("fib(12) via callbacks:", fib.Invoke(12).Int())
	// A deep chain grows the goroutine stack during host calls (sp moves).
	var deep js.Func
	deep = js.FuncOf(func(this js.Value, args []js.Value) any {
		n := args[0].Int()
		var pad [256]byte
		pad[n%256] = byte(n)
		if n == 0 {
			return 0
		}
		return deep.Invoke(n-1).Int() + 1 + int(pad[n%256]) - n%256
	})
	defer deep.Release()
	fmt.Println("deep recursion:", deep.Invoke(200).Int())
	// this and args reach the callback.
	obj := global.Get("Object").New()
	m := js.FuncOf(func(this js.Value, args []js.Value) any {
		return this.Get("tag").String() + ":" + fmt.Sprint(len(args))
	})
	defer m.Release()
	obj.Set("tag", "T")
	obj.Set("m", m)
	fmt.Println("method this:", obj.Call("m", 1, 2, 3).String())
}

func await(p js.Value) (js.Value, bool) {
	type res struct {
		v  js.Value
		ok bool
	}
	ch := make(chan res, 1)
	then := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- res{a[0], true}; return nil })
	catch := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- res{a[0], false}; return nil })
	defer then.Release()
	defer catch.Release()
	p.Call("then", then, catch)
	r := <-ch
	return r.v, r.ok
}

func promises() {
	P := global.Get("Promise")
	double := js.FuncOf(func(_ js.Value, a []js.Value) any { return a[0].Int() * 2 })
	defer double.Release()
	v, ok := await(P.Call("resolve", 5).Call("then", double).Call("then", double))
	fmt.Println("then chain:", v.Int(), ok)
	exec := js.FuncOf(func(_ js.Value, a []js.Value) any {
		resolve := a[0]
		go func() {
			time.Sleep(5 * time.Millisecond)
			resolve.Invoke("later")
		}()
		return nil
	})
	defer exec.Release()
	v, ok = await(P.New(exec))
	fmt.Println("new Promise resolved from goroutine:", v.String(), ok)
	thrower := js.FuncOf(func(_ js.Value, a []js.Value) any {
		return P.Call("reject", global.Get("Error").New("nope"))
	})
	defer thrower.Release()
	v, ok = await(P.Call("resolve", 1).Call("then", thrower))
	fmt.Println("rejected:", v.Get("message").String(), ok)
	order := []string{}
	fin := js.FuncOf(func(_ js.Value, a []js.Value) any { order = append(order, "finally"); return nil })
	defer fin.Release()
	v, ok = await(P.Call("reject", "r").Call("finally", fin))
	fmt.Println("finally keeps rejection:", v.String(), ok, order)
	all := P.Call("all", js.ValueOf([]any{P.Call("resolve", 1), 2, P.Call("resolve", 3)}))
	v, ok = await(all)
	fmt.Println("all:", v.Length(), v.Index(0).Int(), v.Index(1).Int(), v.Index(2).Int(), ok)
	// Microtask order: then callbacks run after the current call returns.
	seq := []string{}
	mark := js.FuncOf(func(_ js.Value, a []js.Value) any { seq = append(seq, a[0].String()); return nil })
	defer mark.Release()
	p := P.Call("resolve", "micro")
	p.Call("then", mark)
	seq = append(seq, "sync")
	time.Sleep(time.Millisecond)
	fmt.Println("microtask order:", seq)
}

func timers() {
	start := time.Now()
	time.Sleep(20 * time.Millisecond)
	fmt.Println("slept at least 20ms:", time.Since(start) >= 20*time.Millisecond)
	select {
	case <-time.After(10 * time.Millisecond):
		fmt.Println("time.After fired")
	}
	t := time.NewTimer(time.Hour)
	fmt.Println("timer stopped:", t.Stop())
	tick := time.NewTicker(2 * time.Millisecond)
	n := 0
	for range tick.C {
		n++
		if n == 3 {
			break
		}
	}
	tick.Stop()
	fmt.Println("ticks:", n)
	done := make(chan int)
	for i := 0; i < 3; i++ {
		go func(i int) {
			time.Sleep(time.Duration(3-i) * 3 * time.Millisecond)
			done <- i
		}(i)
	}
	fmt.Println("goroutine wakeups:", <-done, <-done, <-done)
}

func typedArrays() {
	u8 := global.Get("Uint8Array").New(8)
	n := js.CopyBytesToJS(u8, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	fmt.Println("copyBytesToJS:", n, u8.Length(), u8.Index(7).Int())
	sub := u8.Call("subarray", 2, 5)
	fmt.Println("subarray:", sub.Length(), sub.Get("byteOffset").Int(), sub.Index(0).Int(), sub.Get("buffer").Get("byteLength").Int())
	sub.SetIndex(0, 300)
	fmt.Println("wrap 300 -> ", u8.Index(2).Int())
	dst := make([]byte, 4)
	n = js.CopyBytesToGo(dst, sub)
	fmt.Println("copyBytesToGo:", n, dst)
	f32 := global.Get("Float32Array").New(u8.Get("buffer"), 0, 2)
	f32.SetIndex(1, 0.1)
	fmt.Println("float32:", f32.Length(), f32.Index(1).Float() == float64(float32(0.1)), f32.Get("byteLength").Int())
	back := global.Get("Uint8Array").New(f32.Get("buffer"), 4, 4)
	b := make([]byte, 4)
	js.CopyBytesToGo(b, back)
	fmt.Println("float32 bytes:", b)
	c := global.Get("Uint8Array").New(4)
	c.Call("set", js.ValueOf([]any{9, 8}), 1)
	fmt.Println("set:", c.Index(0).Int(), c.Index(1).Int(), c.Index(2).Int())
	ab := global.Get("ArrayBuffer").New(16)
	i32 := global.Get("Int32Array").New(ab)
	i32.SetIndex(0, -5)
	fmt.Println("Int32Array:", i32.Length(), i32.Index(0).Int(), i32.InstanceOf(global.Get("Int32Array")), i32.InstanceOf(global.Get("Float32Array")))
	func() {
		defer func() { fmt.Println("CopyBytesToGo on Float32Array panics:", recover() != nil) }()
		js.CopyBytesToGo(b, f32)
	}()
}

// thrownName runs f and returns the name of the JS error it throws, or "".
func thrownName(f func()) (name string) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(js.Error); ok {
				name = e.Get("name").String()
			} else {
				name = fmt.Sprint(r)
			}
		}
	}()
	f()
	return ""
}

// detaching frees buffers the way the imgembed module does (wasm/API.md,
// "Memory ownership"): structuredClone with a transfer list (Node 20 has no
// ArrayBuffer.prototype.transfer, so parity covers this path).
func detaching() {
	sc := global.Get("structuredClone")
	transfer := func(bufs ...any) js.Value {
		o := global.Get("Object").New()
		o.Set("transfer", bufs)
		return o
	}
	u8 := global.Get("Uint8Array").New(1024)
	buf := u8.Get("buffer")
	f32 := global.Get("Float32Array").New(buf, 8, 4)
	r := sc.Invoke(js.Undefined(), transfer(buf))
	fmt.Println("structuredClone detaches:", r.IsUndefined(), buf.Get("byteLength").Int(), u8.Length(),
		f32.Length(), f32.Get("byteLength").Int(), f32.Get("byteOffset").Int(), u8.Index(0).IsUndefined())
	fmt.Println("detached errors:",
		thrownName(func() { sc.Invoke(js.Undefined(), transfer(buf)) }),
		thrownName(func() { global.Get("Uint8Array").New(buf) }))

	b := global.Get("ArrayBuffer").New(8)
	global.Get("Uint8Array").New(b).SetIndex(3, 7)
	moved := sc.Invoke(b, transfer(b))
	fmt.Println("structuredClone moves:", moved.Get("byteLength").Int(), global.Get("Uint8Array").New(moved).Index(3).Int(),
		b.Get("byteLength").Int())
	c := global.Get("ArrayBuffer").New(4)
	fmt.Println("duplicate transfer:", thrownName(func() { sc.Invoke(js.Undefined(), transfer(c, c)) }), c.Get("byteLength").Int())
}
