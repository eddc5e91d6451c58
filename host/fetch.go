package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	wapi "github.com/imgembed/imgembed/wasm/api"
)

// DefaultModel is the model used when Options.Model is empty: the
// safetensors file of OpenAI's CLIP ViT-B/32 on Hugging Face (the whole
// CLIPModel; the module fetches only the vision tower's byte ranges).
const DefaultModel = wapi.DefaultModel

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// response is what the module's fetch hook resolves to, before it is
// dressed as a JS Response.
type response struct {
	status     int
	statusText string
	header     http.Header
	body       io.ReadCloser
	url        string
}

// errFetch marks failures of the fetch hook itself (the JS fetch rejects
// with a TypeError in the same situations).
var errFetch = errors.New("fetch failed")

// doFetch serves the module's fetch(url, {headers: {Range}}): http(s) through
// client, anything else (a path or file:// URL) from the local file system,
// honouring a single "bytes=A-B" / "bytes=A-" range the way an HTTP server
// would (206 + Content-Range), so the module's Range-based loader works the
// same on local files as on Hugging Face.
func doFetch(ctx context.Context, client *http.Client, rawURL string, hdr map[string]string) (*response, error) {
	rangeHdr := hdr["Range"]
	if isURL(rawURL) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errFetch, rawURL, err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, fmt.Errorf("%w: %v", errFetch, err)
		}
		st := resp.Status
		if i := strings.IndexByte(st, ' '); i >= 0 {
			st = st[i+1:]
		}
		return &response{status: resp.StatusCode, statusText: st, header: resp.Header, body: resp.Body, url: rawURL}, nil
	}
	path := rawURL
	if strings.HasPrefix(rawURL, "file://") {
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errFetch, rawURL, err)
		}
		path = u.Path
	} else if strings.Contains(rawURL, "://") || strings.HasPrefix(rawURL, "data:") || strings.HasPrefix(rawURL, "blob:") {
		return nil, fmt.Errorf("%w: unsupported URL scheme in %q", errFetch, rawURL)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errFetch, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is not a regular file", path)
		}
		return nil, fmt.Errorf("%w: %v", errFetch, err)
	}
	size := st.Size()
	h := http.Header{}
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", "application/octet-stream")
	// A weak validator, as an HTTP file server would send; the module keeps
	// it in its cache metadata.
	h.Set("ETag", fmt.Sprintf(`W/"%x-%x"`, st.ModTime().UnixNano(), size))
	if rangeHdr == "" {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		return &response{status: 200, statusText: "OK", header: h, body: f, url: rawURL}, nil
	}
	start, end, ok := parseRange(rangeHdr, size)
	if !ok {
		f.Close()
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		h.Set("Content-Length", "0")
		return &response{status: 416, statusText: "Range Not Satisfiable", header: h, body: io.NopCloser(strings.NewReader("")), url: rawURL}, nil
	}
	h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
	h.Set("Content-Length", strconv.FormatInt(end-start+1, 10))
	body := struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, start, end-start+1), f}
	return &response{status: 206, statusText: "Partial Content", header: h, body: body, url: rawURL}, nil
}

// parseRange understands one "bytes=A-B", "bytes=A-" or "bytes=-N" range and
// clamps B to the file, as HTTP servers do.
func parseRange(h string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	if a == "" { // suffix range
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		n = min(n, size)
		return size - n, size - 1, size > 0
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end = size - 1
	if b != "" {
		e, err := strconv.ParseInt(b, 10, 64)
		if err != nil || e < start {
			return 0, 0, false
		}
		end = min(e, size-1)
	}
	return start, end, true
}

// fileCache is the module's cache adapter ({get, put}) on disk: one file per
// key under dir/models, named by a hash of the key. Writes go to a temporary
// file that is renamed into place, so a crash never leaves a half-written
// entry (the module validates entries anyway).
type fileCache struct{ dir string }

func (c fileCache) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, "models", hex.EncodeToString(sum[:12])+".safetensors")
}

func (c fileCache) get(key string) ([]byte, error) {
	b, err := os.ReadFile(c.path(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// remove deletes the entry of key (a damaged one: the module found it does
// not match its digest); a missing entry is not an error.
func (c fileCache) remove(key string) error {
	if err := os.Remove(c.path(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (c fileCache) put(key string, data []byte) error { return c.putParts(key, [][]byte{data}) }

// putParts writes the parts one after the other to a temporary file and
// renames it into place.
func (c fileCache) putParts(key string, parts [][]byte) error {
	p := c.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".part-*")
	if err != nil {
		return err
	}
	var werr error
	for _, p := range parts {
		if _, werr = tmp.Write(p); werr != nil {
			break
		}
	}
	if err := tmp.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), p)
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}
