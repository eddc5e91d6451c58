// Starts the Go module (dist/imgembed.wasm) once per page, worker or
// process and returns its API object (wasm/API.md). The files are located
// relative to this module's URL, which works from Node, from bundlers that
// understand `new URL(..., import.meta.url)` and from plain
// <script type="module">.

export const isNode = typeof process === 'object' && process !== null &&
  typeof process.versions === 'object' && typeof process.versions.node === 'string' &&
  typeof window === 'undefined';

// A function, not a constant: bundles for runtimes without import.meta.url
// (Workers) pass wasmModule instead and must not fail at import.
function defaultWasmUrl() {
  if (typeof import.meta.url !== 'string') {
    throw new Error('imgembed.wasm cannot be located here (no import.meta.url): pass wasmModules: { imgembed } to load');
  }
  return new URL('../dist/imgembed.wasm', import.meta.url);
}
const PROTOCOL_VERSION = 1;

let started = null;

/**
 * Returns the module's API, starting the module on the first call.
 * wasmModule, a compiled WebAssembly.Module of dist/imgembed.wasm, is for
 * runtimes that refuse to compile wasm from bytes at run time (Cloudflare
 * Workers import it statically).
 * @param {{wasmUrl?: string | URL, wasmModule?: WebAssembly.Module}} [opts]
 */
export function startModule(opts = {}) {
  if (started == null) {
    started = start(opts.wasmModule ?? opts.wasmUrl ?? defaultWasmUrl()).catch((e) => {
      started = null;
      throw e;
    });
  }
  return started;
}

async function start(wasmUrl) {
  if (typeof globalThis.Go !== 'function') {
    await import('../dist/wasm_exec.js');
  }
  const go = new globalThis.Go();
  let instance;
  if (wasmUrl instanceof WebAssembly.Module) {
    instance = await WebAssembly.instantiate(wasmUrl, go.importObject);
  } else if (isNode && (typeof wasmUrl === 'string' ? !/^https?:/.test(wasmUrl) : wasmUrl.protocol === 'file:')) {
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(wasmUrl);
    ({ instance } = await WebAssembly.instantiate(bytes, go.importObject));
  } else {
    const resp = fetch(wasmUrl);
    if (typeof WebAssembly.instantiateStreaming === 'function') {
      try {
        ({ instance } = await WebAssembly.instantiateStreaming(resp, go.importObject));
      } catch (e) {
        // Wrong MIME type from a static server: fall back to bytes.
        const r = await fetch(wasmUrl);
        if (!r.ok) throw new Error(`imgembed: cannot load ${wasmUrl}: HTTP ${r.status}`);
        ({ instance } = await WebAssembly.instantiate(await r.arrayBuffer(), go.importObject));
      }
    } else {
      const r = await resp;
      if (!r.ok) throw new Error(`imgembed: cannot load ${wasmUrl}: HTTP ${r.status}`);
      ({ instance } = await WebAssembly.instantiate(await r.arrayBuffer(), go.importObject));
    }
  }
  const previous = globalThis.__imgembed;
  // run() returns once main has registered the API and blocked; its promise
  // settles only if the Go program exits, which it does not.
  go.run(instance).catch(() => {});
  const api = globalThis.__imgembed;
  if (api == null || api === previous || api.version !== PROTOCOL_VERSION) {
    throw new Error(`imgembed: the module did not register protocol version ${PROTOCOL_VERSION}`);
  }
  return { api, memory: instance.exports.mem };
}
