// Package vit is the CLIP vision transformer (Hugging Face
// CLIPVisionModelWithProjection followed by L2 normalisation), written once
// over the op list of package ops so that the same graph runs on TensorFlow.js
// (browsers, Node), on the wazero host's Go kernels, and natively in tests.
//
// The graph is planned for the backends it runs on:
//   - linear weights are transposed once at load to [in, out], because
//     tfjs-wasm's fused matMul is wrong with transposeB and slow without
//     XNNPACK's fast path;
//   - Q, K and V are one fused matMul against a concatenated [D, 3D] weight,
//     with the attention scale folded into the Q columns;
//   - the LayerNorm gain and bias in front of a linear layer are folded into
//     that layer's weight and bias, so a LayerNorm costs 7 kernels, not 9;
//   - the patch convolution (stride = kernel) is a matrix product: Go lays the
//     pixels out as patches, with an extra column that selects the class
//     embedding for each image's first token, so one matMul yields the whole
//     token sequence.
package vit

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/weights"
)

// ErrUnsupported reports a checkpoint this graph cannot run (e.g. an
// activation other than quick_gelu).
var ErrUnsupported = errors.New("vit: unsupported model")

// ErrInput reports pixels that do not match the model.
var ErrInput = errors.New("vit: bad input")

// Hugging Face key names.
const (
	prefix     = "vision_model."
	keyClass   = prefix + "embeddings.class_embedding"
	keyPatch   = prefix + "embeddings.patch_embedding.weight"
	keyPos     = prefix + "embeddings.position_embedding.weight"
	keyPreLN   = prefix + "pre_layrnorm." // sic, as Hugging Face spells it
	keyPostLN  = prefix + "post_layernorm."
	keyProj    = "visual_projection.weight"
	quickGELUk = 1.702
)

func layerKey(i int, rest string) string {
	return fmt.Sprintf("%sencoder.layers.%d.%s", prefix, i, rest)
}

// Tensors lists the Hugging Face tensor names Load asks for, in the order it
// asks for them (weights.VisionTensorNames: build follows that order).
func Tensors(cfg weights.Config) []string { return weights.VisionTensorNames(cfg) }

type layer struct {
	qkvW, qkvB ops.Tensor // [D, 3D], [3D]: ln1 folded in, Q scaled
	outW, outB ops.Tensor // [D, D], [D]
	fc1W, fc1B ops.Tensor // [D, M], [M]: ln2 folded in
	fc2W, fc2B ops.Tensor // [M, D], [D]
}

// Model is a loaded CLIP vision tower. Its methods are not safe for
// concurrent use: callers serialise Forward calls.
type Model struct {
	o      ops.Ops
	cfg    weights.Config
	embedW ops.Tensor // [3*p*p+1, D]: patch weights, then the class embedding
	pos    ops.Tensor // [T, D]
	preG   ops.Tensor // [D]
	preB   ops.Tensor // [D]
	layers []layer
	projW  ops.Tensor // [D, proj]: post-LN folded in
	projB  ops.Tensor // [proj]: from the post-LN bias
	eps    ops.Tensor // scalar
	geluK  ops.Tensor // scalar 1.702
}

// Config returns the model's configuration.
func (m *Model) Config() weights.Config { return m.cfg }

func (m *Model) all() []ops.Tensor {
	ts := []ops.Tensor{m.embedW, m.pos, m.preG, m.preB, m.projW, m.projB, m.eps, m.geluK}
	for _, l := range m.layers {
		ts = append(ts, l.qkvW, l.qkvB, l.outW, l.outB, l.fc1W, l.fc1B, l.fc2W, l.fc2B)
	}
	return ts
}

// Dispose releases the model's tensors. The model is unusable afterwards.
func (m *Model) Dispose() {
	if m.o == nil {
		return
	}
	m.o.Dispose(m.all()...)
	m.o = nil
}

// tape collects intermediate tensors so they can be released together.
type tape struct {
	o  ops.Ops
	ts []ops.Tensor
}

func (t *tape) k(x ops.Tensor) ops.Tensor { t.ts = append(t.ts, x); return x }
func (t *tape) free()                     { t.o.Dispose(t.ts...); t.ts = t.ts[:0] }

