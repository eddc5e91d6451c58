package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRepo builds a minimal repository layout with a secret file next to
// it, so that traversal tests have something to (fail to) reach.
func fakeRepo(t *testing.T) (repo, weights string) {
	t.Helper()
	base := t.TempDir()
	repo = filepath.Join(base, "repo")
	weights = filepath.Join(base, "models")
	files := map[string]string{
		"repo/go.mod":                "module x\n",
		"repo/www/index.html":        "<!doctype html><title>t</title>",
		"repo/www/app.js":            "import { ImageEmbeddings } from 'imgembed';\nimport * as tf from \"@tensorflow/tfjs-core\";\nconst w = await import('./worker.js');\nimport x from 'unknown-pkg';\n",
		"repo/www/style.css":         "body{}",
		"repo/www/server/server.go":  "package server",
		"repo/www/cmd/serve/main.go": "package main",
		"repo/js/src/index.js":       "export const a = 1;\n",
		"repo/js/dist/imgembed.wasm": "\x00asm\x01\x00\x00\x00",
		"repo/js/dist/wasm_exec.js":  "globalThis.Go = class {};\n",
		"repo/node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.fesm.js": "import require$$0 from 'fs';\nimport { Add } from '@tensorflow/tfjs-core';\n",
		"repo/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm":  "\x00asm",
		"repo/node_modules/secret-pkg/index.js":                                        "secret",
		"secret.txt":                                                                   "top secret",
		"models/tiny.safetensors":                                                      strings.Repeat("0123456789", 1000),
		"models/notes.txt":                                                             "not a model",
	}
	for name, body := range files {
		p := filepath.Join(base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink inside www/ that points outside it must not be followed.
	if err := os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(repo, "www", "leak.txt")); err != nil {
		t.Fatal(err)
	}
	return repo, weights
}

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	repo, weights := fakeRepo(t)
	h, err := New(Options{Repo: repo, Weights: weights})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, ts *httptest.Server, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the raw path: the client must not clean "/../" away before the
	// server sees it.
	req.URL.Opaque = path
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestIsolationHeadersOnEveryResponse(t *testing.T) {
	ts := newTestServer(t)
	for _, p := range []string{"/", "/app.js", "/js/dist/imgembed.wasm", "/models/tiny.safetensors", "/nope", "/models/"} {
		resp, _ := get(t, ts, p, nil)
		want := map[string]string{
			"Cross-Origin-Opener-Policy":   "same-origin",
			"Cross-Origin-Embedder-Policy": "require-corp",
			"Cross-Origin-Resource-Policy": "same-origin",
			"X-Content-Type-Options":       "nosniff",
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", p, k, got, v)
			}
		}
	}
}

func TestMIMETypes(t *testing.T) {
	ts := newTestServer(t)
	cases := map[string]string{
		"/":                        "text/html; charset=utf-8",
		"/index.html":              "text/html; charset=utf-8",
		"/app.js":                  "text/javascript; charset=utf-8",
		"/style.css":               "text/css; charset=utf-8",
		"/js/src/index.js":         "text/javascript; charset=utf-8",
		"/js/dist/imgembed.wasm":   "application/wasm",
		"/js/dist/wasm_exec.js":    "text/javascript; charset=utf-8",
		"/models/tiny.safetensors": "application/octet-stream",
		"/models/":                 "application/json",
		"/_shim/empty.js":          "text/javascript; charset=utf-8",
		"/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm": "application/wasm",
	}
	for p, want := range cases {
		resp, _ := get(t, ts, p, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", p, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != want {
			t.Errorf("%s: Content-Type %q, want %q", p, got, want)
		}
	}
	if got := ContentType("x.mjs"); got != "text/javascript; charset=utf-8" {
		t.Errorf("ContentType(.mjs) = %q", got)
	}
}

