//go:build js && wasm

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"syscall/js"
	"time"

	"github.com/imgembed/imgembed/wasm/imagefile"
	"github.com/imgembed/imgembed/wasm/loader"
)

// jsBytes is a loader.Buffer over a JS Uint8Array: weights stay in JS
// memory, and copies between them are Uint8Array.prototype.set calls.
type jsBytes struct{ v js.Value }

func (b jsBytes) Len() int64 { return int64(b.v.Get("length").Int()) }

func (b jsBytes) CopyTo(dst []byte, off int64) {
	if len(dst) == 0 {
		return
	}
	js.CopyBytesToGo(dst, b.v.Call("subarray", off, off+int64(len(dst))))
}

// Sub is a subarray view of [from, to).
func (b jsBytes) Sub(from, to int64) loader.Bytes { return jsBytes{b.v.Call("subarray", from, to)} }

func (b jsBytes) Put(at int64, src loader.Bytes, from, to int64) {
	if to <= from {
		return
	}
	s, ok := src.(jsBytes)
	if p, isPooled := src.(pooled); isPooled {
		s, ok = p.jsBytes, true
	}
	if !ok {
		buf := make([]byte, to-from)
		src.CopyTo(buf, from)
		b.PutGo(at, buf)
		return
	}
	if from == 0 && to == s.Len() {
		b.v.Call("set", s.v, at)
		return
	}
	b.v.Call("set", s.v.Call("subarray", from, to), at)
}

func (b jsBytes) PutGo(at int64, p []byte) {
	if len(p) == 0 {
		return
	}
	js.CopyBytesToJS(b.v.Call("subarray", at, at+int64(len(p))), p)
}

// jsEnv is the loader's Env over a fetch function and an AbortSignal.
type jsEnv struct {
	fetch  js.Value
	signal js.Value
	pool   *chunkPool // buffers for BYOB reads of model downloads (nil: none)
}

// maxPooled bounds the buffers a chunkPool keeps.
const maxPooled = 256

func (e *jsEnv) Aborted() bool {
	return e.signal.Type() == js.TypeObject && e.signal.Get("aborted").Truthy()
}

func (e *jsEnv) Alloc(n int64) (loader.Buffer, error) {
	v, err := catch(func() js.Value { return jsUint8Array.New(n) })
	if err != nil {
		return nil, err
	}
	return jsBytes{v}, nil
}

// Discard frees a response chunk the loader is done with, when it owns its
// whole ArrayBuffer (a view into a shared pool is left alone).
func (e *jsEnv) Discard(b loader.Bytes) {
	if pb, ok := b.(pooled); ok {
		if e.pool != nil && len(e.pool.free) < maxPooled {
			e.pool.free = append(e.pool.free, pb.v.Get("buffer"))
		}
		return
	}
	jb, ok := b.(jsBytes)
	if !ok {
		return
	}
	buf := jb.v.Get("buffer")
	if buf.Type() != js.TypeObject || jb.v.Get("byteOffset").Int() != 0 || buf.Get("byteLength").Int() != jb.v.Get("byteLength").Int() {
		return
	}
	detach(jb.v)
}

// Fetch starts a model request. Its If-Range/If-Match are sent except on a
// browser's cross-origin request (they are not CORS-safelisted: every range
// would cost a preflight, and servers that do not answer preflights would
// fail; the loader still compares each response's validators). With
// r.Stall, every wait (for the response, for each body chunk) is bounded
// by it, and on a stall the request is aborted through an AbortController
// that also follows the load's own signal.
func (e *jsEnv) Fetch(url string, r loader.Request) (*loader.Response, error) {
	init := jsObject.New()
	h := jsObject.New()
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set("Range", r.Range)
	// A revalidation: cross-origin it costs a CORS preflight, and a server
	// that refuses it fails the request, which keeps the cached copy.
	set("If-None-Match", r.IfNoneMatch)
	if !crossOrigin(url) {
		set("If-Range", r.IfRange)
		set("If-Match", r.IfMatch)
	}
	init.Set("headers", h)
	signal, abort, release := e.requestSignal(r.Stall > 0)
	if signal.Type() == js.TypeObject {
		init.Set("signal", signal)
	}
	b := &jsBody{ctx: context.Background(), stall: r.Stall, onStall: abort, release: release, pool: e.pool}
	resp, err := fetchBody(b, e.fetch, url, init)
	if err != nil {
		release()
		return nil, err
	}
	return resp, nil
}

