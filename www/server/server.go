// Package server serves the imgembed demo (www/), the JS package (js/src,
// js/dist), the TensorFlow.js browser bundles from node_modules and local
// checkpoints, with the headers a browser needs to give tfjs threads
// (cross-origin isolation), HTTP Range/ETag for large weight files, and
// bare-import resolution so the same ES modules run on a page and in a
// module Web Worker (where import maps do not apply).
package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrNoRepo is returned by New when Options.Repo does not look like the
// imgembed repository (no go.mod or no www/ directory).
var ErrNoRepo = errors.New("server: not an imgembed repository root")

// Options configures a Handler.
type Options struct {
	// Repo is the repository root (holds www/, js/, node_modules/).
	Repo string
	// Weights, if not empty, is a directory served read-only under /models/.
	Weights string
	// Files, if not empty, is a directory served read-only as it is under
	// /files/ (make bench-browser: the peers' builds and ONNX files, which
	// /models/ does not offer).
	Files string
}

// mount maps a URL prefix to a directory opened with os.OpenRoot, so that
// neither ".." nor a symlink can reach outside it.
type mount struct {
	prefix string
	root   *os.Root
	// rewrite resolves bare import specifiers in JavaScript files.
	rewrite bool
	// hidden reports names inside the mount that are never served.
	hidden func(name string) bool
}

// Handler is the http.Handler of the demo server. Create it with New and
// release its directory handles with Close.
type Handler struct {
	mounts  []mount
	weights *os.Root
}

// tfjsPackages are the node_modules packages the browser may load.
var tfjsPackages = []string{"@tensorflow/tfjs-core", "@tensorflow/tfjs-backend-wasm", "@tensorflow/tfjs-backend-cpu", "@tensorflow/tfjs-backend-webgpu"}

// New opens the directories named by opts.
func New(opts Options) (*Handler, error) {
	repo, err := filepath.Abs(opts.Repo)
	if err != nil {
		return nil, fmt.Errorf("server: repo path: %w", err)
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoRepo, repo, err)
	}
	h := &Handler{}
	add := func(prefix, dir string, rewrite bool, hidden func(string) bool) error {
		r, err := os.OpenRoot(dir)
		if err != nil {
			return fmt.Errorf("server: open %s for %s: %w", dir, prefix, err)
		}
		h.mounts = append(h.mounts, mount{prefix: prefix, root: r, rewrite: rewrite, hidden: hidden})
		return nil
	}
	// www/ holds Go sources of this server too: serve only what a browser needs.
	wwwHidden := func(name string) bool {
		return strings.HasSuffix(name, ".go") || name == "cmd" || strings.HasPrefix(name, "cmd/") ||
			name == "server" || strings.HasPrefix(name, "server/")
	}
	if err := add("/", filepath.Join(repo, "www"), true, wwwHidden); err != nil {
		h.Close()
		return nil, fmt.Errorf("%w: %v", ErrNoRepo, err)
	}
	if err := add("/js/src/", filepath.Join(repo, "js", "src"), true, nil); err != nil {
		h.Close()
		return nil, err
	}
	// js/dist appears only after `make build`; serve it when it exists.
	if dist := filepath.Join(repo, "js", "dist"); dirExists(dist) {
		if err := add("/js/dist/", dist, false, nil); err != nil {
			h.Close()
			return nil, err
		}
	}
	for _, p := range tfjsPackages {
		dir := filepath.Join(repo, "node_modules", filepath.FromSlash(p))
		if !dirExists(dir) {
			continue
		}
		if err := add("/node_modules/"+p+"/", dir, true, nil); err != nil {
			h.Close()
			return nil, err
		}
	}
	if opts.Files != "" {
		if err := add("/files/", opts.Files, false, nil); err != nil {
			h.Close()
			return nil, err
		}
	}
	if opts.Weights != "" {
		r, err := os.OpenRoot(opts.Weights)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("server: open weights directory: %w", err)
		}
		h.weights = r
	}
	// Longest prefix first so /js/src/ wins over /.
	sort.SliceStable(h.mounts, func(i, j int) bool { return len(h.mounts[i].prefix) > len(h.mounts[j].prefix) })
	return h, nil
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Close releases the directory handles.
func (h *Handler) Close() error {
	var errs []error
	for _, m := range h.mounts {
		errs = append(errs, m.root.Close())
	}
	if h.weights != nil {
		errs = append(errs, h.weights.Close())
	}
	return errors.Join(errs...)
}

