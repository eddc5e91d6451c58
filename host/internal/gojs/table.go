package gojs

import (
	"math"
)

// Predefined ids, as in wasm_exec.js. They are never freed.
const (
	idNaN = iota
	idZero
	idNull
	idTrue
	idFalse
	idGlobal
	idGo
	numPredefined
)

const nanHead = 0x7FF80000

// Type flags in the high word of a boxed reference.
const (
	flagNone     = 0
	flagObject   = 1
	flagString   = 2
	flagSymbol   = 3
	flagFunction = 4
)

// valueTable maps JS values the guest holds references to onto ids: the
// same value always has the same id (js.Value.Equal compares refs), each
// store counts a reference and finalizeRef releases one; a freed id is
// reused, predefined ids (0-6) never are.
type valueTable struct {
	values []Value
	refs   []int64 // -1: predefined, never freed
	ids    map[any]uint32
	pool   []uint32
}

func (t *valueTable) init(global, goObj *Object) {
	t.values = []Value{math.NaN(), float64(0), Null, true, false, global, goObj}
	t.refs = []int64{-1, -1, -1, -1, -1, -1, -1}
	t.ids = map[any]uint32{float64(0): idZero, Null: idNull, true: idTrue, false: idFalse, global: idGlobal, goObj: idGo}
	t.pool = nil
}

// ref encodes v as the 64-bit representation stored in guest memory,
// taking a reference when v needs an id.
func (t *valueTable) ref(v Value) uint64 {
	v = normalize(v)
	switch x := v.(type) {
	case nil:
		return 0
	case float64:
		if math.IsNaN(x) {
			return nanHead << 32
		}
		if x != 0 {
			return math.Float64bits(x)
		}
	}
	id, ok := t.ids[v]
	if !ok {
		if n := len(t.pool); n > 0 {
			id = t.pool[n-1]
			t.pool = t.pool[:n-1]
			t.values[id] = v
			t.refs[id] = 0
		} else {
			id = uint32(len(t.values))
			t.values = append(t.values, v)
			t.refs = append(t.refs, 0)
		}
		t.ids[v] = id
	}
	if t.refs[id] >= 0 {
		t.refs[id]++
	}
	var flag uint64
	switch v.(type) {
	case string:
		flag = flagString
	case *Function:
		flag = flagFunction
	case nullType, bool, float64:
		flag = flagNone
	default:
		flag = flagObject
	}
	return (nanHead|flag)<<32 | uint64(id)
}

// value decodes a stored representation.
func (t *valueTable) value(bits uint64) Value {
	if bits == 0 {
		return nil
	}
	f := math.Float64frombits(bits)
	if !math.IsNaN(f) {
		return f
	}
	id := uint32(bits)
	if int(id) < len(t.values) {
		return t.values[id]
	}
	return nil
}

// release drops one reference to id.
func (t *valueTable) release(id uint32) {
	if int(id) >= len(t.refs) || t.refs[id] < 0 || t.refs[id] == 0 {
		return
	}
	t.refs[id]--
	if t.refs[id] == 0 {
		delete(t.ids, t.values[id])
		t.values[id] = nil
		t.pool = append(t.pool, id)
	}
}

// ID returns the id the guest currently uses for v and its reference count
// (ok=false if the guest holds no reference). For tests and diagnostics.
func (rt *Runtime) ID(v Value) (id uint32, refs int64, ok bool) {
	id, ok = rt.table.ids[normalize(v)]
	if !ok {
		return 0, 0, false
	}
	return id, rt.table.refs[id], true
}

// LiveRefs is the number of non-predefined ids in use.
func (rt *Runtime) LiveRefs() int {
	return len(rt.table.values) - numPredefined - len(rt.table.pool)
}