// requestSignal returns the signal for one model request: the load's
// signal, or, when stalls must abort the request and the host has
// AbortController, a new controller's signal that the load's signal also
// aborts. release removes that link (once the request is over).
func (e *jsEnv) requestSignal(own bool) (signal js.Value, abort, release func()) {
	noop := func() {}
	ac := js.Global().Get("AbortController")
	if !own || ac.Type() != js.TypeFunction {
		return e.signal, noop, noop
	}
	c, err := catch(func() js.Value { return ac.New() })
	if err != nil || c.Type() != js.TypeObject {
		return e.signal, noop, noop
	}
	abort = func() { catch(func() js.Value { return c.Call("abort") }) } //nolint:errcheck // best effort: the wait ends anyway
	release = noop
	if sig := e.signal; sig.Type() == js.TypeObject && sig.Get("addEventListener").Type() == js.TypeFunction {
		if sig.Get("aborted").Truthy() {
			abort()
		} else {
			fn := js.FuncOf(func(js.Value, []js.Value) any { abort(); return nil })
			if _, err := catch(func() js.Value { return sig.Call("addEventListener", "abort", fn) }); err != nil {
				fn.Release()
			} else {
				done := false
				release = func() {
					if done {
						return
					}
					done = true
					catch(func() js.Value { return sig.Call("removeEventListener", "abort", fn) }) //nolint:errcheck // best effort
					fn.Release()
				}
			}
		}
	}
	return c.Get("signal"), abort, release
}

// crossOrigin reports whether url is fetched cross-origin from a page or
// worker (false outside browsers: Node, Deno and the Go host have no CORS).
func crossOrigin(url string) bool {
	loc := js.Global().Get("location")
	if loc.Type() != js.TypeObject || loc.Get("origin").Type() != js.TypeString {
		return false
	}
	u, err := catch(func() js.Value { return js.Global().Get("URL").New(url, loc.Get("href")) })
	if err != nil || u.Type() != js.TypeObject {
		return true
	}
	return u.Get("origin").String() != loc.Get("origin").String()
}

// fetchJSCtx calls fetch(url, init) and wraps the Response; its waits (for
// the response and for each body chunk) end with ctx's cause when ctx ends,
// whatever the fetch does.
func fetchJSCtx(ctx context.Context, fetch js.Value, url string, init js.Value) (*loader.Response, error) {
	return fetchBody(&jsBody{ctx: ctx}, fetch, url, init)
}

// fetchBody is fetchJSCtx whose body is b (its ctx and stall bound the wait
// for the response too).
func fetchBody(body *jsBody, fetch js.Value, url string, init js.Value) (*loader.Response, error) {
	p, err := catch(func() js.Value { return fetch.Invoke(url, init) })
	if err != nil {
		return nil, err
	}
	r, err := body.await(p)
	if err != nil {
		return nil, err
	}
	if r.Type() != js.TypeObject {
		return nil, fmt.Errorf("fetch returned %s, not a Response", r.Type())
	}
	status := r.Get("status")
	if status.Type() != js.TypeNumber {
		return nil, fmt.Errorf("fetch resolved to an object whose status is %s, not a Response", status.Type())
	}
	headers := r.Get("headers")
	header := func(name string) string {
		if headers.Type() != js.TypeObject {
			return ""
		}
		v, err := catch(func() js.Value { return headers.Call("get", name) })
		if err != nil || v.Type() != js.TypeString {
			return ""
		}
		return v.String()
	}
	if b := r.Get("body"); b.Type() == js.TypeObject {
		if body.pool != nil {
			// A byte stream (fetch's body in browsers) read into buffers
			// of ours that are reused once the loader is done with their
			// bytes (Discard): a chunk the browser allocates is only freed
			// by a garbage collection (detaching it does not free it).
			opts := jsObject.New()
			opts.Set("mode", "byob")
			if rd, err := catch(func() js.Value { return b.Call("getReader", opts) }); err == nil && rd.Type() == js.TypeObject {
				body.reader, body.byob = rd, true
			}
		}
		if !body.byob {
			rd, err := catch(func() js.Value { return b.Call("getReader") })
			if err != nil {
				return nil, err
			}
			body.reader = rd
		}
	}
	return &loader.Response{Status: status.Int(), Header: header, Body: body}, nil
}

