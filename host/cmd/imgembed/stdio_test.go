package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type rawFrame struct {
	h       map[string]any
	payload []byte
}

// stdioClient runs runStdio in-process on pipes.
type stdioClient struct {
	t      *testing.T
	in     *io.PipeWriter
	frames chan rawFrame
	done   chan int
	stderr *bytes.Buffer
}

func startStdio(t *testing.T, args ...string) *stdioClient {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &stdioClient{t: t, in: inW, frames: make(chan rawFrame, 100), done: make(chan int, 1), stderr: &bytes.Buffer{}}
	args = append([]string{"--model", filepath.Join(testdata, "models", "tiny-f32.safetensors"),
		"--cache-dir", t.TempDir(), "--threads", "2", "--batch", "4"}, args...)
	go func() {
		code := runStdio(context.Background(), args, inR, outW, c.stderr)
		outW.Close()
		c.done <- code
	}()
	go func() {
		defer close(c.frames)
		for {
			var pre [8]byte
			if _, err := io.ReadFull(outR, pre[:]); err != nil {
				return
			}
			h := make([]byte, binary.LittleEndian.Uint32(pre[:]))
			p := make([]byte, binary.LittleEndian.Uint32(pre[4:]))
			if _, err := io.ReadFull(outR, h); err != nil {
				return
			}
			if _, err := io.ReadFull(outR, p); err != nil {
				return
			}
			var m map[string]any
			if err := json.Unmarshal(h, &m); err != nil {
				t.Errorf("child wrote a header that is not JSON: %q", h)
				return
			}
			c.frames <- rawFrame{m, p}
		}
	}()
	t.Cleanup(func() { inW.Close() })
	return c
}

func (c *stdioClient) send(h any, payload []byte) {
	c.t.Helper()
	b, _ := json.Marshal(h)
	c.sendRaw(b, payload)
}

func (c *stdioClient) sendRaw(h, payload []byte) {
	var pre [8]byte
	binary.LittleEndian.PutUint32(pre[:], uint32(len(h)))
	binary.LittleEndian.PutUint32(pre[4:], uint32(len(payload)))
	go func() { // pipes block until read
		c.in.Write(append(append(pre[:], h...), payload...))
	}()
}

func (c *stdioClient) next() rawFrame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("the child's output ended; stderr %q", c.stderr.String())
		}
		return f
	case <-time.After(60 * time.Second):
		c.t.Fatal("no frame from the child in 60 s")
	}
	return rawFrame{}
}

// answers reads until it has an answer for each id (ignoring progress).
func (c *stdioClient) answers(ids ...float64) map[float64]rawFrame {
	c.t.Helper()
	got := map[float64]rawFrame{}
	for len(got) < len(ids) {
		f := c.next()
		id, ok := f.h["id"].(float64)
		if !ok {
			c.t.Fatalf("frame without id: %v", f.h)
		}
		got[id] = f
	}
	return got
}

