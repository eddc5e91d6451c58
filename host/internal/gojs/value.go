package gojs

import (
	"sort"
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
