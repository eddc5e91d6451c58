package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/imgembed/imgembed/host/internal/gojs"
)

// The JS environment the module needs beyond what gojs provides (see
// wasm/API.md, "What the module touches"): fetch with Response, Headers and a
// streaming body reader; AbortSignal; the cache adapter. Everything here
// runs on the loop goroutine except the I/O, which runs on its own goroutine
// registered with Runtime.Async and delivers its result back to the loop.

// chunkSize is how much a body reader hands the module per read(): large
// enough that the per-chunk cost (a promise, a JS call) is negligible next to
// the bytes, small enough that progress and cancellation stay responsive.
const chunkSize = 1 << 20

// signals maps the AbortSignal objects the host made to their contexts, so
// fetch can abort the HTTP request when the caller's context ends.
type signals struct {
	mu sync.Mutex
	m  map[*gojs.Object]context.Context
}

// newSignal returns an AbortSignal whose .aborted turns true when ctx ends.
// release forgets it.
func (s *signals) newSignal(ctx context.Context) (sig *gojs.Object, release func()) {
	sig = gojs.NewObject(map[string]gojs.Value{})
	sig.Dynamic = func(name string) (gojs.Value, bool) {
		switch name {
		case "aborted":
			return ctx.Err() != nil, true
		case "reason":
			if ctx.Err() == nil {
				return nil, true
			}
			return abortError(ctx), true
		}
		return nil, false
	}
	noop := func(gojs.Value, []gojs.Value) (gojs.Value, error) { return nil, nil }
	sig.Method("addEventListener", noop)
	sig.Method("removeEventListener", noop)
	sig.Method("throwIfAborted", func(gojs.Value, []gojs.Value) (gojs.Value, error) {
		if ctx.Err() != nil {
			return nil, &gojs.Exception{Value: abortError(ctx)}
		}
		return nil, nil
	})
	s.mu.Lock()
	if s.m == nil {
		s.m = map[*gojs.Object]context.Context{}
	}
	s.m[sig] = ctx
	s.mu.Unlock()
	return sig, func() {
		s.mu.Lock()
		delete(s.m, sig)
		s.mu.Unlock()
	}
}

func (s *signals) ctxOf(v gojs.Value) (context.Context, bool) {
	o, ok := v.(*gojs.Object)
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, ok := s.m[o]
	return ctx, ok
}

// abortError is the DOMException-like value fetch rejects with on abort.
func abortError(ctx context.Context) gojs.Value {
	msg := "This operation was aborted"
	if c := context.Cause(ctx); c != nil {
		msg += ": " + c.Error()
	}
	e := gojs.NewError(msg)
	e.Set("name", "AbortError")
	return e
}

// errSignalAborted is the context cause of a fetch whose init.signal (one
// not made by newSignal, e.g. from the module's AbortController) aborted.
var errSignalAborted = errors.New("the fetch's AbortSignal was aborted")

// fetchFunc is the module's fetch(url, init) over doFetch. base bounds
// requests made without one of our signals (the engine's lifetime). An
// init.signal made by newSignal ends the request with its context; any
// other AbortSignal-like object (.aborted, addEventListener('abort')) ends
// it when it aborts, before or during the request or the body read: its
// listener is removed once the response body is done, so a long-lived
// signal does not collect listeners.
func fetchFunc(rt *gojs.Runtime, sigs *signals, client *http.Client, base context.Context) *gojs.Function {
	return gojs.NewFunc("fetch", func(_ gojs.Value, args []gojs.Value) (gojs.Value, error) {
		if len(args) == 0 {
			return rt.RejectedPromise(gojs.NewTypeError("fetch: 1 argument required, but only 0 present")), nil
		}
		url := gojs.ToString(args[0])
		ctx := base
		done := func() {}
		var hdr map[string]string
		if init, ok := argAt(args, 1).(*gojs.Object); ok {
			sv := init.Get("signal")
			if c, ok := sigs.ctxOf(sv); ok {
				ctx = c
			} else if so, ok := sv.(*gojs.Object); ok {
				if gojs.GetProperty(so, "aborted") == true {
					return rt.RejectedPromise(signalReason(so)), nil
				}
				ctx, done = followSignal(base, so)
			}
			for _, k := range []string{"Range", "If-Range", "If-Match", "If-None-Match"} {
				if v := headerValue(init.Get("headers"), k); v != "" {
					if hdr == nil {
						hdr = map[string]string{}
					}
					hdr[k] = v
				}
			}
		}
		if ctx.Err() != nil {
			done()
			return rt.RejectedPromise(abortError(ctx)), nil
		}
		p, resolve, reject := rt.NewPromise()
		complete := rt.Async()
		go func() {
			resp, err := doFetch(ctx, client, url, hdr)
			complete(func() {
				switch {
				case err != nil && ctx.Err() != nil:
					done()
					reject(abortError(ctx))
				case err != nil:
					done()
					reject(gojs.NewTypeError(err.Error()))
				default:
					resolve(responseObject(rt, ctx, resp, done))
				}
			})
		}()
		return p, nil
	})
}

