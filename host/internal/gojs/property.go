package gojs

import (
	"strconv"
	"strings"
)

// arrayIndex parses a canonical array index property name.
func arrayIndex(name string) (int, bool) {
	if name == "" || (len(name) > 1 && name[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(name)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// GetProperty implements JS v[name] for any value (undefined for primitives
// other than strings and for unknown properties; it never panics).
func GetProperty(v Value, name string) Value {
	switch x := v.(type) {
	case string:
		if name == "length" {
			return float64(UTF16Len(x))
		}
		return nil
	case *Array:
		if name == "length" {
			return float64(len(x.Elems))
		}
		if i, ok := arrayIndex(name); ok {
			if i < len(x.Elems) {
				return x.Elems[i]
			}
			return nil
		}
		if v, ok := x.Object.lookup(name); ok {
			return v
		}
		return arrayMethod(x, name)
	case *TypedArray:
		if i, ok := arrayIndex(name); ok {
			if i < x.Len() {
				return x.At(i)
			}
			return nil
		}
		if v, ok := x.Object.lookup(name); ok {
			return v
		}
		return typedArrayProp(x, name)
	case *ArrayBuffer:
		if name == "byteLength" {
			return float64(len(x.data))
		}
		switch name {
		case "detached":
			return x.detached
		case "slice":
			return NewFunc("slice", func(_ Value, args []Value) (Value, error) {
				if x.detached {
					return nil, &Exception{NewTypeError("Cannot perform ArrayBuffer.prototype.slice on a detached ArrayBuffer")}
				}
				b, e := sliceRange(len(x.data), args)
				return NewArrayBuffer(append([]byte(nil), x.data[b:e]...)), nil
			})
		case "transfer", "transferToFixedLength":
			return NewFunc(name, func(_ Value, args []Value) (Value, error) { return x.transfer(args) })
		}
		return x.Object.Get(name)
	case *Promise:
		if v, ok := x.Object.lookup(name); ok {
			return v
		}
		return promiseMethod(x, name)
	case *Function:
		if v, ok := x.Object.lookup(name); ok {
			return v
		}
		return functionProp(x, name)
	case *Object:
		return x.Get(name)
	}
	return nil
}

// SetProperty implements JS v[name] = x (ignored for primitives).
func SetProperty(v Value, name string, x Value) {
	x = normalize(x)
	switch t := v.(type) {
	case *Array:
		if name == "length" {
			n := min(max(ToInt(x), 0), maxArrayLen)
			for len(t.Elems) < n {
				t.Elems = append(t.Elems, nil)
			}
			t.Elems = t.Elems[:n]
			return
		}
		if i, ok := arrayIndex(name); ok && i < maxArrayLen {
			for len(t.Elems) <= i {
				t.Elems = append(t.Elems, nil)
			}
			t.Elems[i] = x
			return
		}
	case *TypedArray:
		if i, ok := arrayIndex(name); ok {
			if i < t.Len() {
				t.SetAt(i, ToNumber(x))
			}
			return
		}
	}
	if h, ok := v.(propertyHolder); ok {
		h.obj().Set(name, x)
	}
}

// DeleteProperty implements JS delete v[name].
func DeleteProperty(v Value, name string) {
	if h, ok := v.(propertyHolder); ok {
		h.obj().Delete(name)
	}
}

func functionProp(f *Function, name string) Value {
	switch name {
	case "name":
		return f.Name
	case "prototype":
		if f.Prototype != nil {
			return f.Prototype
		}
	case "call":
		return NewFunc("call", func(_ Value, args []Value) (Value, error) {
			if f.Call == nil {
				return nil, &Exception{NewTypeError("Class constructor " + f.Name + " cannot be invoked without 'new'")}
			}
			var this Value
			if len(args) > 0 {
				this, args = args[0], args[1:]
			}
			return f.Call(this, args)
		})
	case "apply":
		return NewFunc("apply", func(_ Value, args []Value) (Value, error) {
			if f.Call == nil {
				return nil, &Exception{NewTypeError("Class constructor " + f.Name + " cannot be invoked without 'new'")}
			}
			var this Value
			var list []Value
			if len(args) > 0 {
				this = args[0]
			}
			if len(args) > 1 {
				if a, ok := args[1].(*Array); ok {
					list = a.Elems
				}
			}
			return f.Call(this, list)
		})
	}
	return nil
}

func arrayMethod(a *Array, name string) Value {
	switch name {
	case "push":
		return NewFunc("push", func(_ Value, args []Value) (Value, error) {
			for _, x := range args {
				a.Elems = append(a.Elems, normalize(x))
			}
			return float64(len(a.Elems)), nil
		})
	case "join":
		return NewFunc("join", func(_ Value, args []Value) (Value, error) {
			sep := ","
			if len(args) > 0 && args[0] != nil {
				sep = ToString(args[0])
			}
			parts := make([]string, len(a.Elems))
			for i, e := range a.Elems {
				if e != nil && e != Null {
					parts[i] = ToString(e)
				}
			}
			return strings.Join(parts, sep), nil
		})
	case "slice":
		return NewFunc("slice", func(_ Value, args []Value) (Value, error) {
			b, e := sliceRange(len(a.Elems), args)
			return NewArray(a.Elems[b:e]...), nil
		})
	}
	return nil
}

// sliceRange resolves JS (begin, end) arguments against length n.
func sliceRange(n int, args []Value) (int, int) {
	rel := func(v Value, def int) int {
		if v == nil {
			return def
		}
		i := ToInt(v)
		if i < 0 {
			i += n
			if i < 0 {
				i = 0
			}
		}
		if i > n {
			i = n
		}
		return i
	}
	b, e := 0, n
	if len(args) > 0 {
		b = rel(args[0], 0)
	}
	if len(args) > 1 {
		e = rel(args[1], n)
	}
	if e < b {
		e = b
	}
	return b, e
}
