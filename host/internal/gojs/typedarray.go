package gojs

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// ArrayBuffer is a JS ArrayBuffer over a Go byte slice (no copy: typed
// arrays made on it alias the slice).
//
// A buffer can be detached, as by ArrayBuffer.prototype.transfer or
// structuredClone's transfer list: it then has byteLength 0, every view of
// it has length 0, and it drops its slice so that the Go GC can free the
// memory although the guest may keep referring to the buffer (syscall/js
// refs can stay alive indefinitely).
type ArrayBuffer struct {
	Object
	data     []byte
	detached bool
	onDetach []func(old []byte)
}

// NewArrayBuffer wraps data.
func NewArrayBuffer(data []byte) *ArrayBuffer { return &ArrayBuffer{data: data} }

// Bytes returns the buffer's memory (nil once detached).
func (b *ArrayBuffer) Bytes() []byte { return b.data }

// Detached reports whether the buffer has been detached.
func (b *ArrayBuffer) Detached() bool { return b.detached }

// OnDetach registers f to run, with the memory the buffer had, when the
// buffer is detached. It is for Go holders that alias the memory (a tensor
// made from a view without copying) and must copy what they still need
// before the buffer lets go of it; f runs on the goroutine that detaches
// (the runtime's). On an already detached buffer OnDetach does nothing.
func (b *ArrayBuffer) OnDetach(f func(old []byte)) {
	if !b.detached {
		b.onDetach = append(b.onDetach, f)
	}
}

// Detach detaches the buffer and returns the memory it held, which the
// buffer no longer references. Detaching twice returns nil the second time.
func (b *ArrayBuffer) Detach() []byte {
	if b.detached {
		return nil
	}
	old, hooks := b.data, b.onDetach
	b.data, b.onDetach, b.detached = nil, nil, true
	for _, f := range hooks {
		f(old)
	}
	return old
}

// transfer implements ArrayBuffer.prototype.transfer(newLength): a new
// buffer with the contents (cut or zero-extended to newLength) and b
// detached. When the length is kept the memory moves without a copy.
func (b *ArrayBuffer) transfer(args []Value) (Value, error) {
	if b.detached {
		return nil, &Exception{NewTypeError("Cannot perform ArrayBuffer.prototype.transfer on a detached ArrayBuffer")}
	}
	n := len(b.data)
	if len(args) > 0 && args[0] != nil {
		f := ToNumber(args[0])
		if math.IsNaN(f) {
			f = 0
		}
		if f < 0 || f > maxBufferBytes {
			return nil, &Exception{newErrorOf(RangeErrorClass, "Invalid array buffer length")}
		}
		n = int(f)
	}
	old := b.Detach()
	if n == len(old) {
		return NewArrayBuffer(old), nil
	}
	data := make([]byte, n)
	copy(data, old)
	return NewArrayBuffer(data), nil
}

// maxBufferBytes bounds buffers the guest may allocate on the host (a
// RangeError beyond), so a bad length cannot make the host run out of memory
// in one allocation.
const maxBufferBytes = 1 << 31

// TypedKind is the element type of a TypedArray.
type TypedKind int

// The typed array kinds.
const (
	Int8 TypedKind = iota
	Uint8
	Uint8Clamped
	Int16
	Uint16
	Int32
	Uint32
	Float32
	Float64
	numKinds
)

var kindNames = [numKinds]string{"Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array",
	"Uint16Array", "Int32Array", "Uint32Array", "Float32Array", "Float64Array"}
var kindSizes = [numKinds]int{1, 1, 1, 2, 2, 4, 4, 4, 8}

// String is the JS constructor name, e.g. "Float32Array".
func (k TypedKind) String() string {
	if k < 0 || k >= numKinds {
		return fmt.Sprintf("TypedKind(%d)", int(k))
	}
	return kindNames[k]
}

// Size is the element size in bytes.
func (k TypedKind) Size() int { return kindSizes[k] }

