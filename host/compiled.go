package host

import (
	"crypto/sha256"
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
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/imgembed/imgembed/wasm/loader"
	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/ops/native"
	"github.com/imgembed/imgembed/wasm/vit"
	"github.com/imgembed/imgembed/weights"
)

// Compiled weights: the native engine keeps the vision tower's run-time
// weights, as derived for its kernels, in CacheDir/compiled, and maps them
// on the next load of the same model file by the same build of imgembed
// instead of reading and deriving them again (RATIONALE.md, "Compiled
// weights").
//
// An entry is the magic, the offset of its JSON index (little-endian
// uint64), the tensors' values (each 64-byte aligned), then the index:
// the entry's key and, per tensor, shape, layout and CRC-32C.

const compiledMagic = "IMGEMBC1"

// compiledMinBytes: models with fewer stored weight bytes are derived at
// every load (it takes milliseconds). A variable for tests.
var compiledMinBytes int64 = 64 << 20

type compiledIndex struct {
	Key     string           `json:"key"`
	Tensors []compiledTensor `json:"tensors"`
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

// buildID identifies this build of imgembed (a hash of the executable): an
// entry holds what this build's derivation and kernels made, so another
// build never reads it. Empty when the executable cannot be read.
var buildID = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
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

// newCompiledCache returns the entry of the model file fh (its path as
// given in model) with configuration cfg, or false when compiled weights
// do not apply: a small model, no build identity, or no file identity.
func newCompiledCache(cacheDir, model string, fh *os.File, cfg weights.Config, weightBytes int64) (*compiledCache, bool) {
	if weightBytes < compiledMinBytes || !mappable {
		return nil, false
	}
	build := buildID()
	st, err := fh.Stat()
	abs, aerr := filepath.Abs(model)
	if build == "" || err != nil || aerr != nil {
		return nil, false
	}
	c, _ := json.Marshal(cfg)
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
	cc, ok := newCompiledCache(cacheDir, fb.f.Name(), fb.f, f.Config, f.WeightBytes)
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

// load maps the entry and assembles the model from it; any problem (no
// entry, another key, a bad CRC, a layout this kernel does not read) is an
// error, and the caller derives the model from the file instead.
func (c *compiledCache) load(o *native.Ops, cfg weights.Config, threads int) (*vit.Model, error) {
	f, err := os.Open(c.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx, at, size, err := c.index(f)
	if err != nil {
		return nil, err
	}
	shapes := vit.WeightShapes(cfg)
	if len(idx.Tensors) != len(shapes) {
		return nil, fmt.Errorf("%w: %d tensors", errCompiled, len(idx.Tensors))
	}
	vals := make([][]float32, len(idx.Tensors))
	mem, unmap, err := mapFile(f, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnmappable, err)
	}
	for i, t := range idx.Tensors {
		n := 1
		for _, d := range shapes[i] {
			n *= d
		}
		if t.Offset < 16 || t.Offset%64 != 0 || t.Offset+4*int64(n) > at {
			unmap()
			return nil, fmt.Errorf("%w: tensor %d out of place", errCompiled, i)
		}
		vals[i] = unsafe.Slice((*float32)(unsafe.Pointer(&mem[t.Offset])), n)
	}
	bad := forEach(len(vals), threads, func(i int) bool {
		return crc32.Checksum(floatBytes(vals[i]), castagnoli) == idx.Tensors[i].CRC
	})
	if bad >= 0 {
		unmap()
		return nil, fmt.Errorf("%w: tensor %d fails its CRC", errCompiled, bad)
	}
	// The mapping goes when the last tensor viewing it is disposed.
	var live atomic.Int64
	live.Store(int64(len(vals)))
	release := func() {
		if live.Add(-1) == 0 {
			unmap()
		}
	}
	out := make([]ops.Tensor, 0, len(vals))
	for i, v := range vals {
		t, err := o.View(v, shapes[i], idx.Tensors[i].Layout, release)
		if err != nil {
			o.Dispose(out...)
			for range len(vals) - i {
				release()
			}
			return nil, fmt.Errorf("%w: %v", errCompiled, err)
		}
		out = append(out, t)
	}
	m, err := vit.Assemble(o, cfg, out)
	if err == nil {
		compiledHits.Add(1)
	}
	return m, err
}

// save writes the model's weights as the entry (through a temporary file
// renamed into place) and removes the model file's other entries (another
// version of it, or another build's).
func (c *compiledCache) save(o *native.Ops, m *vit.Model, threads int) error {
	ws := m.Weights()
	if ws == nil {
		return fmt.Errorf("%w: no weights to save", errCompiled)
	}
	idx := compiledIndex{Key: c.key, Tensors: make([]compiledTensor, len(ws))}
	vals := make([][]float32, len(ws))
	off := int64(64)
	for i, t := range ws {
		v, layout := o.Stored(t)
		vals[i] = v
		idx.Tensors[i] = compiledTensor{Shape: o.Shape(t), Layout: layout, Offset: off}
		off += (4*int64(len(v)) + 63) &^ 63
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
