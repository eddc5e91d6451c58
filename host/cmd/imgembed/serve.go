package main

// `imgembed serve`: an HTTP embedding server over the Go API (package host).
// The API is documented in the README ("Embedding server"); in short:
//
//	POST /v1/embed   multipart/form-data, image/* or application/octet-stream
//	                 bytes, or JSON {"inputs": ["https://…", "data:…"]}
//	                 -> 200 {"results": [{"source", "embedding"|"error"}...]}
//	GET  /v1/model   the model's config and the server's limits
//	GET  /healthz    200 {"status": "ok"}
//
// Request-level failures are {"error": {"code", "message"}} with an HTTP
// status; per-input failures are in results with the host's error codes.
//
// Resources are bounded: the body size (--max-body), the inputs of one
// request (--max-inputs), the requests being embedded at once
// (--concurrency) and those waiting (--queue). A request beyond
// concurrency+queue is refused at once with 503 + Retry-After instead of
// piling up, so a load balancer can send it elsewhere. Admission happens
// before the body is read, so the memory held by bodies is at most
// (concurrency+queue) x max-body.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imgembed/imgembed/host"
)

// Request-level error codes (the per-input ones are host's codes).
const (
	codeBadRequest       = "BadRequest"           // 400: malformed JSON or multipart, no inputs, too many inputs
	codeBodyTooLarge     = "BodyTooLarge"         // 413
	codeUnsupportedMedia = "UnsupportedMediaType" // 415
	codeOverloaded       = "Overloaded"           // 503: concurrency and queue full
	codeShuttingDown     = "ShuttingDown"         // 503
	codeTimeout          = "Timeout"              // 408 body read too slow, 504 request timeout
	codeNotFound         = "NotFound"             // 404
	codeMethodNotAllowed = "MethodNotAllowed"     // 405
	codeInternal         = "Internal"             // 500: the engine failed the whole call
)

type serveConfig struct {
	maxBody           int64
	maxInputs         int
	concurrency       int
	queue             int
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	requestTimeout    time.Duration
	shutdownTimeout   time.Duration
	fetchTimeout      time.Duration
	urls              bool
	allowPrivate      bool
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		maxBody:           32 << 20,
		maxInputs:         32,
		concurrency:       2,
		queue:             16,
		readHeaderTimeout: 10 * time.Second,
		readTimeout:       60 * time.Second,
		writeTimeout:      30 * time.Second,
		idleTimeout:       120 * time.Second,
		requestTimeout:    120 * time.Second,
		shutdownTimeout:   60 * time.Second,
		fetchTimeout:      30 * time.Second,
		urls:              true,
	}
}

type server struct {
	e       *host.Embedder
	cfg     serveConfig
	model   string
	admit   chan struct{} // held from arrival to the answer: capacity concurrency+queue
	compute chan struct{} // held while embedding: capacity concurrency
	client  *http.Client  // image URL downloads
	mux     *http.ServeMux
}

func newServer(e *host.Embedder, model string, cfg serveConfig) *server {
	s := &server{
		e:       e,
		cfg:     cfg,
		model:   model,
		admit:   make(chan struct{}, cfg.concurrency+cfg.queue),
		compute: make(chan struct{}, cfg.concurrency),
		client:  urlClient(cfg.allowPrivate),
		mux:     http.NewServeMux(),
	}
	s.mux.HandleFunc("/v1/embed", s.handleEmbed)
	s.mux.HandleFunc("/v1/model", s.handleModel)
	s.mux.HandleFunc("/healthz", s.handleHealth)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such endpoint "+r.URL.Path+" (POST /v1/embed, GET /v1/model, GET /healthz)")
	})
	return s
}

// httpServer applies the timeouts. WriteTimeout is a backstop over the
// whole exchange (body, queue, embedding, answer); the handler narrows the
// write deadline to writeTimeout once the answer is ready.
func (s *server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.cfg.readHeaderTimeout,
		ReadTimeout:       s.cfg.readTimeout,
		WriteTimeout:      s.cfg.readTimeout + s.cfg.requestTimeout + s.cfg.writeTimeout,
		IdleTimeout:       s.cfg.idleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}

