package weights

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/imgembed/imgembed/weights/safetensors"
)

// SynthOptions controls Synthesize.
type SynthOptions struct {
	Seed  uint64
	DType safetensors.DType // F32 (default), F16 or BF16
	// Full also writes a few text-tower tensors, text_projection,
	// logit_scale and the int64 position_ids buffers, like a whole
	// CLIPModel checkpoint; vision loaders must ignore them.
	Full bool
	// Bare writes only {"format": "pt"} as metadata, like a raw Hugging
	// Face file; otherwise the config is written too (Config.Metadata).
	Bare bool
}

// Synthesize streams a seeded random checkpoint of cfg in the exact
// Hugging Face layout (vision tower + visual_projection) to w. The init
// follows the brief for test models: weights ~ N(0, 0.02), biases ~
// N(0, 0.01), LayerNorm weight 1 and bias 0. Each run of synthChunk
// values of a tensor has its own PCG stream seeded by (Seed, FNV-1a of the
// tensor name, chunk index), so the output is identical for a seed whatever
// the number of CPUs, a tensor's values do not depend on which other tensors
// are present (a 2-layer model shares its layers with the 12-layer one),
// and chunks are generated in parallel. Memory use is a few MB whatever the
// model size.
func Synthesize(w io.Writer, cfg Config, opts SynthOptions) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	dtype := opts.DType
	if dtype == "" {
		dtype = safetensors.F32
	}
	if dtype != safetensors.F32 && dtype != safetensors.F16 && dtype != safetensors.BF16 {
		return fmt.Errorf("weights: synthesize: %w: %s (want F32, F16 or BF16)", safetensors.ErrUnsupportedDType, dtype)
	}
	specs := synthSpecs(cfg, dtype, opts.Full)
	meta := map[string]string{"format": "pt"}
	if !opts.Bare {
		for k, v := range cfg.Metadata() {
			meta[k] = v
		}
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	sw, err := safetensors.NewWriter(bw, specs, meta)
	if err != nil {
		return err
	}
	if err := synthData(sw, specs, opts.Seed); err != nil {
		return err
	}
	if err := sw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("weights: synthesize: %w", err)
	}
	return nil
}

// synthSpecs lists the tensors: int64 buffers first (8-byte alignment),
// then the vision tower in VisionTensorNames order, then the text extras.
func synthSpecs(cfg Config, dtype safetensors.DType, full bool) []safetensors.Spec {
	var specs []safetensors.Spec
	tw := min(512, max(cfg.HiddenSize/2, 8)) // text width of the extras
	const vocab, ctx = 1000, 77
	if full {
		specs = append(specs,
			safetensors.Spec{Name: "vision_model.embeddings.position_ids", DType: safetensors.I64, Shape: []int{1, cfg.Patches() + 1}},
			safetensors.Spec{Name: "text_model.embeddings.position_ids", DType: safetensors.I64, Shape: []int{1, ctx}},
		)
	}
	shapes := VisionTensors(cfg)
	for _, name := range VisionTensorNames(cfg) {
		specs = append(specs, safetensors.Spec{Name: name, DType: dtype, Shape: shapes[name]})
	}
	if full {
		for _, s := range []safetensors.Spec{
			{Name: "text_model.embeddings.token_embedding.weight", Shape: []int{vocab, tw}},
			{Name: "text_model.embeddings.position_embedding.weight", Shape: []int{ctx, tw}},
			// A text layer: a loader that counts layers by a loose
			// "layers." match would be fooled by these.
			{Name: "text_model.encoder.layers.0.self_attn.q_proj.weight", Shape: []int{tw, tw}},
			{Name: "text_model.encoder.layers.0.self_attn.q_proj.bias", Shape: []int{tw}},
			{Name: "text_model.encoder.layers.0.mlp.fc1.weight", Shape: []int{4 * tw, tw}},
			{Name: "text_model.final_layer_norm.weight", Shape: []int{tw}},
			{Name: "text_model.final_layer_norm.bias", Shape: []int{tw}},
			{Name: "text_projection.weight", Shape: []int{cfg.ProjectionDim, tw}},
			{Name: "logit_scale", Shape: []int{}},
		} {
			s.DType = dtype
			specs = append(specs, s)
		}
	}
	return specs
}

