// backend: 'native' (Node only): the Go engine as a child process, the
// `imgembed` binary of this platform, driven over stdin/stdout with the
// framed protocol of host/cmd/imgembed/PROTOCOL.md. The binary comes, as
// esbuild's does, from a per-platform npm package (@imgembed/<platform>,
// see js/npm/README.md), from $IMGEMBED_BINARY, or from this working tree's
// build output (js/npm/<platform>/bin, `make native-binary`).
//
// startNative returns the model object ImageEmbeddings wraps (forward(inputs,
// {signal}), dispose()), so forward/forwardBatch/forwardBatchSettled,
// input preparation and errors behave as on the wasm backend.
//
// Node modules are imported inside functions, as in sources.js, so that
// bundlers building for browsers do not need them.

import { hubFile } from './hub.js';
import { NODE_CACHE_DIR } from './cache.js';

// index.js hands over its error class (startNative's second argument): an
// import of index.js here would make a cycle, which bundlers turn into lazy
// module initialisation (esbuild's made workerd reject the bundle).
let ImageEmbeddingsError;
let ErrorCodes;

const PROTOCOL = 1;
const MAX_STDERR = 8192;
// The child's frame limits (PROTOCOL.md): a frame over them would be fatal
// for the child, so such calls are refused here.
const MAX_HEADER = 1 << 20;
const MAX_PAYLOAD = 1 << 30;
const MAX_URL = 64 << 10;

/** The platform packages published next to `imgembed`. */
export const PLATFORMS = Object.freeze(['linux-x64', 'linux-arm64', 'darwin-arm64', 'darwin-x64', 'win32-x64']);

function platformKey() {
  return `${process.platform}-${process.arch}`;
}

function exeName() {
  return process.platform === 'win32' ? 'imgembed.exe' : 'imgembed';
}

/**
 * Finds the imgembed binary: $IMGEMBED_BINARY, the installed platform
 * package, then (unless installedOnly) the working tree's build output.
 * @param {{installedOnly?: boolean}} [opts]
 * @returns {Promise<string | null>}
 */
export async function findBinary(opts = {}) {
  try {
    return await lookForBinary(opts);
  } catch {
    // A runtime without these Node APIs or permissions (Deno without
    // --allow-env, say): no binary, so 'auto' keeps the other backends.
    return null;
  }
}

