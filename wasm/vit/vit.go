// Package vit is the CLIP vision transformer (Hugging Face
// CLIPVisionModelWithProjection followed by L2 normalisation), written once
// over the op list of package ops so that the same graph runs on TensorFlow.js
// (browsers, Node), on the wazero host's Go kernels, and natively in tests.
//
// The graph is planned for the backends it runs on (tfjs-wasm above all,
// where every kernel call costs tens of microseconds and only XNNPACK's
// kernels use the thread pool):
//   - linear weights are transposed once at load to [in, out], because
//     tfjs-wasm's fused matMul is wrong with transposeB and slow without
//     XNNPACK's fast path;
//   - the residual stream is kept centred (zero mean per token): the
//     centring is folded into the weights of every layer that writes to it
//     (patch embedding, position embedding, attention output, fc2), so a
//     LayerNorm is x·rsqrt(mean(x²)+eps) — 4 kernels, the mean and eps one
//     fused matMul against a [D,1] column of 1/D — and its gain and bias are
//     folded into the linear layer that follows;
//   - attention runs every head of every image in two depthwise
//     convolutions (scores, then context; channels = images x heads), with
//     Q and K columns stored head-minor so that one image needs no transpose
//     but K's and the probabilities'; tfjs-wasm runs
//     them as XNNPACK grouped GEMMs on its threads, where its batched matMul
//     is a scalar loop on one thread (~20 % of the forward);
//   - quick_gelu's 1.702 is folded into fc1 (and its inverse into fc2), so
//     the activation is sigmoid(x)·x: 2 kernels;
//   - the last layer computes queries, output projection and MLP for the
//     class token only (the only row the output reads);
//   - the patch convolution (stride = kernel) is a matrix product: Go lays
//     the pixels out as patches, with an extra column that selects the class
//     embedding for each image's first token, so one matMul yields the whole
//     token sequence.
package vit

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/imgembed/imgembed/wasm/internal/derive"
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

// layer's weights are as commented for the default layout; on a backend
// that wants weights on the left (Model.left) each is transposed ([out,
// in]) and each bias is a column [out, 1].
type layer struct {
	qW, qB     ops.Tensor // [D, D], [D]: ln1 folded in, scaled, columns head-minor (ops.Fused: head-major)
	kW, kB     ops.Tensor // [D, D], [D]: ln1 folded in, columns head-minor (ops.Fused: head-major; left: no kB)
	vW, vB     ops.Tensor // [D, D], [D]: ln1 folded in (left: vB folded into outB)
	outW, outB ops.Tensor // [D, D], [D]: centred
	fc1W, fc1B ops.Tensor // [D, M], [M]: ln2 folded in, times 1.702
	fc2W, fc2B ops.Tensor // [M, D], [D]: divided by 1.702, centred
}

// Model is a loaded CLIP vision tower. Its methods are not safe for
// concurrent use: callers serialise Forward calls.
type Model struct {
	o      ops.Ops
	cfg    weights.Config
	embedW ops.Tensor // [3*p*p+1, D]: patch weights, then the class embedding; centred
	pos    ops.Tensor // [T, D]: centred
	preG   ops.Tensor // [D]
	preB   ops.Tensor // [D]
	layers []layer
	projW  ops.Tensor // [D, proj]: post-LN folded in
	projB  ops.Tensor // [proj]: from the post-LN bias
	epsB   ops.Tensor // [1]: the LayerNorm epsilon, as that product's bias
	// left: the backend wants weights on the left of its products
	// (ops.WeightsLeft): the weights are stored transposed, biases and
	// the pre-LN's gain and bias as columns, the position embeddings as
	// [D, 1, T], and forwardLeft runs the graph feature-major.
	left bool
}

// Config returns the model's configuration.
func (m *Model) Config() weights.Config { return m.cfg }

