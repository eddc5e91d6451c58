package gojs

import (
	"errors"
	"math"
	"testing"
)

func TestNumberToString(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-1, "-1"}, {0.1, "0.1"}, {1.5, "1.5"},
		{100, "100"}, {1e20, "100000000000000000000"}, {1e21, "1e+21"}, {1.25e21, "1.25e+21"},
		{0.000001, "0.000001"}, {1e-7, "1e-7"}, {-2.5e-7, "-2.5e-7"}, {123.456, "123.456"},
		{math.MaxFloat64, "1.7976931348623157e+308"}, {5e-324, "5e-324"}, {math.NaN(), "NaN"},
		{math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"}, {float64(float32(0.1)), "0.10000000149011612"},
	} {
		if got := NumberToString(tc.f); got != tc.want {
			t.Errorf("NumberToString(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestStringsAndConversions(t *testing.T) {
	if n := UTF16Len("héllo😀"); n != 7 {
		t.Errorf("UTF16Len = %d, want 7", n)
	}
	if v := GetProperty("a😀", "length"); v != float64(3) {
		t.Errorf("string length = %v", v)
	}
	if s := FromUTF16(UTF16("a😀b")); s != "a😀b" {
		t.Errorf("UTF-16 round trip %q", s)
	}
	for v, want := range map[Value]float64{"42": 42, " 1.5 ": 1.5, "": 0, true: 1, Null: 0, "0x10": 16} {
		if got := ToNumber(v); got != want {
			t.Errorf("ToNumber(%#v) = %v, want %v", v, got, want)
		}
	}
	if !math.IsNaN(ToNumber(nil)) || !math.IsNaN(ToNumber("abc")) || !math.IsNaN(ToNumber(&Object{})) {
		t.Error("ToNumber should give NaN")
	}
	if Truthy(0.0) || Truthy("") || Truthy(nil) || Truthy(Null) || !Truthy(&Object{}) || !Truthy("0") {
		t.Error("Truthy")
	}
	if got := ToString(NewArray(1, nil, "x", NewArray(2, 3))); got != "1,,x,2,3" {
		t.Errorf("array ToString %q", got)
	}
	if got := ToString(NewTypeError("bad")); got != "TypeError: bad" {
		t.Errorf("error ToString %q", got)
	}
	if TypeOf(NewFunc("f", nil)) != "function" || TypeOf(Null) != "object" || TypeOf(nil) != "undefined" || TypeOf(3) != "number" {
		t.Error("TypeOf")
	}
}

func TestObjectsAndClasses(t *testing.T) {
	o := NewObject(map[string]Value{"b": 1, "a": "x"})
	if o.Get("b") != float64(1) || o.Get("missing") != nil {
		t.Errorf("Get: %v %v", o.Get("b"), o.Get("missing"))
	}
	o.Set("c", int64(3))
	o.Delete("a")
	if keys := o.Keys(); len(keys) != 2 || keys[0] != "b" || keys[1] != "c" {
		t.Errorf("keys %v", keys)
	}
	o.Dynamic = func(name string) (Value, bool) { return name + "!", name == "dyn" }
	if o.Get("dyn") != "dyn!" || o.Get("other") != nil {
		t.Error("Dynamic")
	}

	animal := NewClass("Animal", func(args []Value) (Value, error) {
		return NewObject(map[string]Value{"name": arg0(args)}), nil
	})
	animal.Prototype.Method("speak", func(this Value, _ []Value) (Value, error) {
		return ToString(GetProperty(this, "name")) + " speaks", nil
	})
	dog := NewClass("Dog", func(args []Value) (Value, error) { return NewObject(map[string]Value{"name": arg0(args)}), nil })
	dog.Extends = animal
	rt := &Runtime{}
	d, err := rt.Construct(dog, "rex")
	if err != nil {
		t.Fatal(err)
	}
	if !InstanceOf(d, dog) || !InstanceOf(d, animal) || !InstanceOf(d, objectClass) || InstanceOf(NewObject(nil), dog) {
		t.Error("instanceof chain")
	}
	speak := GetProperty(d, "speak")
	if v, err := rt.Invoke(speak, d); err != nil || v != "rex speaks" {
		t.Errorf("inherited method: %v %v", v, err)
	}
	if _, err := rt.Invoke(dog, nil); err == nil {
		t.Error("calling a class without new must throw")
	}
	if _, err := rt.Invoke(o, nil); !errors.Is(err, ErrNotFunction) {
		t.Errorf("calling an object must throw a TypeError matching ErrNotFunction: %v", err)
	}
	var exc *Exception
	if _, err := rt.Invoke(NewFunc("f", func(Value, []Value) (Value, error) { return nil, &Exception{"raw"} }), nil); !errors.As(err, &exc) || exc.Value != "raw" {
		t.Errorf("thrown value: %v", err)
	}
	if !InstanceOf(NewTypeError("x"), ErrorClass) || InstanceOf(NewError("x"), TypeErrorClass) || !IsError(NewError("y")) {
		t.Error("error classes")
	}
	// Builtins are frozen: a guest cannot change them for other runtimes.
	ErrorClass.Set("polluted", true)
	if ErrorClass.Get("polluted") != nil {
		t.Error("builtin class not frozen")
	}
	sentinel := errors.New("sentinel")
	ev := ErrorValue(sentinel).(*Object)
	if !errors.Is(&Exception{ev}, sentinel) || ev.Get("message") != "sentinel" {
		t.Error("ErrorValue keeps the Go error for errors.Is")
	}
}

func TestTypedArrays(t *testing.T) {
	f := []float32{1, 2, 3, 4}
	ta := NewFloat32Array(f)
	if ta.Len() != 4 || GetProperty(ta, "byteLength") != float64(16) || GetProperty(ta, "BYTES_PER_ELEMENT") != float64(4) {
		t.Error("Float32Array props")
	}
	SetProperty(ta, "1", 0.5)
	if f[1] != 0.5 || ta.Float32s()[1] != 0.5 || GetProperty(ta, "1") != 0.5 {
		t.Error("Float32Array aliases the Go slice")
	}
	rt := &Runtime{}
	sub, err := rt.Invoke(GetProperty(ta, "subarray"), ta, 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	st := sub.(*TypedArray)
	if st.Len() != 2 || st.ByteOffset() != 4 || st.Buffer() != ta.Buffer() || st.Float32s()[1] != 3 {
		t.Errorf("subarray len %d off %d", st.Len(), st.ByteOffset())
	}
	// new Uint8Array(buffer, 4, 4) views the bytes of f[1].
	u8, err := rt.Construct(typedArrayClasses[Uint8], ta.Buffer(), 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	if b := u8.(*TypedArray).Bytes(); b[3] != 0x3f || b[2] != 0 {
		t.Errorf("bytes of 0.5: %v", b)
	}
	if _, err := rt.Construct(typedArrayClasses[Float32], ta.Buffer(), 2); err == nil {
		t.Error("misaligned Float32Array must throw a RangeError")
	}
	if _, err := rt.Construct(typedArrayClasses[Float32], ta.Buffer(), 0, 5); err == nil {
		t.Error("out-of-bounds view must throw")
	}
	if _, err := rt.Construct(typedArrayClasses[Float64], float64(1<<30)); err == nil {
		t.Error("an 8 GiB Float64Array must throw a RangeError")
	}
	if _, err := rt.Construct(arrayBufferClass, float64(1<<40)); err == nil {
		t.Error("a 1 TiB ArrayBuffer must throw a RangeError")
	}
	// Conversions on store.
	c := NewTypedArrayOf(Uint8Clamped, 3)
	for i, v := range []float64{-5, 300, 2.5} {
		c.SetAt(i, v)
	}
	if b := c.Bytes(); b[0] != 0 || b[1] != 255 || b[2] != 2 {
		t.Errorf("Uint8Clamped %v", b)
	}
	i8 := NewTypedArrayOf(Int8, 1)
	i8.SetAt(0, 200)
	if i8.At(0) != -56 {
		t.Errorf("Int8 wrap %v", i8.At(0))
	}
	// set() with overlap copies first.
	u := NewUint8Array([]byte{1, 2, 3, 4})
	if _, err := rt.Invoke(GetProperty(u, "set"), u, GetProperty(u, "subarray").(*Function).mustCall(u, 0, 3), 1); err != nil {
		t.Fatal(err)
	}
	if b := u.Bytes(); b[0] != 1 || b[1] != 1 || b[2] != 2 || b[3] != 3 {
		t.Errorf("overlapping set %v", b)
	}
	// Converting construction.
	f64, _ := rt.Construct(typedArrayClasses[Float64], NewArray(1.5, "2", nil))
	if x := f64.(*TypedArray); x.At(0) != 1.5 || x.At(1) != 2 || !math.IsNaN(x.At(2)) {
		t.Error("Float64Array from array")
	}
	if !InstanceOf(u, typedArrayClasses[Uint8]) || InstanceOf(u, typedArrayClasses[Float32]) || !InstanceOf(u, objectClass) {
		t.Error("typed array instanceof")
	}
}

func (f *Function) mustCall(this Value, args ...Value) Value {
	v, err := f.Call(this, args)
	if err != nil {
		panic(err)
	}
	return v
}

func TestValueTable(t *testing.T) {
	var tab valueTable
	g, goObj := &Object{}, &Object{}
	tab.init(g, goObj)
	if tab.ref(nil) != 0 {
		t.Error("undefined must be all-zero bits")
	}
	if tab.ref(1.5) != math.Float64bits(1.5) {
		t.Error("numbers are stored as floats")
	}
	if r := tab.ref(0); r != nanHead<<32|idZero {
		t.Errorf("0 is id 1: %x", r)
	}
	if r := tab.ref(math.NaN()); r != nanHead<<32 {
		t.Errorf("NaN is id 0: %x", r)
	}
	if r := tab.ref(g); r != (nanHead|flagObject)<<32|idGlobal {
		t.Errorf("global: %x", r)
	}
	a := tab.ref("s")
	if a>>32 != nanHead|flagString || uint32(a) < numPredefined {
		t.Errorf("string ref %x", a)
	}
	if b := tab.ref("s"); b != a {
		t.Error("same string, same id")
	}
	fn := tab.ref(NewFunc("f", nil))
	if fn>>32 != nanHead|flagFunction {
		t.Errorf("function flag %x", fn)
	}
	if tab.value(a) != "s" || tab.value(0) != nil || tab.value(math.Float64bits(2)) != 2.0 {
		t.Error("decode")
	}
	id := uint32(a)
	tab.release(id)
	if tab.value(a) != "s" {
		t.Error("one reference left")
	}
	tab.release(id)
	if tab.value(a) != nil || len(tab.pool) != 1 {
		t.Error("freed after the last release")
	}
	if r := tab.ref("other"); uint32(r) != id {
		t.Errorf("freed id %d not reused (got %d)", id, uint32(r))
	}
	for i := uint32(0); i < numPredefined; i++ {
		tab.release(i)
		tab.release(i)
	}
	if tab.values[idGlobal] != Value(g) || tab.values[idTrue] != true || len(tab.pool) != 0 {
		t.Error("predefined ids must never be freed")
	}
}

func TestPromisesWithoutGuest(t *testing.T) {
	rt := &Runtime{}
	var log []string
	p, resolve, _ := rt.NewPromise()
	q := p.Then(func(v Value) (Value, error) {
		log = append(log, "then "+ToString(v))
		return nil, errors.New("fail")
	}, nil)
	r := q.Then(nil, func(v Value) (Value, error) {
		log = append(log, "catch "+ToString(GetProperty(v, "message")))
		return "recovered", nil
	})
	resolve("x")
	log = append(log, "sync")
	if err := rt.drain(); err != nil {
		t.Fatal(err)
	}
	if len(log) != 3 || log[0] != "sync" || log[1] != "then x" || log[2] != "catch fail" {
		t.Errorf("order %v", log)
	}
	if r.State() != Fulfilled || r.Result() != "recovered" || q.State() != Rejected {
		t.Errorf("states %v %v", r.State(), q.State())
	}
	// Resolving with a promise adopts its state; Promise.all.
	inner, innerResolve, _ := rt.NewPromise()
	outer := rt.ResolvedPromise(nil)
	outer2, res2, _ := rt.NewPromise()
	res2(inner)
	all := rt.All(outer, outer2, 7)
	_ = rt.drain()
	if outer2.State() != Pending || all.State() != Pending {
		t.Error("adopted promise settled early")
	}
	innerResolve(5)
	_ = rt.drain()
	if outer2.Result() != float64(5) || all.State() != Fulfilled {
		t.Fatalf("adoption: %v %v", outer2.Result(), all.State())
	}
	if arr := all.Result().(*Array); len(arr.Elems) != 3 || arr.Elems[1] != float64(5) || arr.Elems[2] != float64(7) {
		t.Errorf("all %v", ToString(arr))
	}
	// The JS-facing Promise constructor and statics.
	pc := rt.promiseClass()
	exec := NewFunc("exec", func(_ Value, a []Value) (Value, error) { return nil, errors.New("executor threw") })
	pv, err := rt.Construct(pc, exec)
	if err != nil {
		t.Fatal(err)
	}
	_ = rt.drain()
	if pp := pv.(*Promise); pp.State() != Rejected || ToString(GetProperty(pp.Result(), "message")) != "executor threw" {
		t.Error("executor error rejects")
	}
	if !InstanceOf(pv, pc) {
		t.Error("instanceof Promise")
	}
}