// ImportMap maps the bare specifiers the package and the demo use to URLs
// served here. Node resolves the same names through node_modules; browsers
// get them rewritten in every JavaScript file served from www/, js/src and
// the tfjs packages. Node built-ins that the tfjs wasm bundle imports (and
// only touches under Node) resolve to an empty module.
var ImportMap = map[string]string{
	"imgembed":                        "/js/src/index.js",
	"imgembed/react":                  "/js/src/react.js",
	"imgembed/backend":                "/js/src/backend.js",
	"@tensorflow/tfjs-core":           "/node_modules/@tensorflow/tfjs-core/dist/tf-core.fesm.js",
	"@tensorflow/tfjs-backend-wasm":   "/node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.fesm.js",
	"@tensorflow/tfjs-backend-cpu":    "/node_modules/@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.fesm.js",
	"@tensorflow/tfjs-backend-webgpu": "/node_modules/@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.fesm.js",
	"fs":                              emptyModule,
	"path":                            emptyModule,
	"os":                              emptyModule,
	"perf_hooks":                      emptyModule,
	"worker_threads":                  emptyModule,
	"url":                             emptyModule,
	"crypto":                          emptyModule,
	"util":                            emptyModule,
	"module":                          emptyModule,
}

const emptyModule = "/_shim/empty.js"

// emptyModuleSource stands in for Node built-ins in browsers: code that
// imports them only uses them when it detects Node.
const emptyModuleSource = "// Node built-in stand-in for browsers (imgembed demo server).\nexport default {};\n"

// RewriteImports replaces bare specifiers found in ImportMap (also with a
// "node:" prefix) by their URLs where they are the string literal of an
// import: after `from`, after `import` (side-effect import) or inside
// `import(`. Unknown specifiers and relative URLs are left alone. It is a
// linear scan rather than a regexp because it runs on the 1.1 MB tfjs-core
// bundle on every request (a regexp took ~200 ms there).
func RewriteImports(src []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(src); i++ {
		q := src[i]
		if q != '\'' && q != '"' {
			continue
		}
		end := literalEnd(src, i)
		if end < 0 {
			continue
		}
		lit := src[i+1 : end]
		url, ok := ImportMap[string(lit)]
		if !ok && bytes.HasPrefix(lit, []byte("node:")) {
			url, ok = ImportMap[string(lit[len("node:"):])]
		}
		if !ok || !importContext(src[:i]) {
			continue
		}
		out = append(out, src[last:i+1]...)
		out = append(out, url...)
		last = end
		i = end
	}
	if out == nil {
		return src
	}
	return append(out, src[last:]...)
}

// literalEnd returns the index of the quote closing the short, single-line
// literal opened at src[open], or -1.
func literalEnd(src []byte, open int) int {
	const maxSpec = 64 // longer than any ImportMap key
	q := src[open]
	for j := open + 1; j < len(src) && j <= open+1+maxSpec; j++ {
		switch src[j] {
		case q:
			return j
		case '\n', '\\':
			return -1
		}
	}
	return -1
}

// importContext reports whether the code before a string literal makes it
// a module specifier: `from`, `import` or `import(` (whitespace allowed).
func importContext(before []byte) bool {
	b := bytes.TrimRight(before, " \t\r\n")
	if len(b) > 0 && b[len(b)-1] == '(' {
		b = bytes.TrimRight(b[:len(b)-1], " \t\r\n")
		return endsWithWord(b, "import")
	}
	return endsWithWord(b, "from") || endsWithWord(b, "import")
}