// synthChunk is the number of values per random stream; changing it
// changes every synthesized file.
const synthChunk = 1 << 16

// synthData generates and writes the data section: chunks are produced by
// GOMAXPROCS workers and written in order.
func synthData(sw *safetensors.Writer, specs []safetensors.Spec, seed uint64) error {
	type job struct {
		spec  safetensors.Spec
		index int // chunk index within the tensor
		n     int // values in this chunk
		out   chan []byte
	}
	workers := runtime.GOMAXPROCS(0)
	done := make(chan struct{})
	defer close(done)
	jobs := make(chan job, 2*workers)
	queue := make(chan chan []byte, 2*workers)
	pool := sync.Pool{New: func() any { return make([]byte, 8*synthChunk) }}
	go func() { // producer: jobs in file order
		defer close(jobs)
		defer close(queue)
		for _, s := range specs {
			n := 1
			for _, d := range s.Shape {
				n *= d
			}
			for i := 0; i*synthChunk < n; i++ {
				j := job{spec: s, index: i, n: min(synthChunk, n-i*synthChunk), out: make(chan []byte, 1)}
				select {
				case queue <- j.out:
				case <-done:
					return
				}
				select {
				case jobs <- j:
				case <-done:
					return
				}
			}
		}
	}()
	for range workers {
		go func() {
			vals := make([]float32, synthChunk)
			for j := range jobs {
				size, _ := j.spec.DType.Size()
				buf := pool.Get().([]byte)[:j.n*size]
				if j.spec.DType == safetensors.I64 { // position_ids: 0, 1, 2, ...
					for k := range j.n {
						binary.LittleEndian.PutUint64(buf[8*k:], uint64(j.index*synthChunk+k))
					}
				} else {
					synthInit(j.spec.Name, seed, j.index)(vals[:j.n])
					// Cannot fail: dtype and lengths are checked above.
					_ = safetensors.EncodeFloat32(j.spec.DType, vals[:j.n], buf)
				}
				j.out <- buf
			}
		}()
	}
	for out := range queue {
		buf := <-out
		if _, err := sw.Write(buf); err != nil {
			return err
		}
		pool.Put(buf[:cap(buf)]) //nolint:staticcheck // a slice header per chunk is fine
	}
	return nil
}

// synthInit returns the value generator for one chunk of a tensor.
func synthInit(name string, seed uint64, chunk int) func([]float32) {
	h := fnv.New64a()
	h.Write([]byte(name))
	r := rand.New(rand.NewPCG(seed, h.Sum64()+uint64(chunk)*0x9e3779b97f4a7c15))
	constant := func(v float32) func([]float32) {
		return func(dst []float32) {
			for i := range dst {
				dst[i] = v
			}
		}
	}
	normal := func(std float64) func([]float32) {
		return func(dst []float32) {
			for i := range dst {
				dst[i] = float32(r.NormFloat64() * std)
			}
		}
	}
	isLN := strings.Contains(name, "layer_norm") || strings.Contains(name, "layrnorm") || strings.Contains(name, "layernorm")
	switch {
	case name == "logit_scale":
		return constant(float32(math.Log(1 / 0.07)))
	case isLN && strings.HasSuffix(name, ".weight"):
		return constant(1)
	case isLN && strings.HasSuffix(name, ".bias"):
		return constant(0)
	case strings.HasSuffix(name, ".bias"):
		return normal(0.01)
	default:
		return normal(0.02)
	}
}

// SynthesizeFile writes Synthesize's output to path (created or
// truncated), for benchmarks that need full-size weights on disk.
func SynthesizeFile(path string, cfg Config, opts SynthOptions) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("weights: synthesize: %w", err)
	}
	if err := Synthesize(f, cfg, opts); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("weights: synthesize: %w", err)
	}
	return nil
}