func (m *Model) all() []ops.Tensor {
	ts := []ops.Tensor{m.embedW, m.pos, m.preG, m.preB, m.projW, m.projB, m.epsB}
	for _, l := range m.layers {
		ts = append(ts, l.qW, l.qB, l.kW, l.kB, l.vW, l.vB, l.outW, l.outB, l.fc1W, l.fc1B, l.fc2W, l.fc2B)
	}
	// Those not created (yet, or at all: kB and vB in the left layout).
	return slices.DeleteFunc(ts, func(t ops.Tensor) bool { return t == nil })
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

// LoadOptions tune Load (see derive.Options).
type LoadOptions = derive.Options

// Load builds the model from stored Hugging Face tensors: get returns each
// tensor named by Tensors(cfg) as stored (float32, linear weights
// [out, in]). Every run-time weight is derived in Go from the stored
// values, one tensor at a time, and reaches the backend once, finished
// (ops.Tensor): the backend never holds a stored tensor or a temporary. On
// error nothing is leaked.
func Load(o ops.Ops, cfg weights.Config, get weights.Getter) (*Model, error) {
	return LoadWith(o, cfg, get, LoadOptions{})
}

// LoadWith is Load with options.
func LoadWith(o ops.Ops, cfg weights.Config, get weights.Getter, opts LoadOptions) (m *Model, err error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.LayerNormEps == 0 {
		cfg.LayerNormEps = 1e-5
	}
	m = &Model{o: o, cfg: cfg, left: ops.WeightsLeft(o)}
	defer func() {
		if r := recover(); r != nil {
			err = derive.Recover(r, "vit")
		}
		if err != nil {
			o.Dispose(m.all()...)
			m = nil
		}
	}()
	b := derive.NewBuilder(o, weights.VisionTensors(cfg), get, opts, "vit", ErrUnsupported)
	m.build(b)
	return m, nil
}

// build derives the run-time weights in Go, in the order of Tensors(cfg).
func (m *Model) build(b *derive.Builder) {
	o, cfg := m.o, m.cfg
	d, p, heads := cfg.HiddenSize, cfg.PatchSize, cfg.NumHeads
	hd := d / heads
	m.epsB = o.Tensor([]float32{float32(cfg.LayerNormEps)}, 1)

	// Patch conv weight [D,3,p,p] as [D, 3pp] -> [3pp, D], then the class
	// row; rows centred, as are the position embeddings, so the first
	// residual stream is centred. (Transposed when left.)
	class := b.Vec(keyClass)
	derive.CentreRows(class, d)
	k := 3 * p * p
	tok := cfg.Patches() + 1
	embed := b.Weight((k + 1) * d)
	patch := derive.Linear{W: b.Read(keyPatch, nil), Out: d, In: k, Centre: true, OutMajor: m.left, Threads: b.Threads}
	if m.left {
		// [D, 3pp+1]: the patch weights as stored, the class column last.
		patch.Write(embed, k+1, 0, nil)
		for c, v := range class {
			embed[c*(k+1)+k] = v
		}
		m.embedW = b.O.Tensor(embed, d, k+1)
		pos := b.Weight(tok * d) // embed's buffer when reused: after its Tensor
		stored := b.Read(keyPos, make([]float32, tok*d))
		derive.CentreRows(stored, d)
		for t := range tok {
			for c := range d {
				pos[c*tok+t] = stored[t*d+c]
			}
		}
		m.pos = b.O.Tensor(pos, d, 1, tok)
	} else {
		patch.Write(embed, d, 0, nil)
		copy(embed[k*d:], class)
		m.embedW = b.O.Tensor(embed, k+1, d)
		pos := b.Read(keyPos, b.Weight(tok*d))
		derive.CentreRows(pos, d)
		m.pos = b.O.Tensor(pos, tok, d)
	}
	vecShape := []int{d}
	if m.left {
		vecShape = []int{d, 1}
	}
	m.preG = b.O.Tensor(b.Vec(keyPreLN+"weight"), vecShape...)
	m.preB = b.O.Tensor(b.Vec(keyPreLN+"bias"), vecShape...)

	scale := float32(1 / math.Sqrt(float64(hd)))
	// Q and K columns head-minor: stored row (head h, e) is column e*H + h
	// (the depthwise convolutions' layout); head-major, as stored, for
	// ops.Fused's Attention.
	headMinor := func(r int) int { return (r%hd)*heads + r/hd }
	fused := !m.left && ops.FusedOps(o) != nil
	m.layers = make([]layer, cfg.NumLayers)
	for i := range m.layers {
		l := &m.layers[i]
		key := func(s string) string { return layerKey(i, s) }
		g1, b1 := b.Vec(key("layer_norm1.weight")), b.Vec(key("layer_norm1.bias"))
		ln1 := derive.Linear{Out: d, In: d, Gain: g1, Shift: b1, OutMajor: m.left}
		q, kk, v := ln1, ln1, ln1
		q.Scale = scale
		if !fused {
			q.Perm, kk.Perm = headMinor, headMinor
		}
		l.qW, l.qB = b.Linear(key("self_attn.q_proj"), q, true)
		out := derive.Linear{Out: d, In: d, Centre: true, OutMajor: m.left}
		if m.left {
			m.attentionWeightsLeft(b, l, key, kk, v, out)
		} else {
			l.kW, l.kB = b.Linear(key("self_attn.k_proj"), kk, true)
			l.vW, l.vB = b.Linear(key("self_attn.v_proj"), v, true)
			l.outW, l.outB = b.Linear(key("self_attn.out_proj"), out, true)
		}
		g2, b2 := b.Vec(key("layer_norm2.weight")), b.Vec(key("layer_norm2.bias"))
		mlp := cfg.IntermediateSize
		l.fc1W, l.fc1B = b.Linear(key("mlp.fc1"), derive.Linear{Out: mlp, In: d, Gain: g2, Shift: b2, Scale: quickGELUk, OutMajor: m.left}, true)
		l.fc2W, l.fc2B = b.Linear(key("mlp.fc2"), derive.Linear{Out: d, In: mlp, InScale: 1 / quickGELUk, Centre: true, OutMajor: m.left}, true)
	}
	gp, bp := b.Vec(keyPostLN+"weight"), b.Vec(keyPostLN+"bias")
	m.projW, m.projB = b.Linear(strings.TrimSuffix(keyProj, ".weight"),
		derive.Linear{Out: cfg.ProjectionDim, In: d, Gain: gp, Shift: bp, OutMajor: m.left}, false)
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
	if m.left {
		proj := m.forwardLeft(t, pixels, n) // [proj, n]
		return normalize(derive.Transpose(m.o.Data(proj), m.cfg.ProjectionDim, n), n, m.cfg.ProjectionDim), nil
	}
	proj := m.forward(t, pixels, n)
	data := m.o.Data(proj)
	return normalize(data, n, m.cfg.ProjectionDim), nil
}

func (m *Model) forward(t *tape, pixels []float32, n int) ops.Tensor {
	o, cfg := m.o, m.cfg
	d := cfg.HiddenSize
	tok := cfg.Patches() + 1
	rows := n * tok

	// Only the residual stream h outlives a stage (the embedding, each
	// layer): a stage's temporaries are freed at its end, so a forward's
	// memory does not grow with the depth. The deferred frees release
	// them when an op panics mid-stage (Forward recovers).
	st := &tape{o: o} // the current stage's temporaries
	defer st.free()
	ht := &tape{o: o} // h
	defer ht.free()
	kt := &tape{o: o} // a layer's h1, from its attention to its end
	defer kt.free()

	x := st.k(o.Tensor(patchify(pixels, n, cfg.ImageSize, cfg.PatchSize), rows, 3*cfg.PatchSize*cfg.PatchSize+1))
	h := st.k(o.MatMul(x, m.embedW, false, false))
	h = st.k(o.Reshape(h, n, tok, d))
	h = st.k(o.Add(h, m.pos))
	h = st.k(o.Reshape(h, rows, d))
	// Pre-LN with its own gain and bias (nothing to fold them into), then
	// centred again: the residual stream stays centred from here on.
	h = m.layerNorm(st, h)
	h = st.k(o.Add(st.k(o.Mul(h, m.preG)), m.preB))
	h = ht.k(o.Sub(h, st.k(o.Mean(h, -1, true))))
	st.free()

	last := len(m.layers) - 1
	for i := range m.layers {
		l := &m.layers[i]
		a := m.layerNorm(st, h)
		// Only the class token of the last layer reaches the output: there
		// the queries, the output projection and the MLP run on that one
		// row per image (keys and values still on every token): 6.6 % of
		// ViT-B/32's FLOPs.
		aq := a
		if i == last {
			aq = m.clsRows(st, a, n)
			h = m.clsRows(st, h, n)
		}
		ctx := m.attention(st, l, a, aq, n)
		h1 := kt.k(m.linear(kt, ctx, l.outW, l.outB, false, h))
		st.free() // the attention's temporaries, before the MLP makes its own

		b := m.layerNorm(st, h1)
		g := m.linear(st, b, l.fc1W, l.fc1B, true, nil) // 1.702·quick_gelu(b W1 + b1): the 1.702 in W1 and b1, its inverse in W2
		next := m.linear(st, g, l.fc2W, l.fc2B, false, h1)
		ht.free() // the previous h
		h = ht.k(next)
		st.free()
		kt.free()
	}

	pooled := m.layerNorm(st, h) // [n, D]: the class tokens
	return t.k(o.FusedMatMul(pooled, m.projW, m.projB))
}

// linear is a·w + bias, then y·sigmoid(y) when gated, then + residual
// (if not nil): one fused kernel where the backend has it (ops.Fused).
// The result is on t, except that with a residual it is the caller's.
func (m *Model) linear(t *tape, a, w, bias ops.Tensor, gated bool, residual ops.Tensor) ops.Tensor {
	o := m.o
	if f := ops.FusedOps(o); f != nil {
		y := f.Linear(a, w, bias, gated, residual)
		if residual == nil {
			return t.k(y)
		}
		return y
	}
	y := t.k(o.FusedMatMul(a, w, bias))
	if gated {
		y = t.k(o.Mul(y, t.k(o.Sigmoid(y))))
	}
	if residual == nil {
		return y
	}
	return o.Add(residual, y)
}

// clsRows returns the class-token rows [n, D] of n images' tokens x [n*T, D].
func (m *Model) clsRows(t *tape, x ops.Tensor, n int) ops.Tensor {
	o, d, tok := m.o, m.cfg.HiddenSize, m.cfg.Patches()+1
	if n == 1 {
		return t.k(o.Slice(x, []int{0, 0}, []int{1, d}))
	}
	c := t.k(o.Slice(t.k(o.Reshape(x, n, tok, d)), []int{0, 0, 0}, []int{n, 1, d}))
	return t.k(o.Reshape(c, n, d))
}

// attention is multi-head self-attention of n images' tokens a [n*T, D]
// (LayerNorm applied, not yet scaled) for the queries aq: either a itself or
// the class-token rows [n, D] (tq = 1 query per image). It returns the
// heads' context [n*tq, D] in (head, e) column order, ready for the output
// projection.
//
// Every head of every image is one channel c = i*H + h of two depthwise
// convolutions, so the whole batch is two kernels (no per-image Slice).
// With Q and K columns head-minor (q[t, e*H+h]):
//   - scores = depthwiseConv2d(Q as [1, tq, hd, n*H], K^T as [1, hd, n*H, T]):
//     channel c sums over e, one output per key j: [1, tq, 1, n*H*T], which
//     is [1, tq, n*H, T] for the softmax over keys;
//   - context = depthwiseConv2d(P^T as [1, tq, T, n*H], V as [1, T, n*H, hd]):
//     channel c sums over keys j: [1, tq, 1, n*D] = [tq, n, D].
//
// For one image, or one query per image, the Q and context layouts are
// plain reshapes.
func (m *Model) attention(t *tape, l *layer, a, aq ops.Tensor, n int) ops.Tensor {
	o, cfg := m.o, m.cfg
	d, heads := cfg.HiddenSize, cfg.NumHeads
	hd := d / heads
	tok := cfg.Patches() + 1
	tq := o.Shape(aq)[0] / n
	ch := n * heads
	// Q and K (and their layouts) are freed once the scores exist, V once
	// the context does: at batch 8 they are ten 1.2 MB activations.
	qk, vt := &tape{o: o}, &tape{o: o}
	defer qk.free()
	defer vt.free()
	q := qk.k(o.FusedMatMul(aq, l.qW, l.qB)) // scale folded in
	k := qk.k(o.FusedMatMul(a, l.kW, l.kB))
	v := vt.k(o.FusedMatMul(a, l.vW, l.vB))
	if fused := ops.FusedOps(o); fused != nil {
		return t.k(fused.Attention(q, k, v, n, heads))
	}
	var x, f, fv ops.Tensor
	if n == 1 {
		x = qk.k(o.Reshape(q, 1, tq, hd, heads))
		f = qk.k(o.Reshape(qk.k(o.Transpose(k, 1, 0)), 1, hd, heads, tok))
		fv = vt.k(o.Reshape(v, 1, tok, heads, hd))
	} else {
		x = qk.k(o.Reshape(qk.k(o.Transpose(qk.k(o.Reshape(q, n, tq, hd, heads)), 1, 2, 0, 3)), 1, tq, hd, ch))    // [tq, hd, n, H]
		f = qk.k(o.Reshape(qk.k(o.Transpose(qk.k(o.Reshape(k, n, tok, hd, heads)), 2, 0, 3, 1)), 1, hd, ch, tok))  // [hd, n, H, T]
		fv = vt.k(o.Reshape(vt.k(o.Transpose(vt.k(o.Reshape(v, n, tok, heads, hd)), 1, 0, 2, 3)), 1, tok, ch, hd)) // [T, n, H, hd]
	}
	s := t.k(o.DepthwiseConv2d(x, f))
	qk.free()
	p := t.k(o.Softmax(t.k(o.Reshape(s, 1, tq, ch, tok))))
	pT := t.k(o.Transpose(p, 0, 1, 3, 2)) // [1, tq, T, n*H]
	c := t.k(o.DepthwiseConv2d(pT, fv))
	vt.free()
	if n == 1 || tq == 1 {
		return t.k(o.Reshape(c, n*tq, d))
	}
	return t.k(o.Reshape(t.k(o.Transpose(t.k(o.Reshape(c, tq, n, d)), 1, 0, 2)), n*tq, d))
}

// layerNorm normalises the rows of a centred x [R, D] (mean already 0):
// x · rsqrt(mean(x²) + eps). The gain and bias are the caller's (folded
// into the next linear layer where there is one).
func (m *Model) layerNorm(t *tape, x ops.Tensor) ops.Tensor {
	o := m.o
	if f := ops.FusedOps(o); f != nil {
		return t.k(f.NormRows(x, float32(m.cfg.LayerNormEps)))
	}
	// tf.mean rather than a product with a [D, 1] column of 1/D: equally
	// fast on one thread, and not split across tfjs-wasm's thread pool
	// (XNNPACK runs even this 50x768x1 product as 13 threaded tiles, whose
	// wake-up costs more than the sum on a busy machine).
	variance := t.k(o.Add(t.k(o.Mean(t.k(o.Mul(x, x)), -1, true)), m.epsB)) // mean(x²) + eps, [R, 1]
	return t.k(o.Mul(x, t.k(o.Rsqrt(variance))))
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
// figure GFLOP/s rates are quoted against (8.8e9 for ViT-B/32). It counts
// every token of the last layer, as the Hugging Face model computes them;
// Forward needs only the class token there (about 6.6 % fewer for B/32).
func FLOPs(cfg weights.Config) float64 {
	d, m := float64(cfg.HiddenSize), float64(cfg.IntermediateSize)
	t := float64(cfg.Patches() + 1)
	p := float64(cfg.PatchSize)
	embed := 2 * float64(cfg.Patches()) * 3 * p * p * d
	perLayer := 2*t*d*3*d + 2*t*t*d*2 + 2*t*d*d + 2*t*d*m*2
	return embed + float64(cfg.NumLayers)*perLayer + 2*d*float64(cfg.ProjectionDim)
}
