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
export async function imageInput(src) {
  if (typeof src === 'string') {
    if (isNode && !isFetchURL(src)) {
      const url = await resolveString(src);
      if (/^file:/i.test(url)) {
        const fs = await import('node:fs/promises');
        const { fileURLToPath } = await import('node:url');
        const file = fileURLToPath(url);
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
  if (src instanceof URL) return imageInput(src.href);
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

function describe(v) {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return v.constructor?.name ?? 'object';
}