func checkConfig(cfg weights.Config) error {
	switch {
	case cfg.HiddenSize <= 0, cfg.NumLayers <= 0, cfg.NumHeads <= 0, cfg.IntermediateSize <= 0,
		cfg.PatchSize <= 0, cfg.ImageSize <= 0, cfg.ProjectionDim <= 0:
		return fmt.Errorf("%w: incomplete config %+v", ErrUnsupported, cfg)
	case cfg.HiddenSize%cfg.NumHeads != 0:
		return fmt.Errorf("%w: width %d not divisible by %d heads", ErrUnsupported, cfg.HiddenSize, cfg.NumHeads)
	case cfg.ImageSize%cfg.PatchSize != 0:
		return fmt.Errorf("%w: image size %d not a multiple of patch %d", ErrUnsupported, cfg.ImageSize, cfg.PatchSize)
	case cfg.Activation != "" && cfg.Activation != "quick_gelu":
		return fmt.Errorf("%w: activation %q (only quick_gelu, as in OpenAI CLIP)", ErrUnsupported, cfg.Activation)
	}
	return nil
}

// Load builds the model from stored Hugging Face tensors. get returns each
// tensor named by Tensors(cfg) as stored (float32, linear weights
// [out, in]); Load owns and disposes what get returns. On error nothing is
// leaked.
func Load(o ops.Ops, cfg weights.Config, get func(name string) (ops.Tensor, error)) (m *Model, err error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.LayerNormEps == 0 {
		cfg.LayerNormEps = 1e-5
	}
	m = &Model{o: o, cfg: cfg}
	shapes := weights.VisionTensors(cfg)
	raw := &tape{o: o} // tensors from get, and load-time temporaries
	defer func() {
		if r := recover(); r != nil {
			if le, ok := r.(loadError); ok {
				err = le.err
			} else {
				err = fmt.Errorf("vit: load: %v", r)
			}
		}
		raw.free()
		if err != nil {
			o.Dispose(m.all()...)
			m = nil
		}
	}()
	load := func(name string) ops.Tensor {
		t, gerr := get(name)
		if gerr != nil {
			panic(loadError{fmt.Errorf("vit: load %s: %w", name, gerr)})
		}
		raw.k(t)
		want, got := shapes[name], o.Shape(t)
		if !slices.Equal(want, got) {
			panic(loadError{fmt.Errorf("%w: %s has shape %v, want %v", ErrUnsupported, name, got, want)})
		}
		return t
	}
	m.build(raw, load)
	return m, nil
}

type loadError struct{ err error }

// build derives the run-time weights. Temporaries go on raw; results on m.
func (m *Model) build(raw *tape, load func(string) ops.Tensor) {
	o, cfg := m.o, m.cfg
	d, p := cfg.HiddenSize, cfg.PatchSize
	hd := d / cfg.NumHeads
	m.eps = o.Tensor([]float32{float32(cfg.LayerNormEps)})
	m.geluK = o.Tensor([]float32{quickGELUk})

	// Patch conv weight [D,3,p,p] -> [3pp, D], then the class row.
	class := raw.k(o.Reshape(load(keyClass), 1, d))
	patch := raw.k(o.Transpose(raw.k(o.Reshape(load(keyPatch), d, 3*p*p)), 1, 0))
	m.embedW = o.Concat([]ops.Tensor{patch, class}, 0)
	m.pos = o.Reshape(load(keyPos), cfg.Patches()+1, d)
	m.preG = o.Reshape(load(keyPreLN+"weight"), d)
	m.preB = o.Reshape(load(keyPreLN+"bias"), d)

	scale := o.Tensor([]float32{float32(1 / math.Sqrt(float64(hd)))})
	defer o.Dispose(scale) // not on raw: raw is emptied after every layer
	m.layers = make([]layer, cfg.NumLayers)
	for i := range m.layers {
		l := &m.layers[i]
		key := func(s string) string { return layerKey(i, s) }
		g1, b1 := load(key("layer_norm1.weight")), load(key("layer_norm1.bias"))
		qW, qB := load(key("self_attn.q_proj.weight")), load(key("self_attn.q_proj.bias"))
		kW, kB := load(key("self_attn.k_proj.weight")), load(key("self_attn.k_proj.bias"))
		vW, vB := load(key("self_attn.v_proj.weight")), load(key("self_attn.v_proj.bias"))
		qW, qB = raw.k(o.Mul(qW, scale)), raw.k(o.Mul(qB, scale))
		w := raw.k(o.Transpose(raw.k(o.Concat([]ops.Tensor{qW, kW, vW}, 0)), 1, 0))
		b := raw.k(o.Concat([]ops.Tensor{qB, kB, vB}, 0))
		l.qkvW, l.qkvB = foldLayerNorm(o, raw, w, b, g1, b1)

		l.outW = o.Transpose(load(key("self_attn.out_proj.weight")), 1, 0)
		l.outB = o.Reshape(load(key("self_attn.out_proj.bias")), d)

		g2, b2 := load(key("layer_norm2.weight")), load(key("layer_norm2.bias"))
		w1 := raw.k(o.Transpose(load(key("mlp.fc1.weight")), 1, 0))
		l.fc1W, l.fc1B = foldLayerNorm(o, raw, w1, load(key("mlp.fc1.bias")), g2, b2)
		l.fc2W = o.Transpose(load(key("mlp.fc2.weight")), 1, 0)
		l.fc2B = o.Reshape(load(key("mlp.fc2.bias")), d)
		raw.free() // keep peak memory near one layer's temporaries
	}
	gp, bp := load(keyPostLN+"weight"), load(keyPostLN+"bias")
	proj := raw.k(o.Transpose(load(keyProj), 1, 0))
	m.projW, m.projB = foldLayerNorm(o, raw, proj, nil, gp, bp)
}

