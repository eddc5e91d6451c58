// Package loader gets the weights of a CLIP vision tower from a safetensors
// file: from the cache, from bytes already in memory, or over the network
// with HTTP Range requests that fetch only the vision tensors of a whole
// CLIPModel file (falling back to one full download when the server ignores
// Range).
//
// It is plain Go so that it is tested natively, but it never holds the
// weights in the Go heap: bytes are Bytes/Buffer values that, in the
// browser, are JS Uint8Arrays (the module's main package implements Env over
// fetch). Only the safetensors header is copied into Go.
package loader

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imgembed/imgembed/wasm/vit"
	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// Bytes is a read-only byte sequence that may live outside the Go heap.
type Bytes interface {
	Len() int64
	// CopyTo copies the bytes at [off, off+len(dst)) into dst.
	CopyTo(dst []byte, off int64)
}

// Buffer is a fixed-size writable byte store allocated by an Env.
type Buffer interface {
	Bytes
	// Put copies src[from:to] to [at, at+to-from). src comes from the same
	// Env (a Body chunk or a Buffer).
	Put(at int64, src Bytes, from, to int64)
	// PutGo copies p to [at, at+len(p)).
	PutGo(at int64, p []byte)
}

// Response is the start of an HTTP response.
type Response struct {
	Status int
	// Header returns a response header by (case-insensitive) name, "" when
	// absent.
	Header func(name string) string
	Body   Body
}

// Body streams a response body in chunks.
type Body interface {
	// Next returns the next chunk, or io.EOF after the last.
	Next() (Bytes, error)
	// Close abandons the rest of the body.
	Close()
}

// Request is what one GET of the loader asks for besides its URL.
type Request struct {
	// Range, when not empty, is the value of a Range header ("bytes=A-B").
	Range string
	// IfRange and IfMatch, when not empty, are the values of the If-Range
	// and If-Match headers: the validator of the first response, so that a
	// file that changed on the server answers 200 (If-Range) or 412
	// (If-Match) instead of a range of its new version. An Env may leave
	// them out where sending them costs more than it saves (a browser's
	// cross-origin request, where they force a CORS preflight); the loader
	// also compares every response's validators with the first one's.
	IfRange, IfMatch string
	// IfNoneMatch, when not empty, is the value of an If-None-Match header:
	// the ETag of a cached copy, revalidated with one request that the
	// server answers 304 (no body) while the file is unchanged.
	IfNoneMatch string
	// Stall, when positive, bounds the wait for the response and for each
	// body chunk: when nothing arrives for that long the Env ends the
	// request and Fetch or Body.Next returns an error wrapping ErrStalled.
	Stall time.Duration
}

// ErrStalled is what an Env's Fetch or Body.Next returns (wrapped) when no
// bytes arrived for Request.Stall.
var ErrStalled = errors.New("stalled")

// DefaultStallTimeout is Options.StallTimeout's default.
const DefaultStallTimeout = 60 * time.Second

// Env is what the loader needs from its host.
type Env interface {
	// Fetch starts a GET of url with the headers r describes.
	Fetch(url string, r Request) (*Response, error)
	// Alloc returns a zeroed Buffer of n bytes.
	Alloc(n int64) (Buffer, error)
	// Aborted reports whether the caller gave up (the AbortSignal fired).
	Aborted() bool
}

// Cache stores completed downloads. Get returns nil on a miss; Delete
// removes an entry that failed its integrity check.
type Cache interface {
	Get(key string) Bytes
	Put(key string, b Bytes)
	Delete(key string)
}

// Digester is an optional Cache method: the SHA-256 of all of b, computed
// by the host (crypto.subtle in JS, crypto/sha256 in the Go host), which is
// much faster than hashing in the module. Without it the loader hashes in
// Go.
type Digester interface {
	Digest(b Bytes) ([32]byte, error)
}

// Options configure Load.
type Options struct {
	Env      Env
	Cache    Cache                     // nil: no cache
	Progress func(loaded, total int64) // nil: none
	// HFConfig is an optional Hugging Face config.json (its vision_config
	// fills in what the file's keys and metadata cannot tell).
	HFConfig []byte
	// PrefixSize is the first Range request's length (default 64 KiB).
	PrefixSize int64
	// MaxGap: needed ranges closer than this are fetched as one (the bytes
	// between are dropped). Default 64 KiB.
	MaxGap int64
	// NoRevalidate uses a cached copy without asking the server whether
	// it changed (for offline use). By default a cache hit whose entry has
	// an ETag costs one conditional request (If-None-Match, a 1-byte Range):
	// 304 or no answer keeps the copy; another ETag replaces it.
	NoRevalidate bool
	// Vouched, if set, is asked on a cache hit whether the entry's tensors
	// are vouched for elsewhere (the Go host keeps its own checked copy of
	// what it derives from them): then they are neither scanned for NaN
	// nor hashed, and the File is Unchecked and Vouched. Revalidation
	// still happens. A caller that cannot use its copy after all must load
	// again without Vouched before reading the tensors.
	Vouched func(b Bytes) bool
	// StallTimeout fails the load with DownloadFailed ("stalled") when no
	// bytes arrive for this long (Request.Stall). 0: DefaultStallTimeout;
	// negative: none.
	StallTimeout time.Duration
	// Towers selects the towers whose tensors are fetched from a whole
	// CLIPModel file. Default (0) Vision.
	Towers Towers
	// MinPartBytes merges consecutive tensors of a download into parts of
	// at least this many bytes (0: a part per tensor). A part is freed once
	// all its tensors are released (Parts.Release). For hosts whose
	// allocator keeps freed mid-size blocks (glibc's malloc maps blocks of
	// 32 MiB and more on their own and unmaps them when freed, but returns
	// smaller ones to a heap that keeps their pages: Node).
	MinPartBytes int64
	// StreamWindow bounds the bytes a streamed load (Stream) fetches ahead
	// of the tensor the builder reads, when the file's order differs from
	// the builder's (each extra request saves up to this much memory).
	// 0: DefaultStreamWindow.
	StreamWindow int64
	// DamagedCache, when not nil, says why the cache entry of this load
	// was just found damaged (and deleted) by a streamed load: Stream then
	// downloads without looking in the cache, and a failure says so.
	DamagedCache error
}

