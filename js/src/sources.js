// Turning the package's inputs into what the Go module takes (wasm/API.md):
// model sources become a URL string or bytes, image sources a URL string,
// bytes, raw pixels or preprocessed pixels. Local files (Node) are served to
// the module by a fetch hook that understands file: URLs and Range.

import { isNode } from './runtime.js';
import { hubFile } from './hub.js';

const SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;

/** The largest image file read from disk: the module's cap on fetched
 * images (maxImageFileBytes in wasm/model.go). */
const MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024;

/** True for strings the platform's fetch understands as they are. */
export function isFetchURL(s) {
  return /^(https?|data|blob):/i.test(s);
}

/** Resolves a model string: a Hugging Face id (org/name[@revision]) that
 * is not a local file becomes its model.safetensors URL; the rest as
 * resolveString. */
export async function resolveModelString(s) {
  const hub = hubFile(s);
  if (hub != null) {
    if (!isNode) return hub;
    const fs = await import('node:fs');
    if (!fs.existsSync(s)) return hub;
  }
  return resolveString(s);
}

/** Why a local model file (a file: URL, Node) cannot be loaded, as
 * {code, message} worded as the Go host words it; null when it can. */
export async function localModelProblem(url, given = url) {
  if (!isNode || !/^file:/i.test(url)) return null;
  const fs = await import('node:fs/promises');
  const path = await filePathOf(url);
  const file = /^file:/i.test(given) ? displayURL(url) : given;
  try {
    const st = await fs.stat(path);
    return st.isFile() ? null : { code: 'InvalidModel', message: `model ${file} is not a regular file` };
  } catch (e) {
    if (e.code === 'ENOENT') return { code: 'DownloadFailed', message: `model file ${file} does not exist` };
    return { code: 'DownloadFailed', message: `model file ${file}: ${e.message}` };
  }
}

/** Resolves a model/image string: Node file paths become file: URLs; in
 * browsers relative URLs are resolved against the document (or worker). */
export async function resolveString(s) {
  if (isNode) {
    if (isFetchURL(s) || /^file:/i.test(s)) return s;
    if (SCHEME.test(s) && !/^[a-zA-Z]:[\\/]/.test(s)) return s; // unknown scheme: let fetch decide
    const { pathToFileURL } = await import('node:url');
    const path = await import('node:path');
    return pathToFileURL(path.resolve(s)).href;
  }
  if (SCHEME.test(s)) return s;
  const base = globalThis.document?.baseURI ?? globalThis.location?.href;
  return base ? new URL(s, base).href : s;
}

/** A fetch that also serves file: URLs from disk in Node, honouring Range
 * (so that local whole-CLIP files are read as selectively as remote ones). */
export function makeFetch(userFetch) {
  const base = userFetch ?? globalThis.fetch?.bind(globalThis);
  if (!isNode) return base;
  return async (url, init = {}) => {
    if (!/^file:/i.test(url)) return base(url, init);
    return fileResponse(url, init);
  };
}