// foldLayerNorm folds LayerNorm gain g and bias beta (each [D]) into the
// linear layer that follows it: for y = (x̂·g + beta) W + b with W [D, N],
// y = x̂ (diag(g) W) + (beta W + b). bias may be nil (zero). The results are
// new tensors; the inputs stay on raw.
func foldLayerNorm(o ops.Ops, raw *tape, w, bias, g, beta ops.Tensor) (fw, fb ops.Tensor) {
	defer func() {
		if r := recover(); r != nil {
			o.Dispose(fw) // not yet the caller's: Load's cleanup cannot see it
			panic(r)
		}
	}()
	sh := o.Shape(w)
	d, n := sh[0], sh[1]
	fw = o.Mul(w, raw.k(o.Reshape(g, d, 1)))
	bw := raw.k(o.MatMul(raw.k(o.Reshape(beta, 1, d)), w, false, false))
	if bias == nil {
		// Not just Reshape(bw, n): tfjs-wasm's fused matMul checks the rank
		// of the bias's storage, which a reshape of the [1, n] product
		// keeps (rank 3), and throws. Add writes a fresh rank-1 tensor.
		zero := raw.k(o.Tensor(make([]float32, n), n))
		return fw, o.Add(raw.k(o.Reshape(bw, n)), zero)
	}
	return fw, o.Add(raw.k(o.Reshape(bw, n)), bias)
}

// Forward embeds n images given as n x 3 x S x S float32 CHW pixels
// (preprocessed as CLIPImageProcessor does) and returns n unit-length
// embeddings.
func (m *Model) Forward(pixels []float32, n int) (out [][]float32, err error) {
	if m.o == nil {
		return nil, errors.New("vit: model disposed")
	}
	s := m.cfg.ImageSize
	// Divide rather than multiply: a huge n must not wrap n*3*s*s around to
	// len(pixels).
	if per := 3 * s * s; n <= 0 || len(pixels)%per != 0 || len(pixels)/per != n {
		return nil, fmt.Errorf("%w: %d floats for %d images of 3x%dx%d", ErrInput, len(pixels), n, s, s)
	}
	t := &tape{o: m.o}
	defer func() {
		t.free()
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("vit: forward: %v", r)
		}
	}()
	proj := m.forward(t, pixels, n)
	data := m.o.Data(proj)
	return normalize(data, n, m.cfg.ProjectionDim), nil
}