// TypedArray is a JS typed array: a view of length elements of one kind at
// byteOffset into an ArrayBuffer.
type TypedArray struct {
	Object
	kind   TypedKind
	buf    *ArrayBuffer
	offset int
	length int
}

// NewTypedArray makes a view like `new Kind(buffer, byteOffset, length)`;
// it fails, as JS throws a RangeError, when the view is misaligned or out of
// bounds.
func NewTypedArray(kind TypedKind, buf *ArrayBuffer, byteOffset, length int) (*TypedArray, error) {
	sz := kind.Size()
	if byteOffset < 0 || byteOffset%sz != 0 {
		return nil, &Exception{newErrorOf(RangeErrorClass, fmt.Sprintf("start offset of %s should be a multiple of %d", kind, sz))}
	}
	if length < 0 || byteOffset+length*sz > len(buf.data) {
		return nil, &Exception{newErrorOf(RangeErrorClass, fmt.Sprintf("invalid %s length %d", kind, length))}
	}
	return &TypedArray{kind: kind, buf: buf, offset: byteOffset, length: length}, nil
}

// NewUint8Array wraps b without copying.
func NewUint8Array(b []byte) *TypedArray {
	return &TypedArray{kind: Uint8, buf: NewArrayBuffer(b), length: len(b)}
}

// NewFloat32Array wraps f without copying (the ArrayBuffer aliases f).
func NewFloat32Array(f []float32) *TypedArray {
	var b []byte
	if len(f) > 0 {
		b = unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
	}
	return &TypedArray{kind: Float32, buf: NewArrayBuffer(b), length: len(f)}
}

// NewTypedArrayOf allocates a zeroed array of n elements.
func NewTypedArrayOf(kind TypedKind, n int) *TypedArray {
	return &TypedArray{kind: kind, buf: NewArrayBuffer(make([]byte, n*kind.Size())), length: n}
}

// Kind returns the element type.
func (t *TypedArray) Kind() TypedKind { return t.kind }

// Len is the JS .length (elements): 0 once the buffer is detached.
func (t *TypedArray) Len() int {
	if t.buf.detached {
		return 0
	}
	return t.length
}

// Buffer is the JS .buffer.
func (t *TypedArray) Buffer() *ArrayBuffer { return t.buf }

// ByteOffset is the JS .byteOffset: 0 once the buffer is detached.
func (t *TypedArray) ByteOffset() int {
	if t.buf.detached {
		return 0
	}
	return t.offset
}

// Bytes returns the viewed memory (aliases the buffer).
func (t *TypedArray) Bytes() []byte {
	if t.buf.detached {
		return nil
	}
	return t.buf.data[t.offset : t.offset+t.length*t.kind.Size() : t.offset+t.length*t.kind.Size()]
}

// Float32s returns the elements of a Float32Array as a slice aliasing its
// memory. It panics for another kind or if the memory is not 4-byte aligned.
func (t *TypedArray) Float32s() []float32 {
	if t.kind != Float32 {
		panic("gojs: Float32s on " + t.kind.String())
	}
	b := t.Bytes()
	if len(b) == 0 {
		return []float32{}
	}
	p := unsafe.Pointer(&b[0])
	if uintptr(p)%4 != 0 {
		panic("gojs: Float32Array memory is not 4-byte aligned")
	}
	return unsafe.Slice((*float32)(p), t.length)
}

// Int32s returns the elements of an Int32Array as an aliasing slice.
func (t *TypedArray) Int32s() []int32 {
	if t.kind != Int32 {
		panic("gojs: Int32s on " + t.kind.String())
	}
	b := t.Bytes()
	if len(b) == 0 {
		return []int32{}
	}
	p := unsafe.Pointer(&b[0])
	if uintptr(p)%4 != 0 {
		panic("gojs: Int32Array memory is not 4-byte aligned")
	}
	return unsafe.Slice((*int32)(p), t.length)
}

