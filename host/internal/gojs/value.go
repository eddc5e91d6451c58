package gojs

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Value is a JavaScript value as the host sees it. The dynamic types are:
//
//	nil (Undefined)  undefined
//	Null             null
//	bool             boolean
//	float64          number (int, int64, float32, ... are accepted and converted)
//	string           string (Go UTF-8; JS .length counts UTF-16 units)
//	*Object          plain object, Error, or an instance of a host class
//	*Function        function / class
//	*Array           Array
//	*TypedArray      Uint8Array, Float32Array, ...
//	*ArrayBuffer     ArrayBuffer
//	*Promise         Promise
type Value = any

// Undefined is the JS undefined value (a nil Value).
var Undefined Value

type nullType struct{}

func (nullType) String() string { return "null" }

// Null is the JS null value.
var Null Value = nullType{}

// propertyHolder is implemented by every value that has properties.
type propertyHolder interface {
	obj() *Object
}

// Object is a JS object: an ordered property map, an optional class (the
// constructor it was created by, for instanceof and inherited methods) and an
// optional dynamic getter for properties computed on demand.
type Object struct {
	props map[string]Value
	keys  []string
	class *Function
	// Dynamic, if set, is consulted for a property that is not an own
	// property; ok=false means "absent" (then the class prototype is tried).
	Dynamic func(name string) (v Value, ok bool)
	frozen  bool
	goErr   error // the Go error an Error object was made from, for errors.As
}

func (o *Object) obj() *Object { return o }

// NewObject returns a plain object with the given properties (values are
// normalised, see Value). Keys are added in sorted order.
func NewObject(props map[string]Value) *Object {
	o := &Object{}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o.Set(k, props[k])
	}
	return o
}

// Get returns an own, dynamic or inherited property, or undefined.
func (o *Object) Get(name string) Value {
	if v, ok := o.lookup(name); ok {
		return v
	}
	return nil
}