// gcEvery is how many bytes of JS chunks may pass through Go between
// collections. A js.Value keeps its JS object alive until Go's GC finalizes
// it, and the chunks cost the Go heap nothing, so without explicit
// collections every chunk of a download would stay alive until the load
// ends: a whole extra copy of the weights.
const gcEvery = 16 << 20

var sinceGC int64

func collectJSGarbage(n int64) {
	sinceGC += n
	if sinceGC >= gcEvery {
		sinceGC = 0
		runtime.GC()
	}
}

// jsBody reads a ReadableStream's default reader.
type jsBody struct {
	ctx    context.Context // bounds each read
	reader js.Value        // undefined: empty body
	done   bool
	// stall, when positive, bounds each wait too: a wait that gets nothing
	// for that long calls onStall (which aborts the request) and fails
	// with loader.ErrStalled.
	stall   time.Duration
	onStall func()
	release func() // called once the body is over (nil: nothing)
	// byob: reader is a BYOB reader filling buffers from pool.
	byob bool
	pool *chunkPool
}

// chunkPool keeps the ArrayBuffers of a model download's BYOB reads for
// reuse (jsEnv.Discard returns them).
type chunkPool struct{ free []js.Value }

// byobChunk is the size of the buffers a BYOB read fills.
const byobChunk = 256 << 10

func (p *chunkPool) get() js.Value {
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b
	}
	return jsArrayBuffer.New(byobChunk)
}

// pooled is a response chunk read into a buffer of a chunkPool.
type pooled struct{ jsBytes }

// await waits for p within b's bounds.
func (b *jsBody) await(p js.Value) (js.Value, error) {
	if b.stall <= 0 {
		return awaitCtx(b.ctx, p)
	}
	ctx, cancel := context.WithTimeoutCause(b.ctx, b.stall, loader.ErrStalled)
	defer cancel()
	v, err := awaitCtx(ctx, p)
	if err != nil && context.Cause(ctx) == loader.ErrStalled {
		if b.onStall != nil {
			b.onStall()
		}
		return v, fmt.Errorf("%w: nothing received for %v", loader.ErrStalled, b.stall)
	}
	return v, err
}

func (b *jsBody) finish() {
	b.done = true
	if b.release != nil {
		b.release()
		b.release = nil
	}
}

func (b *jsBody) Next() (loader.Bytes, error) {
	for {
		if b.done || b.reader.Type() != js.TypeObject {
			return nil, io.EOF
		}
		var p js.Value
		var err error
		if b.byob {
			view := jsUint8Array.New(b.pool.get())
			p, err = catch(func() js.Value { return b.reader.Call("read", view) })
		} else {
			p, err = catch(func() js.Value { return b.reader.Call("read") })
		}
		if err != nil {
			return nil, err
		}
		r, err := b.await(p)
		if err != nil {
			return nil, err
		}
		if r.Type() != js.TypeObject {
			return nil, fmt.Errorf("reader.read() resolved to %s, not {done, value}", r.Type())
		}
		if r.Get("done").Truthy() {
			b.finish()
			return nil, io.EOF
		}
		v := r.Get("value")
		u8, ok := u8Of(v)
		if !ok {
			return nil, errors.New("response body chunk is not a Uint8Array")
		}
		n := u8.Get("length").Int()
		if b.byob {
			if n == 0 {
				b.pool.free = append(b.pool.free, u8.Get("buffer"))
				continue
			}
			collectJSGarbage(int64(n))
			return pooled{jsBytes{u8}}, nil
		}
		if n == 0 {
			continue
		}
		collectJSGarbage(int64(n))
		return jsBytes{u8}, nil
	}
}

