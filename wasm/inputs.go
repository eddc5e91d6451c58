//go:build js && wasm

package main

import (
	"context"
	"errors"
	"strconv"
	"syscall/js"
	"time"
	"unsafe"

	"github.com/imgembed/imgembed/wasm/api"
	"github.com/imgembed/imgembed/wasm/embed"
	"github.com/imgembed/imgembed/wasm/imagefile"
)

// inputOf maps one JS input of forward/preprocess to an embed.Input. Bytes
// and pixels are copied into Go only when the pipeline reaches them (Lazy),
// so a call's inputs are never all in the Go heap at once.
func inputOf(v js.Value) embed.Input {
	switch v.Type() {
	case js.TypeString:
		return embed.Input{URL: v.String()}
	case js.TypeObject:
	default:
		return embed.Input{Err: coded(codeInvalidInput, nil, "unsupported input of type %s", v.Type())}
	}
	if u8, ok := u8Of(v); ok {
		return embed.Input{Lazy: func() (embed.Input, error) { return embed.Input{Bytes: goBytes(u8)}, nil }}
	}
	if px := v.Get("pixels"); px.Type() != js.TypeUndefined {
		return embed.Input{Lazy: func() (embed.Input, error) {
			if !isInstance(px, jsFloat32Array) {
				return embed.Input{}, coded(codeInvalidInput, nil, "pixels must be a Float32Array")
			}
			out := make([]float32, px.Length())
			if len(out) > 0 {
				u8 := jsUint8Array.New(px.Get("buffer"), px.Get("byteOffset"), 4*len(out))
				js.CopyBytesToGo(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*len(out)), u8)
			}
			return embed.Input{Pixels: out}, nil
		}}
	}
	if lz := v.Get("lazy"); lz.Type() == js.TypeFunction {
		// {lazy: () => Promise<input | {error: {code, message}}>}: an input
		// the JS package fetches and decodes when its turn comes (browser
		// URL inputs, sources.js), so a call's images are not all in memory
		// at once.
		return embed.Input{Lazy: func() (embed.Input, error) {
			r, err := catch(func() js.Value { return lz.Invoke() })
			if err == nil {
				r, err = await(r)
			}
			if err != nil {
				return embed.Input{}, coded(codeInvalidInput, err, "preparing the input")
			}
			if e := r.Get("error"); r.Type() == js.TypeObject && e.Type() == js.TypeObject {
				return embed.Input{}, coded(api.Code(e.Get("code").String()), nil, "%s", e.Get("message").String())
			}
			in := inputOf(r)
			if in.Lazy != nil && in.Err == nil {
				return in.Lazy()
			}
			return in, nil
		}}
	}
	if file, ok := u8Of(v.Get("file")); ok {
		// {file, name?, decoded?: {data, width, height}}: image file bytes
		// (name: the URL they came from, for messages), with the pixels of
		// a JPEG the browser decoded (sources.js); imagefile applies the
		// file's EXIF orientation, or refuses and the file is decoded here.
		name := ""
		if n := v.Get("name"); n.Type() == js.TypeString {
			name = n.String()
		}
		dec := v.Get("decoded")
		if dec.Type() != js.TypeObject {
			return embed.Input{Lazy: func() (embed.Input, error) { return embed.Input{Name: name, Bytes: goBytes(file)}, nil }}
		}
		px, ok := u8Of(dec.Get("data"))
		if !ok {
			return embed.Input{Err: coded(codeInvalidInput, nil, "a decoded input needs file bytes and decoded.data")}
		}
		return embed.Input{Lazy: func() (embed.Input, error) {
			return embed.Input{Name: name, Decoded: &embed.Decoded{File: goBytes(file), RGBA: goBytes(px),
				Width: intField(dec, "width"), Height: intField(dec, "height")}}, nil
		}}
	}
	if v.Get("decoded").Type() == js.TypeObject {
		return embed.Input{Err: coded(codeInvalidInput, nil, "a decoded input needs file bytes and decoded.data")}
	}
	u8, ok := u8Of(v.Get("data"))
	if !ok {
		return embed.Input{Err: coded(codeInvalidInput, nil, "unsupported input: expected a URL string, bytes, {data, width, height, channels} or {pixels}")}
	}
	return embed.Input{Lazy: func() (embed.Input, error) {
		c := intField(v, "channels")
		if c == 0 {
			c = 4
		}
		return embed.Input{Raw: &embed.Raw{Data: goBytes(u8), Width: intField(v, "width"), Height: intField(v, "height"), Channels: c}}, nil
	}}
}