func floats(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func errCode(f rawFrame) string {
	e, _ := f.h["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestStdio(t *testing.T) {
	imgs := testImages(t)
	stall := make(chan struct{})
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stall" {
			select {
			case <-r.Context().Done():
			case <-stall:
			}
			return
		}
		w.Write(imgs[strings.TrimPrefix(r.URL.Path, "/")])
	}))
	defer files.Close()
	defer close(stall)

	c := startStdio(t)
	ready := c.next()
	for ready.h["type"] == "progress" {
		ready = c.next()
	}
	if ready.h["type"] != "ready" || ready.h["protocol"] != float64(1) {
		t.Fatalf("first frame %v", ready.h)
	}
	cfg := ready.h["config"].(map[string]any)
	dims := int(cfg["embeddingSize"].(float64))
	if dims != testEmbedder(t).Config().EmbeddingSize || int(cfg["imageSize"].(float64)) != 64 {
		t.Fatalf("config %v", cfg)
	}

	// Pipelined: four requests sent before any answer is read.
	px, err := os.ReadFile(filepath.Join(testdata, "golden", "pixels-64", "chelsea.png.f32"))
	if err != nil {
		t.Fatal(err)
	}
	c.send(map[string]any{"id": 1, "op": "info"}, nil)
	payload := append(append(append([]byte{}, imgs["astronaut.png"]...), []byte("garbage")...), px...)
	c.send(map[string]any{"id": 2, "op": "embed", "inputs": []map[string]any{
		{"kind": "bytes", "length": len(imgs["astronaut.png"])},
		{"kind": "bytes", "length": 7},
		{"kind": "pixels", "length": len(px)},
		{"kind": "path", "path": filepath.Join(testdata, "images", "coffee.png")},
		{"kind": "path", "path": filepath.Join(testdata, "images", "missing.png")},
		{"kind": "url", "url": files.URL + "/chelsea.png"},
		{"kind": "url", "url": "file:///etc/passwd"},
		{"kind": "carrier pigeon"},
	}}, payload)
	c.send(map[string]any{"id": 3, "op": "embed", "inputs": []map[string]any{{"kind": "bytes", "length": len(imgs["coffee.png"])}}}, imgs["coffee.png"])
	c.send(map[string]any{"id": 4, "op": "dance"}, nil)
	got := c.answers(1, 2, 3, 4)

	if got[1].h["type"] != "result" || got[1].h["config"].(map[string]any)["embeddingSize"] != float64(dims) {
		t.Errorf("info: %v", got[1].h)
	}
	r2 := got[2]
	res, _ := r2.h["results"].([]any)
	if r2.h["type"] != "result" || len(res) != 8 || r2.h["dims"] != float64(dims) {
		t.Fatalf("embed: %v", r2.h)
	}
	wantOK := []bool{true, false, true, true, false, true, false, false}
	wantCode := []string{"", "UnsupportedImageFormat|CorruptImage", "", "", "InvalidInput", "", "InvalidInput", "InvalidInput"}
	vecs := floats(r2.payload)
	if len(vecs) != 4*dims {
		t.Fatalf("payload of %d floats, want %d", len(vecs), 4*dims)
	}
	k := 0
	var okVecs [][]float32
	for i, r := range res {
		m := r.(map[string]any)
		if (m["ok"] == true) != wantOK[i] {
			t.Errorf("input %d: %v", i, m)
			continue
		}
		if wantOK[i] {
			okVecs = append(okVecs, vecs[k*dims:(k+1)*dims])
			k++
			continue
		}
		code := m["error"].(map[string]any)["code"].(string)
		if !strings.Contains(wantCode[i], code) {
			t.Errorf("input %d: code %s, want %s", i, code, wantCode[i])
		}
	}
	if len(okVecs) == 4 {
		check := func(what string, v []float32, name string) {
			if d := maxDiff(v, directEmbed(t, name, imgs[name])); d > 1e-6 {
				t.Errorf("%s: max abs diff to direct Embed %g", what, d)
			}
		}
		check("bytes", okVecs[0], "astronaut.png")
		check("path", okVecs[2], "coffee.png")
		check("url", okVecs[3], "chelsea.png")
		pxv := floats(px)
		want, err := testEmbedder(t).EmbedPixels(context.Background(), pxv)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(okVecs[1], want); d > 1e-6 {
			t.Errorf("pixels: max abs diff %g", d)
		}
	}
	if res := got[3].h["results"].([]any); len(res) != 1 || res[0].(map[string]any)["ok"] != true {
		t.Errorf("id 3: %v", got[3].h)
	} else if d := maxDiff(floats(got[3].payload), directEmbed(t, "coffee.png", imgs["coffee.png"])); d > 1e-6 {
		t.Errorf("id 3: max abs diff %g", d)
	}
	if got[4].h["type"] != "error" || errCode(got[4]) != "InvalidInput" {
		t.Errorf("unknown op: %v", got[4].h)
	}

	// Whole-request errors; the stream goes on.
	c.send(map[string]any{"id": 5, "op": "embed", "inputs": []map[string]any{{"kind": "bytes", "length": 100}}}, []byte("short"))
	c.send(map[string]any{"id": 6, "op": "embed", "inputs": []map[string]any{{"kind": "bytes", "length": 2}}}, []byte("too long"))
	got = c.answers(5, 6)
	for id, f := range got {
		if f.h["type"] != "error" || errCode(f) != "InvalidInput" {
			t.Errorf("id %v: %v", id, f.h)
		}
	}
	c.sendRaw([]byte(`{"id": 7, "op": `), nil)
	if f := c.next(); f.h["type"] != "error" || errCode(f) != "InvalidInput" {
		t.Errorf("malformed header: %v", f.h)
	}
	c.send(map[string]any{"op": "info"}, nil)
	if f := c.next(); f.h["type"] != "error" || errCode(f) != "InvalidInput" {
		t.Errorf("no id: %v", f.h)
	}

	// Cancel: a request stuck on a download is aborted; later ones proceed.
	c.send(map[string]any{"id": 8, "op": "embed", "inputs": []map[string]any{{"kind": "url", "url": files.URL + "/stall"}}}, nil)
	time.Sleep(200 * time.Millisecond)
	c.send(map[string]any{"id": 9, "op": "cancel", "target": 8}, nil)
	c.send(map[string]any{"id": 10, "op": "info"}, nil)
	got = c.answers(8, 10)
	if got[8].h["type"] != "error" || errCode(got[8]) != "Aborted" {
		t.Errorf("cancelled request: %v", got[8].h)
	}
	if got[10].h["type"] != "result" {
		t.Errorf("after cancel: %v", got[10].h)
	}

	// EOF right after a request: it is answered, then the child exits 0.
	c.send(map[string]any{"id": 11, "op": "embed", "inputs": []map[string]any{{"kind": "bytes", "length": len(imgs["chelsea.png"])}}}, imgs["chelsea.png"])
	time.Sleep(100 * time.Millisecond) // the frame is written before the close
	c.in.Close()
	if f := c.answers(11)[11]; f.h["type"] != "result" || len(f.payload) != 4*dims {
		t.Errorf("last request: %v", f.h)
	}
	select {
	case code := <-c.done:
		if code != 0 {
			t.Errorf("exit status %d after EOF", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after stdin EOF")
	}
}

func TestStdioFatal(t *testing.T) {
	// A frame over the header limit: fatal frame, exit 2.
	c := startStdio(t)
	for f := c.next(); f.h["type"] != "ready"; f = c.next() {
	}
	var pre [8]byte
	binary.LittleEndian.PutUint32(pre[:], maxHeaderBytes+1)
	go c.in.Write(pre[:])
	if f := c.next(); f.h["type"] != "fatal" || errCode(f) != "InvalidInput" {
		t.Errorf("oversized header: %v", f.h)
	}
	if code := <-c.done; code != exitUsage {
		t.Errorf("exit %d", code)
	}

	// --engine reaches host.New: an unknown one is a fatal InvalidInput.
	c = startStdio(t, "--engine", "abacus")
	if f := c.next(); f.h["type"] != "fatal" || errCode(f) != "InvalidInput" {
		t.Errorf("--engine abacus: %v", f.h)
	}
	if code := <-c.done; code != exitUsage {
		t.Errorf("exit %d", code)
	}

	// A model that cannot load: fatal frame, exit 2.
	c = startStdio(t, "--model", filepath.Join(t.TempDir(), "none.safetensors"))
	if f := c.next(); f.h["type"] != "fatal" || errCode(f) == "" {
		t.Errorf("missing model: %v", f.h)
	}
	if code := <-c.done; code != exitUsage {
		t.Errorf("exit %d", code)
	}
}