// Towers is a set of CLIP towers.
type Towers uint8

// The towers.
const (
	Vision Towers = 1 << iota
	Text
)

func (t Towers) orDefault() Towers {
	if t == 0 {
		return Vision
	}
	return t
}

func (t Towers) String() string {
	switch t.orDefault() {
	case Vision:
		return "vision"
	case Text:
		return "text"
	default:
		return "vision+text"
	}
}

// Metadata keys the loader adds to the files it assembles.
const (
	MetaSource = "imgembed.source"
	MetaETag   = "imgembed.etag"
	MetaLength = "imgembed.length"
	// MetaDigest is the integrity check of a cached file: the hex SHA-256
	// of the SHA-256s of its header (with the 64 characters of this value
	// written as ASCII '0') and of each tensor's bytes, in file order
	// (fileDigest). Cache entries without it, or whose bytes do not match it,
	// are deleted and downloaded again.
	MetaDigest = "imgembed.sha256"
)

// digestPlaceholder holds the digest's place in a header until the file's
// bytes are complete.
var digestPlaceholder = strings.Repeat("0", 64)

// CacheKey is the cache key of a model URL (its vision tensors).
func CacheKey(source string) string { return "imgembed-v1 " + source }

// CacheKeyFor is the cache key of the towers of a model URL: CacheKey for
// the vision tower alone (as before text existed), else the towers named.
func CacheKeyFor(source string, t Towers) string {
	if t.orDefault() == Vision {
		return CacheKey(source)
	}
	return "imgembed-v1 " + t.String() + " " + source
}

// File is a validated vision checkpoint whose bytes are in Data.
type File struct {
	Data   Bytes
	Header *safetensors.Header // offsets are absolute offsets into Data
	Config weights.Config      // zero when the vision tower was not asked for
	// Text is the text tower's config, nil when it was not asked for.
	Text *weights.TextConfig
	// Names are the tensors the graphs need (vit.Tensors(Config), then
	// weights.TextTensorNames(*Text)), in the order the graphs ask for them.
	Names []string
	// Stored are the tensors held for them: Names plus the scales of int8
	// tensors (weights.NeededTensors).
	Stored []string
	// DType is the dtype of the vision tensors ("mixed" if they differ; I8
	// for a file in the int8 scheme).
	DType safetensors.DType
	// WeightBytes is the stored size of the vision tensors.
	WeightBytes int64
	// FromCache is true when the bytes came from the cache.
	FromCache bool
	// Vouched is true when the cache's bytes were taken on Options.Vouched's
	// word, unchecked.
	Vouched bool
	// Downloaded counts response-body bytes received from the network.
	Downloaded int64
	// Unchecked is true when the weights were not scanned for NaN and
	// infinity (OpenUnchecked): the decoder must check them
	// (weights.Decoder.CheckFinite).
	Unchecked bool
}

// Tensor describes a needed tensor.
func (f *File) Tensor(name string) (safetensors.TensorInfo, bool) { return f.Header.Tensor(name) }

// Open validates a complete safetensors file held in data (its vision
// tower).
func Open(data Bytes, hfConfig []byte) (*File, error) { return OpenTowers(data, hfConfig, Vision) }

// OpenTowers validates a complete safetensors file held in data, with the
// tensors of the towers t.
func OpenTowers(data Bytes, hfConfig []byte, t Towers) (*File, error) {
	f, err := OpenUnchecked(data, hfConfig, t)
	if err != nil {
		return nil, err
	}
	if err := checkFinite(f); err != nil {
		return nil, err
	}
	f.Unchecked = false
	return f, nil
}

// OpenUnchecked is OpenTowers without the pass over the weights that
// refuses NaN and infinity: for a loader that reads every tensor once
// through a weights.Decoder with CheckFinite set, which finds them as it
// decodes (one read of the file instead of two).
func OpenUnchecked(data Bytes, hfConfig []byte, t Towers) (*File, error) {
	n := data.Len()
	k := min(n, 8)
	first := make([]byte, k)
	data.CopyTo(first, 0)
	hl, err := safetensors.HeaderLen(first)
	if err != nil {
		return nil, newErr(InvalidModel, err, "")
	}
	if 8+hl > n {
		return nil, newErr(InvalidModel, safetensors.ErrTruncated, "header of %d bytes does not fit in %d bytes", hl, n)
	}
	js := make([]byte, hl)
	data.CopyTo(js, 8)
	h, err := safetensors.ParseHeader(js, n)
	if err != nil {
		return nil, newErr(InvalidModel, err, "parsing the header")
	}
	cfg, text, names, err := selectTensors(h, hfConfig, t)
	if err != nil {
		return nil, err
	}
	f := &File{Data: data, Header: h, Config: cfg, Text: text, Names: names, Stored: weights.NeededTensors(h, names), Unchecked: true}
	f.summarise()
	return f, nil
}

func (f *File) summarise() {
	f.WeightBytes = 0
	f.DType = ""
	int8 := false
	for _, name := range f.Stored {
		t, _ := f.Header.Tensor(name)
		f.WeightBytes += t.Len()
		if strings.HasSuffix(name, weights.ScaleSuffix) {
			continue
		}
		int8 = int8 || t.DType == safetensors.I8
		switch f.DType {
		case "":
			f.DType = t.DType
		case t.DType:
		default:
			f.DType = "mixed"
		}
	}
	if int8 { // the int8 scheme: I8 matrices, F16 for the rest
		f.DType = safetensors.I8
	}
}