// followSignal returns a context under base that ends (cause
// errSignalAborted) when the JS AbortSignal sig fires 'abort', and done,
// which removes the listener and releases the context; done runs on the
// loop goroutine, once the request is over.
func followSignal(base context.Context, sig *gojs.Object) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(base)
	listener := gojs.NewFunc("onabort", func(gojs.Value, []gojs.Value) (gojs.Value, error) {
		cancel(errSignalAborted)
		return nil, nil
	})
	call := func(method string) {
		if f, ok := sig.Get(method).(*gojs.Function); ok && f.Call != nil {
			f.Call(sig, []gojs.Value{"abort", listener}) //nolint:errcheck // a signal that cannot listen only loses early cancellation
		}
	}
	call("addEventListener")
	var once bool
	return ctx, func() {
		if once {
			return
		}
		once = true
		call("removeEventListener")
		cancel(nil)
	}
}

// signalReason is what fetch rejects with for an already aborted signal:
// its reason, or an AbortError.
func signalReason(sig *gojs.Object) gojs.Value {
	if r := sig.Get("reason"); r != nil {
		return r
	}
	e := gojs.NewError("This operation was aborted")
	e.Set("name", "AbortError")
	return e
}

// abortControllerClass is the AbortController global: new
// AbortController() has .signal (.aborted, .reason, add/removeEventListener
// for 'abort', throwIfAborted) and .abort(reason). The module makes one per
// image fetch with a time-out and aborts it when the time is up; the host's
// fetch follows the signal through its listener, so the state lives on the
// objects themselves and is freed with them. Everything runs on the loop
// goroutine.
func abortControllerClass() *gojs.Function {
	return gojs.NewClass("AbortController", func([]gojs.Value) (gojs.Value, error) {
		var (
			aborted   bool
			reason    gojs.Value
			listeners []*gojs.Function
		)
		sig := gojs.NewObject(nil)
		sig.Dynamic = func(name string) (gojs.Value, bool) {
			switch name {
			case "aborted":
				return aborted, true
			case "reason":
				return reason, true
			}
			return nil, false
		}
		sig.Method("addEventListener", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
			f, ok := argAt(a, 1).(*gojs.Function)
			if gojs.ToString(argAt(a, 0)) != "abort" || !ok || aborted {
				return nil, nil // an aborted signal never fires again
			}
			for _, l := range listeners {
				if l == f {
					return nil, nil
				}
			}
			listeners = append(listeners, f)
			return nil, nil
		})
		sig.Method("removeEventListener", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
			f, _ := argAt(a, 1).(*gojs.Function)
			if gojs.ToString(argAt(a, 0)) != "abort" || f == nil {
				return nil, nil
			}
			for i, l := range listeners {
				if l == f {
					listeners = append(listeners[:i:i], listeners[i+1:]...)
					break
				}
			}
			return nil, nil
		})
		sig.Method("throwIfAborted", func(gojs.Value, []gojs.Value) (gojs.Value, error) {
			if aborted {
				return nil, &gojs.Exception{Value: reason}
			}
			return nil, nil
		})
		c := gojs.NewObject(map[string]gojs.Value{"signal": sig})
		c.Method("abort", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
			if aborted {
				return nil, nil
			}
			aborted = true
			reason = argAt(a, 0)
			if reason == nil {
				e := gojs.NewError("This operation was aborted")
				e.Set("name", "AbortError")
				reason = e
			}
			ls := listeners
			listeners = nil
			ev := gojs.NewObject(map[string]gojs.Value{"type": "abort", "target": sig})
			for _, l := range ls {
				if l.Call != nil {
					if _, err := l.Call(sig, []gojs.Value{ev}); err != nil {
						return nil, err
					}
				}
			}
			return nil, nil
		})
		return c, nil
	})
}

func argAt(a []gojs.Value, i int) gojs.Value {
	if i < len(a) {
		return a[i]
	}
	return nil
}