// jsFetcher is embed.Fetcher over a JS fetch function, with a per-image
// time-out (0: none).
type jsFetcher struct {
	fetch   js.Value
	timeout time.Duration
}

func (f jsFetcher) Fetch(ctx context.Context, url string) (embed.Body, error) {
	b, err := fetchImage(ctx, f.fetch, url, f.timeout)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Bytes copies the body into the Go heap (embed.Body).
func (b body) Bytes() []byte { return b.bytes() }

// fetchImage downloads an image URL, giving up after timeout (0: never)
// for the response and the whole body together. On time-out the request is
// aborted through an AbortSignal (where the host has AbortController) and
// the body reader cancelled, and the wait ends whatever the fetch does.
func fetchImage(ctx context.Context, fetch js.Value, url string, timeout time.Duration) (body, error) {
	if fetch.Type() != js.TypeFunction {
		return body{}, coded(codeDownloadFailed, nil, "no fetch function for %s", url)
	}
	if ctx.Err() != nil {
		return body{}, coded(codeAborted, nil, "forward aborted")
	}
	init := jsObject.New()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, errFetchTimeout)
		defer cancel()
	}
	if ctx.Done() != nil {
		if ac := js.Global().Get("AbortController"); ac.Type() == js.TypeFunction {
			if c, err := catch(func() js.Value { return ac.New() }); err == nil && c.Type() == js.TypeObject {
				init.Set("signal", c.Get("signal"))
				stop := context.AfterFunc(ctx, func() {
					if cause := context.Cause(ctx); cause == errFetchTimeout || cause == errAborted {
						catch(func() js.Value { return c.Call("abort") }) //nolint:errcheck // best effort: the wait ends anyway
					}
				})
				defer stop()
			}
		}
	}
	timedOut := func(err error) error {
		if context.Cause(ctx) == errAborted {
			return coded(codeAborted, nil, "fetching %s: aborted", url)
		}
		if errors.Is(err, errFetchTimeout) || context.Cause(ctx) == errFetchTimeout {
			return coded(codeDownloadFailed, errFetchTimeout, "fetching %s: no complete response within %v", url, timeout)
		}
		return nil
	}
	resp, err := fetchJSCtx(ctx, fetch, url, init)
	if err != nil {
		if te := timedOut(err); te != nil {
			return body{}, te
		}
		return body{}, coded(codeDownloadFailed, err, "fetching %s", url)
	}
	if resp.Status < 200 || resp.Status > 299 {
		resp.Body.Close()
		return body{}, coded(codeDownloadFailed, nil, "the server answered HTTP %d for %s", resp.Status, url)
	}
	// A declared length over the cap fails before any of the body is read
	// (with Content-Encoding it is the compressed length: not checked).
	if resp.Header("content-encoding") == "" {
		if n, err := strconv.ParseInt(resp.Header("content-length"), 10, 64); err == nil && n > maxImageFileBytes {
			resp.Body.Close()
			return body{}, coded(imagefile.CodeTooLarge, nil, "%s is %d bytes, more than the limit of %d", url, n, int64(maxImageFileBytes))
		}
	}
	b, err := readAll(resp.Body, maxImageFileBytes)
	if err != nil {
		if te := timedOut(err); te != nil {
			return body{}, te
		}
		if api.CodeOf(err) != "" {
			return body{}, err
		}
		return body{}, coded(codeDownloadFailed, err, "reading %s", url)
	}
	return b, nil
}