// selectTensors infers the configs of the towers t and lists their
// tensors, checked as visionTensors does.
func selectTensors(h *safetensors.Header, hfConfig []byte, t Towers) (weights.Config, *weights.TextConfig, []string, error) {
	t = t.orDefault()
	var cfg weights.Config
	var names []string
	if t&Vision != 0 {
		var err error
		if cfg, names, err = visionTensors(h, hfConfig); err != nil {
			return cfg, nil, nil, err
		}
	}
	if t&Text == 0 {
		return cfg, nil, names, nil
	}
	tc, err := weights.TextConfigFrom(h, hfConfig) // includes the shape and dtype check
	if err != nil {
		return cfg, nil, nil, newErr(InvalidModel, err, "the text tower")
	}
	names = append(names, weights.TextTensorNames(tc)...)
	// CLIP's logit_scale (one number) comes along when present: zero-shot
	// classification scales the cosines by its exp.
	if ls, ok := h.Tensor(weights.KeyLogitScale); ok && ls.NumElements() == 1 {
		switch ls.DType {
		case safetensors.F32, safetensors.F16, safetensors.BF16, safetensors.F64:
			names = append(names, weights.KeyLogitScale)
		}
	}
	return cfg, &tc, names, nil
}

// visionTensors infers the config and checks that every tensor the graph
// needs is present with a dtype that converts to float32.
func visionTensors(h *safetensors.Header, hfConfig []byte) (weights.Config, []string, error) {
	cfg, err := weights.ConfigFrom(h, hfConfig)
	if err != nil {
		return cfg, nil, newErr(InvalidModel, err, "inferring the vision config")
	}
	names := vit.Tensors(cfg)
	for _, name := range names {
		t, ok := h.Tensor(name)
		if !ok {
			return cfg, nil, newErr(InvalidModel, safetensors.ErrNotFound, "the file has no tensor %q", name)
		}
		switch t.DType {
		case safetensors.F32, safetensors.F16, safetensors.BF16, safetensors.F64:
		case safetensors.I8:
			if _, err := weights.CheckInt8(h, name); err != nil {
				return cfg, nil, newErr(InvalidModel, err, "int8 tensor %q", name)
			}
		default:
			return cfg, nil, newErr(InvalidModel, safetensors.ErrUnsupportedDType, "tensor %q has dtype %s", name, t.DType)
		}
	}
	return cfg, names, nil
}

// Load returns the vision checkpoint at source (a URL, given unchanged to
// Env.Fetch), from the cache when it holds a valid copy, else downloaded
// (and then cached).
func Load(source string, o Options) (*File, error) {
	o = o.withDefaults()
	p := &progress{fn: o.Progress}
	if o.Env.Aborted() {
		return nil, newErr(Aborted, nil, "aborted before loading")
	}
	f, corrupt, err := cached(source, o, p)
	if err != nil || f != nil {
		return f, err
	}
	d, err := restarting(o, source, corrupt, func() (*download, error) {
		d := &download{o: o, src: source, p: p, size: -1, hl: -1}
		var err error
		f, err = d.run()
		return d, err
	})
	if err != nil {
		return nil, err
	}
	if o.Cache != nil {
		if err := d.seal(); err == nil {
			o.Cache.Put(CacheKeyFor(source, o.Towers), f.Data)
		}
	}
	p.final()
	return f, nil
}

// restarting runs a download that attempt makes and starts. A file that
// changes on the server during the download (its validator or size
// differs from the first response's) is never assembled from both
// versions: the download starts over once, and fails if the file changes
// again. Other failures are the load's error (failed; corrupt says why a
// damaged cache entry was deleted first, if one was).
func restarting(o Options, source string, corrupt error, attempt func() (*download, error)) (*download, error) {
	for n := 1; ; n++ {
		d, err := attempt()
		var ch *changedError
		if errors.As(err, &ch) {
			if n < 2 && !o.Env.Aborted() {
				continue
			}
			return nil, d.fail(DownloadFailed, ch, "%s changed during download (twice)", source)
		}
		if err != nil {
			return nil, failed(err, source, corrupt)
		}
		return d, nil
	}
}

// cached returns the cache's valid copy of source, or nil (then corrupt
// says why a damaged entry was deleted, if one was). A copy that fails its
// checks, or whose file changed on the server (ETag revalidation), is
// deleted.
func cached(source string, o Options, p *progress) (f *File, corrupt, err error) {
	if o.Cache == nil {
		return nil, nil, nil
	}
	key := CacheKeyFor(source, o.Towers)
	b := o.Cache.Get(key)
	if b == nil {
		return nil, nil, nil
	}
	vouched := o.Vouched != nil && o.Vouched(b)
	if vouched {
		f, err = OpenUnchecked(b, o.HFConfig, o.Towers)
	} else {
		f, err = OpenTowers(b, o.HFConfig, o.Towers)
	}
	if err == nil && f.Header.Metadata[MetaSource] != source {
		err = fmt.Errorf("the entry is for %q", f.Header.Metadata[MetaSource])
	}
	if err == nil && !vouched {
		err = verifyDigest(o.Cache, f)
	}
	if err == nil {
		f.Vouched = vouched
	}
	if err == nil && (o.NoRevalidate || !changed(o, source, f.Header.Metadata[MetaETag])) {
		f.FromCache = true
		p.report(b.Len(), b.Len())
		return f, nil, nil
	}
	o.Cache.Delete(key)
	return nil, err, nil
}