// At returns element i as a number.
func (t *TypedArray) At(i int) float64 {
	b := t.buf.data[t.offset+i*t.kind.Size():]
	switch t.kind {
	case Int8:
		return float64(int8(b[0]))
	case Uint8, Uint8Clamped:
		return float64(b[0])
	case Int16:
		return float64(int16(binary.LittleEndian.Uint16(b)))
	case Uint16:
		return float64(binary.LittleEndian.Uint16(b))
	case Int32:
		return float64(int32(binary.LittleEndian.Uint32(b)))
	case Uint32:
		return float64(binary.LittleEndian.Uint32(b))
	case Float32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	case Float64:
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	return math.NaN()
}

// toInt32 is JS ToInt32 (modular).
func toInt32(f float64) uint32 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return uint32(int64(math.Mod(math.Trunc(f), 4294967296)))
}

// SetAt stores f at element i with JS conversion rules.
func (t *TypedArray) SetAt(i int, f float64) {
	b := t.buf.data[t.offset+i*t.kind.Size():]
	switch t.kind {
	case Int8, Uint8:
		b[0] = byte(toInt32(f))
	case Uint8Clamped:
		switch {
		case math.IsNaN(f) || f <= 0:
			b[0] = 0
		case f >= 255:
			b[0] = 255
		default:
			b[0] = byte(math.RoundToEven(f))
		}
	case Int16, Uint16:
		binary.LittleEndian.PutUint16(b, uint16(toInt32(f)))
	case Int32, Uint32:
		binary.LittleEndian.PutUint32(b, toInt32(f))
	case Float32:
		binary.LittleEndian.PutUint32(b, math.Float32bits(float32(f)))
	case Float64:
		binary.LittleEndian.PutUint64(b, math.Float64bits(f))
	}
}

func typedArrayProp(t *TypedArray, name string) Value {
	switch name {
	case "length":
		return float64(t.Len())
	case "byteLength":
		return float64(t.Len() * t.kind.Size())
	case "byteOffset":
		return float64(t.ByteOffset())
	case "buffer":
		return t.buf
	case "BYTES_PER_ELEMENT":
		return float64(t.kind.Size())
	case "subarray":
		return NewFunc("subarray", func(_ Value, args []Value) (Value, error) {
			b, e := sliceRange(t.Len(), args)
			return &TypedArray{kind: t.kind, buf: t.buf, offset: t.ByteOffset() + b*t.kind.Size(), length: e - b}, nil
		})
	case "slice":
		return NewFunc("slice", func(_ Value, args []Value) (Value, error) {
			b, e := sliceRange(t.Len(), args)
			sz := t.kind.Size()
			data := append([]byte(nil), t.Bytes()[b*sz:e*sz]...)
			return &TypedArray{kind: t.kind, buf: NewArrayBuffer(data), length: e - b}, nil
		})
	case "set":
		return NewFunc("set", func(_ Value, args []Value) (Value, error) {
			off := 0
			if len(args) > 1 {
				off = ToInt(args[1])
			}
			var src Value
			if len(args) > 0 {
				src = args[0]
			}
			return nil, t.setFrom(src, off)
		})
	case "fill":
		return NewFunc("fill", func(_ Value, args []Value) (Value, error) {
			var v float64
			if len(args) > 0 {
				v = ToNumber(args[0])
			}
			b, e := sliceRange(t.Len(), args[min(1, len(args)):])
			for i := b; i < e; i++ {
				t.SetAt(i, v)
			}
			return t, nil
		})
	}
	return nil
}

