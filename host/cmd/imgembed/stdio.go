package main

// `imgembed stdio`: the engine driven by another process (the npm package's
// backend: 'native') over stdin/stdout with framed messages. The protocol is
// specified in PROTOCOL.md next to this file; in short, every message is
//
//	uint32 LE header length H | uint32 LE payload length P | H bytes JSON | P bytes
//
// The child announces {"type":"ready"} (after "progress" messages while the
// model loads), then answers requests {"id", "op"} in any order, each answer
// carrying its request's id, so calls can be pipelined. stdin EOF means: finish
// what was asked, then exit 0.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/imgembed/imgembed/host"
)

// stdioProtocol is the protocol version in the ready message; a client
// refuses a version it does not know.
const stdioProtocol = 1

const (
	maxHeaderBytes    = 1 << 20
	maxPendingFrames  = 64
	maxImageFileBytes = 256 << 20 // as the JS package reads local files
)

type frameHeader struct {
	ID     *uint64      `json:"id,omitempty"`
	Type   string       `json:"type,omitempty"`
	Op     string       `json:"op,omitempty"`
	Target uint64       `json:"target,omitempty"`
	Inputs []stdioInput `json:"inputs,omitempty"`
}

type stdioInput struct {
	Kind   string `json:"kind"` // bytes | pixels | path | url
	Length int64  `json:"length,omitempty"`
	Path   string `json:"path,omitempty"`
	URL    string `json:"url,omitempty"`
}

type stdioResult struct {
	OK    bool     `json:"ok,omitempty"`
	Error *errJSON `json:"error,omitempty"`
}

type frameWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

func (fw *frameWriter) write(header any, payload []byte) error {
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.err != nil {
		return fw.err
	}
	var pre [8]byte
	binary.LittleEndian.PutUint32(pre[0:], uint32(len(h)))
	binary.LittleEndian.PutUint32(pre[4:], uint32(len(payload)))
	fw.w.Write(pre[:])
	fw.w.Write(h)
	fw.w.Write(payload)
	fw.err = fw.w.Flush()
	return fw.err
}

// readFrame reads one frame; io.EOF only at a frame boundary.
func readFrame(r io.Reader, maxPayload int64) (frameHeader, []byte, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return frameHeader{}, nil, fmt.Errorf("truncated frame prefix")
		}
		return frameHeader{}, nil, err
	}
	hl := binary.LittleEndian.Uint32(pre[0:])
	pl := binary.LittleEndian.Uint32(pre[4:])
	if hl > maxHeaderBytes {
		return frameHeader{}, nil, fmt.Errorf("frame header of %d bytes is over the limit of %d", hl, maxHeaderBytes)
	}
	if int64(pl) > maxPayload {
		return frameHeader{}, nil, fmt.Errorf("frame payload of %d bytes is over the limit of %d", pl, maxPayload)
	}
	buf := make([]byte, int(hl)+int(pl))
	if _, err := io.ReadFull(r, buf); err != nil {
		return frameHeader{}, nil, fmt.Errorf("truncated frame: %v", err)
	}
	var h frameHeader
	if err := json.Unmarshal(buf[:hl], &h); err != nil {
		return frameHeader{ID: h.ID}, nil, &badHeader{err}
	}
	return h, buf[hl:], nil
}

// badHeader is a frame whose JSON is malformed: the framing is intact, so
// the stream goes on.
type badHeader struct{ err error }

func (b *badHeader) Error() string { return "malformed frame header: " + b.err.Error() }

