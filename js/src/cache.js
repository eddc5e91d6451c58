// Cache adapters for downloaded weights: {get(key) -> Promise<Uint8Array|null>,
// put(key, bytes) -> Promise, delete(key) -> Promise}, and optionally
// openReader(key) -> Promise<ReadableStream|null> (a hit read while the model
// is built, its digest checked as it streams) and
// openWriter(key, headerLen) -> Promise<{write(bytes), commit(header), abort()}>
// (each returning a Promise): the entry written as a stream while the model is
// built, each tensor once it is read (then the module frees it), the header
// last, into the headerLen bytes left at the start; nothing is visible before
// commit, and abort drops it. The built-in adapters have it; without it the
// whole download is kept until put. The module stores only
// completed, validated downloads (a compact vision-only safetensors file
// carrying the SHA-256 of its bytes, checked on every load: a damaged entry is
// deleted and downloaded again), so an adapter never sees partial data. Adapter failures are ignored by the module. The module takes
// ownership of what get returns (it detaches the buffer once the weights are
// in tfjs), and may detach what it gave put once put's promise settles.

import { isNode } from './runtime.js';

/**
 * Cache Storage (browsers, workers). Keys become synthetic https URLs, as
 * Cache Storage only accepts http(s) requests.
 * @param {string} [name]
 */
export function browserCache(name = 'imgembed-v1') {
  const req = (key) => new Request('https://imgembed.cache/' + encodeURIComponent(key));
  return {
    async get(key) {
      const c = await caches.open(name);
      const r = await c.match(req(key));
      return r ? new Uint8Array(await r.arrayBuffer()) : null;
    },
    async put(key, bytes) {
      const c = await caches.open(name);
      await c.put(req(key), new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } }));
    },
    // The file in parts (header, then each tensor), written as one entry
    // without joining them in this page's memory (a Blob of the parts).
    async putParts(key, parts) {
      const c = await caches.open(name);
      await c.put(req(key), new Response(new Blob(parts), { headers: { 'content-type': 'application/octet-stream' } }));
    },
    // The entry as a stream (read while the model is built), or null.
    async openReader(key) {
      const c = await caches.open(name);
      const r = await c.match(req(key));
      return r ? r.body : null;
    },
    // A streamed entry: each tensor becomes a Blob as it is written (the
    // Blob copies it, so the module may free it at once; the browser keeps
    // blob data outside the page, on disk when large), the header is put in
    // front at commit.
    async openWriter(key, headerLen) {
      let blobs = [];
      return {
        async write(bytes) {
          blobs?.push(new Blob([bytes]));
        },
        async commit(header) {
          if (blobs == null) throw new Error('cache entry aborted');
          if (header.byteLength !== headerLen) throw new Error(`header of ${header.byteLength} bytes, ${headerLen} expected`);
          const body = new Blob([header, ...blobs]);
          blobs = null;
          const c = await caches.open(name);
          await c.put(req(key), new Response(body, { headers: { 'content-type': 'application/octet-stream' } }));
        },
        async abort() {
          blobs = null;
        },
      };
    },
    async delete(key) {
      const c = await caches.open(name);
      return c.delete(req(key));
    },
  };
}

/** The default Node cache directory: $XDG_CACHE_HOME/imgembed or ~/.cache/imgembed. */
export async function defaultCacheDir() {
  const path = await import('node:path');
  const os = await import('node:os');
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'imgembed');
}

/**
 * Marks a nodeCache adapter with its directory ('' for the default), so that
 * backend 'native' can hand the directory to the binary, which keeps its own
 * cache there.
 */
export const NODE_CACHE_DIR = Symbol.for('imgembed.nodeCacheDir');

/**
 * A directory cache for Node: one file per key, named by the key's SHA-256,
 * written to a temporary name and renamed, so a crash never leaves a partial
 * entry.
 * @param {string} [dir] default: defaultCacheDir()
 */
let writers = 0;

