//go:build js && wasm

package main

import (
	"syscall/js"
	"testing"

	"github.com/imgembed/imgembed/wasm/api"
)

// hostileFetch is a fetch hook serving odd responses by URL; state counts
// the body reads and cancels of the "huge" response.
const hostileFetch = `return (url, init) => {
  const noHeaders = { get() { return null; } };
  switch (url) {
  case 'no-status':
    return Promise.resolve({});
  case 'bad-read':
    return Promise.resolve({ status: 200, headers: noHeaders, body: { getReader() {
      return { read() { return Promise.resolve(undefined); }, cancel() { return Promise.resolve(); } };
    } } });
  case 'huge':
    return Promise.resolve({ status: 200,
      headers: { get(n) { return n.toLowerCase() === 'content-length' ? '1000000000000' : null; } },
      body: { getReader() {
        return {
          read() { state.reads++; return Promise.resolve({ done: false, value: new Uint8Array(1 << 20) }); },
          cancel() { state.cancels++; return Promise.resolve(); },
        };
      } } });
  case 'chunked': {
    // state.png in three uneven chunks
    const p = state.png, cuts = [0, 7, p.length >> 1, p.length];
    let i = 0;
    return Promise.resolve({ status: 200, headers: noHeaders, body: { getReader() {
      return {
        read() {
          if (i === 3) return Promise.resolve({ done: true });
          const v = p.slice(cuts[i], cuts[i + 1]); i++;
          return Promise.resolve({ done: false, value: v });
        },
        cancel() { return Promise.resolve(); },
      };
    } } });
  }
  }
  return Promise.reject(new Error('unexpected url ' + url));
};`

// TestForwardHostileFetch: a URL whose body arrives in chunks gives the
// image; URL inputs whose fetch hook resolves to
// something that is not a Response fail alone (DownloadFailed) instead of
// crashing the Go program from a prefetch goroutine, and a declared
// Content-Length over the image cap fails (ImageTooLarge) without reading
// the body.
func TestForwardHostileFetch(t *testing.T) {
	tf := loadTF(t)
	state := jsObject.New()
	state.Set("reads", 0)
	state.Set("cancels", 0)
	fetch := js.Global().Get("Function").New("state", hostileFetch).Invoke(state)

	opts := jsObject.New()
	opts.Set("tf", tf)
	opts.Set("fetch", fetch)
	opts.Set("source", jsBytesOf(readTestdata(t, "models", "tiny-f32.safetensors")))
	v, err := run(func() (any, error) { return loadModel(opts) })
	if err != nil {
		t.Fatal(err)
	}
	model := v.(js.Value)
	defer model.Call("dispose")

	png := readTestdata(t, "images", "chelsea.png")
	state.Set("png", jsBytesOf(png))
	inputs := jsArray.New()
	for _, u := range []string{"no-status", "bad-read", "huge"} {
		inputs.Call("push", u)
	}
	inputs.Call("push", jsBytesOf(png))
	inputs.Call("push", "chunked")
	res, err := await(model.Call("forward", inputs))
	if err != nil {
		t.Fatal(err)
	}
	for i, code := range []api.Code{codeDownloadFailed, codeDownloadFailed, api.ImageTooLarge} {
		if got := res.Index(i).Get("code"); got.Type() != js.TypeString || got.String() != string(code) {
			t.Errorf("input %d: code %v, want %s (%v)", i, got, code, res.Index(i).Get("message"))
		}
	}
	if !isInstance(res.Index(3), jsFloat32Array) || res.Index(3).Length() != 32 {
		t.Errorf("input 3: %v, want an embedding", res.Index(3))
	}
	// A body read in chunks gives the same image as its bytes.
	a, b := goFloats(res.Index(3)), goFloats(res.Index(4))
	if len(a) != len(b) {
		t.Fatalf("chunked URL: %d values, bytes %d", len(b), len(a))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("chunked URL: value %d is %v, bytes give %v", i, b[i], a[i])
		}
	}
	if r, c := state.Get("reads").Int(), state.Get("cancels").Int(); r != 0 || c != 1 {
		t.Errorf("huge body: %d reads, %d cancels; want 0 and 1", r, c)
	}

	// The module still serves calls.
	again := jsArray.New()
	again.Call("push", jsBytesOf(png))
	res, err = await(model.Call("forward", again))
	if err != nil || !isInstance(res.Index(0), jsFloat32Array) {
		t.Fatalf("second forward: %v, %v", res, err)
	}
}