// failed is the error of a failed download of source, saying so when it
// replaced a damaged cache entry (corrupt: why the entry was refused).
func failed(err error, source string, corrupt error) error {
	if corrupt != nil {
		var le *Error
		if errors.As(err, &le) {
			return newErr(le.Code, err, "the cached copy of %s was damaged (%v) and has been removed; downloading it again failed", source, corrupt)
		}
	}
	return naming(err, source)
}

// progress reports monotonic fractions and remembers the last total.
type progress struct {
	fn        func(loaded, total int64)
	last      float64
	lastTotal int64
}

func (p *progress) report(loaded, total int64) {
	if p.fn == nil || total <= 0 {
		return
	}
	loaded = min(loaded, total)
	fr := float64(loaded) / float64(total)
	if fr < p.last || (fr == p.last && p.lastTotal != 0) {
		return
	}
	p.last, p.lastTotal = fr, total
	p.fn(loaded, total)
}

func (p *progress) final() {
	if p.fn != nil && p.lastTotal > 0 && p.last < 1 {
		p.last = 1
		p.fn(p.lastTotal, p.lastTotal)
	}
}

// changedError says that a response belongs to another version of the file
// than the first response did.
type changedError struct{ what string }

func (e *changedError) Error() string { return "changed during download: " + e.what }

type need struct {
	info   safetensors.TensorInfo // in the source file
	dst    int64                  // absolute offset in the assembled file
	filled int64                  // bytes [0, filled) received
	part   int                    // index of the part holding the tensor (d.parts)
	at     int64                  // the tensor's offset in its part
	rank   int                    // position in the order the graphs read tensors (Stream)
	// released: the reader is done with the tensor (Streamed.Release).
	released bool
	// views hold the tensor's bytes as received (lazy: views of the
	// response chunks, no copy), in order; refs are their chunks.
	views []Bytes
	refs  []*chunkRef
}

// chunkRef counts the tensors that still view a response chunk.
type chunkRef struct {
	c     Bytes
	users int
}

type download struct {
	o   Options
	src string
	p   *progress

	// The validators of the first response; every later response must
	// carry the same (when it carries one) and requests are conditional on
	// them.
	etag, lastModified string
	responses          int   // responses received
	size               int64 // source file size, -1 unknown
	full               bool  // streaming the whole file (server ignored Range)

	hl      int64  // header length, -1 unknown
	head    []byte // source bytes [0, len(head)), up to 8+hl
	pending []chunk

	needs     []need // sorted by info.Begin
	neededLen int64  // source header + needed tensor bytes
	dataEnd   int64  // end of the source data section
	parts     *Parts
	head0     Buffer // the header part
	out       *safetensors.Header
	cfg       weights.Config
	text      *weights.TextConfig
	names     []string

	received int64 // body bytes received, all responses
	bodyPos  int64 // offset reached in the current full-file body
	// digestAt is where the digest's 64 characters go in buf (-1: none).
	digestAt int64
	// rangeEnd is the end of the bytes the current 206 response was asked
	// for (-1: a 200, read up to dataEnd): a server that sends more, even
	// endlessly, is not read past it.
	rangeEnd int64

	// cur is the response being read (nil: none) and curOff the source
	// offset of its next byte.
	cur    *Response
	curOff int64
	// lazy (Stream without a cache): each tensor's bytes are kept as views
	// of the chunks they arrived in (need.views) until it is read, never
	// copied into parts.
	lazy bool
	// order lists the needs in the order the graphs read them (Stream).
	order []int
	// toCache (Stream with a StreamCache): each tensor's part is allocated
	// when its first byte arrives, written to the cache entry once read
	// (and those before it are), then freed.
	toCache bool
	// verify (a cache entry read as a stream, Stream): what its digest
	// is checked against; srcMeta is the source header's metadata.
	verify  *verifier
	srcMeta map[string]string
	// reqFrom is where the last planned request started and reqDone
	// neededDone() when it was made (-1: no check): a response that
	// brings none of what it was asked for fails the load.
	reqFrom, reqDone int64
}

type chunk struct {
	off int64
	b   Bytes
}

func (d *download) fail(code Code, cause error, format string, args ...any) error {
	if d.o.Env.Aborted() {
		return newErr(Aborted, cause, "aborted")
	}
	return newErr(code, cause, format, args...)
}

