package host

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/imgembed/imgembed/wasm/loader"
	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/wasm/textmodel"
	"github.com/imgembed/imgembed/wasm/vit"
	"github.com/imgembed/imgembed/weights"
)

// Compiled weights: the native engine keeps the towers' run-time weights,
// as derived for its kernels, in CacheDir/compiled, and maps them on the
// next load of the same model file by the same build of imgembed instead of
// reading and deriving them again (RATIONALE.md, "Compiled weights").
//
// An entry is the magic, the offset of its JSON index (little-endian
// uint64), the arrays' values (each 64-byte aligned), then the index: the
// entry's key, the text tower's logit scale and, per array, shape, layout
// and CRC-32C. The arrays are the vision tower's Weights, then the text
// tower's, then its two embedding tables (the towers loaded).

const compiledMagic = "IMGEMBC1"

// compiledMinBytes: smaller model files are derived at every load (it
// takes milliseconds). A variable for tests.
var compiledMinBytes int64 = 64 << 20

type compiledIndex struct {
	Key        string           `json:"key"`
	LogitScale float64          `json:"logit_scale,omitempty"`
	Tensors    []compiledTensor `json:"tensors"`
}

// compiledTowers are the towers an entry holds (nil: not loaded).
type compiledTowers struct {
	vision     *vit.Model
	text       *textmodel.Model
	logitScale float64
}

type compiledTensor struct {
	Shape  []int  `json:"shape"`
	Layout int32  `json:"layout"`
	Offset int64  `json:"offset"`
	CRC    uint32 `json:"crc32c"`
}

// compiledCache is one model file's entry.
type compiledCache struct {
	path string // dir/<source>-<key>.bin
	dir  string
	src  string // the model file's part of the name
	key  string
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// compiledHits counts the models assembled from an entry (for tests).
var compiledHits atomic.Int64

// buildID identifies this build of imgembed: an entry holds what this
// build's derivation and kernels made, so another build never reads it.
// It is the Go build ID of the executable (a hash of its content, which the
// go command records in an ELF note), else a SHA-256 of the executable
// (20 ms for ours); empty when the executable cannot be read.
var buildID = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if id := elfGoBuildID(exe); id != "" {
		return "go:" + id
	}
	f, err := os.Open(exe)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
})

// elfGoBuildID reads the Go build ID note of an ELF executable ("" when
// there is none: another format, or a build with -buildid= empty).
func elfGoBuildID(exe string) string {
	f, err := elf.Open(exe)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil {
		return ""
	}
	b, err := s.Data()
	// namesz, descsz, type, then the name "Go\0\0" and the ID.
	if err != nil || len(b) < 16 || string(b[12:16]) != "Go\x00\x00" {
		return ""
	}
	n := f.ByteOrder.Uint32(b[4:8])
	if n == 0 || uint64(n) > uint64(len(b)-16) {
		return ""
	}
	return string(b[16 : 16+n])
}

// newCompiledCache returns the entry of the model file fh (its path as
// given in model) for the towers f holds, or false when compiled weights
// do not apply: a small file, no build identity, or no file identity.
func newCompiledCache(cacheDir, model string, fh *os.File, f *loader.File) (*compiledCache, bool) {
	build := buildID()
	st, err := fh.Stat()
	abs, aerr := filepath.Abs(model)
	if !mappable || build == "" || err != nil || aerr != nil || st.Size() < compiledMinBytes {
		return nil, false
	}
	var vision *weights.Config
	if f.Config.HiddenSize > 0 {
		vision = &f.Config
	}
	c, _ := json.Marshal([]any{vision, f.Text})
	// Named by the path (one entry per model file: saving removes the
	// others), keyed by everything its contents depend on.
	src := sha256.Sum256([]byte(abs))
	key := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%s\x00%s\x00%s\x00%s",
		abs, st.Size(), st.ModTime().UnixNano(), fileIdentity(st), build, runtime.GOARCH, c))
	dir := filepath.Join(cacheDir, "compiled")
	cc := &compiledCache{dir: dir, src: hex.EncodeToString(src[:8]), key: hex.EncodeToString(key[:])}
	cc.path = filepath.Join(dir, cc.src+"-"+cc.key[:24]+".bin")
	return cc, true
}

