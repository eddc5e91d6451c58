package gojs

import (
	"io"
	"math"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf16"
)

// objectClass is the Object constructor (every object is instanceof it).
var objectClass, arrayClass *Function

// String, Number and Boolean convert (called as functions; `new` is not
// supported: there are no wrapper objects here).
var (
	stringFunc = NewFunc("String", func(_ Value, args []Value) (Value, error) {
		if len(args) == 0 {
			return "", nil
		}
		return ToString(args[0]), nil
	})
	numberFunc = NewFunc("Number", func(_ Value, args []Value) (Value, error) {
		if len(args) == 0 {
			return 0.0, nil
		}
		return ToNumber(args[0]), nil
	})
	booleanFunc = NewFunc("Boolean", func(_ Value, args []Value) (Value, error) {
		return Truthy(arg0(args)), nil
	})
)

func newObjectClass() *Function {
	f := &Function{Name: "Object", Prototype: &Object{}}
	f.Construct = func(args []Value) (Value, error) {
		if h, ok := arg0(args).(propertyHolder); ok {
			return h, nil
		}
		return &Object{}, nil
	}
	f.Call = func(_ Value, args []Value) (Value, error) { return f.Construct(args) }
	f.Set("keys", NewFunc("keys", func(_ Value, args []Value) (Value, error) {
		switch x := arg0(args).(type) {
		case *Array:
			keys := make([]Value, len(x.Elems))
			for i := range keys {
				keys[i] = itoa(int64(i))
			}
			return NewArray(keys...), nil
		case propertyHolder:
			return normalize(x.obj().Keys()), nil
		}
		return NewArray(), nil
	}))
	f.Freeze()
	return f
}

// arrayClass is the Array constructor.
func newArrayClass() *Function {
	f := &Function{Name: "Array", Prototype: &Object{}}
	f.Construct = func(args []Value) (Value, error) {
		if len(args) == 1 {
			if n, ok := args[0].(float64); ok {
				if n < 0 || n != math.Trunc(n) || n > maxArrayLen {
					return nil, &Exception{newErrorOf(RangeErrorClass, "Invalid array length")}
				}
				return &Array{Elems: make([]Value, int(n))}, nil
			}
		}
		return NewArray(args...), nil
	}
	f.Call = func(_ Value, args []Value) (Value, error) { return f.Construct(args) }
	f.HasInstance = func(v Value) bool { _, ok := v.(*Array); return ok }
	f.Set("isArray", NewFunc("isArray", func(_ Value, args []Value) (Value, error) {
		_, ok := arg0(args).(*Array)
		return ok, nil
	}))
	f.Set("from", NewFunc("from", func(_ Value, args []Value) (Value, error) {
		switch x := arg0(args).(type) {
		case *Array:
			return NewArray(x.Elems...), nil
		case *TypedArray:
			a := &Array{Elems: make([]Value, x.Len())}
			for i := range a.Elems {
				a.Elems[i] = x.At(i)
			}
			return a, nil
		}
		return NewArray(), nil
	}))
	f.Freeze()
	return f
}

// errnoError is a Node-style error with a code, as syscall's mapJSError
// expects.
func errnoError(code, msg string) *Object {
	o := NewError(code + ": " + msg)
	o.Set("code", code)
	return o
}