// request fetches [from, to) (to < 0: to the end) and returns the response
// and the source offset its body starts at. Every request after the first
// is conditional on the first response's validator; a response of another
// version of the file fails with a *changedError.
func (d *download) request(from, to int64) (*Response, int64, error) {
	if d.o.Env.Aborted() {
		return nil, 0, newErr(Aborted, nil, "aborted")
	}
	rng := fmt.Sprintf("bytes=%d-", from)
	if to >= 0 {
		rng += strconv.FormatInt(to-1, 10)
	}
	r := Request{Range: rng}
	if d.o.StallTimeout > 0 {
		r.Stall = d.o.StallTimeout
	}
	if d.responses > 0 {
		// If-Range and If-Match need a strong validator; a weak ETag is
		// only compared below. A date in If-Range is weaker but is what a
		// server without ETags offers.
		switch {
		case d.etag != "" && !strings.HasPrefix(d.etag, "W/"):
			r.IfRange, r.IfMatch = d.etag, d.etag
		case d.etag == "" && d.lastModified != "":
			r.IfRange = d.lastModified
		}
	}
	resp, err := d.o.Env.Fetch(d.src, r)
	if err != nil {
		if errors.Is(err, ErrStalled) {
			return nil, 0, d.fail(DownloadFailed, err, "fetching %s: stalled, no response for %v", d.src, d.o.StallTimeout)
		}
		// No answer at all: the one case where being offline is the likely
		// cause (an HTTP error status says what the server did instead).
		return nil, 0, d.fail(DownloadFailed, err, "cannot reach %s (offline, or the host is unreachable? a local safetensors file works without network)", d.src)
	}
	if err := d.sameVersion(resp, r); err != nil {
		resp.Body.Close()
		return nil, 0, err
	}
	d.responses++
	switch resp.Status {
	case 206:
		cr := resp.Header("content-range")
		start, size, ok := parseContentRange(cr)
		if cr == "" {
			// A cross-origin response whose server does not expose
			// Content-Range (Access-Control-Expose-Headers): the body is the
			// range asked for, of a file of unknown size.
			start, size, ok = from, -1, true
		}
		if !ok {
			resp.Body.Close()
			return nil, 0, d.fail(DownloadFailed, nil, "206 response with Content-Range %q", resp.Header("content-range"))
		}
		if size >= 0 {
			if d.size >= 0 && d.size != size {
				resp.Body.Close()
				return nil, 0, &changedError{fmt.Sprintf("the file was %d bytes, then %d", d.size, size)}
			}
			d.size = size
		}
		d.rangeEnd = to
		return resp, start, nil
	case 200:
		if resp.Header("content-encoding") == "" {
			if n, err := strconv.ParseInt(resp.Header("content-length"), 10, 64); err == nil && n >= 0 {
				if d.size >= 0 && d.size != n {
					resp.Body.Close()
					return nil, 0, &changedError{fmt.Sprintf("the file was %d bytes, then %d", d.size, n)}
				}
				d.size = n
			}
		}
		d.full = true
		d.bodyPos = 0
		d.rangeEnd = -1
		return resp, 0, nil
	case 416:
		resp.Body.Close()
		return nil, 0, d.fail(InvalidModel, safetensors.ErrTruncated, "the server says bytes %d- are beyond the end of %s (HTTP 416)", from, d.src)
	default:
		resp.Body.Close()
		return nil, 0, d.fail(DownloadFailed, nil, "the server answered HTTP %d for %s", resp.Status, d.src)
	}
}

// sameVersion pins the file's version: the first response's ETag (else its
// Last-Modified) is remembered, and a later response with another one, a
// 412 to If-Match, or a 200 to If-Range (the server's way of saying the
// validator no longer matches) is a *changedError.
func (d *download) sameVersion(resp *Response, r Request) error {
	etag, lm := resp.Header("etag"), resp.Header("last-modified")
	if d.responses == 0 {
		d.etag, d.lastModified = etag, lm
		return nil
	}
	switch {
	case resp.Status == 412:
		return &changedError{"HTTP 412 to If-Match " + r.IfMatch}
	case d.etag != "" && etag != "" && weakETag(etag) != weakETag(d.etag):
		return &changedError{fmt.Sprintf("ETag %s, then %s", d.etag, etag)}
	case d.etag == "" && d.lastModified != "" && lm != "" && lm != d.lastModified:
		return &changedError{fmt.Sprintf("Last-Modified %s, then %s", d.lastModified, lm)}
	case resp.Status == 200 && r.IfRange != "" && (etag == "" || weakETag(etag) != weakETag(d.etag)):
		return &changedError{"a whole-file answer to If-Range " + r.IfRange}
	}
	return nil
}

// weakETag drops the weak marker (weak comparison, RFC 9110 8.8.3.2).
func weakETag(s string) string { return strings.TrimPrefix(strings.TrimSpace(s), "W/") }

// parseContentRange parses "bytes A-B/SIZE" (SIZE may be "*": -1).
func parseContentRange(s string) (start, size int64, ok bool) {
	s = strings.TrimSpace(s)
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, total, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	size = -1
	if total = strings.TrimSpace(total); total != "*" {
		size, err = strconv.ParseInt(total, 10, 64)
		if err != nil || size < 0 {
			return 0, 0, false
		}
	}
	return start, size, true
}

// stream reads a body that starts at source offset off to its end.
func (d *download) stream(resp *Response, off int64) error {
	d.open(resp, off)
	for d.cur != nil {
		if err := d.pump(); err != nil {
			return err
		}
	}
	return nil
}

// open makes resp, whose body starts at source offset off, the response
// pump reads.
func (d *download) open(resp *Response, off int64) { d.cur, d.curOff = resp, off }

// closeCur abandons the current response.
func (d *download) closeCur() {
	if d.cur != nil {
		d.cur.Body.Close()
		d.cur = nil
	}
}

// pump reads one chunk of the current response and hands its bytes on;
// the response is closed (d.cur nil) once it has brought all it can.
func (d *download) pump() error {
	c, err := d.cur.Body.Next()
	if err == io.EOF {
		d.closeCur()
		return nil
	}
	if err != nil {
		d.closeCur()
		if errors.Is(err, ErrStalled) {
			return d.fail(DownloadFailed, err, "reading %s: stalled, no bytes for %v", d.src, d.o.StallTimeout)
		}
		return d.fail(DownloadFailed, err, "reading %s", d.src)
	}
	if d.o.Env.Aborted() {
		d.closeCur()
		return newErr(Aborted, nil, "aborted")
	}
	off := d.curOff
	n := c.Len()
	d.received += n
	if err := d.take(off, c); err != nil {
		d.closeCur()
		return err
	}
	off += n
	d.curOff = off
	if d.full {
		d.bodyPos = off
	}
	d.reportProgress()
	if !d.full && d.rangeEnd >= 0 && off >= d.rangeEnd {
		d.closeCur()
		return nil
	}
	// Past the end of the data section the header declares, a whole
	// file holds nothing the model needs (and an endless body would
	// never finish).
	if d.full && d.needs != nil && off >= d.dataEnd {
		d.closeCur()
	}
	return nil
}