func runStdio(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imgembed stdio", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", os.Getenv("IMGEMBED_MODEL"), "model: local safetensors file or http(s) URL")
	batch := fs.Int("batch", 8, "images per forward pass")
	threads := fs.Int("threads", 0, "kernel threads (default: all cores)")
	cacheDir := fs.String("cache-dir", os.Getenv("IMGEMBED_CACHE_DIR"), "where downloaded models are kept")
	noCache := fs.Bool("no-cache", false, "do not read or write the model cache")
	noRevalidate := fs.Bool("no-revalidate", false, "use a cached model without asking its server whether it changed (offline use)")
	maxPixels := fs.Int64("max-pixels", 0, "reject images with more pixels than this")
	fetchTimeout := fs.Duration("fetch-timeout", 0, "time to download one image URL (0: the engine's default)")
	downloadTimeout := fs.Float64("download-timeout", 60, "seconds a model download may receive nothing before it fails (0: never)")
	engine := engineFlag(fs)
	concurrency := fs.Int("concurrency", 2, "requests worked on at once")
	maxPayload := fs.Int64("max-payload", 1<<30, "largest request payload in bytes")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: imgembed stdio [--model M] [flags]\nFramed requests on stdin, answers on stdout (protocol %d, see host/cmd/imgembed/PROTOCOL.md).\n", stdioProtocol)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 0 || *batch < 1 || *concurrency < 1 || *maxPayload < 1 || *maxPayload > math.MaxUint32 {
		fs.Usage()
		return exitUsage
	}
	dlTimeout, ok := downloadTimeoutFlag(*downloadTimeout)
	if !ok {
		fmt.Fprintln(stderr, "imgembed stdio: --download-timeout must be a number of seconds >= 0")
		return exitUsage
	}
	fw := &frameWriter{w: bufio.NewWriterSize(stdout, 1<<16)}

	var lastProgress time.Time
	opts := host.Options{Model: *model, CacheDir: *cacheDir, NoCache: *noCache, NoRevalidate: *noRevalidate, Threads: *threads,
		MaxBatch: *batch, MaxPixels: *maxPixels, FetchTimeout: *fetchTimeout, DownloadTimeout: dlTimeout, Engine: host.Engine(*engine),
		Progress: func(loaded, total int64) {
			if loaded < total && time.Since(lastProgress) < 50*time.Millisecond {
				return
			}
			lastProgress = time.Now()
			fw.write(map[string]any{"type": "progress", "loaded": loaded, "total": total}, nil)
		}}
	e, err := host.New(ctx, opts)
	if err != nil {
		fw.write(map[string]any{"type": "fatal", "error": toJSON(err)}, nil)
		fmt.Fprintf(stderr, "imgembed stdio: cannot load the model: %v\n", err)
		return exitUsage
	}
	defer e.Close()
	cfg := e.Config()
	if err := fw.write(map[string]any{"type": "ready", "protocol": stdioProtocol, "config": cfg}, nil); err != nil {
		return exitFailed
	}

	s := &stdioSession{e: e, cfg: cfg, fw: fw, sem: make(chan struct{}, *concurrency), cancels: map[uint64]context.CancelFunc{}}
	pending := make(chan struct{}, maxPendingFrames)
	var wg sync.WaitGroup
	in := bufio.NewReaderSize(stdin, 1<<16)
	status := exitOK
	for {
		h, payload, err := readFrame(in, *maxPayload)
		if err == io.EOF {
			break
		}
		var bh *badHeader
		if errors.As(err, &bh) {
			fw.write(map[string]any{"id": h.ID, "type": "error", "error": errJSON{Code: string(host.InvalidInput), Message: err.Error()}}, nil)
			continue
		}
		if err != nil {
			// The stream is out of step: nothing after this can be trusted.
			fw.write(map[string]any{"type": "fatal", "error": errJSON{Code: string(host.InvalidInput), Message: err.Error()}}, nil)
			fmt.Fprintf(stderr, "imgembed stdio: %v\n", err)
			status = exitUsage
			break
		}
		if h.ID == nil {
			fw.write(map[string]any{"type": "error", "error": errJSON{Code: string(host.InvalidInput), Message: "request without an id"}}, nil)
			continue
		}
		if h.Op == "cancel" {
			s.cancel(h.Target)
			continue
		}
		pending <- struct{}{}
		rctx, cancel := context.WithCancel(ctx)
		s.register(*h.ID, cancel)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-pending }()
			defer s.unregister(*h.ID, cancel)
			s.handle(rctx, h, payload)
		}()
	}
	wg.Wait()
	return status
}

type stdioSession struct {
	e       *host.Embedder
	cfg     host.Config
	fw      *frameWriter
	sem     chan struct{}
	mu      sync.Mutex
	cancels map[uint64]context.CancelFunc
}

func (s *stdioSession) register(id uint64, c context.CancelFunc) {
	s.mu.Lock()
	s.cancels[id] = c
	s.mu.Unlock()
}

func (s *stdioSession) unregister(id uint64, c context.CancelFunc) {
	c()
	s.mu.Lock()
	delete(s.cancels, id)
	s.mu.Unlock()
}

func (s *stdioSession) cancel(id uint64) {
	s.mu.Lock()
	c := s.cancels[id]
	s.mu.Unlock()
	if c != nil {
		c()
	}
}

func (s *stdioSession) fail(id uint64, code host.Code, format string, args ...any) {
	s.fw.write(map[string]any{"id": id, "type": "error", "error": errJSON{Code: string(code), Message: fmt.Sprintf(format, args...)}}, nil)
}

func (s *stdioSession) handle(ctx context.Context, h frameHeader, payload []byte) {
	id := *h.ID
	switch h.Op {
	case "info":
		s.fw.write(map[string]any{"id": id, "type": "result", "protocol": stdioProtocol, "config": s.cfg}, nil)
	case "embed":
		s.embed(ctx, id, h.Inputs, payload)
	default:
		s.fail(id, host.InvalidInput, "unknown op %q (info, embed, cancel)", h.Op)
	}
}