func endsWithWord(b []byte, w string) bool {
	if !bytes.HasSuffix(b, []byte(w)) {
		return false
	}
	if len(b) == len(w) {
		return true
	}
	c := b[len(b)-len(w)-1]
	isIdent := c == '_' || c == '$' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	return !isIdent
}

// mimeTypes is fixed here rather than taken from the system's mime.types so
// that .wasm and .mjs are right on every machine.
var mimeTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".wasm":        "application/wasm",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".ico":         "image/x-icon",
	".txt":         "text/plain; charset=utf-8",
	".md":          "text/plain; charset=utf-8",
	".safetensors": "application/octet-stream",
}

// ContentType returns the MIME type served for a file name.
func ContentType(name string) string {
	if t, ok := mimeTypes[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return "application/octet-stream"
}

func setSecurityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	// Cross-origin isolation: SharedArrayBuffer, hence tfjs-wasm threads.
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Embedder-Policy", "require-corp")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("X-Content-Type-Options", "nosniff")
	// Development server: always revalidate (cheap with ETag) so edits show.
	hd.Set("Cache-Control", "no-cache")
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if !validPath(p) {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	switch {
	case p == emptyModule:
		serveBytes(w, r, "empty.js", []byte(emptyModuleSource), time.Time{})
		return
	case p == "/models/" || p == "/models/index.json":
		h.serveModelList(w, r)
		return
	case strings.HasPrefix(p, "/models/"):
		if h.weights == nil {
			http.Error(w, "no --weights directory", http.StatusNotFound)
			return
		}
		// Only what the list offers: top-level regular .safetensors
		// files (symlinks inside the folder are followed, out of it never),
		// and the tokenizer.json that goes beside a whole-CLIP file, as in
		// a Hugging Face repository (the text tower needs it).
		name := strings.TrimPrefix(p, "/models/")
		if _, ok := h.modelFile(name); !ok && !h.companionFile(name) {
			http.NotFound(w, r)
			return
		}
		serveFile(w, r, h.weights, name, false)
		return
	}
	for _, m := range h.mounts {
		if !strings.HasPrefix(p, m.prefix) {
			continue
		}
		name := strings.TrimPrefix(p, m.prefix)
		if name == "" || strings.HasSuffix(name, "/") {
			name += "index.html"
		}
		if m.hidden != nil && m.hidden(name) {
			http.NotFound(w, r)
			return
		}
		serveFile(w, r, m.root, name, m.rewrite)
		return
	}
	http.NotFound(w, r)
}

// validPath refuses anything but a clean absolute path without dot
// segments or backslashes (os.Root would refuse escapes anyway; this
// gives a clear 400 instead of a 404).
func validPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == ".." || seg == "." || strings.HasPrefix(seg, ".") && seg != "" {
			return false
		}
	}
	return true
}

func serveFile(w http.ResponseWriter, r *http.Request, root *os.Root, name string, rewrite bool) {
	if name == "" || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	// Stat before Open: opening a FIFO would block until a writer comes.
	// Escapes (.., symlinks out of the root) fail here as well.
	if st, err := root.Stat(name); err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	f, err := root.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	ext := strings.ToLower(path.Ext(name))
	if rewrite && (ext == ".js" || ext == ".mjs") {
		src, err := io.ReadAll(f)
		if err != nil {
			http.Error(w, "read error", http.StatusInternalServerError)
			return
		}
		serveBytes(w, r, name, RewriteImports(src), fi.ModTime())
		return
	}
	w.Header().Set("Content-Type", ContentType(name))
	// Strong validator from size and modification time: enough for If-Range
	// to resume a partly downloaded checkpoint, without hashing gigabytes.
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()))
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

