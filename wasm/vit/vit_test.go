package vit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

var testdata = filepath.Join("..", "..", "testdata")

var photos = []string{"astronaut.png", "chelsea.png", "coffee.png"}

// fixture models and the golden embeddings each must reproduce.
var fixtures = []struct{ model, golden string }{
	{"tiny-f32", "embed-tiny-f32.json"},
	{"tiny-f16", "embed-tiny-f16.json"},
	{"tiny-fullclip-f32", "embed-tiny-fullclip-f32.json"},
	{"b32l2-f16", "embed-b32l2-f16.json"},
}

func openModel(t testing.TB, o ops.Ops, name string) *Model {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(testdata, "models", name+".safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := LoadFile(o, f, nil)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return m
}

// openTiny opens the tiny F32 fixture for tests that call Load with their
// own get function, and infers its config.
func openTiny(t testing.TB) (*safetensors.File, weights.Config) {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(testdata, "models", "tiny-f32.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cfg, err := weights.ConfigFrom(f.Header, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f, cfg
}

func readGolden(t testing.TB, name string) map[string][]float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	var g map[string][]float32
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func readPixels(t testing.TB, size int, photo string) []float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "golden", "pixels-"+strconv.Itoa(size), photo+".f32"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4*3*size*size {
		t.Fatalf("%s: %d bytes, want %d", photo, len(b), 4*3*size*size)
	}
	px := make([]float32, len(b)/4)
	for i := range px {
		px[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return px
}

func compare(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	var dot, gg, ww, maxAbs float64
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		dot += g * w
		gg += g * g
		ww += w * w
		maxAbs = math.Max(maxAbs, math.Abs(g-w))
	}
	cos := dot / math.Sqrt(gg*ww)
	t.Logf("%s: cosine %.8f, max abs diff %.2e", what, cos, maxAbs)
	if cos < 0.99999 || maxAbs > 1e-4 {
		t.Errorf("%s: cosine %.7f (want >= 0.99999), max abs diff %.2e (want <= 1e-4)", what, cos, maxAbs)
	}
	if math.Abs(math.Sqrt(gg)-1) > 1e-5 {
		t.Errorf("%s: norm %.7f, want 1", what, math.Sqrt(gg))
	}
}

// TestFixtures feeds the golden pixels to every fixture model, one image at a
// time and as a batch of three, and compares with the golden embeddings.
func TestFixtures(t *testing.T) {
	for _, o := range []ops.Ops{native.New(0), spelled{native.New(0)}, leftOps{native.New(0)}} {
		testFixtures(t, o)
	}
}

// spelled hides the backend's fused kernels (ops.Fused), so the graph
// spells them with the op list, as on tfjs.
type spelled struct{ ops.Ops }

// The fused kernels give the embeddings of their spelling, bit for bit, at
// batch 1 and 3, on every fixture.
func TestFusedIsSpelled(t *testing.T) {
	o := native.New(2)
	if ops.FusedOps(o) == nil {
		t.Fatal("native.Ops has no fused kernels")
	}
	for _, fx := range fixtures {
		fused, plain := openModel(t, o, fx.model), openModel(t, spelled{o}, fx.model)
		s := fused.Config().ImageSize
		var batch []float32
		for _, p := range photos {
			batch = append(batch, readPixels(t, s, p)...)
		}
		for _, n := range []int{1, len(photos)} {
			a, err := fused.Forward(batch[:n*3*s*s], n)
			if err != nil {
				t.Fatal(err)
			}
			b, err := plain.Forward(batch[:n*3*s*s], n)
			if err != nil {
				t.Fatal(err)
			}
			for i := range a {
				if !slices.Equal(a[i], b[i]) {
					t.Errorf("%s batch %d image %d: fused %v... spelled %v...", fx.model, n, i, a[i][:4], b[i][:4])
				}
			}
		}
		fused.Dispose()
		plain.Dispose()
	}
}

// leftOps asks the graph for weights on the left (ops.LeftWeights), as
// tfjs-wasm does.
type leftOps struct{ ops.Ops }

func (leftOps) WeightsLeft() bool { return true }

func testFixtures(t *testing.T, o ops.Ops) {
	name := "right"
	if ops.WeightsLeft(o) {
		name = "left"
	}
	for _, fx := range fixtures {
		t.Run(name+"/"+fx.model, func(t *testing.T) {
			m := openModel(t, o, fx.model)
			defer m.Dispose()
			golden := readGolden(t, fx.golden)
			s := m.Config().ImageSize
			var batch []float32
			for _, p := range photos {
				px := readPixels(t, s, p)
				batch = append(batch, px...)
				got, err := m.Forward(px, 1)
				if err != nil {
					t.Fatal(err)
				}
				compare(t, p, got[0], golden["images/"+p])
			}
			got, err := m.Forward(batch, len(photos))
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range photos {
				compare(t, "batch/"+p, got[i], golden["images/"+p])
			}
		})
	}
}

// counting wraps an Ops and tracks live tensors, to prove Load and Forward
// release everything they create.
type counting struct {
	ops.Ops
	live atomic.Int64
	made atomic.Int64 // by Tensor
}

func (c *counting) track(t ops.Tensor) ops.Tensor { c.live.Add(1); return t }

func (c *counting) Tensor(v []float32, s ...int) ops.Tensor {
	c.made.Add(1)
	return c.track(c.Ops.Tensor(v, s...))
}
func (c *counting) Dispose(ts ...ops.Tensor) {
	for _, t := range ts {
		if t != nil {
			c.live.Add(-1)
		}
	}
	c.Ops.Dispose(ts...)
}
func (c *counting) MatMul(a, b ops.Tensor, ta, tb bool) ops.Tensor {
	return c.track(c.Ops.MatMul(a, b, ta, tb))
}
func (c *counting) FusedMatMul(a, b, bias ops.Tensor) ops.Tensor {
	return c.track(c.Ops.FusedMatMul(a, b, bias))
}
func (c *counting) Add(a, b ops.Tensor) ops.Tensor  { return c.track(c.Ops.Add(a, b)) }
func (c *counting) Sub(a, b ops.Tensor) ops.Tensor  { return c.track(c.Ops.Sub(a, b)) }
func (c *counting) Mul(a, b ops.Tensor) ops.Tensor  { return c.track(c.Ops.Mul(a, b)) }
func (c *counting) Sigmoid(x ops.Tensor) ops.Tensor { return c.track(c.Ops.Sigmoid(x)) }
func (c *counting) Rsqrt(x ops.Tensor) ops.Tensor   { return c.track(c.Ops.Rsqrt(x)) }
func (c *counting) Softmax(x ops.Tensor) ops.Tensor { return c.track(c.Ops.Softmax(x)) }
func (c *counting) Reshape(x ops.Tensor, s ...int) ops.Tensor {
	return c.track(c.Ops.Reshape(x, s...))
}
func (c *counting) Transpose(x ops.Tensor, p ...int) ops.Tensor {
	return c.track(c.Ops.Transpose(x, p...))
}
func (c *counting) Slice(x ops.Tensor, b, s []int) ops.Tensor {
	return c.track(c.Ops.Slice(x, b, s))
}
func (c *counting) DepthwiseConv2d(x, f ops.Tensor) ops.Tensor {
	return c.track(c.Ops.DepthwiseConv2d(x, f))
}
func (c *counting) Mean(x ops.Tensor, axis int, keep bool) ops.Tensor {
	return c.track(c.Ops.Mean(x, axis, keep))
}

// fusedCounting is counting with the backend's fused kernels.
type fusedCounting struct{ *counting }

func (c fusedCounting) Linear(a, w, bias ops.Tensor, gated bool, residual ops.Tensor) ops.Tensor {
	return c.track(c.Ops.(ops.Fused).Linear(a, w, bias, gated, residual))
}
func (c fusedCounting) NormRows(x ops.Tensor, eps float32) ops.Tensor {
	return c.track(c.Ops.(ops.Fused).NormRows(x, eps))
}
func (c fusedCounting) Attention(q, k, v ops.Tensor, images, heads int) ops.Tensor {
	return c.track(c.Ops.(ops.Fused).Attention(q, k, v, images, heads))
}

func TestNoLeaks(t *testing.T) {
	for _, mode := range []string{"spelled", "fused", "left"} {
		c := &counting{Ops: native.New(1)}
		var o ops.Ops = c
		switch mode {
		case "fused":
			o = fusedCounting{c}
		case "left":
			o = leftOps{c}
		}
		t.Run(mode, func(t *testing.T) { testNoLeaks(t, c, o) })
	}
}

func testNoLeaks(t *testing.T, c *counting, o ops.Ops) {
	m := openModel(t, o, "tiny-f32")
	kept := c.live.Load()
	if want := int64(len(m.all())); kept != want {
		t.Errorf("after load %d live tensors, want the model's %d", kept, want)
	}
	px := readPixels(t, 64, "chelsea.png")
	for i := 0; i < 3; i++ {
		if _, err := m.Forward(px, 1); err != nil {
			t.Fatal(err)
		}
		if got := c.live.Load(); got != kept {
			t.Fatalf("forward %d: %d live tensors, want %d", i, got, kept)
		}
	}
	// A failing forward (wrong pixel count) also leaks nothing.
	if _, err := m.Forward(px[:10], 1); !errors.Is(err, ErrInput) {
		t.Fatalf("short pixels: %v, want ErrInput", err)
	}
	m.Dispose()
	if got := c.live.Load(); got != 0 {
		t.Errorf("after dispose %d live tensors", got)
	}
	if _, err := m.Forward(px, 1); err == nil {
		t.Error("forward after dispose succeeded")
	}
}

// failing panics in its failAt-th Softmax, as tfjs throws when it runs out
// of memory mid-graph.
type failing struct {
	*counting
	softmaxes, failAt int
}

func (f *failing) Softmax(x ops.Tensor) ops.Tensor {
	if f.softmaxes++; f.softmaxes == f.failAt {
		panic("out of memory")
	}
	return f.counting.Softmax(x)
}

// failingFused panics in its failAt-th Attention.
type failingFused struct {
	fusedCounting
	attentions, failAt int
}

func (f *failingFused) Attention(q, k, v ops.Tensor, images, heads int) ops.Tensor {
	if f.attentions++; f.attentions == f.failAt {
		panic("out of memory")
	}
	return f.fusedCounting.Attention(q, k, v, images, heads)
}

// failingTensor panics in its failAt-th Tensor call.
type failingTensor struct {
	*counting
	tensors, failAt int
}

func (f *failingTensor) Tensor(v []float32, s ...int) ops.Tensor {
	if f.tensors++; f.tensors == f.failAt {
		panic("out of memory")
	}
	return f.counting.Tensor(v, s...)
}

// A load that fails when the backend refuses a tensor (the first, a
// linear layer's weight or bias, the last) leaks nothing.
func TestLoadFailureNoLeaks(t *testing.T) {
	f, cfg := openTiny(t)
	for _, left := range []bool{false, true} {
		wrap := func(o ops.Ops) ops.Ops {
			if left {
				return leftOps{o}
			}
			return o
		}
		full, err := Load(wrap(native.New(1)), cfg, weights.NewDecoder(f.Header, f.ReadAt).Get)
		if err != nil {
			t.Fatal(err)
		}
		n := len(full.all()) // the tensors a load creates
		full.Dispose()
		for _, at := range []int{1, 2, 7, 8, 9, 10, n - 1, n} {
			c := &counting{Ops: native.New(1)}
			fo := &failingTensor{counting: c, failAt: at}
			_, err := Load(wrap(fo), cfg, weights.NewDecoder(f.Header, f.ReadAt).Get)
			if err == nil || !strings.Contains(err.Error(), "out of memory") {
				t.Errorf("left=%v: Tensor %d failing: %v", left, at, err)
			}
			if got := c.live.Load(); got != 0 {
				t.Errorf("left=%v: Tensor %d failing: %d live tensors after the failed load", left, at, got)
			}
		}
	}
}

// TestLoadUploadsOnlyFinalWeights: Load hands the backend the finished
// weights and nothing else (no stored tensor, no op on the way: on
// tfjs-wasm every such temporary would stay in a heap that never shrinks).
func TestLoadUploadsOnlyFinalWeights(t *testing.T) {
	f, cfg := openTiny(t)
	c := &counting{Ops: native.New(1)}
	m, err := Load(c, cfg, weights.NewDecoder(f.Header, f.ReadAt).Get)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Dispose()
	kept := int64(len(m.all()))
	if made, live := c.made.Load(), c.live.Load(); made != kept || live != kept {
		t.Fatalf("the load created %d tensors with Tensor, %d in all; the model keeps %d", made, live, kept)
	}
}

// A forward that fails inside a layer, or is handed a count whose pixel size
// wraps around, returns an error and leaks no tensors.
func TestForwardFailureNoLeaks(t *testing.T) {
	c := &counting{Ops: native.New(1)}
	m := openModel(t, c, "tiny-f32")
	defer m.Dispose()
	kept := c.live.Load()
	px := readPixels(t, 64, "chelsea.png")
	f := &failing{counting: c, failAt: 2} // the second layer's attention
	m.o = f
	if _, err := m.Forward(px, 1); err == nil || !strings.Contains(err.Error(), "out of memory") {
		t.Errorf("forward with a failing op: %v", err)
	}
	if got := c.live.Load(); got != kept {
		t.Errorf("after a failed forward %d live tensors, want %d", got, kept)
	}
	// The same with the fused kernels, failing in the second attention.
	m.o = &failingFused{fusedCounting: fusedCounting{c}, failAt: 2}
	if _, err := m.Forward(px, 1); err == nil || !strings.Contains(err.Error(), "out of memory") {
		t.Errorf("forward with a failing fused op: %v", err)
	}
	if got := c.live.Load(); got != kept {
		t.Errorf("after a failed fused forward %d live tensors, want %d", got, kept)
	}
	m.o = c
	// (1<<52+1) * 3*64*64 wraps to 3*64*64 in an int.
	if _, err := m.Forward(px, 1<<52+1); !errors.Is(err, ErrInput) {
		t.Errorf("wrapping image count: %v, want ErrInput", err)
	}
	if got := c.live.Load(); got != kept {
		t.Errorf("after a bad count %d live tensors, want %d", got, kept)
	}
}

func TestLoadErrors(t *testing.T) {
	f, cfg := openTiny(t)
	c := &counting{Ops: native.New(1)}
	get := weights.NewDecoder(f.Header, f.ReadAt).Get
	missing := errors.New("gone")
	// A tensor that cannot be read, late in the load order.
	_, err := Load(c, cfg, func(name string, buf []float32) ([]float32, []int, error) {
		if name == keyProj {
			return nil, nil, missing
		}
		return get(name, buf)
	})
	if !errors.Is(err, missing) {
		t.Errorf("missing tensor: %v", err)
	}
	// A tensor with the wrong shape.
	_, err = Load(c, cfg, func(name string, buf []float32) ([]float32, []int, error) {
		if name == layerKey(1, "mlp.fc1.bias") {
			return make([]float32, 3), []int{3}, nil
		}
		return get(name, buf)
	})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("wrong shape: %v", err)
	}
	if got := c.live.Load(); got != 0 {
		t.Errorf("failed loads left %d live tensors", got)
	}
	bad := cfg
	bad.Activation = "gelu_new"
	if _, err := Load(c, bad, get); !errors.Is(err, ErrUnsupported) {
		t.Errorf("activation: %v", err)
	}
}

func TestTensorsMatchesWeights(t *testing.T) {
	cfg := weights.Preset("b32")
	want := weights.VisionTensors(cfg)
	got := Tensors(cfg)
	if len(got) != len(want) {
		t.Fatalf("Tensors lists %d names, weights expects %d", len(got), len(want))
	}
	for _, n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s not a vision tensor", n)
		}
	}
}

