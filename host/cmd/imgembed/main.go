// Command imgembed prints CLIP image embeddings as JSON lines (package
// host): by default with the native engine (the module's Go packages
// compiled natively, decoding in parallel with the forward pass), with
// --engine wasm by the browser WebAssembly module under wazero. It follows
// the same contract as the Node command js/bin/imgembed.mjs:
//
//	imgembed [--model PATH|URL] [--engine native|wasm] [--batch N] [--threads N] [--cache-dir DIR] IMAGE...
//	imgembed [--model M] [--tokenizer T] --text "a cat" --text "a dog" [IMAGE...]
//	imgembed preprocess --size S --out DIR IMAGE...
//	imgembed serve [--addr 127.0.0.1:8080] [flags]   (HTTP API, serve.go)
//	imgembed stdio [--model M] [flags]               (framed protocol, PROTOCOL.md)
//
// One line per input (each --text is an input: its text is the source), in
// command-line order: {"source": ARG, "embedding": [...]} or
// {"source": ARG, "error": {"code": ..., "message": ...}}. Exit status 0 when
// every input was embedded, 1 when any input failed (the others are still
// processed), 2 for usage errors and when the model cannot be loaded.
// Lines are written as soon as each input's result is known.
//
// "source" is the argument exactly as given. Bytes of it that are not
// UTF-8 (a file name in another encoding) are written as the escapes
// \udc80..\udcff, one per byte (Python's "surrogateescape"): such a
// line is still valid JSON and the original bytes can be recovered, e.g.
// in Python with s.encode("utf-8", "surrogateescape").
//
// Without --model, CLIP ViT-B/32 is downloaded once from Hugging Face into
// the user cache (a progress bar on stderr). The environment variables
// IMGEMBED_MODEL and IMGEMBED_CACHE_DIR set the defaults of --model and
// --cache-dir.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imgembed/imgembed/host"
)