// compiledFor is newCompiledCache for a download cache entry b: nil when b
// is not a file or compiled weights do not apply.
func compiledFor(cacheDir string, b loader.Bytes, hfConfig []byte, towers loader.Towers) *compiledCache {
	fb, ok := b.(*fileBytes)
	if !ok {
		return nil
	}
	f, err := loader.OpenUnchecked(b, hfConfig, towers)
	if err != nil {
		return nil
	}
	cc, ok := newCompiledCache(cacheDir, fb.f.Name(), fb.f, f)
	if !ok {
		return nil
	}
	return cc
}

var errCompiled = errors.New("compiled weights entry unusable")

// errUnmappable: the entry is there but cannot be mapped (its file
// system does not allow it): saving it again would not help.
var errUnmappable = errors.New("compiled weights entry cannot be mapped")

// present reports whether the entry exists under this key (its values not
// checked: load does that).
func (c *compiledCache) present() bool {
	f, err := os.Open(c.path)
	if err != nil {
		return false
	}
	defer f.Close()
	_, _, _, err = c.index(f)
	return err == nil
}

// index reads the entry's index, checks its key, and returns it with its
// offset and the entry's size.
func (c *compiledCache) index(f *os.File) (idx compiledIndex, at, size int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return idx, 0, 0, err
	}
	size = st.Size()
	var head [16]byte
	if _, err := io.ReadFull(f, head[:]); err != nil || string(head[:8]) != compiledMagic {
		return idx, 0, 0, fmt.Errorf("%w: no magic", errCompiled)
	}
	at = int64(binary.LittleEndian.Uint64(head[8:]))
	if at < 16 || at > size || size-at > 16<<20 {
		return idx, 0, 0, fmt.Errorf("%w: index at %d of %d bytes", errCompiled, at, size)
	}
	raw := make([]byte, size-at)
	if _, err := f.ReadAt(raw, at); err != nil {
		return idx, 0, 0, err
	}
	if err := json.Unmarshal(raw, &idx); err != nil || idx.Key != c.key {
		return idx, 0, 0, fmt.Errorf("%w: index", errCompiled)
	}
	return idx, at, size, nil
}

// load maps the entry and assembles the towers of f from it (vision when
// f.Config is set, text when f.Text is); any problem (no entry, another
// key, a bad CRC, a layout this kernel does not read) is an error, and the
// caller derives the towers from the file instead. The returned unmap
// releases the mapping, once the towers are disposed.
func (c *compiledCache) load(o *native.Ops, f *loader.File, threads int) (ct compiledTowers, unmap func(), err error) {
	fh, err := os.Open(c.path)
	if err != nil {
		return ct, nil, err
	}
	defer fh.Close()
	idx, at, size, err := c.index(fh)
	if err != nil {
		return ct, nil, err
	}
	var shapes [][]int
	nv := 0
	if f.Config.HiddenSize > 0 {
		shapes = vit.WeightShapes(f.Config)
		nv = len(shapes)
	}
	nt := 0
	if f.Text != nil {
		ts, tok, pos := textmodel.WeightShapes(*f.Text)
		nt = len(ts)
		shapes = append(append(shapes, ts...), tok, pos)
	}
	if len(idx.Tensors) != len(shapes) {
		return ct, nil, fmt.Errorf("%w: %d arrays", errCompiled, len(idx.Tensors))
	}
	mem, release, err := mapFile(fh, size)
	if err != nil {
		return ct, nil, fmt.Errorf("%w: %v", errUnmappable, err)
	}
	defer func() {
		if err != nil {
			ct.dispose()
			release()
		}
	}()
	vals := make([][]float32, len(shapes))
	for i, t := range idx.Tensors {
		n := 1
		for _, d := range shapes[i] {
			n *= d
		}
		if !slices.Equal(t.Shape, shapes[i]) || int64(n) > at/4 || t.Offset < 16 || t.Offset%64 != 0 || t.Offset > at-4*int64(n) {
			return ct, nil, fmt.Errorf("%w: array %d out of place", errCompiled, i)
		}
		vals[i] = unsafe.Slice((*float32)(unsafe.Pointer(&mem[t.Offset])), n)
	}
	if bad := forEach(len(vals), threads, func(i int) bool {
		return crc32.Checksum(floatBytes(vals[i]), castagnoli) == idx.Tensors[i].CRC
	}); bad >= 0 {
		return ct, nil, fmt.Errorf("%w: array %d fails its CRC", errCompiled, bad)
	}
	views := func(lo, hi int) ([]ops.Tensor, error) {
		out := make([]ops.Tensor, 0, hi-lo)
		for i := lo; i < hi; i++ {
			t, err := o.View(vals[i], shapes[i], idx.Tensors[i].Layout, nil)
			if err != nil {
				o.Dispose(out...)
				return nil, fmt.Errorf("%w: %v", errCompiled, err)
			}
			out = append(out, t)
		}
		return out, nil
	}
	if nv > 0 {
		ts, err := views(0, nv)
		if err != nil {
			return ct, nil, err
		}
		if ct.vision, err = vit.Assemble(o, f.Config, ts); err != nil {
			return ct, nil, err
		}
	}
	if f.Text != nil {
		ts, err := views(nv, nv+nt)
		if err != nil {
			return ct, nil, err
		}
		if ct.text, err = textmodel.Assemble(o, *f.Text, ts, vals[nv+nt], vals[nv+nt+1]); err != nil {
			return ct, nil, err
		}
		ct.logitScale = idx.LogitScale
	}
	compiledHits.Add(1)
	return ct, release, nil
}