async function lookForBinary({ installedOnly = false }) {
  const fs = await import('node:fs');
  const isFile = (p) => {
    try {
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  };
  const env = process.env.IMGEMBED_BINARY;
  if (env) return env;
  const key = platformKey();
  if (!PLATFORMS.includes(key)) return null;
  const { createRequire } = await import('node:module');
  const path = await import('node:path');
  try {
    const pkg = createRequire(import.meta.url).resolve(`@imgembed/${key}/package.json`);
    const p = path.join(path.dirname(pkg), 'bin', exeName());
    if (isFile(p)) return p;
  } catch {
    // not installed
  }
  if (installedOnly) return null;
  const { fileURLToPath } = await import('node:url');
  const p = fileURLToPath(new URL(`../npm/${key}/bin/${exeName()}`, import.meta.url));
  return isFile(p) ? p : null;
}

function abortError(signal) {
  const r = signal?.reason;
  return new ImageEmbeddingsError(ErrorCodes.Aborted, r?.message ? `aborted: ${r.message}` : 'aborted', { cause: r });
}

function wireError(e, fallback) {
  return new ImageEmbeddingsError(e?.code ?? fallback, e?.message ?? 'failed');
}

/**
 * Spawns the binary and waits for its model to load. errors: index.js's
 * {ImageEmbeddingsError, ErrorCodes}.
 * @returns {Promise<{model: NativeModel, config: object, backend: object}>}
 */
export async function startNative(options, errors) {
  ({ ImageEmbeddingsError, ErrorCodes } = errors);
  const {
    modelSource = hubFile('openai/clip-vit-base-patch32'),
    onDownloadProgress, signal, threads, cache, revalidate, maxBatch, maxPixels, fetchTimeout, downloadTimeout,
    fetch: userFetch, config: hfConfig, nativeBinary, text, memoryLimit,
  } = options;
  if (signal?.aborted) throw abortError(signal);
  const unsupported = (what) => new ImageEmbeddingsError(ErrorCodes.InvalidInput, `${what} is not supported by backend 'native'`);
  if (userFetch !== undefined) throw unsupported('a custom fetch');
  if (hfConfig !== undefined) throw unsupported('config');
  if (text !== undefined && text !== false) throw unsupported('text (load a TextEmbeddings)');
  if (memoryLimit !== undefined) throw unsupported('memoryLimit');
  // A nodeCache(dir) names where the binary keeps its own cache; any other
  // adapter cannot reach it.
  const cacheDir = cache?.[NODE_CACHE_DIR];
  if (cache != null && typeof cache !== 'boolean' && cacheDir === undefined) {
    throw unsupported('a cache adapter other than nodeCache (the binary keeps its own cache; cache: false turns it off)');
  }
  const intOpt = (name, v, min) => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min)) {
      throw new ImageEmbeddingsError(ErrorCodes.InvalidInput, `${name} must be an integer >= ${min}, got ${v}`);
    }
  };
  intOpt('threads', threads, 1);
  intOpt('maxBatch', maxBatch, 1);
  intOpt('maxPixels', maxPixels, 0);
  intOpt('fetchTimeout', fetchTimeout, 0);
  if (downloadTimeout !== undefined && !(Number.isFinite(downloadTimeout) && downloadTimeout >= 0)) {
    throw new ImageEmbeddingsError(ErrorCodes.InvalidInput, `downloadTimeout must be a number of ms >= 0, got ${downloadTimeout}`);
  }

  const bin = nativeBinary ?? (await findBinary());
  if (!bin) {
    throw new ImageEmbeddingsError(ErrorCodes.InvalidModel,
      `backend 'native': no imgembed binary for ${platformKey()} (install @imgembed/${platformKey()}, set IMGEMBED_BINARY, or run make native-binary)`);
  }

  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  let model;
  let tmpDir = null;
  if (typeof modelSource === 'string' || modelSource instanceof URL) {
    const s = modelSource instanceof URL ? modelSource.href : modelSource;
    if (/^https?:/i.test(s)) model = s;
    else if (/^file:/i.test(s)) model = fileURLToPath(s);
    else model = path.resolve(s);
  } else {
    // Bytes: the binary loads files, so they go to a private temp file,
    // removed as soon as the model is loaded.
    let bytes;
    if (typeof Blob === 'function' && modelSource instanceof Blob) bytes = new Uint8Array(await modelSource.arrayBuffer());
    else if (modelSource instanceof ArrayBuffer) bytes = new Uint8Array(modelSource);
    else if (ArrayBuffer.isView(modelSource)) bytes = new Uint8Array(modelSource.buffer, modelSource.byteOffset, modelSource.byteLength);
    else throw new ImageEmbeddingsError(ErrorCodes.InvalidInput, 'modelSource must be a URL, a path, a Blob or bytes');
    tmpDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'imgembed-model-'));
    model = path.join(tmpDir, 'model.safetensors');
    await fs.promises.writeFile(model, bytes, { mode: 0o600 });
  }

  const args = ['stdio', '--model', model];
  if (threads !== undefined) args.push('--threads', String(threads));
  if (maxBatch !== undefined) args.push('--batch', String(maxBatch));
  if (maxPixels !== undefined && maxPixels > 0) args.push('--max-pixels', String(maxPixels));
  if (fetchTimeout !== undefined) args.push('--fetch-timeout', fetchTimeout === 0 ? '-1ms' : `${fetchTimeout}ms`);
  if (downloadTimeout !== undefined) args.push('--download-timeout', String(downloadTimeout / 1000));
  if (cache === false || cache === null) args.push('--no-cache');
  if (cacheDir) args.push('--cache-dir', cacheDir);
  if (revalidate === false) args.push('--no-revalidate');

  const { spawn } = await import('node:child_process');
  let child;
  try {
    child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
  } catch (e) {
    if (tmpDir) fs.promises.rm(tmpDir, { recursive: true, force: true });
    throw new ImageEmbeddingsError(ErrorCodes.InvalidModel, `backend 'native': cannot start ${bin}: ${e.message}`, { cause: e });
  }
  const m = new NativeModel(child, bin);
  let last = -1;
  const progress = onDownloadProgress
    ? (loaded, total) => {
        const f = total > 0 ? Math.min(1, loaded / total) : 0;
        if (f > last) {
          last = f;
          try {
            onDownloadProgress(f);
          } catch {
            // as on the wasm backend: a throwing callback does not fail the load
          }
        }
      }
    : null;
  let onAbort;
  try {
    const ready = m.ready(progress);
    const cfg = await (signal
      ? Promise.race([ready, new Promise((_, reject) => {
          onAbort = () => reject(abortError(signal));
          signal.addEventListener('abort', onAbort, { once: true });
        })])
      : ready);
    if (progress && last < 1) progress(1, 1);
    return {
      model: m,
      config: cfg,
      backend: Object.freeze({ name: 'native', binary: bin, pid: child.pid, protocol: PROTOCOL, threads: threads ?? (os.availableParallelism?.() ?? os.cpus().length) }),
    };
  } catch (e) {
    m.kill();
    throw e;
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    if (tmpDir) fs.promises.rm(tmpDir, { recursive: true, force: true }).catch(() => {});
  }
}