func TestRangeAndETag(t *testing.T) {
	ts := newTestServer(t)
	full := strings.Repeat("0123456789", 1000)
	resp, body := get(t, ts, "/models/tiny.safetensors", nil)
	if resp.StatusCode != 200 || body != full {
		t.Fatalf("full GET: status %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("Accept-Ranges = %q", resp.Header.Get("Accept-Ranges"))
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || strings.HasPrefix(etag, "W/") {
		t.Fatalf("want a strong ETag, got %q", etag)
	}

	resp, body = get(t, ts, "/models/tiny.safetensors", map[string]string{"Range": "bytes=10-19"})
	if resp.StatusCode != http.StatusPartialContent || body != "0123456789" {
		t.Fatalf("range: status %d body %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Content-Range"); got != "bytes 10-19/10000" {
		t.Errorf("Content-Range = %q", got)
	}

	// Suffix range: the last 8 bytes (how a loader may probe a footer).
	resp, body = get(t, ts, "/models/tiny.safetensors", map[string]string{"Range": "bytes=-8"})
	if resp.StatusCode != http.StatusPartialContent || body != "23456789" {
		t.Errorf("suffix range: status %d body %q", resp.StatusCode, body)
	}

	resp, _ = get(t, ts, "/models/tiny.safetensors", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", resp.StatusCode)
	}

	// If-Range with the current ETag honours the range, a stale one sends all.
	resp, body = get(t, ts, "/models/tiny.safetensors", map[string]string{"Range": "bytes=0-3", "If-Range": etag})
	if resp.StatusCode != http.StatusPartialContent || body != "0123" {
		t.Errorf("If-Range current: status %d body %q", resp.StatusCode, body)
	}
	resp, body = get(t, ts, "/models/tiny.safetensors", map[string]string{"Range": "bytes=0-3", "If-Range": `"stale"`})
	if resp.StatusCode != http.StatusOK || len(body) != len(full) {
		t.Errorf("If-Range stale: status %d, %d bytes", resp.StatusCode, len(body))
	}

	resp, _ = get(t, ts, "/models/tiny.safetensors", map[string]string{"Range": "bytes=20000-"})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("unsatisfiable range: status %d", resp.StatusCode)
	}

	// Rewritten JavaScript gets a content-hash ETag and revalidates too.
	resp, _ = get(t, ts, "/app.js", nil)
	jsTag := resp.Header.Get("ETag")
	if jsTag == "" {
		t.Fatal("no ETag on rewritten JS")
	}
	resp, _ = get(t, ts, "/app.js", map[string]string{"If-None-Match": jsTag})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("JS If-None-Match: status %d", resp.StatusCode)
	}
}

func TestHead(t *testing.T) {
	ts := newTestServer(t)
	resp, err := ts.Client().Head(ts.URL + "/models/tiny.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 10000 {
		t.Errorf("HEAD: status %d length %d", resp.StatusCode, resp.ContentLength)
	}
	resp, err = ts.Client().Post(ts.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d", resp.StatusCode)
	}
}

func TestPathTraversalRefused(t *testing.T) {
	ts := newTestServer(t)
	for _, p := range []string{
		"/../secret.txt",
		"/../../secret.txt",
		"/js/src/../../../secret.txt",
		"/models/../secret.txt",
		"/models/..%2fsecret.txt",
		"/%2e%2e/secret.txt",
		"/leak.txt", // symlink out of www/
		"/node_modules/secret-pkg/index.js",
		"/node_modules/@tensorflow/tfjs-backend-wasm/../../secret-pkg/index.js",
		"/server/server.go",
		"/cmd/serve/main.go",
		"/.git/config",
		"/js/src/..\\..\\secret.txt",
	} {
		resp, body := get(t, ts, p, nil)
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 404 or 400; body %q", p, resp.StatusCode, body)
		}
		if strings.Contains(body, "top secret") {
			t.Errorf("%s leaked the secret", p)
		}
	}
}

func TestImportRewrite(t *testing.T) {
	ts := newTestServer(t)
	_, body := get(t, ts, "/app.js", nil)
	for _, want := range []string{
		"from '/js/src/index.js'",
		`from "/node_modules/@tensorflow/tfjs-core/dist/tf-core.fesm.js"`,
		"import('./worker.js')", // relative: untouched
		"from 'unknown-pkg'",    // not in the map: untouched
	} {
		if !strings.Contains(body, want) {
			t.Errorf("rewritten app.js lacks %q:\n%s", want, body)
		}
	}
	_, body = get(t, ts, "/node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.fesm.js", nil)
	if !strings.Contains(body, "from '/_shim/empty.js'") || !strings.Contains(body, "from '/node_modules/@tensorflow/tfjs-core/dist/tf-core.fesm.js'") {
		t.Errorf("tfjs bundle not rewritten:\n%s", body)
	}
	// Dynamic import with node: prefix.
	got := string(RewriteImports([]byte(`const fs = await import("node:fs");`)))
	if got != `const fs = await import("/_shim/empty.js");` {
		t.Errorf("dynamic node: import: %s", got)
	}
	// Not import specifiers: left alone.
	for _, in := range []string{
		`x = "from 'imgembed"`,
		`const s = 'fs';`,
		`obj.from 'fs'`,
		`transform('fs')`,
		`reimport('fs')`,
		`x.import('fs')`,
		`const p = "@tensorflow/tfjs-core";`,
		`from 'fs2'`,
		`from './fs'`,
	} {
		if got := string(RewriteImports([]byte(in))); got != in {
			t.Errorf("%s rewritten to %s", in, got)
		}
	}
	// Import forms that are rewritten.
	for in, want := range map[string]string{
		`import 'fs';`:                           `import '/_shim/empty.js';`,
		`import{a}from"imgembed"`:                `import{a}from"/js/src/index.js"`,
		"export * from\n  'imgembed/react';":     "export * from\n  '/js/src/react.js';",
		`await import ( 'node:os' )`:             `await import ( '/_shim/empty.js' )`,
		`import x from 'fs'; import y from 'os'`: `import x from '/_shim/empty.js'; import y from '/_shim/empty.js'`,
	} {
		if got := string(RewriteImports([]byte(in))); got != want {
			t.Errorf("%s -> %s, want %s", in, got, want)
		}
	}
}