func (rt *Runtime) newGlobals() *Object {
	g := &Object{}
	g.Set("globalThis", g)
	g.Set("Object", objectClass)
	g.Set("Array", arrayClass)
	g.Set("ArrayBuffer", arrayBufferClass)
	for _, c := range typedArrayClasses {
		g.Set(c.Name, c)
	}
	g.Set("Error", ErrorClass)
	g.Set("TypeError", TypeErrorClass)
	g.Set("RangeError", RangeErrorClass)
	g.Set("Promise", rt.promiseClass())
	g.Set("String", stringFunc)
	g.Set("Number", numberFunc)
	g.Set("Boolean", booleanFunc)
	g.Set("process", rt.newProcess())
	g.Set("fs", rt.newFS())
	g.Set("path", rt.newPath())
	g.Set("Date", rt.newDateClass())
	g.Set("structuredClone", NewFunc("structuredClone", structuredClone))
	g.Set("crypto", NewObject(nil).Method("getRandomValues", func(_ Value, args []Value) (Value, error) {
		t, ok := arg0(args).(*TypedArray)
		if !ok || t.kind == Float32 || t.kind == Float64 {
			return nil, &Exception{NewTypeError("crypto.getRandomValues: argument is not an integer typed array")}
		}
		if _, err := io.ReadFull(rt.cfg.Rand, t.Bytes()); err != nil {
			return nil, err
		}
		return t, nil
	}))
	g.Set("performance", NewObject(nil).Method("now", func(Value, []Value) (Value, error) {
		return float64(rt.now()) / 1e6, nil
	}))
	g.Set("TextEncoder", NewClass("TextEncoder", func([]Value) (Value, error) {
		o := NewObject(map[string]Value{"encoding": "utf-8"})
		o.Method("encode", func(_ Value, args []Value) (Value, error) {
			s := ""
			if a := arg0(args); a != nil {
				s = ToString(a)
			}
			return NewUint8Array([]byte(toValidUTF8(s))), nil
		})
		return o, nil
	}))
	g.Set("TextDecoder", NewClass("TextDecoder", func([]Value) (Value, error) {
		o := NewObject(map[string]Value{"encoding": "utf-8"})
		o.Method("decode", func(_ Value, args []Value) (Value, error) {
			switch x := arg0(args).(type) {
			case *TypedArray:
				return toValidUTF8(string(x.Bytes())), nil
			case *ArrayBuffer:
				return toValidUTF8(string(x.data)), nil
			}
			return "", nil
		})
		return o, nil
	}))
	console := NewObject(nil)
	for _, name := range []string{"log", "info", "debug", "warn", "error"} {
		fd := 1
		if name == "warn" || name == "error" {
			fd = 2
		}
		console.Method(name, func(_ Value, args []Value) (Value, error) {
			parts := make([]string, len(args))
			for i, a := range args {
				parts[i] = ToString(a)
			}
			_, _ = rt.writeFD(fd, []byte(strings.Join(parts, " ")+"\n"))
			return nil, nil
		})
	}
	g.Set("console", console)
	g.Method("queueMicrotask", func(_ Value, args []Value) (Value, error) {
		f, ok := arg0(args).(*Function)
		if !ok {
			return nil, &Exception{NewTypeError("queueMicrotask: argument is not a function")}
		}
		rt.enqueue(func() { _, _ = rt.Invoke(f, nil) })
		return nil, nil
	})
	g.Method("setTimeout", func(_ Value, args []Value) (Value, error) {
		f, ok := arg0(args).(*Function)
		if !ok {
			return nil, &Exception{NewTypeError("setTimeout: callback is not a function")}
		}
		ms := ToNumber(argN(args, 1))
		if math.IsNaN(ms) {
			ms = 0
		}
		extra := append([]Value(nil), args[min(2, len(args)):]...)
		id := rt.SetTimeout(func() { _, _ = rt.Invoke(f, nil, extra...) }, time.Duration(ms*float64(time.Millisecond)))
		return float64(id), nil
	})
	g.Method("clearTimeout", func(_ Value, args []Value) (Value, error) {
		rt.ClearTimeout(int32(ToInt(arg0(args))))
		return nil, nil
	})
	return g
}

// newGoObject is the wasm_exec.js Go instance (id 6) the guest keeps
// _pendingEvent on and asks for function wrappers.
func (rt *Runtime) newGoObject() *Object {
	o := NewObject(map[string]Value{"_pendingEvent": Null})
	o.Set("argv", normalize(rt.cfg.Args))
	o.Method("_makeFuncWrapper", func(_ Value, args []Value) (Value, error) {
		return rt.funcWrapper(arg0(args)), nil
	})
	o.Dynamic = func(name string) (Value, bool) {
		if name == "exited" {
			return rt.exited, true
		}
		return nil, false
	}
	return o
}

