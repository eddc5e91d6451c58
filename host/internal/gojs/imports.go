package gojs

import (
	"errors"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// imports are the `gojs` module functions (wasm_exec.js, Go 1.26). Each takes
// the guest stack pointer; arguments start at sp+8. Results written after a
// call that may have run Go code re-read sp from getsp(), because the
// goroutine stack may have moved.
var imports = map[string]func(rt *Runtime, sp uint32){
	"runtime.wasmExit": func(rt *Runtime, sp uint32) {
		rt.exited = true
		rt.code = int(int32(rt.u32(sp + 8)))
		// Unwind every guest frame, also of outer nested calls, to the
		// outermost host entry, which reports the exit.
		panic(&abortError{errExit})
	},
	"runtime.wasmWrite": func(rt *Runtime, sp uint32) {
		fd := rt.i64(sp + 8)
		p := uint32(rt.i64(sp + 16))
		n := rt.u32(sp + 24)
		b := append([]byte(nil), rt.read(p, n)...)
		_, _ = rt.writeFD(int(fd), b)
	},
	"runtime.resetMemoryDataView": func(rt *Runtime, sp uint32) {},
	"runtime.nanotime1": func(rt *Runtime, sp uint32) {
		rt.setI64(sp+8, rt.wallNow().UnixNano())
	},
	"runtime.walltime": func(rt *Runtime, sp uint32) {
		now := rt.wallNow()
		msec := now.UnixMilli() // JS Date resolution
		rt.setI64(sp+8, msec/1000)
		rt.setU32(sp+16, uint32(int32(msec%1000*1e6)))
	},
	"runtime.scheduleTimeoutEvent": func(rt *Runtime, sp uint32) {
		ms := rt.i64(sp + 8)
		rt.nextTimer++
		id := rt.nextTimer
		rt.timers[id] = &timer{id: id, due: rt.now() + time.Duration(ms)*time.Millisecond, guest: true}
		rt.setU32(sp+16, uint32(id))
	},
	"runtime.clearTimeoutEvent": func(rt *Runtime, sp uint32) {
		id := int32(rt.u32(sp + 8))
		if t, ok := rt.timers[id]; ok && t.guest {
			delete(rt.timers, id)
		}
	},
	"runtime.getRandomData": func(rt *Runtime, sp uint32) {
		b := rt.loadSlice(sp + 8)
		if _, err := io.ReadFull(rt.cfg.Rand, b); err != nil {
			panic(&abortError{errors.New("gojs: random source: " + err.Error())})
		}
	},
	"syscall/js.finalizeRef": func(rt *Runtime, sp uint32) {
		rt.table.release(rt.u32(sp + 8))
	},
	"syscall/js.stringVal": func(rt *Runtime, sp uint32) {
		rt.storeValue(sp+24, rt.loadString(sp+8))
	},
	"syscall/js.valueGet": func(rt *Runtime, sp uint32) {
		n := rt.entries
		v := GetProperty(rt.loadValue(sp+8), rt.loadString(sp+16))
		rt.storeValue(rt.spAfter(sp, n)+32, v)
	},
	"syscall/js.valueSet": func(rt *Runtime, sp uint32) {
		SetProperty(rt.loadValue(sp+8), rt.loadString(sp+16), rt.loadValue(sp+32))
	},
	"syscall/js.valueDelete": func(rt *Runtime, sp uint32) {
		DeleteProperty(rt.loadValue(sp+8), rt.loadString(sp+16))
	},
	"syscall/js.valueIndex": func(rt *Runtime, sp uint32) {
		v := GetProperty(rt.loadValue(sp+8), itoa(rt.i64(sp+16)))
		rt.storeValue(sp+24, v)
	},
	"syscall/js.valueSetIndex": func(rt *Runtime, sp uint32) {
		SetProperty(rt.loadValue(sp+8), itoa(rt.i64(sp+16)), rt.loadValue(sp+24))
	},
	"syscall/js.valueCall": func(rt *Runtime, sp uint32) {
		v := rt.loadValue(sp + 8)
		name := rt.loadString(sp + 16)
		args := rt.loadSliceOfValues(sp + 32)
		n := rt.entries
		m := GetProperty(v, name)
		var res Value
		var err error
		if f, ok := m.(*Function); ok && f.Call != nil {
			res, err = rt.Invoke(f, v, args...)
		} else {
			err = &Exception{NewTypeError(TypeOf(v) + "." + name + " is not a function")}
		}
		rt.storeResult(sp, n, err, res, 56, 64)
	},
	"syscall/js.valueInvoke": func(rt *Runtime, sp uint32) {
		n := rt.entries
		fn := rt.loadValue(sp + 8)
		args := rt.loadSliceOfValues(sp + 16)
		res, err := rt.Invoke(fn, nil, args...)
		rt.storeResult(sp, n, err, res, 40, 48)
	},
	"syscall/js.valueNew": func(rt *Runtime, sp uint32) {
		n := rt.entries
		fn := rt.loadValue(sp + 8)
		args := rt.loadSliceOfValues(sp + 16)
		res, err := rt.Construct(fn, args...)
		rt.storeResult(sp, n, err, res, 40, 48)
	},
	"syscall/js.valueLength": func(rt *Runtime, sp uint32) {
		n := ToNumber(GetProperty(rt.loadValue(sp+8), "length"))
		if math.IsNaN(n) {
			n = 0 // parseInt(undefined) is NaN; Go converts it to 0 anyway
		}
		rt.setI64(sp+16, int64(n))
	},
	"syscall/js.valuePrepareString": func(rt *Runtime, sp uint32) {
		s := ToString(rt.loadValue(sp + 8))
		if !utf8.ValidString(s) {
			s = toValidUTF8(s)
		}
		rt.storeValue(sp+16, NewUint8Array([]byte(s)))
		rt.setI64(sp+24, int64(len(s)))
	},
	"syscall/js.valueLoadString": func(rt *Runtime, sp uint32) {
		src, _ := rt.loadValue(sp + 8).(*TypedArray)
		dst := rt.loadSlice(sp + 16)
		if src != nil {
			copy(dst, src.Bytes())
		}
	},
	"syscall/js.valueInstanceOf": func(rt *Runtime, sp uint32) {
		ok := InstanceOf(rt.loadValue(sp+8), rt.loadValue(sp+16))
		rt.setU8(sp+24, ok)
	},
	"syscall/js.copyBytesToGo": func(rt *Runtime, sp uint32) {
		dst := rt.loadSlice(sp + 8)
		src, ok := rt.loadValue(sp + 32).(*TypedArray)
		if !ok || (src.kind != Uint8 && src.kind != Uint8Clamped) {
			rt.setU8(sp+48, false)
			return
		}
		rt.setI64(sp+40, int64(copy(dst, src.Bytes())))
		rt.setU8(sp+48, true)
	},
	"syscall/js.copyBytesToJS": func(rt *Runtime, sp uint32) {
		dst, ok := rt.loadValue(sp + 8).(*TypedArray)
		if !ok || (dst.kind != Uint8 && dst.kind != Uint8Clamped) {
			rt.setU8(sp+48, false)
			return
		}
		src := rt.loadSlice(sp + 16)
		rt.setI64(sp+40, int64(copy(dst.Bytes(), src)))
		rt.setU8(sp+48, true)
	},
	"debug": func(rt *Runtime, sp uint32) {
		_, _ = rt.writeFD(2, []byte("gojs debug: "+itoa(int64(sp))+"\n"))
	},
}

// storeResult writes a call's (ref, ok) pair: the result, or the thrown
// value with ok=false. Fatal errors unwind the guest instead.
func (rt *Runtime) storeResult(sp uint32, entries uint64, err error, res Value, resOff, okOff uint32) {
	if err != nil && rt.fatal(err) {
		var ab *abortError
		errors.As(err, &ab)
		panic(ab)
	}
	sp = rt.spAfter(sp, entries)
	if err != nil {
		rt.storeValue(sp+resOff, ErrorValue(err))
		rt.setU8(sp+okOff, false)
		return
	}
	rt.storeValue(sp+resOff, res)
	rt.setU8(sp+okOff, true)
}

func (rt *Runtime) writeFD(fd int, b []byte) (int, error) {
	switch fd {
	case 1:
		return rt.stdout.Write(b)
	case 2:
		return rt.stderr.Write(b)
	}
	return 0, &Exception{errnoError("EBADF", "bad file descriptor")}
}

// Memory access. Views are taken afresh for each access: a view becomes
// invalid when the guest grows its memory.

// spAfter returns the current sp: the same as before unless Go code ran
// (the guest was entered) since entries was read, in which case the
// goroutine stack may have moved and getsp must be asked.
func (rt *Runtime) spAfter(sp uint32, entries uint64) uint32 {
	if rt.entries == entries {
		return sp
	}
	return rt.getsp()
}

func (rt *Runtime) getsp() uint32 {
	// getsp never calls back into the host, so one cached Function is safe
	// (resume, which re-enters, is fetched afresh for every call).
	if rt.getspFn == nil {
		rt.getspFn = rt.mod.ExportedFunction("getsp")
	}
	res, err := rt.getspFn.Call(rt.inner)
	if err != nil {
		panic(&abortError{rt.classify(err)})
	}
	return uint32(res[0])
}

func (rt *Runtime) read(off, n uint32) []byte {
	b, ok := rt.mod.Memory().Read(off, n)
	if !ok {
		panic(&abortError{rt.classify(errors.New("gojs: guest memory access out of range"))})
	}
	return b
}

func (rt *Runtime) u32(off uint32) uint32 {
	v, ok := rt.mod.Memory().ReadUint32Le(off)
	if !ok {
		panic(&abortError{rt.classify(errors.New("gojs: guest memory access out of range"))})
	}
	return v
}

func (rt *Runtime) u64(off uint32) uint64 {
	v, ok := rt.mod.Memory().ReadUint64Le(off)
	if !ok {
		panic(&abortError{rt.classify(errors.New("gojs: guest memory access out of range"))})
	}
	return v
}

func (rt *Runtime) i64(off uint32) int64 { return int64(rt.u64(off)) }

func (rt *Runtime) setU32(off, v uint32) {
	if !rt.mod.Memory().WriteUint32Le(off, v) {
		panic(&abortError{rt.classify(errors.New("gojs: guest memory access out of range"))})
	}
}

func (rt *Runtime) setI64(off uint32, v int64) {
	if !rt.mod.Memory().WriteUint64Le(off, uint64(v)) {
		panic(&abortError{rt.classify(errors.New("gojs: guest memory access out of range"))})
	}
}

func (rt *Runtime) setU8(off uint32, b bool) {
	var v byte
	if b {
		v = 1
	}
	if !rt.mod.Memory().WriteByte(off, v) {
		panic(&abortError{rt.classify(errors.New("gojs: guest memory access out of range"))})
	}
}

func (rt *Runtime) loadValue(off uint32) Value { return rt.table.value(rt.u64(off)) }

func (rt *Runtime) storeValue(off uint32, v Value) { rt.setI64(off, int64(rt.table.ref(v))) }

func (rt *Runtime) loadSlice(off uint32) []byte {
	p, n := rt.u64(off), rt.u64(off+8)
	if n == 0 {
		return nil
	}
	return rt.read(uint32(p), uint32(n))
}

func (rt *Runtime) loadString(off uint32) string {
	p, n := rt.u64(off), rt.u64(off+8)
	if n == 0 {
		return ""
	}
	s := string(rt.read(uint32(p), uint32(n)))
	if !utf8.ValidString(s) {
		s = toValidUTF8(s) // as TextDecoder in wasm_exec.js does
	}
	return s
}

func (rt *Runtime) loadSliceOfValues(off uint32) []Value {
	p, n := uint32(rt.u64(off)), uint32(rt.u64(off+8))
	vals := make([]Value, n)
	for i := range vals {
		vals[i] = rt.loadValue(p + uint32(i)*8)
	}
	return vals
}

func itoa(i int64) string {
	if i >= 0 && i < 10 {
		return string(rune('0' + i))
	}
	neg := i < 0
	u := uint64(i)
	if neg {
		u = uint64(-i)
	}
	var b [24]byte
	n := len(b)
	for u > 0 {
		n--
		b[n] = byte('0' + u%10)
		u /= 10
	}
	if neg {
		n--
		b[n] = '-'
	}
	return string(b[n:])
}

// toValidUTF8 replaces invalid bytes like TextEncoder does with lone
// surrogates (U+FFFD).
func toValidUTF8(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		out = append(out, r)
	}
	return string(out)
}