func TestModelList(t *testing.T) {
	ts := newTestServer(t)
	_, body := get(t, ts, "/models/", nil)
	var list []ModelFile
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(list) != 1 || list[0].Name != "tiny.safetensors" || list[0].URL != "/models/tiny.safetensors" || list[0].Size != 10000 {
		t.Errorf("model list = %+v", list)
	}
}

func TestRealRepoModels(t *testing.T) {
	// The real checkpoints in testdata/ through the real repository layout.
	h, err := New(Options{Repo: "../..", Weights: "../../testdata/models"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ts := httptest.NewServer(h)
	defer ts.Close()
	want, err := os.ReadFile("../../testdata/models/tiny-f32.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, ts, "/models/tiny-f32.safetensors", map[string]string{"Range": "bytes=0-7"})
	if resp.StatusCode != http.StatusPartialContent || body != string(want[:8]) {
		t.Fatalf("header length probe: status %d", resp.StatusCode)
	}
	_, body = get(t, ts, "/models/", nil)
	if !strings.Contains(body, `"tiny-f32.safetensors"`) {
		t.Errorf("model list lacks tiny-f32: %s", body)
	}
	// The tokenizer beside the whole-CLIP file is served but not listed.
	if strings.Contains(body, "tokenizer") {
		t.Errorf("model list offers the tokenizer: %s", body)
	}
	tok, err := os.ReadFile("../../testdata/models/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, ts, "/models/tokenizer.json", nil); resp.StatusCode != http.StatusOK || body != string(tok) {
		t.Errorf("tokenizer.json: status %d", resp.StatusCode)
	}
	if _, err := os.Stat("../../node_modules/@tensorflow/tfjs-backend-wasm"); err != nil {
		t.Log("node_modules not installed (npm ci): tfjs part skipped")
		return
	}
	resp, _ = get(t, ts, "/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm", map[string]string{"Range": "bytes=0-3"})
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Type") != "application/wasm" {
		t.Errorf("tfjs wasm: status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestNewErrors(t *testing.T) {
	_, err := New(Options{Repo: t.TempDir()})
	if !errors.Is(err, ErrNoRepo) {
		t.Errorf("empty dir: err = %v, want ErrNoRepo", err)
	}
	repo, _ := fakeRepo(t)
	if _, err := New(Options{Repo: repo, Weights: filepath.Join(repo, "does-not-exist")}); err == nil {
		t.Error("missing weights dir accepted")
	}
}

// BenchmarkRewriteImports measures the bare-import rewrite of the largest
// file it runs on per request (tfjs-core's ES bundle, about 1.1 MB).
func BenchmarkRewriteImports(b *testing.B) {
	src, err := os.ReadFile("../../node_modules/@tensorflow/tfjs-core/dist/tf-core.fesm.js")
	if err != nil {
		b.Skip("node_modules not installed:", err)
	}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		RewriteImports(src)
	}
}

// Options.Files is served as it is under /files/ (nested folders, any file
// type, no import rewriting) and nothing outside it; without it /files/ is
// not found.
func TestFilesDir(t *testing.T) {
	repo, weights := fakeRepo(t)
	files := filepath.Join(t.TempDir(), "files")
	if err := os.MkdirAll(filepath.Join(files, "ort"), 0o755); err != nil {
		t.Fatal(err)
	}
	const js = "import x from 'bare';\n"
	if err := os.WriteFile(filepath.Join(files, "ort", "ort.mjs"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(filepath.Dir(repo), "secret.txt"), filepath.Join(files, "leak.txt")); err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Repo: repo, Weights: weights, Files: files})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	if resp, body := get(t, ts, "/files/ort/ort.mjs", nil); resp.StatusCode != http.StatusOK || body != js {
		t.Errorf("/files/ort/ort.mjs: %d %q, want 200 and the file unchanged", resp.StatusCode, body)
	}
	for _, p := range []string{"/files/leak.txt", "/files/../secret.txt", "/files/../../secret.txt"} {
		if resp, body := get(t, ts, p, nil); resp.StatusCode == http.StatusOK || strings.Contains(body, "top secret") {
			t.Errorf("%s: %d %q, want refused", p, resp.StatusCode, body)
		}
	}
	if resp, _ := get(t, newTestServer(t), "/files/ort/ort.mjs", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("without Files: /files/ status %d, want 404", resp.StatusCode)
	}
}