async function fileResponse(url, init) {
  const fs = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const { Readable } = await import('node:stream');
  if (init.signal?.aborted) throw init.signal.reason ?? new DOMException('aborted', 'AbortError');
  const path = fileURLToPath(url);
  let st;
  try {
    st = await fs.promises.stat(path);
  } catch (e) {
    return new Response(`${e.code ?? 'error'}: ${path}`, { status: e.code === 'ENOENT' ? 404 : 500 });
  }
  if (!st.isFile()) return new Response(`not a file: ${path}`, { status: 404 });
  const size = st.size;
  const range = headerOf(init.headers, 'range');
  let start = 0;
  let end = size - 1;
  let status = 200;
  const headers = new Headers({ 'accept-ranges': 'bytes' });
  const m = range && /^bytes=(\d+)-(\d*)$/.exec(range.trim());
  if (m) {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (start >= size || end < start) {
      headers.set('content-range', `bytes */${size}`);
      return new Response(null, { status: 416, headers });
    }
    status = 206;
    headers.set('content-range', `bytes ${start}-${end}/${size}`);
  }
  headers.set('content-length', String(end - start + 1));
  if (size === 0) return new Response(new Uint8Array(0), { status, headers });
  const stream = fs.createReadStream(path, { start, end, highWaterMark: 1 << 20 });
  const { signal } = init;
  if (signal) {
    // Removed when the stream closes: a long-lived signal would otherwise
    // collect one listener (holding its stream) per request.
    const onAbort = () => stream.destroy(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  return new Response(Readable.toWeb(stream), { status, headers });
}

function headerOf(h, name) {
  if (!h) return null;
  if (typeof h.get === 'function') return h.get(name);
  for (const k of Object.keys(h)) if (k.toLowerCase() === name) return h[k];
  return null;
}

/** Normalises one image source for the module; returns {input} or {error}. */
export async function imageInput(src, { platformDecode = true } = {}) {
  const r = await imageInputOf(src);
  if (platformDecode && r.input instanceof Uint8Array) {
    const dec = await platformDecoded(r.input);
    if (dec) return { input: dec };
  }
  return r;
}

async function imageInputOf(src) {
  if (typeof src === 'string') {
    if (isNode && !isFetchURL(src)) {
      const url = await resolveString(src);
      if (/^file:/i.test(url)) {
        const fs = await import('node:fs/promises');
        let file;
        try {
          file = await filePathOf(url);
        } catch (e) {
          return { error: { code: 'InvalidInput', message: `bad file URL ${src}: ${e.message}` } };
        }
        try {
          // Checked first: reading a device or FIFO (/dev/zero) would never
          // end, and the module caps only the images it fetches itself.
          const st = await fs.stat(file);
          if (!st.isFile()) return { error: { code: 'InvalidInput', message: `${src} is not a regular file` } };
          if (st.size > MAX_IMAGE_FILE_BYTES) {
            return { error: { code: 'ImageTooLarge', message: `${src} is ${st.size} bytes, more than the limit of ${MAX_IMAGE_FILE_BYTES}` } };
          }
          const b = await fs.readFile(file);
          return { input: new Uint8Array(b.buffer, b.byteOffset, b.byteLength) };
        } catch (e) {
          return { error: { code: 'InvalidInput', message: `cannot read ${src}: ${e.message}` } };
        }
      }
      return { input: url };
    }
    return { input: isNode ? src : await resolveString(src) };
  }
  if (src instanceof URL) {
    // A file: URL keeps the caller's bytes: percent-escapes that are not
    // UTF-8 (a file name in another encoding) name the file as bytes.
    return imageInputOf(src.href);
  }
  if (typeof Blob === 'function' && src instanceof Blob) {
    return { input: new Uint8Array(await src.arrayBuffer()) };
  }
  if (src instanceof ArrayBuffer) return { input: new Uint8Array(src) };
  if (ArrayBuffer.isView(src)) {
    if (src instanceof Uint8Array || src instanceof Uint8ClampedArray) return { input: src };
    return { input: new Uint8Array(src.buffer, src.byteOffset, src.byteLength) };
  }
  if (src && typeof src === 'object') {
    if (src.pixels instanceof Float32Array) return { input: { pixels: src.pixels } };
    if (src.data != null && src.width != null && src.height != null) {
      const data = src.data instanceof ArrayBuffer ? new Uint8Array(src.data) : src.data;
      return { input: { data, width: src.width, height: src.height, channels: src.channels ?? 4 } };
    }
  }
  return { error: { code: 'InvalidInput', message: `unsupported image source: ${describe(src)}` } };
}

/** The path of a file: URL: a string, or a Buffer of the path's bytes when
 * its percent-escapes are not UTF-8 (Node's fileURLToPath throws a
 * URIError on those, and a string could not name the file: fs takes a
 * Buffer as the path's raw bytes). */
export async function filePathOf(url) {
  const { fileURLToPath } = await import('node:url');
  try {
    return fileURLToPath(url);
  } catch (e) {
    if (!(e instanceof URIError)) throw e;
    const u = new URL(url);
    if (u.hostname !== '') throw e;
    const bytes = [];
    const p = u.pathname;
    for (let i = 0; i < p.length; i++) {
      if (p[i] === '%' && /^[0-9a-fA-F]{2}$/.test(p.slice(i + 1, i + 3))) {
        bytes.push(parseInt(p.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        bytes.push(...new TextEncoder().encode(p[i]));
      }
    }
    if (bytes.includes(0)) throw new TypeError('file URL path must not include encoded NUL bytes');
    const { Buffer } = await import('node:buffer');
    return Buffer.from(bytes);
  }
}

/** A file: URL as a name for messages: its path, with the bytes that are
 * not UTF-8 as \udc80..\udcff (surrogateescape, as the commands print). */
function displayURL(u) {
  return u.href;
}

/** Decodes bytes as UTF-8, each byte of an invalid sequence becoming
 * U+DC80..U+DCFF (Python's "surrogateescape"): the string round-trips to
 * the same bytes, and JSON.stringify writes those as \udcXX escapes. */
export function surrogateEscape(bytes) {
  let out = '';
  let i = 0;
  const dec = new TextDecoder('utf-8', { fatal: true });
  while (i < bytes.length) {
    const b = bytes[i];
    const n = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (n > 0 && i + n <= bytes.length) {
      try {
        out += dec.decode(bytes.subarray(i, i + n));
        i += n;
        continue;
      } catch {
        // not a valid sequence: escape its first byte
      }
    }
    out += String.fromCharCode(0xdc00 + b);
    i++;
  }
  return out;
}

function describe(v) {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return v.constructor?.name ?? 'object';
}

// ---- the browser's own JPEG decoder ----
//
// Browsers decode JPEG with libjpeg-turbo and SIMD, several times faster
// than the module's Go decoder on a camera photo, and with the same
// algorithms Pillow uses (results within the fixtures' JPEG tolerance,
// checked in www/test/photos.test.mjs). So in a browser a JPEG's bytes are
// decoded here (createImageBitmap, no colour management, no
// premultiplication) and handed to the module as RGBA together with the
// file, whose EXIF orientation the module applies itself (wasm/API.md:
// {file, decoded}). Chromium applies EXIF orientation whatever
// imageOrientation says, so the browser gets a copy of the bytes whose Exif
// segments are renamed (APP1 -> APP15): it decodes the pixels as stored. The
// module decodes the file itself whenever it refuses the pixels (not a 1- or
// 3-component JPEG, sizes disagree). Lossless formats stay with the module:
// they must be exact, and a canvas premultiplies alpha.

const PLATFORM_MAX_PIXELS = 100e6; // the module's default limit: never decode more here
let platformOK = null; // Promise<boolean>: are pixels decoded as stored here?

// A 16x8 JPEG with EXIF orientation 6 (rotate 90): with its Exif segment
// renamed, the browser must decode it 16 wide.
const ORIENTATION_PROBE = '/9j/4QAiRXhpZgAATU0AKgAAAAgAAQESAAMAAAABAAYAAAAAAAD/2wCEABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2MBERISGBUYLxoaL2NCOEJjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY//AABEIAAgAEAMBIgACEQEDEQH/xAGiAAABBQEBAQEBAQAAAAAAAAAAAQIDBAUGBwgJCgsQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+gEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoLEQACAQIEBAMEBwUEBAABAncAAQIDEQQFITEGEkFRB2FxEyIygQgUQpGhscEJIzNS8BVictEKFiQ04SXxFxgZGiYnKCkqNTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqCg4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2dri4+Tl5ufo6ery8/T19vf4+fr/2gAMAwEAAhEDEQA/AMeiiiuE+oP/2Q==';

function platformSupported() {
  if (platformOK == null) {
    platformOK = (async () => {
      if (isNode || typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function' || typeof Blob !== 'function') return false;
      try {
        const bytes = Uint8Array.from(atob(ORIENTATION_PROBE), (c) => c.charCodeAt(0));
        const bmp = await createImageBitmap(new Blob([withoutExif(bytes)], { type: 'image/jpeg' }), BITMAP_OPTIONS);
        const ok = bmp.width === 16 && bmp.height === 8;
        bmp.close();
        return ok;
      } catch {
        return false;
      }
    })();
  }
  return platformOK;
}

const BITMAP_OPTIONS = { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'none' };

/** A copy of a JPEG whose APP1 "Exif" segments (before the first scan) are
 * APP15 segments, which decoders skip: no orientation to apply. */
export function withoutExif(d) {
  const out = new Uint8Array(d);
  let i = 2;
  while (i + 4 <= out.length && out[i] === 0xff) {
    const m = out[i + 1];
    if (m === 0xff) { i++; continue; }
    if (m === 0xd8 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) { i += 2; continue; }
    if (m === 0xda || m === 0xd9) break;
    const n = (out[i + 2] << 8) | out[i + 3];
    if (n < 2) break;
    if (m === 0xe1 && i + 10 <= out.length && String.fromCharCode(...out.subarray(i + 4, i + 8)) === 'Exif') out[i + 1] = 0xef;
    i += 2 + n;
  }
  return out;
}

/** The SOF dimensions and component count of a JPEG, or null. */
export function jpegFrame(d) {
  if (d.length < 4 || d[0] !== 0xff || d[1] !== 0xd8 || d[2] !== 0xff) return null;
  let i = 2;
  while (i + 4 <= d.length) {
    if (d[i] !== 0xff) return null;
    const m = d[i + 1];
    if (m === 0xff) { i++; continue; }
    if (m === 0xd8 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) { i += 2; continue; }
    if (m === 0xda || m === 0xd9) return null;
    const n = (d[i + 2] << 8) | d[i + 3];
    if (n < 2) return null;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (i + 10 > d.length) return null;
      return { height: (d[i + 5] << 8) | d[i + 6], width: (d[i + 7] << 8) | d[i + 8], components: d[i + 9] };
    }
    i += 2 + n;
  }
  return null;
}

/** {file, decoded: {data, width, height}} for a JPEG the platform decodes,
 * else null (the module decodes the bytes). */
async function platformDecoded(bytes) {
  const f = jpegFrame(bytes);
  if (!f || (f.components !== 1 && f.components !== 3) || f.width * f.height > PLATFORM_MAX_PIXELS || f.width === 0 || f.height === 0) return null;
  if (!(await platformSupported())) return null;
  let bmp;
  try {
    bmp = await createImageBitmap(new Blob([withoutExif(bytes)], { type: 'image/jpeg' }), BITMAP_OPTIONS);
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(bmp, 0, 0);
    const img = ctx.getImageData(0, 0, bmp.width, bmp.height);
    return { file: bytes, decoded: { data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength), width: bmp.width, height: bmp.height } };
  } catch {
    return null; // corrupt or unsupported here: the module decodes it and reports the error
  } finally {
    bmp?.close();
  }
}

// ---- image URLs in browsers ----
//
// In a browser a URL input is fetched here rather than by the module, so that
// a JPEG reaches the browser's decoder like bytes do. The fetch keeps the
// module's rules and words (wasm/inputs.go fetchImage, wasm/API.md): the
// load's fetch hook, fetchTimeout for the response and the whole body (default
// 30 s), the 256 MiB cap (at once from Content-Length), DownloadFailed /
// ImageTooLarge / Aborted with the same messages. The module gets each such
// input as {lazy}: it asks for it when its turn comes, and the next
// URL_AHEAD are fetched and decoded meanwhile, so a call's photos are not
// all in memory at once (the module's own window is similar).

const DEFAULT_FETCH_TIMEOUT_MS = 30000; // api.DefaultFetchTimeout
const URL_AHEAD = 2;

/** Whether an image input (as imageInput gives it) is a URL this package
 * fetches and decodes itself (browsers with a usable platform decoder). */
export async function fetchedHere(input) {
  return typeof input === 'string' && !isNode && isFetchURL(input) && await platformSupported();
}

/** Replaces, in place, each URL input that is fetched here with a {lazy}
 * input for the module; returns how many were replaced. */
export async function platformURLInputs(inputs, opts) {
  const at = [];
  for (let i = 0; i < inputs.length; i++) if (await fetchedHere(inputs[i])) at.push(i);
  const urls = at.map((i) => inputs[i]);
  const started = new Array(at.length);
  const start = (k) => {
    if (k < at.length && started[k] === undefined) started[k] = platformURL(urls[k], opts);
    return started[k];
  };
  at.forEach((i, k) => {
    inputs[i] = {
      lazy: () => {
        const p = start(k);
        started[k] = null; // taken: the module holds it from here
        for (let j = k + 1; j <= k + URL_AHEAD; j++) start(j);
        return p.then((r) => r.error ? { error: r.error } : r.input);
      },
    };
  });
  for (let k = 0; k < Math.min(URL_AHEAD, at.length); k++) start(k);
  return at.length;
}

/** Fetches an image URL (the module's rules, see above) and decodes a JPEG
 * with the browser: {input: {file, name, decoded?}} or {error}. Never
 * rejects. */
export async function platformURL(url, opts) {
  const r = await fetchImage(url, opts);
  if (r.error) return r;
  const dec = await platformDecoded(r.bytes);
  return { input: dec ? { ...dec, name: url } : { file: r.bytes, name: url } };
}

async function fetchImage(url, { fetch: f, fetchTimeout, signal } = {}) {
  const fetchFn = f ?? globalThis.fetch?.bind(globalThis);
  const fail = (message, code = 'DownloadFailed') => ({ error: { code, message } });
  if (typeof fetchFn !== 'function') return fail(`no fetch function for ${url}`);
  if (signal?.aborted) return fail(`fetching ${url}: aborted`, 'Aborted');
  const timeout = typeof fetchTimeout === 'number' && fetchTimeout >= 0 ? fetchTimeout : DEFAULT_FETCH_TIMEOUT_MS;
  const ac = typeof AbortController === 'function' ? new AbortController() : null;
  let timedOut = false;
  let timer;
  let reader;
  // The wait ends at the deadline, or when the call is aborted, whatever
  // the hook does with the signal (the module waits for this input).
  let stop;
  const deadline = new Promise((_, reject) => { stop = reject; });
  deadline.catch(() => {});
  const onAbort = () => {
    ac?.abort(signal.reason);
    stop(new Error('aborted'));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  if (timeout > 0) {
    timer = setTimeout(() => {
      timedOut = true;
      ac?.abort(new DOMException('timed out', 'TimeoutError'));
      stop(new Error('timed out'));
    }, timeout);
  }
  try {
    const resp = await Promise.race([fetchFn(url, ac ? { signal: ac.signal } : {}), deadline]);
    if (resp == null || typeof resp !== 'object') return fail(`fetching ${url}: fetch returned ${resp === null ? 'null' : typeof resp}, not a Response`);
    if (typeof resp.status !== 'number') return fail(`fetching ${url}: fetch resolved to an object whose status is ${typeof resp.status}, not a Response`);
    if (resp.status < 200 || resp.status > 299) {
      resp.body?.cancel?.().catch(() => {});
      return fail(`the server answered HTTP ${resp.status} for ${url}`);
    }
    const h = (k) => resp.headers?.get?.(k) ?? null;
    const declared = Number(h('content-length'));
    if (!h('content-encoding') && h('content-length') != null && Number.isInteger(declared) && declared > MAX_IMAGE_FILE_BYTES) {
      resp.body?.cancel?.().catch(() => {});
      return fail(`${url} is ${declared} bytes, more than the limit of ${MAX_IMAGE_FILE_BYTES}`, 'ImageTooLarge');
    }
    if (resp.body == null || typeof resp.body.getReader !== 'function') {
      const b = new Uint8Array(await Promise.race([resp.arrayBuffer(), deadline]));
      if (b.length > MAX_IMAGE_FILE_BYTES) return fail(`the image file is larger than ${MAX_IMAGE_FILE_BYTES} bytes`, 'ImageTooLarge');
      return { bytes: b };
    }
    reader = resp.body.getReader();
    const chunks = [];
    let n = 0;
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), deadline]);
      if (done) break;
      n += value.byteLength;
      if (n > MAX_IMAGE_FILE_BYTES) {
        reader.cancel().catch(() => {});
        return fail(`the image file is larger than ${MAX_IMAGE_FILE_BYTES} bytes`, 'ImageTooLarge');
      }
      chunks.push(value);
    }
    reader = null;
    if (chunks.length === 1) return { bytes: chunks[0] };
    const bytes = new Uint8Array(n);
    let off = 0;
    for (const c of chunks) { bytes.set(c, off); off += c.byteLength; }
    return { bytes };
  } catch (e) {
    reader?.cancel().catch(() => {});
    if (timedOut) return fail(`fetching ${url}: no complete response within ${goDuration(timeout)}: timed out`);
    if (signal?.aborted) return fail(`fetching ${url}: aborted`, 'Aborted');
    const what = e != null && typeof e === 'object' ? (e.name ? `${e.name}: ${e.message}` : String(e.message ?? e)) : String(e);
    return fail(`fetching ${url}: ${what}`);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** ms as Go's time.Duration prints it (the module's messages): 300ms,
 * 1.5s, 1m30s, 1h0m0s. */
export function goDuration(ms) {
  const trim = (x) => String(Number(x.toFixed(6)));
  if (ms < 1000) return ms === 0 ? '0s' : ms >= 1 ? `${trim(ms)}ms` : `${trim(ms * 1000)}µs`;
  let s = ms / 1000;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${trim(s)}s`;
}