const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	boundAfterLoad = true
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type errJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type line struct {
	Source    string    `json:"source"`
	File      string    `json:"file,omitempty"` // preprocess output
	Embedding []float32 `json:"embedding,omitempty"`
	Error     *errJSON  `json:"error,omitempty"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "preprocess" {
		return runPreprocess(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "serve" {
		return runServe(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "stdio" {
		return runStdio(ctx, args[1:], os.Stdin, stdout, stderr)
	}
	// --text may come anywhere (even after the images): take the texts out
	// first, remembering where each stood among the inputs.
	args, texts := splitTexts(args)
	fs := flag.NewFlagSet("imgembed", flag.ContinueOnError)
	fs.SetOutput(helpOutput(args, stdout, stderr))
	tokenizer := fs.String("tokenizer", "", "tokenizer.json for --text (default: beside the model)")
	fs.String("text", "", "a text to embed (repeatable; the whole-CLIP model's text tower)")
	model := fs.String("model", os.Getenv("IMGEMBED_MODEL"), "model: local safetensors file, http(s) URL or Hugging Face id org/name[@revision] (default CLIP ViT-B/32 from Hugging Face)")
	batch := fs.Int("batch", 8, "images per forward pass")
	threads := fs.Int("threads", 0, "kernel threads (default: all cores)")
	cacheDir := fs.String("cache-dir", os.Getenv("IMGEMBED_CACHE_DIR"), "where downloaded models are kept (default: user cache dir/imgembed)")
	maxPixels := fs.Int64("max-pixels", 0, "reject images with more pixels than this (default: the module's limit)")
	noCache := fs.Bool("no-cache", false, "do not read or write the model cache (downloads, compiled weights)")
	noRevalidate := fs.Bool("no-revalidate", false, "use a cached model without asking its server whether it changed (offline use)")
	downloadTimeout := fs.Float64("download-timeout", 60, "seconds a model download may receive nothing before it fails (0: never)")
	engine := engineFlag(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: imgembed [flags] IMAGE...\n       imgembed preprocess --size S --out DIR IMAGE...\n       imgembed serve [--addr 127.0.0.1:8080] [flags]\n"+
			"IMAGE: a regular file's path, file:, http(s): or data: URL. One JSON object a line, in input order.\n"+
			"\"source\" is the argument as given; bytes that are not UTF-8 are written as \\udc80..\\udcff (surrogateescape).\n"+
			"Exit: 0 ok, 1 an input failed, 2 usage/model error.\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 && len(texts) == 0 {
		fs.Usage()
		return exitUsage
	}
	if *batch < 1 {
		fmt.Fprintln(stderr, "imgembed: --batch must be at least 1")
		return exitUsage
	}
	if !(*downloadTimeout >= 0) || math.IsInf(*downloadTimeout, 1) {
		fmt.Fprintln(stderr, "imgembed: --download-timeout must be a number of seconds >= 0")
		return exitUsage
	}
	dlTimeout := time.Duration(*downloadTimeout * float64(time.Second))
	if *downloadTimeout == 0 {
		dlTimeout = -1 // never
	}

	bar := newProgressBar(stderr)
	opts := host.Options{Model: *model, CacheDir: *cacheDir, Threads: *threads, MaxPixels: *maxPixels,
		NoCache: *noCache, NoRevalidate: *noRevalidate, MaxBatch: *batch, DownloadTimeout: dlTimeout, Tokenizer: *tokenizer, Engine: host.Engine(*engine)}
	if len(texts) > 0 {
		opts.Text, opts.TextOnly = true, fs.NArg() == 0
	}
	if *model == "" || strings.HasPrefix(*model, "http://") || strings.HasPrefix(*model, "https://") {
		opts.Progress = bar.update // a download; local files load too fast to need a bar
	}
	e, err := host.New(ctx, opts)
	bar.done()
	if err != nil {
		fmt.Fprintf(stderr, "imgembed: cannot load the model: %v\n", err)
		return exitUsage
	}
	boundHeap(opts.Engine)
	defer e.Close()

	w := bufio.NewWriter(stdout)
	defer w.Flush()
	status := exitOK
	// The inputs in command-line order: runs of images and runs of texts.
	// A run of texts is embedded in batches of --batch; a run of images in
	// one call whose results are printed as they come (the engine batches
	// and decodes the next images during each forward pass).
	type item struct {
		src  string
		text bool
	}
	var items []item
	srcs := fs.Args()
	nt := 0
	for i := 0; i <= len(srcs); i++ {
		for ; nt < len(texts) && texts[nt].before == i; nt++ {
			items = append(items, item{texts[nt].text, true})
		}
		if i < len(srcs) {
			items = append(items, item{srcs[i], false})
		}
	}
	for start := 0; start < len(items); {
		end := start + 1
		for end < len(items) && (!items[start].text || end-start < *batch) && items[end].text == items[start].text {
			end++
		}
		run := items[start:end]
		var embs [][]float32
		var errs []error
		var err error
		if run[0].text {
			ts := make([]string, len(run))
			for i, it := range run {
				ts[i] = it.src
			}
			embs, errs, err = e.EmbedTextBatch(ctx, ts)
		} else {
			batchSrcs := make([]any, len(run))
			for i, it := range run {
				batchSrcs[i] = it.src
			}
			var werr error
			err = e.EmbedEach(ctx, batchSrcs, func(i int, emb []float32, err error) {
				l := line{Source: run[i].src, Embedding: emb}
				if err != nil {
					l.Error = toJSON(err)
				}
				b, failed := encodeLine(l)
				if failed {
					status = exitFailed
				}
				if werr == nil {
					if _, werr = w.Write(b); werr == nil {
						werr = w.Flush()
					}
				}
			})
			if werr != nil {
				fmt.Fprintf(stderr, "imgembed: writing output: %v\n", werr)
				return exitUsage
			}
			if err == nil {
				start = end
				continue
			}
			errs = make([]error, len(run)) // the whole call failed: err on every line
		}
		for i, it := range run {
			l := line{Source: it.src}
			switch {
			case err != nil:
				l.Error = toJSON(err)
			case errs[i] != nil:
				l.Error = toJSON(errs[i])
			default:
				l.Embedding = embs[i]
			}
			b, failed := encodeLine(l)
			if failed {
				status = exitFailed
			}
			if _, werr := w.Write(b); werr != nil {
				fmt.Fprintf(stderr, "imgembed: writing output: %v\n", werr)
				return exitUsage
			}
		}
		w.Flush()
		start = end
	}
	return status
}

// engineFlag is --engine, default $IMGEMBED_ENGINE, else the host's
// default.
func engineFlag(fs *flag.FlagSet) *string {
	return fs.String("engine", os.Getenv("IMGEMBED_ENGINE"), "native (the Go packages compiled natively; fastest) or wasm (the browser .wasm under wazero) (default native; wasm with --text)")
}

// MarshalJSON writes the line with its source escaped as the package doc
// says (encoding/json would replace bytes that are not UTF-8 by U+FFFD).
func (l line) MarshalJSON() ([]byte, error) {
	type plain line
	src := l.Source
	l.Source = ""
	b, err := json.Marshal(plain(l))
	if err != nil {
		return nil, err
	}
	const empty = `{"source":""`
	if !bytes.HasPrefix(b, []byte(empty)) {
		return nil, fmt.Errorf("line JSON starts %q", b[:min(len(b), 20)])
	}
	out := append([]byte(`{"source":`), quoteSource(src)...)
	return append(out, b[len(empty):]...), nil
}

// quoteSource is a JSON string of s in which each byte that is not part of
// valid UTF-8 is written as \udcXX (XX its value, 80..ff).
func quoteSource(s string) []byte {
	b := []byte{'"'}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = fmt.Appendf(b, `\u%04x`, 0xdc00+int(s[i]))
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func toJSON(err error) *errJSON {
	var he *host.Error
	if errors.As(err, &he) {
		return &errJSON{Code: string(he.Code), Message: he.Message}
	}
	return &errJSON{Code: string(host.InvalidInput), Message: err.Error()}
}

// progressBar draws the model download on stderr: a redrawn bar on a
// terminal, a line every 10 % otherwise (logs). A cached model (reported
// complete in its first call) draws nothing.
type progressBar struct {
	w       io.Writer
	tty     bool
	started bool
	lastPct int
}

func newProgressBar(w io.Writer) *progressBar {
	p := &progressBar{w: w, lastPct: -1}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progressBar) update(loaded, total int64) {
	if !p.started {
		if total >= 0 && loaded >= total {
			return
		}
		p.started = true
		fmt.Fprintln(p.w, "imgembed: downloading the model (once; it is kept in the user cache)")
	}
	if total <= 0 {
		return
	}
	pct := int(100 * loaded / total)
	if pct == p.lastPct || (!p.tty && pct/10 == p.lastPct/10 && pct != 100) {
		return
	}
	p.lastPct = pct
	mb := func(n int64) float64 { return float64(n) / 1e6 }
	if !p.tty {
		fmt.Fprintf(p.w, "  %3d%% %.1f/%.1f MB\n", pct, mb(loaded), mb(total))
		return
	}
	const width = 40
	n := width * pct / 100
	fmt.Fprintf(p.w, "\r  [%s%s] %3d%% %.1f/%.1f MB", strings.Repeat("=", n), strings.Repeat(" ", width-n), pct, mb(loaded), mb(total))
}

func (p *progressBar) done() {
	if p.started && p.tty {
		fmt.Fprintln(p.w)
	}
}

// runPreprocess is `imgembed preprocess --size S --out DIR IMAGE...`: the
// module's CLIP preprocessing (decode, EXIF orientation, Pillow-exact
// bicubic resize, centre crop, normalisation), each result written as
// DIR/<basename>.f32 (little-endian float32, CHW 3 x S x S). Inputs that fail
// are reported as JSON lines on stdout like embeddings; exit status as for
// embedding.
func runPreprocess(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imgembed preprocess", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.Int("size", 224, "output size S (the model's image size)")
	out := fs.String("out", "", "output directory (created if missing)")
	maxPixels := fs.Int64("max-pixels", 0, "reject images with more pixels than this (default: the module's limit)")
	engine := engineFlag(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: imgembed preprocess --size S --out DIR IMAGE...\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *out == "" || fs.NArg() == 0 || *size < 1 {
		fs.Usage()
		return exitUsage
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "imgembed: %v\n", err)
		return exitUsage
	}
	p, err := host.NewPreprocessor(ctx, host.Options{MaxPixels: *maxPixels, Engine: host.Engine(*engine)})
	if err != nil {
		fmt.Fprintf(stderr, "imgembed: cannot start the module: %v\n", err)
		return exitUsage
	}
	defer p.Close()
	status := exitOK
	for _, src := range fs.Args() {
		px, err := p.Preprocess(ctx, src, *size)
		if err == nil {
			dst := filepath.Join(*out, baseName(src)+".f32")
			buf := make([]byte, 4*len(px))
			for i, v := range px {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			if werr := os.WriteFile(dst, buf, 0o644); werr != nil {
				fmt.Fprintf(stderr, "imgembed: %v\n", werr)
				return exitUsage
			}
			b, _ := encodeLine(line{Source: src, File: dst})
			stdout.Write(b)
			continue
		}
		status = exitFailed
		b, _ := encodeLine(line{Source: src, Error: toJSON(err)})
		stdout.Write(b)
	}
	return status
}

// baseName names a preprocess output after its input, as the Node command
// does: the file's base name, or the last segment of a URL's path.
func baseName(src string) string {
	if i := strings.Index(src, ":"); i > 1 && !strings.HasPrefix(src, "file:") {
		if u, err := url.Parse(src); err == nil {
			if b := path.Base(u.Path); b != "." && b != "/" && b != "" {
				return b
			}
		}
		return "image"
	}
	return filepath.Base(strings.TrimPrefix(src, "file://"))
}

// textArg is one --text and the number of image arguments before it.
type textArg struct {
	text   string
	before int
}

// splitTexts takes every --text VALUE / --text=VALUE (also -text) out of
// args, recording how many positional arguments (images) came before each
// so that the output keeps command-line order. Flags that take a value are
// skipped with it, so that a value is never read as an image. Everything
// after "--" is positional.
func splitTexts(args []string) (rest []string, texts []textArg) {
	valued := map[string]bool{"model": true, "batch": true, "threads": true, "cache-dir": true, "max-pixels": true,
		"download-timeout": true, "tokenizer": true}
	images := 0
	positional := false // as for package flag: after the first image, or "--"
	dashes := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !dashes && strings.HasPrefix(a, "-") && name == "text" && strings.TrimLeft(a, "-") != a {
			if !hasVal {
				if i+1 >= len(args) {
					rest = append(rest, a) // flag parsing reports the missing value
					continue
				}
				i++
				val = args[i]
			}
			texts = append(texts, textArg{val, images})
			continue
		}
		rest = append(rest, a)
		switch {
		case a == "--" && !positional:
			positional, dashes = true, true
		case positional || a == "-" || !strings.HasPrefix(a, "-"):
			positional = true
			images++
		case valued[name] && !hasVal && i+1 < len(args):
			i++
			rest = append(rest, args[i])
		}
	}
	return rest, texts
}

// helpOutput is where the flag set writes: stdout when help was asked for
// (-h, --help: the answer is the output), stderr otherwise (usage after a
// mistake), as the Node command does.
func helpOutput(args []string, stdout, stderr io.Writer) io.Writer {
	for _, a := range args {
		switch a {
		case "--":
			return stderr
		case "-h", "-help", "--help", "--h":
			return stdout
		}
	}
	return stderr
}