func (b *jsBody) Close() {
	if b.done || b.reader.Type() != js.TypeObject {
		b.finish()
		return
	}
	b.finish()
	if p, err := catch(func() js.Value { return b.reader.Call("cancel") }); err == nil && isThenable(p) {
		p.Call("catch", noop)
	}
}

// body is a response body kept as the chunks it arrived in (JS
// Uint8Arrays), so that the images a forward call fetches ahead of the one
// being decoded cost the Go heap nothing: the Go heap holds one image's
// bytes at a time, and a window of large images cannot exhaust it (which
// would kill the Go program).
type body struct {
	chunks []loader.Bytes
	n      int64
}

// bytes copies the body into the Go heap.
func (b body) bytes() []byte {
	out := make([]byte, b.n)
	var off int64
	for _, c := range b.chunks {
		n := c.Len()
		c.CopyTo(out[off:off+n], 0)
		off += n
	}
	return out
}

// readAll reads a body (an image, not weights), refusing more than limit
// bytes.
func readAll(rd loader.Body, limit int64) (body, error) {
	defer rd.Close()
	var b body
	for {
		c, err := rd.Next()
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return body{}, err
		}
		if b.n+c.Len() > limit {
			return body{}, coded(imagefile.CodeTooLarge, nil, "the image file is larger than %d bytes", limit)
		}
		b.chunks = append(b.chunks, c)
		b.n += c.Len()
	}
}

// jsCache adapts {get(key), put(key, bytes)}; adapter errors are ignored,
// as a cache must never make a load fail.
type jsCache struct{ v js.Value }

func (c jsCache) Get(key string) loader.Bytes {
	p, err := catch(func() js.Value { return c.v.Call("get", key) })
	if err != nil {
		return nil
	}
	v, err := await(p)
	if err != nil {
		return nil
	}
	u8, ok := u8Of(v)
	if !ok {
		return nil
	}
	return jsBytes{u8}
}

func (c jsCache) Put(key string, b loader.Bytes) {
	var p js.Value
	var err error
	switch b := b.(type) {
	case jsBytes:
		p, err = catch(func() js.Value { return c.v.Call("put", key, b.v) })
	case *loader.Parts:
		// A file in parts: written part after part by putParts, so that
		// the cache never needs the whole file in one buffer; an adapter
		// without it gets the parts joined.
		arr := jsArray.New()
		for _, part := range b.Buffers() {
			jb, ok := part.(jsBytes)
			if !ok {
				return
			}
			arr.Call("push", jb.v)
		}
		if c.v.Get("putParts").Type() == js.TypeFunction {
			p, err = catch(func() js.Value { return c.v.Call("putParts", key, arr) })
			break
		}
		whole, aerr := catch(func() js.Value { return jsUint8Array.New(b.Len()) })
		if aerr != nil {
			return
		}
		var at int64
		for _, part := range b.Buffers() {
			whole.Call("set", part.(jsBytes).v, at)
			at += part.Len()
		}
		p, err = catch(func() js.Value { return c.v.Call("put", key, whole) })
	default:
		return
	}
	if err != nil {
		return
	}
	await(p) //nolint:errcheck // a failed put only costs a later download
}

// Reader is the adapter's openReader(key) (a ReadableStream of the entry,
// or null), when it has one (loader.CacheReader).
func (c jsCache) Reader(key string) (loader.Body, bool) {
	if c.v.Get("openReader").Type() != js.TypeFunction {
		return nil, false
	}
	p, err := catch(func() js.Value { return c.v.Call("openReader", key) })
	if err != nil {
		return nil, true
	}
	v, err := await(p)
	if err != nil || v.Type() != js.TypeObject || v.Get("getReader").Type() != js.TypeFunction {
		return nil, true
	}
	rd, err := catch(func() js.Value { return v.Call("getReader") })
	if err != nil {
		return nil, true
	}
	return &jsBody{ctx: context.Background(), reader: rd}, true
}

// jsStreamCache is a jsCache whose adapter has openWriter(key, headerLen)
// (loader.StreamCache): the entry is written while the model is built.
type jsStreamCache struct{ jsCache }