// funcWrapper is what js.FuncOf returns to JS: calling it stores the event
// and resumes the guest, which runs the Go function and sets event.result.
func (rt *Runtime) funcWrapper(id Value) *Function {
	return NewFunc("", func(this Value, args []Value) (Value, error) {
		if rt.exited {
			return nil, &Exception{NewError("Go program has already exited")}
		}
		ev := &Object{}
		ev.Set("id", id)
		ev.Set("this", this)
		ev.Set("args", NewArray(args...))
		rt.goObj.Set("_pendingEvent", ev)
		if err := rt.resume(); err != nil {
			return nil, err
		}
		return ev.Get("result"), nil
	})
}

func (rt *Runtime) newProcess() *Object {
	p := NewObject(map[string]Value{"pid": -1, "ppid": -1, "platform": "wasm", "argv": normalize(rt.cfg.Args)})
	env := &Object{}
	for k, v := range rt.cfg.Env {
		env.Set(k, v)
	}
	p.Set("env", env)
	for _, name := range []string{"getuid", "getgid", "geteuid", "getegid"} {
		p.Method(name, func(Value, []Value) (Value, error) { return -1, nil })
	}
	p.Method("getgroups", func(Value, []Value) (Value, error) { return nil, &Exception{errnoError("ENOSYS", "not implemented")} })
	p.Method("umask", func(Value, []Value) (Value, error) { return nil, &Exception{errnoError("ENOSYS", "not implemented")} })
	p.Method("cwd", func(Value, []Value) (Value, error) { return rt.cfg.Cwd, nil })
	p.Method("chdir", func(_ Value, args []Value) (Value, error) {
		return nil, &Exception{errnoError("ENOSYS", "not implemented")}
	})
	return p
}

// newFS is the browser polyfill's fs: writes to fd 1 and 2 complete
// synchronously (so fmt.Println never yields to the host); everything else
// fails with ENOSYS.
func (rt *Runtime) newFS() *Object {
	fs := &Object{}
	fs.Set("constants", NewObject(map[string]Value{"O_WRONLY": -1, "O_RDWR": -1, "O_CREAT": -1,
		"O_TRUNC": -1, "O_APPEND": -1, "O_EXCL": -1, "O_DIRECTORY": -1}))
	writeSync := func(args []Value) (int, error) {
		t, ok := argN(args, 1).(*TypedArray)
		if !ok {
			return 0, &Exception{NewTypeError("fs.writeSync: buffer is not a typed array")}
		}
		n, err := rt.writeFD(ToInt(arg0(args)), t.Bytes())
		if err != nil {
			if _, isExc := err.(*Exception); !isExc {
				err = &Exception{errnoError("EIO", err.Error())}
			}
		}
		return n, err
	}
	fs.Method("writeSync", func(_ Value, args []Value) (Value, error) {
		n, err := writeSync(args)
		if err != nil {
			return nil, err
		}
		return n, nil
	})
	fs.Method("write", func(_ Value, args []Value) (Value, error) {
		cb, _ := argN(args, 5).(*Function)
		t, _ := argN(args, 1).(*TypedArray)
		var n int
		var err error
		if t == nil || ToInt(argN(args, 2)) != 0 || ToInt(argN(args, 3)) != t.Len() || argN(args, 4) != Null {
			err = &Exception{errnoError("ENOSYS", "not implemented")}
		} else {
			n, err = writeSync(args[:2])
		}
		if cb == nil {
			return nil, err
		}
		if err != nil {
			return rt.Invoke(cb, nil, ErrorValue(err))
		}
		return rt.Invoke(cb, nil, Null, n)
	})
	fs.Method("fsync", func(_ Value, args []Value) (Value, error) {
		if cb, ok := args[len(args)-1].(*Function); ok && len(args) > 0 {
			return rt.Invoke(cb, nil, Null)
		}
		return nil, nil
	})
	fs.Dynamic = func(name string) (Value, bool) {
		switch name {
		case "chmod", "chown", "close", "fchmod", "fchown", "fstat", "ftruncate", "lchown", "link",
			"lstat", "mkdir", "open", "read", "readdir", "readlink", "rename", "rmdir", "stat",
			"symlink", "truncate", "unlink", "utimes":
			return NewFunc(name, func(_ Value, args []Value) (Value, error) {
				if len(args) > 0 {
					if cb, ok := args[len(args)-1].(*Function); ok {
						return rt.Invoke(cb, nil, errnoError("ENOSYS", "not implemented"))
					}
				}
				return nil, &Exception{errnoError("ENOSYS", "not implemented")}
			}), true
		}
		return nil, false
	}
	return fs
}