export function nodeCache(dir) {
  const ready = (async () => {
    const fs = await import('node:fs/promises');
    const path = await import('node:path');
    const crypto = await import('node:crypto');
    const d = dir ?? (await defaultCacheDir());
    const file = (key) => path.join(d, crypto.createHash('sha256').update(key).digest('hex') + '.safetensors');
    return { fs, d, file };
  })();
  return {
    [NODE_CACHE_DIR]: dir ?? '',
    async get(key) {
      const { fs, file } = await ready;
      try {
        const b = await fs.readFile(file(key));
        // The module takes ownership (it detaches the buffer after use), so
        // never hand it a view into a shared Buffer pool.
        if (b.byteOffset !== 0 || b.buffer.byteLength !== b.byteLength) return new Uint8Array(b);
        return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      } catch {
        return null;
      }
    },
    async put(key, bytes) {
      const { fs, d, file } = await ready;
      await fs.mkdir(d, { recursive: true });
      const f = file(key);
      const tmp = `${f}.${process.pid}.${Date.now()}.tmp`;
      try {
        await fs.writeFile(tmp, bytes);
        await fs.rename(tmp, f);
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw e;
      }
    },
    // The file in parts (header, then each tensor), streamed to disk part
    // after part: the whole file is never one buffer.
    async putParts(key, parts) {
      const { fs, d, file } = await ready;
      await fs.mkdir(d, { recursive: true });
      const f = file(key);
      const tmp = `${f}.${process.pid}.${Date.now()}.tmp`;
      let h;
      try {
        h = await fs.open(tmp, 'w');
        for (const p of parts) {
          for (let off = 0; off < p.byteLength;) {
            const { bytesWritten } = await h.write(p, off, p.byteLength - off);
            off += bytesWritten;
          }
        }
        await h.close();
        h = null;
        await fs.rename(tmp, f);
      } catch (e) {
        await h?.close().catch(() => {});
        await fs.rm(tmp, { force: true });
        throw e;
      }
    },
    // The entry as a stream (read while the model is built), or null.
    async openReader(key) {
      const { fs, file } = await ready;
      let h;
      try {
        h = await fs.open(file(key), 'r');
      } catch {
        return null;
      }
      const { Readable } = await import('node:stream');
      return Readable.toWeb(h.createReadStream({ highWaterMark: 1 << 20 }));
    },
    // A streamed entry: a temporary file written as the tensors come, the
    // header written into the space left for it at commit, then renamed
    // into place (never a partial entry under the key's name).
    async openWriter(key, headerLen) {
      const { fs, d, file } = await ready;
      await fs.mkdir(d, { recursive: true });
      const f = file(key);
      const tmp = `${f}.${process.pid}.${Date.now()}.${++writers}.tmp`;
      const h = await fs.open(tmp, 'w');
      let pos = headerLen;
      let open = true;
      const writeAt = async (bytes, at) => {
        for (let off = 0; off < bytes.byteLength;) {
          const { bytesWritten } = await h.write(bytes, off, bytes.byteLength - off, at + off);
          off += bytesWritten;
        }
      };
      const drop = async () => {
        if (open) {
          open = false;
          await h.close().catch(() => {});
        }
        await fs.rm(tmp, { force: true });
      };
      return {
        async write(bytes) {
          if (!open) throw new Error('cache entry closed');
          await writeAt(bytes, pos);
          pos += bytes.byteLength;
        },
        async commit(header) {
          try {
            if (!open) throw new Error('cache entry closed');
            if (header.byteLength !== headerLen) throw new Error(`header of ${header.byteLength} bytes, ${headerLen} expected`);
            await writeAt(header, 0);
            open = false;
            await h.close();
            await fs.rename(tmp, f);
          } catch (e) {
            await drop();
            throw e;
          }
        },
        abort: drop,
      };
    },
    async delete(key) {
      const { fs, file } = await ready;
      await fs.rm(file(key), { force: true });
    },
    dir: dir,
  };
}

/** The platform's default cache, or null where none is available. */
export function defaultCache() {
  if (isNode) return nodeCache();
  if (typeof caches === 'object' && caches !== null && typeof Request === 'function') return browserCache();
  return null;
}
