package derive

import (
	"errors"
	"fmt"
	"slices"

	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/weights"
)

// Options tune how a graph's Load derives its weights.
type Options struct {
	// Threads is how many goroutines derive the weights (default 1).
	Threads int
	// Alloc, if set, provides the storage of each derived weight before it
	// is handed to the backend's Tensor (default make): a backend that keeps
	// its tensors' values (package native) may want them off the Go heap.
	Alloc func(n int) []float32
	// Copies says that the backend's Tensor copies the values (tfjs
	// does): the derived weights are then built in two reused buffers, so
	// the Go heap (in wasm, memory that never shrinks) holds one weight
	// and one bias at a time. Alloc is not used.
	Copies bool
}

// Builder reads a graph's stored tensors and hands finished weights to
// the backend. Its methods panic with a *LoadError; the graph's Load
// recovers it (Recover).
type Builder struct {
	O       ops.Ops
	Threads int
	// Alloc gives memory a derived value keeps (Options.Alloc or make).
	Alloc func(n int) []float32
	// Weight and Bias give the storage of a derived weight and of its
	// bias (Alloc, or two reused buffers when the backend copies).
	Weight, Bias func(n int) []float32

	panels      Panels // the backend, when its weights are derived in panels
	shapes      map[string][]int
	get         weights.Getter
	pkg         string // names the graph in errors
	unsupported error  // wrapped by shape mismatches
}

// NewBuilder returns a Builder reading tensors of the given shapes through
// get. pkg names the graph in errors; unsupported is the graph's error for
// a tensor of the wrong shape.
func NewBuilder(o ops.Ops, shapes map[string][]int, get weights.Getter, opts Options, pkg string, unsupported error) *Builder {
	b := &Builder{O: o, Threads: max(1, opts.Threads), Alloc: opts.Alloc, shapes: shapes, get: get, pkg: pkg, unsupported: unsupported}
	if b.Alloc == nil {
		b.Alloc = func(n int) []float32 { return make([]float32, n) }
	}
	b.Weight, b.Bias = b.Alloc, b.Alloc
	if opts.Copies {
		b.Weight, b.Bias = reused(), reused()
	} else if p, ok := o.(Panels); ok { // it keeps the values it is given
		b.panels = p
	}
	return b
}

// reused returns an allocator that hands out one buffer again and again
// (grown when needed): for values a backend copies.
func reused() func(n int) []float32 {
	var buf []float32
	return func(n int) []float32 {
		if cap(buf) < n {
			buf = nil // let the old one go first
			buf = make([]float32, n)
		}
		return buf[:n]
	}
}

// LoadError is how a Builder's methods fail (as a panic, so that a graph's
// build reads as a list of steps).
type LoadError struct{ Err error }

func (e *LoadError) Error() string { return e.Err.Error() }
func (e *LoadError) Unwrap() error { return e.Err }

// Recover turns what a build panicked with into its error: a Builder's
// *LoadError as is, anything else (a backend's panic) named by pkg.
func Recover(r any, pkg string) error {
	var le *LoadError
	if err, ok := r.(error); ok && errors.As(err, &le) {
		return le.Err
	}
	return fmt.Errorf("%s: load: %v", pkg, r)
}

// Read returns the stored tensor name, checked against its expected
// shape; the values are valid until the next Read unless buf holds them.
func (b *Builder) Read(name string, buf []float32) []float32 {
	v, shape, err := weights.GetInto(b.get, name, buf)
	if err != nil {
		panic(&LoadError{fmt.Errorf("%s: load %s: %w", b.pkg, name, err)})
	}
	if want := b.shapes[name]; !slices.Equal(want, shape) || len(v) != numel(want) {
		panic(&LoadError{fmt.Errorf("%w: %s has shape %v (%d values), want %v", b.unsupported, name, shape, len(v), want)})
	}
	return v
}

// Vec reads a stored tensor into memory of its own.
func (b *Builder) Vec(name string) []float32 {
	return b.Read(name, make([]float32, numel(b.shapes[name])))
}

// Pair creates the tensors of a derived weight [in, out] and its bias
// [out]; when the second fails the first is released.
func (b *Builder) Pair(w []float32, in, out int, bias []float32) (wt, bt ops.Tensor) {
	wt = b.O.Tensor(w, in, out)
	return wt, b.second(wt, bias, out)
}

// PairShaped is Pair with the shapes given.
func (b *Builder) PairShaped(w []float32, wShape []int, bias []float32, bShape []int) (wt, bt ops.Tensor) {
	wt = b.O.Tensor(w, wShape...)
	return wt, b.second(wt, bias, bShape...)
}

// second creates the bias of weight wt, releasing wt if it fails.
func (b *Builder) second(wt ops.Tensor, bias []float32, shape ...int) ops.Tensor {
	defer func() {
		if r := recover(); r != nil {
			b.O.Dispose(wt)
			panic(r)
		}
	}()
	return b.O.Tensor(bias, shape...)
}

// Panels is implemented by a backend (package native) whose products
// read a weight fastest in an order of its own (Linear.WritePanels): the
// weights are then derived straight into it, rather than rearranged by
// the backend later. It is not used when Options.Copies is set (its
// PanelTensor keeps the values it is given).
type Panels interface {
	// PanelLayout returns the panel width and k-block for a weight
	// [k, n], or ok false when it is best kept row-major.
	PanelLayout(k, n int) (nr, kc int, ok bool)
	// PanelTensor creates the weight [k, n] from values in that order.
	PanelTensor(values []float32, k, n int) ops.Tensor
}

// Linear derives the [In, Out] weight and [Out] bias of the stored layer
// name (its weight, then its bias if it has one) as l describes, and
// creates both. With l.OutMajor they are [Out, In] and [Out, 1] (a column,
// added to the product W'·xᵀ [Out, rows]).
func (b *Builder) Linear(name string, l Linear, hasBias bool) (ops.Tensor, ops.Tensor) {
	if p := b.panels; p != nil && !l.OutMajor {
		if nr, kc, ok := p.PanelLayout(l.In, l.Out); ok {
			b.read(name, &l, hasBias)
			w, bias := b.Weight(l.In*l.Out), b.Bias(l.Out)
			l.WritePanels(w, nr, kc, bias)
			wt := p.PanelTensor(w, l.In, l.Out)
			return wt, b.second(wt, bias, l.Out)
		}
	}
	w, bias := b.Derive(name, l, hasBias)
	if l.OutMajor {
		return b.PairShaped(w, []int{l.Out, l.In}, bias, []int{l.Out, 1})
	}
	return b.Pair(w, l.In, l.Out, bias)
}

// Derive is Linear without creating the tensors: the weight (row-major,
// [Out, In] with l.OutMajor) and the bias, in b.Weight's and b.Bias's
// storage (reused by the next Derive or Linear when the backend copies).
func (b *Builder) Derive(name string, l Linear, hasBias bool) (w, bias []float32) {
	b.read(name, &l, hasBias)
	w, bias = b.Weight(l.In*l.Out), b.Bias(l.Out)
	if l.OutMajor {
		l.Write(w, l.In, 0, bias)
	} else {
		l.Write(w, l.Out, 0, bias)
	}
	return w, bias
}

// read reads the stored weight and bias of layer name into l.
func (b *Builder) read(name string, l *Linear, hasBias bool) {
	l.W = b.Read(name+".weight", nil)
	if hasBias { // into its own buffer: l.W stays valid (weights.Getter)
		l.B = b.Vec(name + ".bias")
	}
	l.Threads = b.Threads
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