// setFrom implements TypedArray.prototype.set(src, offset).
func (t *TypedArray) setFrom(src Value, off int) error {
	rangeErr := &Exception{newErrorOf(RangeErrorClass, "offset is out of bounds")}
	switch s := src.(type) {
	case *TypedArray:
		if off < 0 || off+s.Len() > t.Len() {
			return rangeErr
		}
		if s.kind == t.kind || (s.kind.Size() == 1 && t.kind.Size() == 1 && t.kind != Uint8Clamped) {
			copy(t.Bytes()[off*t.kind.Size():], s.Bytes())
			return nil
		}
		vals := make([]float64, s.Len()) // copy first: the two views may overlap
		for i := range vals {
			vals[i] = s.At(i)
		}
		for i, v := range vals {
			t.SetAt(off+i, v)
		}
		return nil
	case *Array:
		if off < 0 || off+len(s.Elems) > t.Len() {
			return rangeErr
		}
		for i, e := range s.Elems {
			t.SetAt(off+i, ToNumber(e))
		}
		return nil
	}
	return &Exception{NewTypeError("invalid argument to TypedArray.prototype.set")}
}

// typedArrayClass returns the constructor for kind:
// new K(length) | new K(typedArrayOrArray) | new K(buffer[, byteOffset[, length]]).
func typedArrayClass(kind TypedKind) *Function {
	f := &Function{Name: kind.String(), Prototype: &Object{}}
	f.Construct = func(args []Value) (Value, error) {
		var a0 Value
		if len(args) > 0 {
			a0 = args[0]
		}
		switch x := a0.(type) {
		case nil:
			return NewTypedArrayOf(kind, 0), nil
		case float64:
			if x < 0 || x != math.Trunc(x) || x*float64(kind.Size()) > maxBufferBytes {
				return nil, &Exception{newErrorOf(RangeErrorClass, "Invalid typed array length: "+NumberToString(x))}
			}
			return NewTypedArrayOf(kind, int(x)), nil
		case *ArrayBuffer:
			if x.detached {
				return nil, &Exception{NewTypeError("Cannot perform Construct on a detached ArrayBuffer")}
			}
			off := 0
			if len(args) > 1 && args[1] != nil {
				off = ToInt(args[1])
			}
			var n int
			if len(args) > 2 && args[2] != nil {
				n = ToInt(args[2])
			} else {
				rest := len(x.data) - off
				if rest < 0 || rest%kind.Size() != 0 {
					return nil, &Exception{newErrorOf(RangeErrorClass, "byte length of "+kind.String()+" should be a multiple of "+NumberToString(float64(kind.Size())))}
				}
				n = rest / kind.Size()
			}
			return NewTypedArray(kind, x, off, n)
		case *TypedArray:
			t := NewTypedArrayOf(kind, x.Len())
			return t, t.setFrom(x, 0)
		case *Array:
			t := NewTypedArrayOf(kind, len(x.Elems))
			return t, t.setFrom(x, 0)
		}
		return NewTypedArrayOf(kind, 0), nil
	}
	f.HasInstance = func(v Value) bool {
		t, ok := v.(*TypedArray)
		return ok && t.kind == kind
	}
	f.Set("BYTES_PER_ELEMENT", kind.Size())
	f.Freeze()
	return f
}

var arrayBufferClass *Function

func newArrayBufferClass() *Function {
	f := &Function{Name: "ArrayBuffer", Prototype: &Object{}}
	f.Construct = func(args []Value) (Value, error) {
		n := 0
		if len(args) > 0 {
			n = ToInt(args[0])
		}
		if n < 0 || n > maxBufferBytes {
			return nil, &Exception{newErrorOf(RangeErrorClass, "Invalid array buffer length")}
		}
		return NewArrayBuffer(make([]byte, n)), nil
	}
	f.HasInstance = func(v Value) bool { _, ok := v.(*ArrayBuffer); return ok }
	f.Set("isView", NewFunc("isView", func(_ Value, args []Value) (Value, error) {
		if len(args) == 0 {
			return false, nil
		}
		_, ok := args[0].(*TypedArray)
		return ok, nil
	}))
	f.Freeze()
	return f
}

// typedArrayClasses are shared, frozen constructors.
var typedArrayClasses [numKinds]*Function
