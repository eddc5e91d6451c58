package host

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

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

// fetchFunc is the module's fetch(url, init) over doFetch. base bounds
// requests made without one of our signals (the engine's lifetime).
func fetchFunc(rt *gojs.Runtime, sigs *signals, client *http.Client, base context.Context) *gojs.Function {
	return gojs.NewFunc("fetch", func(_ gojs.Value, args []gojs.Value) (gojs.Value, error) {
		if len(args) == 0 {
			return rt.RejectedPromise(gojs.NewTypeError("fetch: 1 argument required, but only 0 present")), nil
		}
		url := gojs.ToString(args[0])
		ctx := base
		var rng string
		if init, ok := argAt(args, 1).(*gojs.Object); ok {
			if c, ok := sigs.ctxOf(init.Get("signal")); ok {
				ctx = c
			}
			rng = headerValue(init.Get("headers"), "range")
		}
		if ctx.Err() != nil {
			return rt.RejectedPromise(abortError(ctx)), nil
		}
		p, resolve, reject := rt.NewPromise()
		complete := rt.Async()
		go func() {
			resp, err := doFetch(ctx, client, url, rng)
			complete(func() {
				switch {
				case err != nil && ctx.Err() != nil:
					reject(abortError(ctx))
				case err != nil:
					reject(gojs.NewTypeError(err.Error()))
				default:
					resolve(responseObject(rt, ctx, resp))
				}
			})
		}()
		return p, nil
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
func responseObject(rt *gojs.Runtime, ctx context.Context, resp *response) *gojs.Object {
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
	b := &bodyState{r: resp.body}
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
			return rt.ResolvedPromise(nil), nil
		})
		rd.Method("releaseLock", func(gojs.Value, []gojs.Value) (gojs.Value, error) {
			b.locked = false
			return nil, nil
		})
		return rd, nil
	})
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
		return rt.Go(func() (gojs.Value, error) {
			defer b.r.Close()
			data, err := io.ReadAll(b.r)
			if err != nil {
				if ctx.Err() != nil {
					return nil, &gojs.Exception{Value: abortError(ctx)}
				}
				return nil, &gojs.Exception{Value: gojs.NewTypeError("reading the response body: " + err.Error())}
			}
			return gojs.NewArrayBuffer(data), nil
		}), nil
	})
	return r
}

// bodyState is a response body read in chunks, one read() at a time (the
// reader protocol queues reads; the module never overlaps them, but a
// second read() waits for the first rather than racing it).
type bodyState struct {
	r      io.ReadCloser
	mu     sync.Mutex
	locked bool
	done   bool
}

func (b *bodyState) read(rt *gojs.Runtime, ctx context.Context) *gojs.Promise {
	p, resolve, reject := rt.NewPromise()
	complete := rt.Async()
	go func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.done {
			complete(func() { resolve(gojs.NewObject(map[string]gojs.Value{"done": true, "value": nil})) })
			return
		}
		buf := make([]byte, chunkSize)
		n, err := io.ReadFull(b.r, buf)
		if errors.Is(err, io.ErrUnexpectedEOF) || (errors.Is(err, io.EOF) && n == 0) {
			err = io.EOF
		}
		if err != nil && err != io.EOF {
			b.done = true
			b.r.Close()
			complete(func() {
				if ctx.Err() != nil {
					reject(abortError(ctx))
					return
				}
				reject(gojs.NewTypeError("network error reading the response body: " + err.Error()))
			})
			return
		}
		if n == 0 {
			b.done = true
			b.r.Close()
			complete(func() { resolve(gojs.NewObject(map[string]gojs.Value{"done": true, "value": nil})) })
			return
		}
		if err == io.EOF {
			// Deliver the tail now; the next read reports done.
			b.done = true
			b.r.Close()
		}
		chunk := gojs.NewUint8Array(buf[:n:n])
		complete(func() { resolve(gojs.NewObject(map[string]gojs.Value{"done": false, "value": chunk})) })
	}()
	return p
}

func (b *bodyState) cancel() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.done = true
		b.r.Close()
	}
}

// cacheObject is the module's cache adapter over fc. Reads and writes run
// off the loop; failures resolve to a miss / a skipped put, as API.md
// allows.
func cacheObject(rt *gojs.Runtime, fc fileCache) *gojs.Object {
	c := gojs.NewObject(nil)
	c.Method("get", func(_ gojs.Value, a []gojs.Value) (gojs.Value, error) {
		key := gojs.ToString(argAt(a, 0))
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
	return c
}