func (o *Object) lookup(name string) (Value, bool) {
	if o == nil {
		return nil, false
	}
	if v, ok := o.props[name]; ok {
		return v, true
	}
	if o.Dynamic != nil {
		if v, ok := o.Dynamic(name); ok {
			return normalize(v), true
		}
	}
	for c := o.class; c != nil; c = c.Extends {
		if c.Prototype != nil {
			if v, ok := c.Prototype.lookup(name); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// Has reports whether name is an own property.
func (o *Object) Has(name string) bool {
	_, ok := o.props[name]
	return ok
}

// Set sets an own property. Setting on a frozen object is ignored, as in
// non-strict JS.
func (o *Object) Set(name string, v Value) {
	if o.frozen {
		return
	}
	if o.props == nil {
		o.props = map[string]Value{}
	}
	if _, ok := o.props[name]; !ok {
		o.keys = append(o.keys, name)
	}
	o.props[name] = normalize(v)
}

// Delete removes an own property.
func (o *Object) Delete(name string) {
	if o.frozen {
		return
	}
	if _, ok := o.props[name]; !ok {
		return
	}
	delete(o.props, name)
	for i, k := range o.keys {
		if k == name {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
}

// Keys returns the own property names in insertion order.
func (o *Object) Keys() []string { return append([]string(nil), o.keys...) }

// Class returns the constructor the object was created by (nil for plain
// objects).
func (o *Object) Class() *Function { return o.class }

// SetClass sets the constructor used by instanceof and for inherited methods.
func (o *Object) SetClass(c *Function) { o.class = c }

// Freeze makes Set and Delete no-ops.
func (o *Object) Freeze() { o.frozen = true }

// Func is the Go signature of a JS function implemented by the host. A
// returned error becomes a thrown JS exception (an Error whose message is
// err.Error(), or the value of an *Exception).
type Func func(this Value, args []Value) (Value, error)

// Function is a JS function. Call is used for f(...), Construct for
// new f(...); either may be nil (calling it then throws a TypeError).
// Functions are objects: static members live in the embedded Object.
type Function struct {
	Object
	Name      string
	Call      Func
	Construct func(args []Value) (Value, error)
	// Prototype holds members inherited by objects whose class is this
	// function; Extends is the parent class (TypeError extends Error).
	Prototype *Object
	Extends   *Function
	// HasInstance, if set, decides `v instanceof f`; otherwise the class
	// chain of v's Object is searched for f.
	HasInstance func(v Value) bool
}

// NewFunc returns a plain function.
func NewFunc(name string, fn Func) *Function {
	return &Function{Name: name, Call: fn}
}

// NewClass returns a constructor: `new C(...)` runs construct; an *Object
// it returns whose class is unset gets class C, so `x instanceof C` holds.
// Calling C without new throws a TypeError, as for JS classes.
func NewClass(name string, construct func(args []Value) (Value, error)) *Function {
	f := &Function{Name: name, Prototype: &Object{}}
	f.Construct = func(args []Value) (Value, error) {
		v, err := construct(args)
		if err != nil {
			return nil, err
		}
		if o, ok := v.(*Object); ok && o.class == nil {
			o.class = f
		}
		return v, nil
	}
	return f
}

// Method is a helper to put a function-valued property on an object.
func (o *Object) Method(name string, fn Func) *Object {
	o.Set(name, NewFunc(name, fn))
	return o
}

// maxArrayLen bounds Arrays (stored densely here, unlike JS): a larger
// length or index is ignored on set and a RangeError in new Array(n).
const maxArrayLen = 1 << 26

// Array is a JS Array.
type Array struct {
	Object
	Elems []Value
}

// NewArray returns an array of the given (normalised) elements.
func NewArray(elems ...Value) *Array {
	a := &Array{Elems: make([]Value, len(elems))}
	for i, e := range elems {
		a.Elems[i] = normalize(e)
	}
	return a
}

// Error values.

// Exception is a thrown JS value crossing into Go (a rejected Promise, a
// throwing guest callback) or, returned by a host Func, the value to throw.
type Exception struct {
	Value Value
}

func (e *Exception) Error() string {
	if o, ok := e.Value.(*Object); ok {
		msg, _ := o.Get("message").(string)
		name, _ := o.Get("name").(string)
		if name == "" {
			name = "Error"
		}
		return "js: " + name + ": " + msg
	}
	return "js: uncaught " + ToString(e.Value)
}

// Unwrap returns the Go error an Error object was created from, if any, so
// errors.Is/As see through a host error that went through JS and back.
func (e *Exception) Unwrap() error {
	if o, ok := e.Value.(*Object); ok {
		return o.goErr
	}
	return nil
}

// Builtin error classes shared by all runtimes (frozen).
// They are set in init to break the initialisation cycle through normalize.
var (
	ErrorClass      *Function
	TypeErrorClass  *Function
	RangeErrorClass *Function
)

func init() {
	ErrorClass = newErrorClass("Error", nil)
	TypeErrorClass = newErrorClass("TypeError", ErrorClass)
	RangeErrorClass = newErrorClass("RangeError", ErrorClass)
	objectClass = newObjectClass()
	arrayClass = newArrayClass()
	arrayBufferClass = newArrayBufferClass()
	for k := range numKinds {
		typedArrayClasses[k] = typedArrayClass(k)
	}
}

func newErrorClass(name string, parent *Function) *Function {
	var f *Function
	f = NewClass(name, func(args []Value) (Value, error) {
		msg := ""
		if len(args) > 0 && args[0] != nil {
			msg = ToString(args[0])
		}
		return newErrorOf(f, msg), nil
	})
	f.Call = func(_ Value, args []Value) (Value, error) { return f.Construct(args) }
	f.Extends = parent
	f.Prototype.Set("name", name)
	f.Prototype.Set("toString", NewFunc("toString", func(this Value, _ []Value) (Value, error) {
		return ToString(this), nil
	}))
	f.Prototype.Freeze()
	f.Freeze()
	return f
}

func newErrorOf(class *Function, msg string) *Object {
	o := &Object{class: class}
	o.Set("message", msg)
	o.Set("stack", class.Name+": "+msg+"\n    at <gojs host>")
	return o
}

// NewError returns a JS Error object with the given message.
func NewError(msg string) *Object { return newErrorOf(ErrorClass, msg) }

// NewTypeError returns a JS TypeError object.
func NewTypeError(msg string) *Object { return newErrorOf(TypeErrorClass, msg) }

// ErrorValue converts a Go error into the JS value to throw or reject with:
// the value of an *Exception, or an Error with err's message (and code, if
// err has a Code() string method) that remembers err for errors.As.
func ErrorValue(err error) Value {
	if err == nil {
		return nil
	}
	if e, ok := err.(*Exception); ok {
		return e.Value
	}
	o := NewError(err.Error())
	o.goErr = err
	if c, ok := err.(interface{ Code() string }); ok {
		o.Set("code", c.Code())
	}
	return o
}

// IsError reports whether v is an Error object (of any Error class).
func IsError(v Value) bool { return InstanceOf(v, ErrorClass) }

// Conversions and JS semantics.

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