func (d *download) reportProgress() {
	switch {
	case d.full:
		total := d.size
		if total < 0 && d.needs != nil {
			total = d.dataEnd
		}
		d.p.report(d.bodyPos, total)
	case d.needs != nil:
		d.p.report(d.neededDone(), d.neededLen)
	}
}

func (d *download) neededDone() int64 {
	n := min(int64(len(d.head)), 8+d.hl)
	for i := range d.needs {
		n += d.needs[i].filled
	}
	return n
}

// take handles the chunk c at source offset off: header bytes are copied
// into Go, tensor bytes into the assembled buffer.
func (d *download) take(off int64, c Bytes) error {
	end := off + c.Len()
	if d.needs == nil {
		for {
			want := int64(8)
			if d.hl >= 0 {
				want = 8 + d.hl
			}
			have := int64(len(d.head))
			if have >= want || off > have || end <= have {
				break
			}
			m := min(end, want) - have
			d.head = append(d.head, make([]byte, m)...)
			c.CopyTo(d.head[have:], have-off)
			if d.hl < 0 && len(d.head) >= 8 {
				hl, err := safetensors.HeaderLen(d.head[:8])
				if err != nil {
					return newErr(InvalidModel, err, "%s", d.src)
				}
				d.hl = hl
			}
		}
		if d.hl < 0 || int64(len(d.head)) < 8+d.hl {
			if end > int64(len(d.head)) {
				d.pending = append(d.pending, chunk{off, c})
			}
			return nil
		}
		if err := d.plan(); err != nil {
			return err
		}
		for _, p := range d.pending {
			if err := d.feed(p.off, p.b); err != nil {
				return err
			}
		}
		d.pending = nil
	}
	return d.feed(off, c)
}

// plan parses the source header, picks the vision tensors and lays out the
// assembled file: the needed tensors, largest element size first (so that
// with the 8-byte aligned header every tensor is aligned for a typed-array
// view), under a header that keeps the source metadata.
func (d *download) plan() error {
	h, err := safetensors.ParseHeader(d.head[8:8+d.hl], d.size)
	if err != nil {
		return newErr(InvalidModel, err, "%s", d.src)
	}
	d.srcMeta = h.Metadata
	cfg, text, names, err := selectTensors(h, d.o.HFConfig, d.o.Towers)
	if err != nil {
		return err
	}
	d.cfg, d.text, d.names = cfg, text, names
	d.dataEnd = h.DataStart
	if n := len(h.Tensors); n > 0 {
		d.dataEnd = h.Tensors[n-1].End
	}
	stored := weights.NeededTensors(h, names)
	layout := make([]safetensors.TensorInfo, len(stored))
	for i, name := range stored {
		layout[i], _ = h.Tensor(name)
	}
	if d.toCache {
		// A streamed cache entry is written as the tensors are read, so
		// its tensors are laid out in that order (which also makes a read
		// of the entry one pass in order).
		at := map[string]int{}
		for i, name := range readNames(names) {
			at[name] = i
		}
		sort.SliceStable(layout, func(i, j int) bool { return at[layout[i].Name] < at[layout[j].Name] })
	} else {
		sort.SliceStable(layout, func(i, j int) bool {
			a, _ := layout[i].DType.Bits()
			b, _ := layout[j].DType.Bits()
			return a > b
		})
	}
	specs := make([]safetensors.Spec, len(layout))
	for i, t := range layout {
		specs[i] = safetensors.Spec{Name: t.Name, DType: t.DType, Shape: t.Shape}
	}
	// The inferred config is written into the metadata so that a cached
	// copy yields the same config without the hfConfig it may have needed.
	meta := map[string]string{}
	for k, v := range h.Metadata {
		meta[k] = v
	}
	if d.o.Towers.orDefault()&Vision != 0 {
		for k, v := range cfg.Metadata() {
			meta[k] = v
		}
	}
	if text != nil {
		for k, v := range text.TextMetadata() {
			meta[k] = v
		}
	}
	meta[MetaSource] = d.src
	if d.etag != "" {
		meta[MetaETag] = d.etag
	}
	if d.size >= 0 {
		meta[MetaLength] = strconv.FormatInt(d.size, 10)
	}
	delete(meta, MetaDigest)
	if d.o.Cache != nil {
		meta[MetaDigest] = digestPlaceholder
	}
	hdr, sizes, err := safetensors.EncodeHeader(specs, meta)
	if err != nil {
		return newErr(InvalidModel, err, "writing the vision-only header")
	}
	start := 8 + int64(len(hdr))
	total := start
	d.needs = make([]need, len(layout))
	for i, t := range layout {
		d.needs[i] = need{info: t, dst: total}
		total += sizes[i]
	}
	sort.Slice(d.needs, func(i, j int) bool { return d.needs[i].info.Begin < d.needs[j].info.Begin })
	d.neededLen = 8 + d.hl + (total - start)
	if d.out, err = safetensors.ParseHeader(hdr, total); err != nil {
		return newErr(InvalidModel, err, "re-reading the vision-only header")
	}
	// The file is assembled in parts: the header, then each tensor in a
	// buffer of its own (in layout order), so that each tensor's bytes can
	// be freed once they are in their final tensor.
	d.parts = &Parts{}
	head, err := d.o.Env.Alloc(start)
	if err != nil {
		return newErr(InvalidModel, err, "allocating %d bytes for the header", start)
	}
	var l [8]byte
	binary.LittleEndian.PutUint64(l[:], uint64(len(hdr)))
	head.PutGo(0, l[:])
	head.PutGo(8, hdr)
	d.parts.add(head, 0)
	d.head0 = head
	byDst := make([]*need, len(d.needs))
	for i := range d.needs {
		byDst[i] = &d.needs[i]
	}
	sort.Slice(byDst, func(i, j int) bool { return byDst[i].dst < byDst[j].dst })
	for i := 0; i < len(byDst); {
		// One part: tensor i and those after it of its dtype until the
		// part holds MinPartBytes (empty tensors need no bytes). Not across
		// dtypes: an int8 file's scales and F16 tensors (read all through
		// the load) would otherwise keep the first I8 tensors' part alive.
		j, size, users := i, int64(0), 0
		minPart := d.o.MinPartBytes
		if d.lazy || d.toCache {
			minPart = 0 // a part per tensor, freed as soon as it is read
		}
		for ; j < len(byDst) && (j == i || (size < minPart && byDst[j].info.DType == byDst[i].info.DType)); j++ {
			if l := byDst[j].info.Len(); l > 0 {
				size += l
				users++
			}
		}
		if size > 0 {
			var buf Buffer = lazyPart{size}
			if !d.lazy && !d.toCache {
				var err error
				if buf, err = d.o.Env.Alloc(size); err != nil {
					return newErr(InvalidModel, err, "allocating %d bytes for %s", size, byDst[i].info.Name)
				}
			}
			var at int64
			for _, n := range byDst[i:j] {
				if n.info.Len() > 0 {
					n.part, n.at = len(d.parts.bufs), at
					at += n.info.Len()
				}
			}
			d.parts.add(buf, users)
		}
		i = j
	}
	d.order = readOrder(d.needs, d.names)
	d.digestAt = -1
	if d.o.Cache != nil {
		d.digestAt = 8 + int64(bytes.Index(hdr, []byte(`"`+digestPlaceholder+`"`))) + 1
	}
	return nil
}