// Load asks for the tensors exactly in Tensors' order (the browser loader
// relies on it to stream them in that order).
func TestLoadOrderIsTensors(t *testing.T) {
	f, cfg := openTiny(t)
	o := native.New(1)
	var asked []string
	get := weights.NewDecoder(f.Header, f.ReadAt).Get
	m, err := Load(o, cfg, func(name string, buf []float32) ([]float32, []int, error) {
		asked = append(asked, name)
		return get(name, buf)
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Dispose()
	if !slices.Equal(asked, Tensors(cfg)) {
		t.Errorf("Load asked for\n%v\nTensors lists\n%v", asked, Tensors(cfg))
	}
}

// copying is a backend whose Tensor copies its values (as tfjs does).
type copying struct{ *native.Ops }

func (c copying) Tensor(v []float32, s ...int) ops.Tensor {
	return c.Ops.Tensor(slices.Clone(v), s...)
}

// TestLoadCopiesReusesBuffers: with LoadOptions.Copies (buffers reused
// between weights) the model computes exactly what the default load does.
func TestLoadCopiesReusesBuffers(t *testing.T) {
	f, cfg := openTiny(t)
	o := native.New(1)
	want, err := Load(o, cfg, weights.NewDecoder(f.Header, f.ReadAt).Get)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Dispose()
	got, err := LoadWith(copying{o}, cfg, weights.NewDecoder(f.Header, f.ReadAt).Get, LoadOptions{Copies: true, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Dispose()
	px := readPixels(t, cfg.ImageSize, "chelsea.png")
	a, err := want.Forward(px, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := got.Forward(px, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a[0], b[0]) {
		t.Fatalf("embeddings differ:\n%v\n%v", a[0][:4], b[0][:4])
	}
}

func TestPatchify(t *testing.T) {
	// 2 images of 3x4x4 with patch 2: check a few positions by hand.
	s, p, n := 4, 2, 2
	px := make([]float32, n*3*s*s)
	for i := range px {
		px[i] = float32(i)
	}
	out := patchify(px, n, s, p)
	cols := 3*p*p + 1
	tok := (s/p)*(s/p) + 1
	if len(out) != n*tok*cols {
		t.Fatalf("len %d", len(out))
	}
	// Image 1, class row: zeros then a 1.
	row := out[tok*cols : tok*cols+cols]
	for j, v := range row {
		if (j == cols-1) != (v == 1) || (j != cols-1 && v != 0) {
			t.Fatalf("class row %v", row)
		}
	}
	// Image 1, patch (gy=1, gx=0), channel 2, ky=1, kx=1 -> pixel (y=3, x=1).
	got := out[(tok+1+2)*cols+(2*p+1)*p+1]
	want := px[3*s*s+2*s*s+3*s+1]
	if got != want {
		t.Errorf("patch value %v, want %v", got, want)
	}
}

// randomModel loads a model of cfg's real size with seeded random weights
// (normal, std 0.02, as Hugging Face initialises CLIP; LayerNorm gains 1).
func randomModel(tb testing.TB, o ops.Ops, cfg weights.Config) *Model {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := weights.VisionTensors(cfg)
	m, err := Load(o, cfg, func(name string, buf []float32) ([]float32, []int, error) {
		shape := shapes[name]
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := buf[:0]
		if cap(v) < n {
			v = make([]float32, n)
		}
		v = v[:n]
		gain := strings.Contains(name, "norm") && strings.HasSuffix(name, ".weight")
		for i := range v {
			if gain {
				v[i] = 1
			} else {
				v[i] = float32(rng.NormFloat64() * 0.02)
			}
		}
		return v, shape, nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

var sink [][]float32

// BenchmarkForward times a ViT-B/32 forward pass (real size, random weights)
// on the native kernels, per batch, and reports ms per image and GFLOP/s.
func BenchmarkForward(b *testing.B) {
	cfg := weights.Preset("b32")
	for _, threads := range []int{1, 2} {
		o := native.New(threads)
		m := randomModel(b, o, cfg)
		for _, batch := range []int{1, 8} {
			b.Run(fmt.Sprintf("threads=%d/batch=%d", threads, batch), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(3, 4))
				px := make([]float32, batch*3*cfg.ImageSize*cfg.ImageSize)
				for i := range px {
					px[i] = float32(rng.NormFloat64())
				}
				// Steady state, as the peers are measured (after 3 warm-up
				// runs): the pool holds the activations' buffers, the
				// patch embedding is packed on its third use
				// (ops/native/prepack.go), and the load's garbage goes.
				for i := 0; i < 3; i++ {
					if _, err := m.Forward(px, batch); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					out, err := m.Forward(px, batch)
					if err != nil {
						b.Fatal(err)
					}
					sink = out
				}
				perImage := float64(b.Elapsed().Nanoseconds()) / float64(b.N*batch)
				b.ReportMetric(perImage/1e6, "ms/image")
				b.ReportMetric(FLOPs(cfg)/perImage, "GFLOP/s")
			})
		}
		m.Dispose()
	}
}

// TestLoadGetterIgnoringBuf: a Getter may return its own storage although
// buf could hold the tensor (weights.Getter allows either); the model is
// the same as from a getter that fills buf, and the getter's storage is
// left as it was (the build transforms values in place).
func TestLoadGetterIgnoringBuf(t *testing.T) {
	f, cfg := openTiny(t)
	o := native.New(1)
	defer o.Close()
	dec := weights.NewDecoder(f.Header, f.ReadAt)
	want, err := Load(o, cfg, dec.Get)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Dispose()
	stored := map[string][]float32{}
	shapes := map[string][]int{}
	for _, name := range Tensors(cfg) {
		v, shape, err := dec.Get(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		stored[name], shapes[name] = slices.Clone(v), shape
	}
	pristine := map[string][]float32{}
	for k, v := range stored {
		pristine[k] = slices.Clone(v)
	}
	got, err := Load(o, cfg, func(name string, _ []float32) ([]float32, []int, error) {
		return stored[name], shapes[name], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Dispose()
	px := readPixels(t, 64, "chelsea.png")
	a, err := want.Forward(px, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := got.Forward(px, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a[0], b[0]) {
		t.Errorf("a getter ignoring buf gives another model: %v... vs %v...", b[0][:4], a[0][:4])
	}
	for k, v := range stored {
		if !slices.Equal(v, pristine[k]) {
			t.Errorf("Load modified the getter's storage of %s", k)
		}
	}
}