func (s *stdioSession) embed(ctx context.Context, id uint64, inputs []stdioInput, payload []byte) {
	results := make([]stdioResult, len(inputs))
	embs := make([][]float32, len(inputs))
	var srcs []any
	var idx []int
	var pixels []int
	pixelBytes := int64(3 * s.cfg.ImageSize * s.cfg.ImageSize * 4)
	off := int64(0)
	for i, in := range inputs {
		bad := func(code host.Code, format string, args ...any) {
			results[i].Error = &errJSON{Code: string(code), Message: fmt.Sprintf(format, args...)}
		}
		switch in.Kind {
		case "bytes", "pixels":
			if in.Length < 0 || off+in.Length > int64(len(payload)) {
				s.fail(id, host.InvalidInput, "input %d: length %d runs past the payload of %d bytes", i, in.Length, len(payload))
				return
			}
			b := payload[off : off+in.Length]
			off += in.Length
			if in.Kind == "bytes" {
				srcs = append(srcs, b)
				idx = append(idx, i)
				break
			}
			if in.Length != pixelBytes {
				bad(host.InvalidInput, "pixels: %d bytes, want 3 x %d x %d float32 (%d bytes)", in.Length, s.cfg.ImageSize, s.cfg.ImageSize, pixelBytes)
				break
			}
			pixels = append(pixels, i)
			px := make([]float32, in.Length/4)
			for k := range px {
				px[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*k:]))
			}
			embs[i] = px // replaced by the embedding below
		case "path":
			b, err := readImageFile(in.Path)
			if err != nil {
				results[i].Error = toJSON(err)
				break
			}
			srcs = append(srcs, b)
			idx = append(idx, i)
		case "url":
			l := strings.ToLower(in.URL)
			if !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "https://") && !strings.HasPrefix(l, "data:") {
				bad(host.InvalidInput, "url inputs must be http(s) or data: URLs, got %q", in.URL)
				break
			}
			srcs = append(srcs, in.URL)
			idx = append(idx, i)
		default:
			bad(host.InvalidInput, "unknown input kind %q (bytes, pixels, path, url)", in.Kind)
		}
	}
	if off != int64(len(payload)) {
		s.fail(id, host.InvalidInput, "the inputs use %d bytes of a payload of %d", off, len(payload))
		return
	}

	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		s.fail(id, host.Aborted, "cancelled")
		return
	}
	defer func() { <-s.sem }()
	for _, i := range pixels {
		v, err := s.e.EmbedPixels(ctx, embs[i])
		embs[i] = nil
		if err != nil {
			if ctx.Err() != nil {
				s.fail(id, host.Aborted, "cancelled")
				return
			}
			results[i].Error = toJSON(err)
			continue
		}
		embs[i] = v
	}
	if len(srcs) > 0 {
		out, errs, err := s.e.EmbedBatch(ctx, srcs)
		if err != nil {
			if ctx.Err() != nil {
				s.fail(id, host.Aborted, "cancelled")
				return
			}
			e := toJSON(err)
			s.fail(id, host.Code(e.Code), "%s", e.Message)
			return
		}
		for j, i := range idx {
			if errs[j] != nil {
				results[i].Error = toJSON(errs[j])
			} else {
				embs[i] = out[j]
			}
		}
	}
	dims := s.cfg.EmbeddingSize
	var buf []byte
	for i := range results {
		if results[i].Error != nil {
			continue
		}
		if len(embs[i]) != dims {
			results[i].Error = &errJSON{Code: string(host.InvalidModel), Message: fmt.Sprintf("embedding of %d numbers, want %d", len(embs[i]), dims)}
			continue
		}
		results[i].OK = true
		for _, v := range embs[i] {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
	}
	s.fw.write(map[string]any{"id": id, "type": "result", "dims": dims, "results": results}, buf)
}

// readImageFile reads a local image: a regular file of at most
// maxImageFileBytes (a device or FIFO would never end).
func readImageFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, &host.Error{Code: host.InvalidInput, Message: fmt.Sprintf("cannot read %s: %v", p, err), Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &host.Error{Code: host.InvalidInput, Message: fmt.Sprintf("cannot read %s: %v", p, err), Err: err}
	}
	if !st.Mode().IsRegular() {
		return nil, &host.Error{Code: host.InvalidInput, Message: p + " is not a regular file"}
	}
	if st.Size() > maxImageFileBytes {
		return nil, &host.Error{Code: host.ImageTooLarge, Message: fmt.Sprintf("%s is %d bytes, more than the limit of %d", p, st.Size(), maxImageFileBytes)}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxImageFileBytes+1))
	if err != nil {
		return nil, &host.Error{Code: host.InvalidInput, Message: fmt.Sprintf("cannot read %s: %v", p, err), Err: err}
	}
	if len(b) > maxImageFileBytes {
		return nil, &host.Error{Code: host.ImageTooLarge, Message: fmt.Sprintf("%s grew past the limit of %d bytes", p, maxImageFileBytes)}
	}
	return b, nil
}

// downloadTimeoutFlag converts --download-timeout (seconds, 0 = never, as in
// the embedding command) to host.Options.DownloadTimeout.
func downloadTimeoutFlag(sec float64) (time.Duration, bool) {
	if !(sec >= 0) || math.IsInf(sec, 1) {
		return 0, false
	}
	if sec == 0 {
		return -1, true
	}
	return time.Duration(sec * float64(time.Second)), true
}