func (ct *compiledTowers) dispose() {
	if ct.vision != nil {
		ct.vision.Dispose()
	}
	if ct.text != nil {
		ct.text.Dispose()
	}
}

// save writes the towers' weights as the entry (through a temporary file
// renamed into place) and removes the model file's other entries (another
// version of it, or another build's).
func (c *compiledCache) save(o *native.Ops, ct compiledTowers, threads int) error {
	var vals [][]float32
	var idx compiledIndex
	idx.Key, idx.LogitScale = c.key, ct.logitScale
	off := int64(64)
	add := func(v []float32, shape []int, layout int32) {
		vals = append(vals, v)
		idx.Tensors = append(idx.Tensors, compiledTensor{Shape: shape, Layout: layout, Offset: off})
		off += (4*int64(len(v)) + 63) &^ 63
	}
	if ct.vision != nil {
		ws := ct.vision.Weights()
		if ws == nil {
			return fmt.Errorf("%w: no vision weights to save", errCompiled)
		}
		for _, t := range ws {
			v, layout := o.Stored(t)
			add(v, o.Shape(t), layout)
		}
	}
	if ct.text != nil {
		ws, tokens, pos := ct.text.Weights()
		if ws == nil {
			return fmt.Errorf("%w: no text weights to save", errCompiled)
		}
		for _, t := range ws {
			v, layout := o.Stored(t)
			add(v, o.Shape(t), layout)
		}
		_, ts, ps := textmodel.WeightShapes(ct.text.Config())
		add(tokens, ts, 0)
		add(pos, ps, 0)
	}
	forEach(len(vals), threads, func(i int) bool {
		idx.Tensors[i].CRC = crc32.Checksum(floatBytes(vals[i]), castagnoli)
		return true
	})
	index, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.dir, ".part-*")
	if err != nil {
		return err
	}
	werr := writeCompiled(tmp, idx, vals, off, index)
	if err := tmp.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), c.path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return werr
	}
	if old, err := filepath.Glob(filepath.Join(c.dir, c.src+"-*.bin")); err == nil {
		for _, p := range old {
			if p != c.path && strings.HasPrefix(filepath.Base(p), c.src+"-") {
				os.Remove(p)
			}
		}
	}
	return nil
}

func writeCompiled(w io.WriterAt, idx compiledIndex, vals [][]float32, end int64, index []byte) error {
	var head [64]byte
	copy(head[:], compiledMagic)
	binary.LittleEndian.PutUint64(head[8:], uint64(end))
	if _, err := w.WriteAt(head[:], 0); err != nil {
		return err
	}
	for i, v := range vals {
		if _, err := w.WriteAt(floatBytes(v), idx.Tensors[i].Offset); err != nil {
			return err
		}
	}
	_, err := w.WriteAt(index, end)
	return err
}

func floatBytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// forEach runs ok(i) for i in [0, n) on up to threads goroutines and returns
// the first i (in completion order) for which ok was false, or -1.
func forEach(n, threads int, ok func(i int) bool) int {
	var next atomic.Int64
	bad := atomic.Int64{}
	bad.Store(-1)
	var wg sync.WaitGroup
	for range max(1, min(threads, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || bad.Load() >= 0 {
					return
				}
				if !ok(i) {
					bad.CompareAndSwap(-1, int64(i))
				}
			}
		}()
	}
	wg.Wait()
	return int(bad.Load())
}
