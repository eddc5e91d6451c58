package gojs

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
