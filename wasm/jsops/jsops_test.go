//go:build js && wasm

package jsops

import (
	"math"
	"os"
	"path/filepath"
	"syscall/js"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops"
)

// loadTF requires tfjs-core and its cpu backend from the repository's
// node_modules (the test binary runs under Node with go_js_wasm_exec, whose
// wasm_exec_node.js exposes require). The cpu backend is synchronous, so
// the test needs no event loop; the wasm backend is covered by the JS tests.
func loadTF(t *testing.T) js.Value {
	t.Helper()
	req := js.Global().Get("require")
	if req.Type() != js.TypeFunction {
		t.Skip("no require: not running under Node")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	nm := filepath.Join(wd, "..", "..", "node_modules", "@tensorflow")
	if _, err := os.Stat(nm); err != nil {
		t.Skipf("no node_modules (run npm ci): %v", err)
	}
	tf := req.Invoke(filepath.Join(nm, "tfjs-core"))
	req.Invoke(filepath.Join(nm, "tfjs-backend-cpu"))
	tf.Call("setBackend", "cpu")
	return tf
}

func near(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			t.Fatalf("%s[%d] = %v, want %v (all %v)", what, i, got[i], want[i], got)
		}
	}
}

func eqShape(t *testing.T, what string, got []int, want ...int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s shape %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s shape %v, want %v", what, got, want)
		}
	}
}

func TestOpsAgainstTFJSCPU(t *testing.T) {
	tf := loadTF(t)
	o, err := New(tf)
	if err != nil {
		t.Fatal(err)
	}
	// Every shape inferred in Go is checked against tf's (a panic here).
	checkShapes = true
	defer func() { checkShapes = false }()
	numTensors := func() int { return tf.Call("memory").Get("numTensors").Int() }
	before := numTensors()

	var all []ops.Tensor
	k := func(x ops.Tensor) ops.Tensor { all = append(all, x); return x }
	a := k(o.Tensor([]float32{1, 2, 3, 4, 5, 6}, 2, 3))
	b := k(o.Tensor([]float32{1, 0, 0, 1, 1, 1}, 3, 2))
	bias := k(o.Tensor([]float32{10, 20}, 2))
	eqShape(t, "a", o.Shape(a), 2, 3)
	near(t, "data", o.Data(a), []float32{1, 2, 3, 4, 5, 6})

	mm := k(o.MatMul(a, b, false, false))
	eqShape(t, "matMul", o.Shape(mm), 2, 2)
	near(t, "matMul", o.Data(mm), []float32{4, 5, 10, 11})
	mmT := k(o.MatMul(a, a, false, true))
	near(t, "matMul^T", o.Data(mmT), []float32{14, 32, 32, 77})
	fm := k(o.FusedMatMul(a, b, bias))
	near(t, "fused", o.Data(fm), []float32{14, 25, 20, 31})

	row := k(o.Tensor([]float32{1, 1, 1}, 3))
	near(t, "add", o.Data(k(o.Add(a, row))), []float32{2, 3, 4, 5, 6, 7})
	near(t, "sub", o.Data(k(o.Sub(a, row))), []float32{0, 1, 2, 3, 4, 5})
	near(t, "mul", o.Data(k(o.Mul(a, a))), []float32{1, 4, 9, 16, 25, 36})
	col := k(o.Tensor([]float32{1, 2}, 2, 1))
	bc := k(o.Mul(col, row))
	eqShape(t, "broadcast", o.Shape(bc), 2, 3)
	near(t, "broadcast", o.Data(bc), []float32{1, 1, 1, 2, 2, 2})
	eqShape(t, "broadcast rank", o.Shape(k(o.Add(k(o.Reshape(a, 1, 2, 3)), col))), 1, 2, 3)
	near(t, "sigmoid", o.Data(k(o.Sigmoid(k(o.Tensor([]float32{0}, 1))))), []float32{0.5})
	near(t, "rsqrt", o.Data(k(o.Rsqrt(k(o.Tensor([]float32{4, 16}, 2))))), []float32{0.5, 0.25})
	sm := o.Data(k(o.Softmax(k(o.Tensor([]float32{0, 0, 1, 1}, 2, 2)))))
	near(t, "softmax", sm, []float32{0.5, 0.5, 0.5, 0.5})
	mean := k(o.Mean(a, -1, true))
	eqShape(t, "mean", o.Shape(mean), 2, 1)
	near(t, "mean", o.Data(mean), []float32{2, 5})
	near(t, "mean0", o.Data(k(o.Mean(a, 0, false))), []float32{2.5, 3.5, 4.5})
	r := k(o.Reshape(a, 3, -1))
	eqShape(t, "reshape", o.Shape(r), 3, 2)
	tr := k(o.Transpose(a, 1, 0))
	eqShape(t, "transpose", o.Shape(tr), 3, 2)
	near(t, "transpose", o.Data(tr), []float32{1, 4, 2, 5, 3, 6})
	sl := k(o.Slice(a, []int{0, 1}, []int{-1, 2}))
	near(t, "slice", o.Data(sl), []float32{2, 3, 5, 6})
	eqShape(t, "slice", o.Shape(sl), 2, 2)
	eqShape(t, "short slice", o.Shape(k(o.Slice(a, []int{1}, []int{1}))), 1, 3)
	eqShape(t, "transpose 3", o.Shape(k(o.Transpose(k(o.Reshape(a, 1, 2, 3)), 2, 0, 1))), 3, 1, 2)
	eqShape(t, "mean 3", o.Shape(k(o.Mean(k(o.Reshape(a, 1, 2, 3)), 1, false))), 1, 3)
	eqShape(t, "fused", o.Shape(fm), 2, 2)
	eqShape(t, "matMul 2x1", o.Shape(k(o.MatMul(a, k(o.Tensor([]float32{1, 2, 3}, 3, 1)), false, false))), 2, 1)
	eqShape(t, "matMul a^T", o.Shape(k(o.MatMul(a, col, true, false))), 3, 1)
	eqShape(t, "matMul b^T", o.Shape(k(o.MatMul(a, k(o.Tensor([]float32{1, 2, 3}, 1, 3)), false, true))), 2, 1)
	bm := k(o.MatMul(k(o.Reshape(a, 1, 2, 3)), k(o.Reshape(a, 1, 2, 3)), false, true))
	eqShape(t, "batchMatMul", o.Shape(bm), 1, 2, 2)
	near(t, "batchMatMul", o.Data(bm), []float32{14, 32, 32, 77})
	if got := numTensors(); got != before+len(all) {
		t.Fatalf("numTensors %d, want %d", got, before+len(all))
	}
	o.Dispose(append(all, nil)...)
	if got := numTensors(); got != before {
		t.Fatalf("after Dispose numTensors %d, want %d", got, before)
	}
}