func (m *Model) forward(t *tape, pixels []float32, n int) ops.Tensor {
	o, cfg := m.o, m.cfg
	d, heads := cfg.HiddenSize, cfg.NumHeads
	hd := d / heads
	tok := cfg.Patches() + 1
	rows := n * tok

	x := t.k(o.Tensor(patchify(pixels, n, cfg.ImageSize, cfg.PatchSize), rows, 3*cfg.PatchSize*cfg.PatchSize+1))
	h := t.k(o.MatMul(x, m.embedW, false, false))
	h = t.k(o.Reshape(h, n, tok, d))
	h = t.k(o.Add(h, m.pos))
	h = t.k(o.Reshape(h, rows, d))
	h = m.layerNorm(t, h, m.preG, m.preB)

	// Each layer's temporaries are freed at its end; the deferred free
	// releases them when an op panics mid-layer (Forward recovers).
	lt := &tape{o: o}
	defer lt.free()
	for i := range m.layers {
		l := &m.layers[i]
		a := m.layerNorm(lt, h, nil, nil)
		qkv := lt.k(o.FusedMatMul(a, l.qkvW, l.qkvB))
		// [n*T, 3D] -> [n, 3H, T, hd]: Q, K and V heads in one transpose.
		qkv = lt.k(o.Reshape(qkv, n, tok, 3*heads, hd))
		qkv = lt.k(o.Transpose(qkv, 0, 2, 1, 3))
		part := func(j int) ops.Tensor {
			s := lt.k(o.Slice(qkv, []int{0, j * heads, 0, 0}, []int{n, heads, tok, hd}))
			return lt.k(o.Reshape(s, n*heads, tok, hd))
		}
		q, k, v := part(0), part(1), part(2)
		scores := lt.k(o.MatMul(q, k, false, true)) // scale folded into Q
		probs := lt.k(o.Softmax(scores))
		ctx := lt.k(o.MatMul(probs, v, false, false))
		ctx = lt.k(o.Reshape(ctx, n, heads, tok, hd))
		ctx = lt.k(o.Transpose(ctx, 0, 2, 1, 3))
		ctx = lt.k(o.Reshape(ctx, rows, d))
		attn := lt.k(o.FusedMatMul(ctx, l.outW, l.outB))
		h1 := lt.k(o.Add(h, attn))

		b := m.layerNorm(lt, h1, nil, nil)
		f := lt.k(o.FusedMatMul(b, l.fc1W, l.fc1B))
		gate := lt.k(o.Sigmoid(lt.k(o.Mul(f, m.geluK))))
		g := lt.k(o.Mul(f, gate))
		mlp := lt.k(o.FusedMatMul(g, l.fc2W, l.fc2B))
		h = t.k(o.Add(h1, mlp))
		lt.free()
	}

	cls := t.k(o.Slice(t.k(o.Reshape(h, n, tok, d)), []int{0, 0, 0}, []int{n, 1, d}))
	cls = t.k(o.Reshape(cls, n, d))
	pooled := m.layerNorm(t, cls, nil, nil)
	return t.k(o.FusedMatMul(pooled, m.projW, m.projB))
}

// layerNorm normalises the rows of x [R, D]. g and beta may be nil when they
// have been folded into the next linear layer.
func (m *Model) layerNorm(t *tape, x, g, beta ops.Tensor) ops.Tensor {
	o := m.o
	mean := t.k(o.Mean(x, -1, true))
	dev := t.k(o.Sub(x, mean))
	variance := t.k(o.Mean(t.k(o.Mul(dev, dev)), -1, true))
	inv := t.k(o.Rsqrt(t.k(o.Add(variance, m.eps))))
	y := t.k(o.Mul(dev, inv))
	if g != nil {
		y = t.k(o.Add(t.k(o.Mul(y, g)), beta))
	}
	return y
}

// patchify lays out n CHW images as the token matrix [n*T, 3*p*p+1]: row 0
// of each image selects the class embedding (a single 1 in the last column);
// each following row is one patch, flattened in the conv weight's (c, ky, kx)
// order.
func patchify(pixels []float32, n, s, p int) []float32 {
	grid := s / p
	cols := 3*p*p + 1
	tok := grid*grid + 1
	out := make([]float32, n*tok*cols)
	for i := 0; i < n; i++ {
		img := pixels[i*3*s*s : (i+1)*3*s*s]
		base := i * tok * cols
		out[base+cols-1] = 1
		for gy := 0; gy < grid; gy++ {
			for gx := 0; gx < grid; gx++ {
				row := out[base+(1+gy*grid+gx)*cols:]
				for c := 0; c < 3; c++ {
					for ky := 0; ky < p; ky++ {
						src := img[c*s*s+(gy*p+ky)*s+gx*p:]
						copy(row[(c*p+ky)*p:(c*p+ky)*p+p], src[:p])
					}
				}
			}
		}
	}
	return out
}

// normalize splits data [n, dim] into rows scaled to unit L2 norm.
func normalize(data []float32, n, dim int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		row := make([]float32, dim)
		copy(row, data[i*dim:(i+1)*dim])
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		if ss > 0 {
			inv := 1 / math.Sqrt(ss)
			for j := range row {
				row[j] = float32(float64(row[j]) * inv)
			}
		}
		out[i] = row
	}
	return out
}

// FLOPs is the number of floating-point operations (multiply and add counted
// separately) of one image's forward pass through the matrix products, the
// figure GFLOP/s rates are quoted against (8.8e9 for ViT-B/32).
func FLOPs(cfg weights.Config) float64 {
	d, m := float64(cfg.HiddenSize), float64(cfg.IntermediateSize)
	t := float64(cfg.Patches() + 1)
	p := float64(cfg.PatchSize)
	embed := 2 * float64(cfg.Patches()) * 3 * p * p * d
	perLayer := 2*t*d*3*d + 2*t*t*d*2 + 2*t*d*d + 2*t*d*m*2
	return embed + float64(cfg.NumLayers)*perLayer + 2*d*float64(cfg.ProjectionDim)
}