func (c jsStreamCache) Writer(key string, headerLen int64) (loader.CacheWriter, error) {
	p, err := catch(func() js.Value { return c.v.Call("openWriter", key, headerLen) })
	if err != nil {
		return nil, err
	}
	w, err := await(p)
	if err != nil {
		return nil, err
	}
	if w.Type() != js.TypeObject {
		return nil, errors.New("openWriter did not give a writer")
	}
	return jsCacheWriter{w}, nil
}

// jsCacheWriter adapts {write(bytes), commit(header), abort()}.
type jsCacheWriter struct{ w js.Value }

func (w jsCacheWriter) call(method string, b loader.Bytes) error {
	jb, ok := b.(jsBytes)
	if !ok {
		return errors.New("not JS bytes")
	}
	p, err := catch(func() js.Value { return w.w.Call(method, jb.v) })
	if err != nil {
		return err
	}
	_, err = await(p)
	return err
}

func (w jsCacheWriter) Write(b loader.Bytes) error       { return w.call("write", b) }
func (w jsCacheWriter) Commit(header loader.Bytes) error { return w.call("commit", header) }

func (w jsCacheWriter) Abort() {
	if p, err := catch(func() js.Value { return w.w.Call("abort") }); err == nil {
		await(p) //nolint:errcheck // best effort: the entry is never committed
	}
}

// Delete calls the adapter's delete(key), when it has one.
func (c jsCache) Delete(key string) {
	if c.v.Get("delete").Type() != js.TypeFunction {
		return
	}
	p, err := catch(func() js.Value { return c.v.Call("delete", key) })
	if err != nil {
		return
	}
	await(p) //nolint:errcheck // a failed delete is overwritten by the next put
}

// Digest is SHA-256 by the adapter's digest(bytes) when it has one (the Go
// host's), else crypto.subtle.digest (browsers in secure contexts, Node),
// else an error (the loader then hashes in Go, much more slowly).
func (c jsCache) Digest(b loader.Bytes) ([32]byte, error) {
	var sum [32]byte
	jb, ok := b.(jsBytes)
	if !ok {
		return sum, errors.New("not JS bytes")
	}
	var p js.Value
	var err error
	if c.v.Get("digest").Type() == js.TypeFunction {
		p, err = catch(func() js.Value { return c.v.Call("digest", jb.v) })
	} else {
		subtle := js.Global().Get("crypto")
		if subtle.Type() == js.TypeObject {
			subtle = subtle.Get("subtle")
		}
		if subtle.Type() != js.TypeObject {
			return sum, errors.New("no crypto.subtle")
		}
		p, err = catch(func() js.Value { return subtle.Call("digest", "SHA-256", jb.v) })
	}
	if err != nil {
		return sum, err
	}
	v, err := await(p)
	if err != nil {
		return sum, err
	}
	if v.Type() == js.TypeObject && v.Get("byteLength").Type() == js.TypeNumber && !isInstance(v, jsUint8Array) {
		v = jsUint8Array.New(v) // an ArrayBuffer
	}
	u8, ok := u8Of(v)
	if !ok || u8.Length() != 32 {
		return sum, errors.New("digest did not give 32 bytes")
	}
	js.CopyBytesToGo(sum[:], u8)
	return sum, nil
}

// detach frees the memory of the ArrayBuffer under u8 at once by
// transferring it (ArrayBuffer.prototype.transfer(0), else structuredClone
// with a transfer list) to an owner nobody keeps. Every view of it becomes empty. Where the
// host offers neither, the buffer is left to the garbage collectors.
func detach(u8 js.Value) {
	buf := u8.Get("buffer")
	if buf.Type() != js.TypeObject {
		return
	}
	if buf.Get("transfer").Type() == js.TypeFunction {
		if _, err := catch(func() js.Value { return buf.Call("transfer", 0) }); err == nil {
			return
		}
	}
	if sc := js.Global().Get("structuredClone"); sc.Type() == js.TypeFunction {
		// Cloning undefined with buf in the transfer list detaches buf and
		// returns undefined: the new owner of the memory is never referenced
		// (returning the clone to Go would pin it, as above).
		opts := jsObject.New()
		opts.Set("transfer", []any{buf})
		catch(func() js.Value { return sc.Invoke(js.Undefined(), opts) }) //nolint:errcheck // best effort
	}
}