// headerValue reads a header from init.headers given as a plain object
// (case-insensitive keys, as fetch treats them) or a Headers-like object
// with get().
func headerValue(h gojs.Value, name string) string {
	o, ok := h.(*gojs.Object)
	if !ok {
		return ""
	}
	if get, ok := o.Get("get").(*gojs.Function); ok && get.Call != nil {
		v, err := get.Call(o, []gojs.Value{name})
		if s, ok := v.(string); ok && err == nil {
			return s
		}
		return ""
	}
	for _, k := range o.Keys() {
		if strings.EqualFold(k, name) {
			return gojs.ToString(o.Get(k))
		}
	}
	return ""
}

// responseObject dresses resp as a fetch Response: status, ok, statusText,
// url, headers.get(), body.getReader() (read/cancel/releaseLock) and
// arrayBuffer().
// done runs (on the loop goroutine) once the body is finished: read to the
// end, failed, or cancelled.
func responseObject(rt *gojs.Runtime, ctx context.Context, resp *response, done func()) *gojs.Object {
	hdr := gojs.NewObject(nil)
	hdr.Method("get", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		k := http.CanonicalHeaderKey(gojs.ToString(argAt(a, 0)))
		vs, ok := resp.header[k]
		if !ok {
			return gojs.Null, nil
		}
		return strings.Join(vs, ", "), nil
	})
	hdr.Method("has", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		_, ok := resp.header[http.CanonicalHeaderKey(gojs.ToString(argAt(a, 0)))]
		return ok, nil
	})
	b := &bodyState{r: resp.body, finished: done}
	body := readableStream(rt, ctx, b)
	r := gojs.NewObject(map[string]gojs.Value{
		"status":     resp.status,
		"ok":         resp.status >= 200 && resp.status <= 299,
		"statusText": resp.statusText,
		"url":        resp.url,
		"headers":    hdr,
		"body":       body,
		"redirected": false,
		"type":       "basic",
	})
	r.Method("arrayBuffer", func(gojs.Value, []gojs.Value) (gojs.Value, error) {
		if b.locked {
			return rt.RejectedPromise(gojs.NewTypeError("body stream already read")), nil
		}
		b.locked = true
		p, resolve, reject := rt.NewPromise()
		complete := rt.Async()
		go func() {
			data, err := io.ReadAll(b.r)
			b.close()
			complete(func() {
				b.finished()
				switch {
				case err != nil && ctx.Err() != nil:
					reject(abortError(ctx))
				case err != nil:
					reject(gojs.NewTypeError("reading the response body: " + err.Error()))
				default:
					resolve(gojs.NewArrayBuffer(data))
				}
			})
		}()
		return p, nil
	})
	return r
}

// readableStream dresses b as a ReadableStream of Uint8Array chunks:
// getReader() gives {read, cancel, releaseLock}.
func readableStream(rt *gojs.Runtime, ctx context.Context, b *bodyState) *gojs.Object {
	body := gojs.NewObject(nil)
	body.Method("getReader", func(gojs.Value, []gojs.Value) (gojs.Value, error) {
		if b.locked {
			return nil, &gojs.Exception{Value: gojs.NewTypeError("ReadableStream is locked")}
		}
		b.locked = true
		rd := gojs.NewObject(nil)
		rd.Method("read", func(gojs.Value, []gojs.Value) (gojs.Value, error) {
			return b.read(rt, ctx), nil
		})
		rd.Method("cancel", func(gojs.Value, []gojs.Value) (gojs.Value, error) {
			b.cancel()
			b.finished()
			return rt.ResolvedPromise(nil), nil
		})
		rd.Method("releaseLock", func(gojs.Value, []gojs.Value) (gojs.Value, error) {
			b.locked = false
			return nil, nil
		})
		return rd, nil
	})
	return body
}

// bodyState is a response body read in chunks, one read() at a time (the
// reader protocol queues reads; the module never overlaps them, but a
// second read() waits for the first rather than racing it). cancel does not
// wait for a read in progress: it runs on the loop goroutine, and a read
// stalled on the network would block the loop; closing the body ends that
// read instead.
type bodyState struct {
	r        io.ReadCloser
	finished func() // loop goroutine only: releases the request's signal
	locked   bool   // loop goroutine only

	mu        sync.Mutex // serialises reads
	done      atomic.Bool
	closeOnce sync.Once
}

// close closes the body once; safe to call concurrently with a read.
func (b *bodyState) close() { b.closeOnce.Do(func() { b.r.Close() }) }