type errorBody struct {
	Error errJSON `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{errJSON{Code: code, Message: msg}})
}

func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "use GET")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) handleModel(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "use GET")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"model":  s.model,
		"config": s.e.Config(),
		"limits": map[string]any{
			"maxBodyBytes": s.cfg.maxBody,
			"maxInputs":    s.cfg.maxInputs,
			"concurrency":  s.cfg.concurrency,
			"queue":        s.cfg.queue,
			"urlInputs":    s.cfg.urls,
		},
	})
}

// item is one input of a request: bytes to embed, a URL still to download,
// or a failure already known.
type item struct {
	source string
	data   []byte
	url    string
	err    *errJSON
}

// reqError is a request-level failure.
type reqError struct {
	status int
	code   string
	msg    string
}

func (s *server) handleEmbed(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "use POST")
		return
	}
	select {
	case s.admit <- struct{}{}:
		defer func() { <-s.admit }()
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeOverloaded,
			fmt.Sprintf("the server is busy (%d requests running, %d queued); retry later", s.cfg.concurrency, s.cfg.queue))
		return
	}
	if r.ContentLength > s.cfg.maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, codeBodyTooLarge,
			fmt.Sprintf("body of %d bytes is over the limit of %d", r.ContentLength, s.cfg.maxBody))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.requestTimeout)
	defer cancel()
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.maxBody)
	items, rerr := s.parse(r)
	if rerr != nil {
		writeError(w, rerr.status, rerr.code, rerr.msg)
		return
	}
	s.download(ctx, items)

	var srcs []any
	var idx []int
	for i, it := range items {
		if it.err == nil {
			srcs = append(srcs, it.data)
			idx = append(idx, i)
		}
	}
	results := make([]line, len(items))
	for i, it := range items {
		results[i] = line{Source: it.source, Error: it.err}
	}
	if len(srcs) > 0 {
		select {
		case s.compute <- struct{}{}:
		case <-ctx.Done():
			writeError(w, http.StatusGatewayTimeout, codeTimeout, "timed out waiting for the engine")
			return
		}
		embs, errs, err := s.e.EmbedBatch(ctx, srcs)
		<-s.compute
		if err != nil {
			if ctx.Err() != nil {
				writeError(w, http.StatusGatewayTimeout, codeTimeout, "request timed out: "+err.Error())
				return
			}
			writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
			return
		}
		for j, i := range idx {
			if errs[j] != nil {
				results[i].Error = toJSON(errs[j])
			} else {
				results[i].Embedding = embs[j]
			}
		}
	}
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.writeTimeout))
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// parse reads the body into items.
func (s *server) parse(r *http.Request) ([]item, *reqError) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return nil, &reqError{http.StatusUnsupportedMediaType, codeUnsupportedMedia,
			fmt.Sprintf("Content-Type %q: send multipart/form-data, image/*, application/octet-stream or application/json", ct)}
	}
	var items []item
	switch {
	case mt == "application/json":
		var req struct {
			Inputs []string `json:"inputs"`
		}
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&req); err != nil {
			return nil, bodyError(err, "malformed JSON")
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, &reqError{http.StatusBadRequest, codeBadRequest, "malformed JSON: data after the object"}
		}
		if len(req.Inputs) > s.cfg.maxInputs {
			return nil, tooMany(len(req.Inputs), s.cfg.maxInputs)
		}
		for _, in := range req.Inputs {
			items = append(items, s.jsonInput(in))
		}
	case mt == "multipart/form-data":
		if params["boundary"] == "" {
			return nil, &reqError{http.StatusBadRequest, codeBadRequest, "malformed multipart: no boundary"}
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, bodyError(err, "malformed multipart")
			}
			if len(items) == s.cfg.maxInputs {
				return nil, tooMany(len(items)+1, s.cfg.maxInputs)
			}
			b, err := io.ReadAll(p)
			if err != nil {
				return nil, bodyError(err, "malformed multipart")
			}
			name := p.FileName()
			if name == "" && p.FormName() == "url" {
				items = append(items, s.jsonInput(strings.TrimSpace(string(b))))
				continue
			}
			if name == "" {
				name = p.FormName()
			}
			items = append(items, item{source: name, data: b})
		}
	case strings.HasPrefix(mt, "image/") || mt == "application/octet-stream":
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyError(err, "reading the body")
		}
		src := r.URL.Query().Get("source")
		if src == "" {
			src = "body"
		}
		items = append(items, item{source: src, data: b})
	default:
		return nil, &reqError{http.StatusUnsupportedMediaType, codeUnsupportedMedia,
			fmt.Sprintf("Content-Type %q: send multipart/form-data, image/*, application/octet-stream or application/json", mt)}
	}
	if len(items) == 0 {
		return nil, &reqError{http.StatusBadRequest, codeBadRequest, "no inputs"}
	}
	return items, nil
}

func tooMany(n, max int) *reqError {
	return &reqError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf("%d inputs, more than the limit of %d per request", n, max)}
}

// bodyError maps a failure while reading the body: over the size limit,
// too slow (the server's read timeout), or malformed.
func bodyError(err error, what string) *reqError {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return &reqError{http.StatusRequestEntityTooLarge, codeBodyTooLarge, fmt.Sprintf("body over the limit of %d bytes", mbe.Limit)}
	case errors.As(err, &ne) && ne.Timeout():
		return &reqError{http.StatusRequestTimeout, codeTimeout, "the body was not received in time"}
	case errors.Is(err, io.ErrUnexpectedEOF) && what == "reading the body":
		return &reqError{http.StatusBadRequest, codeBadRequest, "the body ended early"}
	}
	return &reqError{http.StatusBadRequest, codeBadRequest, what + ": " + err.Error()}
}

// jsonInput accepts http(s) URLs (downloaded by the server) and base64
// data: URLs. Paths and file: URLs are refused: clients must not read the
// server's files.
func (s *server) jsonInput(in string) item {
	it := item{source: in}
	lower := strings.ToLower(in)
	switch {
	case strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://"):
		if !s.cfg.urls {
			it.err = &errJSON{Code: string(host.InvalidInput), Message: "URL inputs are disabled on this server (--urls=false)"}
		} else {
			it.url = in
		}
	case strings.HasPrefix(lower, "data:"):
		meta, payload, ok := strings.Cut(in[len("data:"):], ",")
		if !ok || !strings.HasSuffix(strings.ToLower(meta), ";base64") {
			it.err = &errJSON{Code: string(host.InvalidInput), Message: "data: URLs must be base64 (data:image/png;base64,...)"}
			break
		}
		b, err := base64.StdEncoding.DecodeString(payload)
		if err != nil {
			it.err = &errJSON{Code: string(host.InvalidInput), Message: "bad base64 in data: URL: " + err.Error()}
			break
		}
		it.data = b
	default:
		it.err = &errJSON{Code: string(host.InvalidInput), Message: "inputs must be http(s) or data: URLs"}
	}
	return it
}

// download fetches the URL items, a few at a time.
func (s *server) download(ctx context.Context, items []item) {
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range items {
		if items[i].url == "" || items[i].err != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(it *item) {
			defer wg.Done()
			defer func() { <-sem }()
			it.data, it.err = s.fetch(ctx, it.url)
		}(&items[i])
	}
	wg.Wait()
}

func (s *server) fetch(ctx context.Context, u string) ([]byte, *errJSON) {
	fail := func(code host.Code, format string, args ...any) ([]byte, *errJSON) {
		return nil, &errJSON{Code: string(code), Message: fmt.Sprintf(format, args...)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(host.InvalidInput, "bad URL: %v", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fail(host.DownloadFailed, "%s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(host.DownloadFailed, "%s: HTTP %s", u, resp.Status)
	}
	if resp.ContentLength > s.cfg.maxBody {
		return fail(host.ImageTooLarge, "%s is %d bytes, over the limit of %d", u, resp.ContentLength, s.cfg.maxBody)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.maxBody+1))
	if err != nil {
		return fail(host.DownloadFailed, "%s: %v", u, err)
	}
	if int64(len(b)) > s.cfg.maxBody {
		return fail(host.ImageTooLarge, "%s is over the limit of %d bytes", u, s.cfg.maxBody)
	}
	return b, nil
}

// urlClient downloads image URLs. Unless allowPrivate, it refuses to
// connect to loopback, private, link-local and unspecified addresses (the
// check is on the address actually dialled, after DNS and on every
// redirect), so that clients cannot make the server reach its own network.
func urlClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			h, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip := net.ParseIP(h)
			if ip == nil || !isPublic(ip) {
				return fmt.Errorf("refusing to fetch from %s: not a public address (--allow-private-urls to allow)", h)
			}
			return nil
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = d.DialContext
	tr.Proxy = nil
	return &http.Client{Transport: tr}
}

func isPublic(ip net.IP) bool {
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast())
}

// listen binds addr and returns the listener and a warning when the address
// is reachable from other machines.
func listen(addr string) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	return ln, nonLoopbackWarning(ln.Addr()), nil
}

// nonLoopbackWarning is the warning printed when the server is reachable
// from other machines, or "".
func nonLoopbackWarning(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return ""
	}
	return fmt.Sprintf("imgembed: warning: listening on %s, which is not a loopback address: anyone who can reach it can use this server (it has no authentication)", a)
}

// serve runs srv on ln until ctx ends, then shuts down gracefully: the
// listener closes, requests in flight finish (up to shutdownTimeout).
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}

// runServe is `imgembed serve`.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imgembed serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := defaultServeConfig()
	addr := fs.String("addr", "127.0.0.1:8080", "listen address (loopback by default; a non-loopback address prints a warning)")
	model := fs.String("model", os.Getenv("IMGEMBED_MODEL"), "model: local safetensors file or http(s) URL (default CLIP ViT-B/32 from Hugging Face)")
	batch := fs.Int("batch", 8, "images per forward pass")
	threads := fs.Int("threads", 0, "kernel threads (default: all cores)")
	cacheDir := fs.String("cache-dir", os.Getenv("IMGEMBED_CACHE_DIR"), "where downloaded models are kept")
	maxPixels := fs.Int64("max-pixels", 0, "reject images with more pixels than this (default: the engine's limit)")
	noRevalidate := fs.Bool("no-revalidate", false, "use a cached model without asking its server whether it changed (offline use)")
	downloadTimeout := fs.Float64("download-timeout", 60, "seconds a model download may receive nothing before it fails (0: never)")
	engine := engineFlag(fs)
	c := d
	fs.Int64Var(&c.maxBody, "max-body", d.maxBody, "largest request body in bytes (also the largest downloaded image)")
	fs.IntVar(&c.maxInputs, "max-inputs", d.maxInputs, "most images in one request")
	fs.IntVar(&c.concurrency, "concurrency", d.concurrency, "requests embedded at once")
	fs.IntVar(&c.queue, "queue", d.queue, "requests waiting beyond --concurrency; more get 503")
	fs.DurationVar(&c.readHeaderTimeout, "read-header-timeout", d.readHeaderTimeout, "time to receive the request headers")
	fs.DurationVar(&c.readTimeout, "read-timeout", d.readTimeout, "time to receive the whole request")
	fs.DurationVar(&c.writeTimeout, "write-timeout", d.writeTimeout, "time to send the answer once computed")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", d.idleTimeout, "keep-alive connections idle longer are closed")
	fs.DurationVar(&c.requestTimeout, "request-timeout", d.requestTimeout, "time for downloads, queueing and embedding of one request")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", d.shutdownTimeout, "on SIGINT/SIGTERM, how long requests in flight may take to finish")
	fs.DurationVar(&c.fetchTimeout, "fetch-timeout", d.fetchTimeout, "time to download one image URL")
	fs.BoolVar(&c.urls, "urls", d.urls, "accept http(s) image URLs in JSON requests")
	fs.BoolVar(&c.allowPrivate, "allow-private-urls", false, "let image URLs reach loopback/private addresses")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: imgembed serve [--addr 127.0.0.1:8080] [--model M] [flags]\n"+
			"POST /v1/embed (multipart/form-data, image/*, application/octet-stream, or JSON {\"inputs\": [URL...]}),\n"+
			"GET /v1/model, GET /healthz. See the README's \"Embedding server\".\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "imgembed serve: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if c.maxBody < 1 || c.maxInputs < 1 || c.concurrency < 1 || c.queue < 0 || *batch < 1 {
		fmt.Fprintln(stderr, "imgembed serve: --max-body, --max-inputs, --concurrency and --batch must be positive, --queue not negative")
		return exitUsage
	}
	dlTimeout, ok := downloadTimeoutFlag(*downloadTimeout)
	if !ok {
		fmt.Fprintln(stderr, "imgembed serve: --download-timeout must be a number of seconds >= 0")
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, warn, err := listen(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "imgembed serve: %v\n", err)
		return exitUsage
	}
	if warn != "" {
		fmt.Fprintln(stderr, warn)
	}
	bar := newProgressBar(stderr)
	opts := host.Options{Model: *model, CacheDir: *cacheDir, Threads: *threads, MaxPixels: *maxPixels, MaxBatch: *batch, DownloadTimeout: dlTimeout,
		NoRevalidate: *noRevalidate, Engine: host.Engine(*engine)}
	if *model == "" || strings.HasPrefix(*model, "http://") || strings.HasPrefix(*model, "https://") {
		opts.Progress = bar.update
	}
	e, err := host.New(ctx, opts)
	bar.done()
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "imgembed serve: cannot load the model: %v\n", err)
		return exitUsage
	}
	defer e.Close()
	name := *model
	if name == "" {
		name = host.DefaultModel
	}
	s := newServer(e, name, c)
	fmt.Fprintf(stderr, "imgembed: listening on http://%s\n", ln.Addr())
	if err := s.serve(ctx, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "imgembed serve: %v\n", err)
		return exitFailed
	}
	fmt.Fprintln(stderr, "imgembed: stopped")
	return exitOK
}
