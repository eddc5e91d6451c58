package gojs

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// normalize maps the accepted Go types onto the canonical Value types.
func normalize(v Value) Value {
	switch x := v.(type) {
	case nil, nullType, bool, float64, string, *Object, *Function, *Array, *TypedArray, *ArrayBuffer, *Promise:
		return v
	case int:
		return float64(x)
	case int8:
		return float64(x)
	case int16:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint:
		return float64(x)
	case uint8:
		return float64(x)
	case uint16:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case error:
		return ErrorValue(x)
	case []Value:
		return NewArray(x...)
	case map[string]Value:
		return NewObject(x)
	case []string:
		a := &Array{Elems: make([]Value, len(x))}
		for i, s := range x {
			a.Elems[i] = s
		}
		return a
	case Func:
		return NewFunc("", x)
	case func(this Value, args []Value) (Value, error):
		return NewFunc("", x)
	}
	panic(fmt.Sprintf("gojs: %T cannot be used as a JS value", v))
}

// TypeOf returns the JS typeof of v.
func TypeOf(v Value) string {
	switch normalize(v).(type) {
	case nil:
		return "undefined"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case *Function:
		return "function"
	}
	return "object"
}

// Truthy implements JS ToBoolean.
func Truthy(v Value) bool {
	switch x := v.(type) {
	case nil, nullType:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	}
	return true
}

// ToNumber implements JS ToNumber for primitives (objects give NaN).
func ToNumber(v Value) float64 {
	switch x := normalize(v).(type) {
	case nil:
		return math.NaN()
	case nullType:
		return 0
	case bool:
		if x {
			return 1
		}
		return 0
	case float64:
		return x
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
		if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
			if n, err := strconv.ParseUint(s[2:], 16, 64); err == nil {
				return float64(n)
			}
		}
		return math.NaN()
	case *Array:
		if len(x.Elems) == 0 {
			return 0
		}
		if len(x.Elems) == 1 {
			return ToNumber(x.Elems[0])
		}
	}
	return math.NaN()
}

// ToInt converts like JS ToIntegerOrInfinity clamped to int (NaN -> 0).
func ToInt(v Value) int {
	f := ToNumber(v)
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int(math.Trunc(f))
}

// ToString implements JS String(v).
func ToString(v Value) string {
	switch x := normalize(v).(type) {
	case nil:
		return "undefined"
	case nullType:
		return "null"
	case bool:
		if x {
			return "true"
		}
		return "false"
	case float64:
		return NumberToString(x)
	case string:
		return x
	case *Array:
		parts := make([]string, len(x.Elems))
		for i, e := range x.Elems {
			if e != nil && e != Null {
				parts[i] = ToString(e)
			}
		}
		return strings.Join(parts, ",")
	case *TypedArray:
		parts := make([]string, x.Len())
		for i := range parts {
			parts[i] = NumberToString(x.At(i))
		}
		return strings.Join(parts, ",")
	case *Function:
		return "function " + x.Name + "() { [native code] }"
	case *Promise:
		return "[object Promise]"
	case *ArrayBuffer:
		return "[object ArrayBuffer]"
	case *Object:
		if IsError(x) {
			name := ToString(x.Get("name"))
			msg := ToString(x.Get("message"))
			if msg == "" {
				return name
			}
			return name + ": " + msg
		}
		if f, ok := x.Get("toString").(*Function); ok && f.Call != nil {
			if s, err := f.Call(x, nil); err == nil {
				if str, ok := s.(string); ok {
					return str
				}
			}
		}
		return "[object Object]"
	}
	return fmt.Sprint(v)
}

// NumberToString formats a float64 exactly like JS Number.prototype.toString().
func NumberToString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	neg := f < 0
	if neg {
		f = -f
	}
	// Shortest round-trip digits and decimal exponent.
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expStr, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(expStr)
	k := len(digits)
	n := exp + 1 // value = 0.digits * 10^n
	var s string
	switch {
	case k <= n && n <= 21:
		s = digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		s = digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		s = "0." + strings.Repeat("0", -n) + digits
	default:
		sign := "+"
		if n-1 < 0 {
			sign = "-"
		}
		ex := n - 1
		if ex < 0 {
			ex = -ex
		}
		if k == 1 {
			s = digits + "e" + sign + strconv.Itoa(ex)
		} else {
			s = digits[:1] + "." + digits[1:] + "e" + sign + strconv.Itoa(ex)
		}
	}
	if neg {
		return "-" + s
	}
	return s
}

// UTF16Len is the JS .length of a Go string.
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// InstanceOf implements `v instanceof c`.
func InstanceOf(v Value, c Value) bool {
	f, ok := c.(*Function)
	if !ok {
		return false
	}
	if f.HasInstance != nil {
		return f.HasInstance(v)
	}
	if f == objectClass {
		switch v.(type) {
		case *Object, *Function, *Array, *TypedArray, *ArrayBuffer, *Promise:
			return true
		}
		return false
	}
	h, ok := v.(propertyHolder)
	if !ok {
		return false
	}
	for k := h.obj().class; k != nil; k = k.Extends {
		if k == f {
			return true
		}
	}
	return false
}