func (b *bodyState) read(rt *gojs.Runtime, ctx context.Context) *gojs.Promise {
	p, resolve, reject := rt.NewPromise()
	complete := rt.Async()
	go func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.done.Load() {
			complete(func() {
				b.finished()
				resolve(gojs.NewObject(map[string]gojs.Value{"done": true, "value": nil}))
			})
			return
		}
		buf := make([]byte, chunkSize)
		n, err := fillChunk(b.r, buf)
		if err != nil && err != io.EOF {
			b.done.Store(true)
			b.close()
			complete(func() {
				b.finished()
				if ctx.Err() != nil {
					reject(abortError(ctx))
					return
				}
				reject(gojs.NewTypeError("network error reading the response body: " + err.Error()))
			})
			return
		}
		if n == 0 {
			b.done.Store(true)
			b.close()
			complete(func() {
				b.finished()
				resolve(gojs.NewObject(map[string]gojs.Value{"done": true, "value": nil}))
			})
			return
		}
		if err == io.EOF {
			// Deliver the tail now; the next read reports done.
			b.done.Store(true)
			b.close()
		}
		chunk := gojs.NewUint8Array(buf[:n:n])
		complete(func() { resolve(gojs.NewObject(map[string]gojs.Value{"done": false, "value": chunk})) })
	}()
	return p
}

// fillChunk reads into buf until it is full or the body ends (io.EOF). Any
// other error is returned as is, io.ErrUnexpectedEOF included: net/http
// reports a body cut short of its Content-Length that way, and it must
// reach the module as a network error (DownloadFailed, as in Node), not as
// the end of a shorter file (io.ReadFull would turn it into a clean end).
func fillChunk(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (b *bodyState) cancel() {
	b.done.Store(true)
	b.close()
}

// cacheObject is the module's cache adapter over fc. Reads and writes run
// off the loop; failures resolve to a miss / a skipped put, as API.md
// allows. It has the streamed methods of the JS adapters (js/src/cache.js):
// openReader, so that a hit is read chunk by chunk while the graph is built
// instead of whole, and openWriter, so that a download is written tensor by
// tensor as the graph reads it instead of kept whole until put.
func cacheObject(rt *gojs.Runtime, fc fileCache) *gojs.Object {
	c := gojs.NewObject(nil)
	// openReader(key) -> Promise<ReadableStream|null>.
	c.Method("openReader", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		key := gojs.ToString(argAt(a, 0))
		noteCacheCall("openReader")
		return rt.Go(func() (gojs.Value, error) {
			f, err := os.Open(fc.path(key))
			if err != nil {
				return gojs.Null, nil // a miss (or unreadable: the same to the module)
			}
			// A file read needs no cancellation of its own: the module
			// cancels the reader, which closes the file.
			return readableStream(rt, context.Background(), &bodyState{r: f, finished: func() {}}), nil
		}), nil
	})
	// openWriter(key, headerLen) -> Promise<{write(bytes), commit(header),
	// abort()}>, each returning a Promise.
	c.Method("openWriter", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		key := gojs.ToString(argAt(a, 0))
		headerLen, ok := argAt(a, 1).(float64)
		if !ok || headerLen < 0 || headerLen != float64(int64(headerLen)) {
			return rt.RejectedPromise(gojs.NewTypeError("cache.openWriter: headerLen must be a non-negative integer")), nil
		}
		noteCacheCall("openWriter")
		return rt.Go(func() (gojs.Value, error) {
			w, err := fc.openWriter(key, int64(headerLen))
			if err != nil {
				return nil, err
			}
			return cacheWriterObject(rt, w), nil
		}), nil
	})
	c.Method("get", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		key := gojs.ToString(argAt(a, 0))
		noteCacheCall("get")
		return rt.Go(func() (gojs.Value, error) {
			data, err := fc.get(key)
			if err != nil || data == nil {
				return gojs.Null, nil
			}
			return gojs.NewUint8Array(data), nil
		}), nil
	})
	c.Method("put", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		key := gojs.ToString(argAt(a, 0))
		noteCacheCall("put")
		u8, ok := argAt(a, 1).(*gojs.TypedArray)
		if !ok {
			return rt.RejectedPromise(gojs.NewTypeError("cache.put: value must be a Uint8Array")), nil
		}
		// The module awaits put before touching the bytes again, so they
		// are written without a copy.
		data := u8.Bytes()
		return rt.Go(func() (gojs.Value, error) {
			if err := fc.put(key, data); err != nil {
				return nil, err
			}
			return nil, nil
		}), nil
	})
	// putParts(key, [Uint8Array...]): the file in parts (header, then each
	// tensor), written one after the other.
	c.Method("putParts", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		key := gojs.ToString(argAt(a, 0))
		noteCacheCall("putParts")
		arr, ok := argAt(a, 1).(*gojs.Array)
		if !ok {
			return rt.RejectedPromise(gojs.NewTypeError("cache.putParts: parts must be an Array")), nil
		}
		parts := make([][]byte, len(arr.Elems))
		for i, e := range arr.Elems {
			u8, ok := e.(*gojs.TypedArray)
			if !ok {
				return rt.RejectedPromise(gojs.NewTypeError("cache.putParts: a part is not a Uint8Array")), nil
			}
			parts[i] = u8.Bytes()
		}
		return rt.Go(func() (gojs.Value, error) { return nil, fc.putParts(key, parts) }), nil
	})
	c.Method("delete", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		key := gojs.ToString(argAt(a, 0))
		return rt.Go(func() (gojs.Value, error) { return nil, fc.remove(key) }), nil
	})
	// digest(bytes): SHA-256 in native Go for the module's cache integrity
	// check (hashing in the guest would be several times slower).
	c.Method("digest", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		u8, ok := argAt(a, 0).(*gojs.TypedArray)
		if !ok {
			return rt.RejectedPromise(gojs.NewTypeError("cache.digest: value must be a Uint8Array")), nil
		}
		data := u8.Bytes()
		return rt.Go(func() (gojs.Value, error) {
			sum := sha256.Sum256(data)
			return gojs.NewUint8Array(sum[:]), nil
		}), nil
	})
	return c
}