func (rt *Runtime) newPath() *Object {
	return NewObject(nil).Method("resolve", func(_ Value, args []Value) (Value, error) {
		p := rt.cfg.Cwd
		for _, a := range args {
			s := ToString(a)
			if strings.HasPrefix(s, "/") {
				p = s
			} else if s != "" {
				p = p + "/" + s
			}
		}
		return path.Clean(p), nil
	})
}

// newDateClass is a minimal Date: now, getTime, valueOf, getTimezoneOffset,
// toISOString.
func (rt *Runtime) newDateClass() *Function {
	var f *Function
	f = NewClass("Date", func(args []Value) (Value, error) {
		ms := float64(rt.wallNow().UnixMilli())
		if len(args) == 1 {
			if n, ok := args[0].(float64); ok {
				ms = n
			}
		}
		o := &Object{}
		o.Method("getTime", func(Value, []Value) (Value, error) { return ms, nil })
		o.Method("valueOf", func(Value, []Value) (Value, error) { return ms, nil })
		o.Method("getTimezoneOffset", func(Value, []Value) (Value, error) { return rt.cfg.TimezoneOffset, nil })
		o.Method("toISOString", func(Value, []Value) (Value, error) {
			return time.UnixMilli(int64(ms)).UTC().Format("2006-01-02T15:04:05.000Z"), nil
		})
		return o, nil
	})
	f.Set("now", NewFunc("now", func(Value, []Value) (Value, error) {
		return float64(rt.wallNow().UnixMilli()), nil
	}))
	return f
}

// UTF16 helpers for hosts that need JS string indexing.

// UTF16 returns the UTF-16 code units of s (JS string contents).
func UTF16(s string) []uint16 { return utf16.Encode([]rune(s)) }

// FromUTF16 converts JS string contents to Go UTF-8 (lone surrogates become
// U+FFFD).
func FromUTF16(u []uint16) string { return string(utf16.Decode(u)) }

// structuredClone(value, {transfer}) for what a Go guest uses it for:
// detaching ArrayBuffers through the transfer list (wasm/API.md, "Memory
// ownership"). value may be a primitive or one of the transferred buffers
// (returned as its new owner); other values throw a DataCloneError, before
// anything is detached, as a failed clone does in JS. Transferring a buffer
// that is already detached does nothing, as in Node 20.
func structuredClone(_ Value, args []Value) (Value, error) {
	dataCloneError := func(msg string) error {
		e := NewError(msg)
		e.Set("name", "DataCloneError")
		return &Exception{e}
	}
	var list []*ArrayBuffer
	if o, ok := argN(args, 1).(*Object); ok {
		switch t := o.Get("transfer").(type) {
		case nil:
		case *Array:
			for _, v := range t.Elems {
				b, ok := v.(*ArrayBuffer)
				switch {
				case !ok:
					return nil, dataCloneError("structuredClone: this host can only transfer ArrayBuffers")
				case slices.Contains(list, b):
					return nil, dataCloneError("structuredClone: ArrayBuffer at index is a duplicate of an earlier ArrayBuffer")
				}
				list = append(list, b)
			}
		default:
			return nil, &Exception{NewTypeError("structuredClone: transfer must be an array")}
		}
	}
	v := arg0(args)
	var moved *ArrayBuffer
	switch x := v.(type) {
	case nil, nullType, bool, float64, string:
	case *ArrayBuffer:
		if !slices.Contains(list, x) {
			return nil, dataCloneError("structuredClone: this host clones ArrayBuffers only by transfer")
		}
		moved = x
	default:
		return nil, dataCloneError("structuredClone: " + TypeOf(v) + " values cannot be cloned on this host")
	}
	var out Value = v
	for _, b := range list {
		nb := NewArrayBuffer(b.Detach())
		if b == moved {
			out = nb
		}
	}
	return out, nil
}