// seal writes the digest of the assembled file into its header, in the
// placeholder plan left.
func (d *download) seal() error {
	if d.digestAt < 9 {
		return errors.New("no digest placeholder")
	}
	sum, err := fileDigest(d.o.Cache, d.parts, d.out)
	if err != nil {
		return err
	}
	h := hex.EncodeToString(sum[:])
	d.head0.PutGo(d.digestAt, []byte(h))
	d.out.Metadata[MetaDigest] = h
	return nil
}

// digest hashes b with the cache's Digester, else in Go a chunk at a time.
func digest(c Cache, b Bytes) ([32]byte, error) {
	if dg, ok := c.(Digester); ok {
		if sum, err := dg.Digest(b); err == nil {
			return sum, nil
		}
	}
	return digestGo(b, -1), nil
}

// digestGo hashes b in Go, 1 MiB at a time, reading the 64 bytes at zeroAt
// (when >= 0) as ASCII '0'.
func digestGo(b Bytes, zeroAt int64) [32]byte {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off, n := int64(0), b.Len(); off < n; off += int64(len(buf)) {
		k := min(int64(len(buf)), n-off)
		b.CopyTo(buf[:k], off)
		if zeroAt >= 0 {
			for i := max(zeroAt, off); i < min(zeroAt+64, off+k); i++ {
				buf[i-off] = '0'
			}
		}
		h.Write(buf[:k])
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// revalidateStall bounds the wait for a revalidation's answer.
const revalidateStall = 10 * time.Second

// changed revalidates a cached copy whose ETag is etag: one GET with
// If-None-Match and a 1-byte Range. Only an answer with another ETag (or
// none) says the file changed; 304, the same ETag, a failed request or an
// error status keep the copy (the server may be unreachable: offline use).
func changed(o Options, source, etag string) bool {
	if etag == "" || o.Env.Aborted() {
		return false
	}
	// A short stall bound: an unresponsive server must not hold up a load
	// that the cache can serve.
	stall := o.StallTimeout
	if stall <= 0 || stall > revalidateStall {
		stall = revalidateStall
	}
	r := Request{Range: "bytes=0-0", IfNoneMatch: etag, Stall: stall}
	resp, err := o.Env.Fetch(source, r)
	if err != nil {
		return false
	}
	resp.Body.Close()
	switch resp.Status {
	case 200, 206:
		got := resp.Header("etag")
		return strings.TrimPrefix(got, "W/") != strings.TrimPrefix(etag, "W/")
	}
	return false
}

// errDigest: a cache entry whose bytes do not match its digest.
var errDigest = errors.New("SHA-256 mismatch")

// verifyDigest checks a cache entry against its MetaDigest. The entry's
// digest characters are overwritten with '0' for the check (the module
// owns what the cache returned).
func verifyDigest(c Cache, f *File) error {
	want := f.Header.Metadata[MetaDigest]
	if len(want) != 64 {
		return fmt.Errorf("no %s in the entry", MetaDigest)
	}
	if _, err := hex.DecodeString(want); err != nil {
		return fmt.Errorf("%s %q is not hex", MetaDigest, want)
	}
	hdr := make([]byte, f.Header.DataStart-8)
	f.Data.CopyTo(hdr, 8)
	i := bytes.Index(hdr, []byte(`"`+want+`"`))
	if i < 0 {
		return fmt.Errorf("%s not found in the header bytes", MetaDigest)
	}
	at := 8 + int64(i) + 1
	var sum [32]byte
	if buf, ok := f.Data.(Buffer); ok {
		buf.PutGo(at, []byte(digestPlaceholder))
		var err error
		if sum, err = fileDigest(c, buf, f.Header); err != nil {
			return err
		}
	} else { // read-only bytes: the digest characters read as '0'
		var err error
		if sum, err = fileDigest(nil, zeroed{f.Data, at}, f.Header); err != nil {
			return err
		}
	}
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("%w: the entry hashes to %s, its header says %s", errDigest, got[:16], want[:16])
	}
	return nil
}

// feed copies the parts of chunk c (at source offset off) that extend a
// needed tensor's received prefix. Bytes that arrive twice (a full body
// after a Range prefix) or out of order are ignored; missing bytes are
// found by the completeness check.
func (d *download) feed(off int64, c Bytes) error {
	end := off + c.Len()
	var ref *chunkRef
	if !d.lazy {
		// Its bytes are copied into parts (or not needed): done with it.
		defer d.discard(c)
	} else {
		ref = &chunkRef{c: c}
		defer func() {
			if ref.users == 0 {
				d.discard(c)
			}
		}()
	}
	i := sort.Search(len(d.needs), func(i int) bool { return d.needs[i].info.End > off })
	for ; i < len(d.needs) && d.needs[i].info.Begin < end; i++ {
		n := &d.needs[i]
		from := n.info.Begin + n.filled
		if from < off || from >= n.info.End {
			continue
		}
		to := min(end, n.info.End)
		if d.lazy {
			if !n.released {
				n.views = append(n.views, sub(c, from-off, to-off))
				n.refs = append(n.refs, ref)
				ref.users++
			}
			n.filled = to - n.info.Begin
			continue
		}
		buf, err := d.partOf(n)
		if err != nil {
			return err
		}
		buf.Put(n.at+n.filled, c, from-off, to-off)
		n.filled = to - n.info.Begin
		if d.verify != nil && n.filled == n.info.Len() {
			// A cache entry read as a stream: each tensor's digest as it
			// completes (checked at Streamed.Finish).
			sum, err := digest(d.o.Cache, buf)
			if err != nil {
				return err
			}
			d.verify.sums[i] = sum
		}
	}
	return nil
}

// Discarder is an optional Env method: free a response chunk at once (a
// JS chunk's memory otherwise waits for the JS collector). A streamed load
// calls it once no tensor needs the chunk's bytes.
type Discarder interface {
	Discard(b Bytes)
}

func (d *download) discard(c Bytes) {
	if dc, ok := d.o.Env.(Discarder); ok {
		dc.Discard(c)
	}
}

// partOf returns the buffer of n's part, allocating it on first use (lazy
// parts).
func (d *download) partOf(n *need) (Buffer, error) {
	b := d.parts.bufs[n.part]
	if l, ok := b.(lazyPart); ok {
		nb, err := d.o.Env.Alloc(l.n)
		if err != nil {
			return nil, newErr(InvalidModel, err, "allocating %d bytes for %s", l.n, n.info.Name)
		}
		d.parts.bufs[n.part] = nb
		b = nb
	}
	return b, nil
}

// missing returns the source ranges still needed, coalesced.
func (d *download) missing() [][2]int64 {
	var rs [][2]int64
	for _, n := range d.needs {
		a, b := n.info.Begin+n.filled, n.info.End
		if a >= b {
			continue
		}
		if k := len(rs); k > 0 && a-rs[k-1][1] <= d.o.MaxGap {
			rs[k-1][1] = max(rs[k-1][1], b)
			continue
		}
		rs = append(rs, [2]int64{a, b})
	}
	return rs
}

func (d *download) run() (*File, error) {
	resp, off, err := d.request(0, d.o.PrefixSize)
	if err != nil {
		return nil, err
	}
	if err := d.stream(resp, off); err != nil {
		return nil, err
	}
	// The header may be longer than the prefix: ask for the rest.
	for d.needs == nil && !d.full {
		if d.hl < 0 {
			return nil, d.fail(InvalidModel, safetensors.ErrTruncated, "%s is shorter than 8 bytes", d.src)
		}
		have := int64(len(d.head))
		if d.size >= 0 && 8+d.hl > d.size {
			return nil, newErr(InvalidModel, safetensors.ErrTruncated, "header of %d bytes does not fit in the %d-byte file %s", d.hl, d.size, d.src)
		}
		resp, off, err := d.request(have, 8+d.hl)
		if err != nil {
			return nil, err
		}
		if err := d.stream(resp, off); err != nil {
			return nil, err
		}
		if int64(len(d.head)) == have && d.needs == nil && !d.full {
			return nil, d.fail(DownloadFailed, nil, "no progress reading the header of %s", d.src)
		}
	}
	if d.needs == nil {
		if d.hl < 0 {
			return nil, newErr(InvalidModel, safetensors.ErrTruncated, "%s ends after %d bytes, inside the header length", d.src, len(d.head))
		}
		return nil, newErr(InvalidModel, safetensors.ErrTruncated, "%s ends after %d bytes, inside the %d-byte header", d.src, len(d.head), d.hl)
	}
	for !d.full {
		rs := d.missing()
		if len(rs) == 0 {
			break
		}
		r := rs[0]
		resp, off, err := d.request(r[0], r[1])
		if err != nil {
			return nil, err
		}
		before := d.neededDone()
		if err := d.stream(resp, off); err != nil {
			return nil, err
		}
		if !d.full && d.neededDone() == before {
			return nil, d.fail(DownloadFailed, nil, "the response for bytes %d-%d of %s brought none of them", r[0], r[1]-1, d.src)
		}
	}
	if rs := d.missing(); len(rs) > 0 {
		var n int64
		for _, r := range rs {
			n += r[1] - r[0]
		}
		if d.full && d.bodyPos < d.dataEnd && (d.size < 0 || d.size >= d.dataEnd) {
			return nil, newErr(DownloadFailed, io.ErrUnexpectedEOF, "%s ended after %d bytes, %d of the needed bytes missing", d.src, d.bodyPos, n)
		}
		return nil, newErr(InvalidModel, safetensors.ErrTruncated, "%d needed bytes of %s are missing", n, d.src)
	}
	f := &File{Data: d.parts, Header: d.out, Config: d.cfg, Text: d.text, Names: d.names, Stored: weights.NeededTensors(d.out, d.names), Downloaded: d.received}
	f.summarise()
	if err := checkFinite(f); err != nil {
		return nil, err
	}
	return f, nil
}