func serveBytes(w http.ResponseWriter, r *http.Request, name string, b []byte, mod time.Time) {
	sum := sha256.Sum256(b)
	w.Header().Set("Content-Type", ContentType(name))
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	http.ServeContent(w, r, name, mod, bytes.NewReader(b))
}

// modelFile reports whether name is served under /models/: a top-level,
// not hidden, .safetensors name that is (or is a symlink, within the
// weights folder, to) a regular file. The list and the file server use it
// both, so nothing is listed that then fails and nothing else is served.
func (h *Handler) modelFile(name string) (fs.FileInfo, bool) {
	if h.weights == nil || name == "" || strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".safetensors") {
		return nil, false
	}
	fi, err := h.weights.Stat(name) // follows symlinks, refuses escapes
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	return fi, true
}

// companionFile reports whether name is tokenizer.json, a regular file
// in the weights folder: served beside the models, not listed as one.
func (h *Handler) companionFile(name string) bool {
	if h.weights == nil || name != "tokenizer.json" {
		return false
	}
	fi, err := h.weights.Stat(name)
	return err == nil && fi.Mode().IsRegular()
}

// Timeouts of the demo's http.Server (see NewServer).
const (
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 60 * time.Second
	// WriteStallTimeout: a response whose client reads nothing for this
	// long is abandoned (the connection closes). A deadline per write
	// rather than one for the whole response, so that a large checkpoint
	// on a slow link still arrives.
	WriteStallTimeout = 30 * time.Second
)

// NewServer returns the http.Server for h with the timeouts above (zero
// arguments mean those defaults): idle keep-alive connections, slow request
// headers and clients that stop reading cannot hold a connection forever.
func NewServer(h http.Handler, readHeader, idle, writeStall time.Duration) *http.Server {
	if readHeader <= 0 {
		readHeader = ReadHeaderTimeout
	}
	if idle <= 0 {
		idle = IdleTimeout
	}
	if writeStall <= 0 {
		writeStall = WriteStallTimeout
	}
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(&stallWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: writeStall}, r)
		}),
		ReadHeaderTimeout: readHeader,
		ReadTimeout:       readHeader + 20*time.Second, // GET only: no bodies to wait for
		IdleTimeout:       idle,
	}
}

// stallWriter moves the connection's write deadline d ahead before each
// write.
type stallWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (s *stallWriter) WriteHeader(code int) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.d))
	s.ResponseWriter.WriteHeader(code)
}

func (s *stallWriter) Write(p []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.d))
	return s.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ListenWarning is the line the demo prints when it listens on addr that
// is not loopback (empty when it is).
func ListenWarning(addr net.Addr, weights string) string {
	ta, ok := addr.(*net.TCPAddr)
	if ok && ta.IP.IsLoopback() {
		return ""
	}
	what := "the demo and the JS package"
	if weights != "" {
		what += " and every .safetensors file in " + weights
	}
	return fmt.Sprintf("warning: listening on %s, not a loopback address: anyone who can reach this machine can fetch %s (use --addr localhost to keep them local)", addr, what)
}

// ModelFile is one entry of GET /models/.
type ModelFile struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	Size int64  `json:"size"`
}

// serveModelList lists the .safetensors files of the weights directory (top
// level only) so the page can offer them.
func (h *Handler) serveModelList(w http.ResponseWriter, r *http.Request) {
	list := []ModelFile{}
	if h.weights != nil {
		entries, err := fs.ReadDir(h.weights.FS(), ".")
		if err != nil {
			http.Error(w, "cannot list weights", http.StatusInternalServerError)
			return
		}
		for _, e := range entries {
			fi, ok := h.modelFile(e.Name())
			if !ok {
				continue
			}
			list = append(list, ModelFile{Name: e.Name(), URL: "/models/" + e.Name(), Size: fi.Size()})
		}
	}
	b, err := json.Marshal(list)
	if err != nil {
		http.Error(w, "encode", http.StatusInternalServerError)
		return
	}
	serveBytes(w, r, "index.json", b, time.Time{})
}