// cacheWriterObject dresses w as the writer openWriter resolves to. The
// module awaits each call before the next and before it frees the bytes it
// passed, so they are written without a copy, off the loop.
func cacheWriterObject(rt *gojs.Runtime, w *cacheWriter) *gojs.Object {
	o := gojs.NewObject(nil)
	bytesArg := func(name string, a []gojs.Value) ([]byte, gojs.Value) {
		u8, ok := argAt(a, 0).(*gojs.TypedArray)
		if !ok {
			return nil, rt.RejectedPromise(gojs.NewTypeError("cache writer." + name + ": value must be a Uint8Array"))
		}
		return u8.Bytes(), nil
	}
	o.Method("write", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		b, rejected := bytesArg("write", a)
		if rejected != nil {
			return rejected, nil
		}
		return rt.Go(func() (gojs.Value, error) { return nil, w.write(b) }), nil
	})
	o.Method("commit", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		b, rejected := bytesArg("commit", a)
		if rejected != nil {
			return rejected, nil
		}
		return rt.Go(func() (gojs.Value, error) { return nil, w.commit(b) }), nil
	})
	o.Method("abort", func(gojs.Value, []gojs.Value) (gojs.Value, error) {
		return rt.Go(func() (gojs.Value, error) { w.abort(); return nil, nil }), nil
	})
	return o
}

// cacheWriter is a cache entry written as a stream: a temporary file beside
// the entries, the tensors written after headerLen bytes left free, the
// header written into them at commit, then renamed into place. Nothing is
// visible under the key before commit; abort (or a failed commit) removes
// the file.
type cacheWriter struct {
	mu        sync.Mutex
	f         *os.File // nil once committed or aborted
	dst       string
	pos       int64
	headerLen int64
}

func (c fileCache) openWriter(key string, headerLen int64) (*cacheWriter, error) {
	p := c.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".part-*")
	if err != nil {
		return nil, err
	}
	return &cacheWriter{f: f, dst: p, pos: headerLen, headerLen: headerLen}, nil
}

func (w *cacheWriter) write(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("cache entry closed")
	}
	if _, err := w.f.WriteAt(b, w.pos); err != nil {
		w.drop()
		return fmt.Errorf("cache entry: %w", err)
	}
	w.pos += int64(len(b))
	return nil
}

func (w *cacheWriter) commit(header []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("cache entry closed")
	}
	if int64(len(header)) != w.headerLen {
		w.drop()
		return fmt.Errorf("cache entry: header of %d bytes, %d expected", len(header), w.headerLen)
	}
	_, err := w.f.WriteAt(header, 0)
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.f.Name(), w.dst)
	}
	if err != nil {
		os.Remove(w.f.Name())
		w.f = nil
		return fmt.Errorf("cache entry: %w", err)
	}
	w.f = nil
	return nil
}

func (w *cacheWriter) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.drop()
	}
}

// drop closes and removes the temporary file (w.mu held, w.f not nil).
func (w *cacheWriter) drop() {
	w.f.Close()
	os.Remove(w.f.Name())
	w.f = nil
}

// noteCacheCall, when set (tests), is told each cache adapter method the
// module calls (loop goroutine).
var noteCacheCallHook func(method string)

func noteCacheCall(method string) {
	if noteCacheCallHook != nil {
		noteCacheCallHook(method)
	}
}