/** The child process and its protocol: the model object of ImageEmbeddings. */
class NativeModel {
  #child;
  #bin;
  #buf = Buffer.alloc(0);
  #pending = new Map(); // id -> {resolve, reject}
  #nextId = 1;
  #loading = null; // {resolve, reject, progress} until ready
  #dead = null; // ImageEmbeddingsError once the child is gone
  #disposed = false;
  #killTimer = null;
  #stderr = '';

  constructor(child, bin) {
    this.#child = child;
    this.#bin = bin;
    child.stdout.on('data', (chunk) => this.#onData(chunk));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s) => {
      this.#stderr = (this.#stderr + s).slice(-MAX_STDERR);
    });
    // EPIPE when the child has gone: the 'exit' handler reports it.
    child.stdin.on('error', () => {});
    child.on('error', (e) => this.#gone(new ImageEmbeddingsError(ErrorCodes.InvalidModel,
      `backend 'native': cannot run ${bin}: ${e.message}`, { cause: e })));
    child.on('exit', (code, sig) => {
      if (this.#killTimer) clearTimeout(this.#killTimer);
      const how = sig ? `signal ${sig}` : `status ${code}`;
      const tail = this.#stderr.trim().split('\n').slice(-3).join(' | ');
      this.#gone(new ImageEmbeddingsError(ErrorCodes.ModelNotLoaded,
        this.#disposed ? 'the model was disposed'
          : `the native engine (pid ${child.pid}) exited unexpectedly (${how})${tail ? `: ${tail}` : ''}; load the model again`));
    });
  }

  /** Resolves with the config once the child says ready. */
  ready(progress) {
    return new Promise((resolve, reject) => {
      this.#loading = { resolve, reject, progress };
      this.#updateRef();
    });
  }

  #gone(err) {
    if (this.#dead) return;
    this.#dead = err;
    if (this.#loading) {
      const msg = this.#stderr.trim().split('\n').slice(-3).join(' | ');
      this.#loading.reject(err.code === ErrorCodes.ModelNotLoaded
        ? new ImageEmbeddingsError(ErrorCodes.InvalidModel, `backend 'native': the engine exited while loading${msg ? `: ${msg}` : ''}`)
        : err);
      this.#loading = null;
    }
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  // The child and its pipes keep Node's event loop alive only while a load or
  // a call is in progress, so a process with an idle model exits normally
  // (the child then sees stdin close and exits too).
  #updateRef() {
    const busy = this.#loading != null || this.#pending.size > 0;
    const c = this.#child;
    for (const h of [c, c.stdin, c.stdout, c.stderr]) {
      if (!h) continue;
      if (busy) h.ref?.();
      else h.unref?.();
    }
  }

  #onData(chunk) {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    while (this.#buf.length >= 8) {
      const hl = this.#buf.readUInt32LE(0);
      const pl = this.#buf.readUInt32LE(4);
      if (this.#buf.length < 8 + hl + pl) return;
      let h;
      try {
        h = JSON.parse(this.#buf.toString('utf8', 8, 8 + hl));
      } catch (e) {
        this.#gone(new ImageEmbeddingsError(ErrorCodes.ModelNotLoaded, `backend 'native': unreadable answer from the engine: ${e.message}`));
        this.kill();
        return;
      }
      const payload = this.#buf.subarray(8 + hl, 8 + hl + pl);
      this.#buf = this.#buf.subarray(8 + hl + pl);
      this.#onFrame(h, payload);
    }
  }

  #onFrame(h, payload) {
    if (h.type === 'progress') {
      this.#loading?.progress?.(h.loaded, h.total);
      return;
    }
    if (h.type === 'ready') {
      const l = this.#loading;
      this.#loading = null;
      this.#updateRef();
      if (!l) return;
      if (h.protocol !== PROTOCOL) {
        l.reject(new ImageEmbeddingsError(ErrorCodes.InvalidModel, `backend 'native': ${this.#bin} speaks protocol ${h.protocol}, this package ${PROTOCOL}`));
        this.kill();
        return;
      }
      l.resolve(h.config);
      return;
    }
    if (h.type === 'fatal') {
      const err = wireError(h.error, ErrorCodes.InvalidModel);
      if (this.#loading) {
        this.#loading.reject(err);
        this.#loading = null;
      }
      return; // the child exits next
    }
    const p = this.#pending.get(h.id);
    if (!p) return; // a cancelled call's late answer
    this.#pending.delete(h.id);
    this.#updateRef();
    this.#maybeStop();
    if (h.type === 'error') {
      p.reject(wireError(h.error, ErrorCodes.InvalidInput));
      return;
    }
    p.resolve({ h, payload });
  }

  #request(header, chunks, signal) {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    const total = chunks.reduce((n, c) => n + c.byteLength, 0);
    const hb = Buffer.from(JSON.stringify({ id, ...header }));
    if (total > MAX_PAYLOAD || hb.length > MAX_HEADER) {
      return Promise.reject(new ImageEmbeddingsError(ErrorCodes.InvalidInput,
        `one call may carry at most ${MAX_PAYLOAD} bytes of images to backend 'native' (this one: ${total}); split the batch`));
    }
    const pre = Buffer.alloc(8);
    pre.writeUInt32LE(hb.length, 0);
    pre.writeUInt32LE(total, 4);
    const promise = new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    this.#updateRef();
    const stdin = this.#child.stdin;
    stdin.write(Buffer.concat([pre, hb]));
    for (const c of chunks) stdin.write(c);
    if (signal) {
      const onAbort = () => {
        if (!this.#pending.has(id)) return;
        this.#send({ id: this.#nextId++, op: 'cancel', target: id });
      };
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(() => signal.removeEventListener('abort', onAbort), () => signal.removeEventListener('abort', onAbort));
    }
    return promise;
  }

  #send(header) {
    const hb = Buffer.from(JSON.stringify(header));
    const pre = Buffer.alloc(8);
    pre.writeUInt32LE(hb.length, 0);
    this.#child.stdin.write(Buffer.concat([pre, hb]));
  }

  /**
   * The model object's forward: inputs as sources.js's imageInput prepares
   * them; resolves with a Float32Array or {code, message} per input.
   */
  async forward(inputs, { signal } = {}) {
    const wire = [];
    const chunks = [];
    const local = new Array(inputs.length).fill(null);
    inputs.forEach((inp, i) => {
      if (typeof inp === 'string' && /^data:/i.test(inp)) {
        // Decoded here: a data: URL can be larger than a frame header may be.
        const comma = inp.indexOf(',');
        if (comma < 0) {
          local[i] = { code: ErrorCodes.InvalidInput, message: 'malformed data: URL (no comma)' };
          return;
        }
        const meta = inp.slice(5, comma);
        const body = inp.slice(comma + 1);
        let b;
        try {
          b = /;base64$/i.test(meta) ? Buffer.from(body, 'base64') : Buffer.from(unescape(body), 'latin1') // %XX as bytes;
        } catch (e) {
          local[i] = { code: ErrorCodes.InvalidInput, message: `malformed data: URL: ${e.message}` };
          return;
        }
        wire.push({ kind: 'bytes', length: b.byteLength });
        chunks.push(b);
      } else if (typeof inp === 'string') {
        if (!/^https?:/i.test(inp)) {
          local[i] = { code: ErrorCodes.InvalidInput, message: `backend 'native' cannot fetch ${inp.slice(0, 60)} (http(s), data: URLs and files only)` };
        } else if (inp.length > MAX_URL) {
          local[i] = { code: ErrorCodes.InvalidInput, message: `URL of ${inp.length} characters (at most ${MAX_URL})` };
        } else {
          wire.push({ kind: 'url', url: inp });
        }
      } else if (inp instanceof Uint8Array || inp instanceof Uint8ClampedArray) {
        wire.push({ kind: 'bytes', length: inp.byteLength });
        chunks.push(inp instanceof Uint8Array ? inp : new Uint8Array(inp.buffer, inp.byteOffset, inp.byteLength));
      } else if (inp?.pixels instanceof Float32Array) {
        // Little-endian, as every platform the binaries are built for.
        wire.push({ kind: 'pixels', length: inp.pixels.byteLength });
        chunks.push(new Uint8Array(inp.pixels.buffer, inp.pixels.byteOffset, inp.pixels.byteLength));
      } else {
        local[i] = { code: ErrorCodes.InvalidInput, message: "raw pixel data is not supported by backend 'native' (pass encoded bytes or preprocessed pixels)" };
      }
    });
    let results = [];
    let payload = null;
    let dims = 0;
    if (wire.length > 0) {
      const r = await this.#request({ op: 'embed', inputs: wire }, chunks, signal);
      results = r.h.results;
      dims = r.h.dims;
      payload = r.payload;
    }
    const out = [];
    let k = 0;
    let off = 0;
    for (let i = 0; i < inputs.length; i++) {
      if (local[i]) {
        out.push(local[i]);
        continue;
      }
      const r = results[k++];
      if (r?.ok) {
        // A copy: aligned, and not a view of the socket's buffer.
        const ab = payload.buffer.slice(payload.byteOffset + off, payload.byteOffset + off + 4 * dims);
        off += 4 * dims;
        out.push(new Float32Array(ab));
      } else {
        out.push({ code: r?.error?.code ?? ErrorCodes.InvalidInput, message: r?.error?.message ?? 'failed' });
      }
    }
    return out;
  }

  /** Asks the child to finish the calls it has and exit (stdin EOF). */
  dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#child.stdin.end();
    this.#maybeStop();
  }

  // After dispose, once nothing is pending, the child has a few seconds to
  // exit on its own before it is killed.
  #maybeStop() {
    if (!this.#disposed || this.#pending.size > 0 || this.#killTimer || this.#dead) return;
    this.#killTimer = setTimeout(() => this.kill(), 5000);
    this.#killTimer.unref?.();
  }

  kill() {
    if (this.#child.exitCode == null && this.#child.signalCode == null) this.#child.kill('SIGKILL');
  }
}
