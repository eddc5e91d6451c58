// TensorFlow.js backend set-up for imgembed: the wasm backend (binary
// locations, SIMD, XNNPACK threads in browsers, workers and Node) and the
// WebGPU backend (adapter choice, device loss), and the choice between them
// (selectBackend).
//
// Threads in Node need three repairs of tfjs-backend-wasm 4.22, all done here
// without touching the installed package (see initBackend's comments):
//   1. WASM_HAS_MULTITHREAD_SUPPORT is hard-coded false under Node
//      (tfjs#3830): we set the flag ourselves.
//   2. The emscripten pthread workers are created with `new Worker(blobURL)`
//      and told to importScripts() a Blob; Node's worker_threads can load
//      neither. The glue looks `Worker` up on the global object at call time,
//      so a global accessor hands it a worker_threads.Worker subclass that
//      runs the same worker script with {eval: true} and points it at the
//      package's own glue file instead of the Blob.
//   3. XNNPACK's pool is capped at emscripten_num_logical_cores() / 2 (it
//      assumes hyper-threading), i.e. 1 thread on a 2-core machine. While the
//      module initialises we report 2 * threads logical cores so that the
//      thread count asked for is the one used.
// Pthread workers are kept unref'd, so a Node process exits normally while
// the (idle, never-returning) XNNPACK threads exist.

import * as tf from '@tensorflow/tfjs-core';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';

const PKG = '@tensorflow/tfjs-backend-wasm';
// tfjs-backend-wasm pre-creates 8 pthread workers and never uses more.
const MAX_THREADS = 8;
const DEFAULT_MAX_THREADS = 4;

const isNode = typeof process === 'object' && process !== null &&
  typeof process.versions === 'object' && typeof process.versions.node === 'string' &&
  typeof window === 'undefined';

/** Error thrown when the backend cannot be set up; `code` is one of the
 * package's ErrorCodes: 'InvalidInput' for a bad option, else 'InvalidModel'. */
export class BackendInitError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'BackendInitError';
    this.code = options?.code ?? 'InvalidModel';
  }
}

let pending = null; // Promise<info> of the first successful (or running) call

/** The values of ImageEmbeddings.load's `backend` option this file handles. */
export const BACKENDS = Object.freeze(['auto', 'webgpu', 'wasm']);

/**
 * Sets up the backend a model asks for and makes it tf's active one.
 *
 * - 'wasm': initBackend.
 * - 'webgpu': initWebGPU; fails (BackendInitError) where WebGPU has no
 *   adapter. A software adapter (SwiftShader) is accepted when asked for by
 *   name.
 * - 'auto': WebGPU when an adapter exists and is not a software fallback,
 *   else wasm; the result says why (`reason`). Node: wasm.
 *
 * @returns {Promise<{info: object, activate: () => void, asyncRead: boolean,
 *   upload: ((t: object) => void) | null, copies: boolean, weightsLeft: boolean,
 *   session: object | null}>}
 *   info: the frozen object for model.backend; activate: makes this backend
 *   tf's active one (synchronously; the module calls it before each forward
 *   because a page may hold models on both backends); session: the WebGPU
 *   device's state (lost, lostInfo), null for wasm; weightsLeft: the module
 *   puts weights on the left of every matMul (wasm: XNNPACK packs and caches
 *   a copy of the right operand while that tensor lives).
 */
export async function selectBackend({ backend = 'auto', threads, wasmPaths, wasmModules } = {}) {
  if (!BACKENDS.includes(backend)) {
    throw new BackendInitError(`backend must be one of ${BACKENDS.map((b) => `'${b}'`).join(', ')}, got ${JSON.stringify(backend)}`, { code: 'InvalidInput' });
  }
  let reason;
  if (backend === 'webgpu' || backend === 'auto') {
    const probe = backend === 'auto' ? await probeWebGPU() : { ok: true };
    if (probe.ok) {
      const session = await initWebGPU();
      const info = backend === 'auto' ? Object.freeze({ ...session.info, requested: 'auto' }) : session.info;
      return {
        info,
        session,
        activate: () => activate('webgpu'),
        // Reads go through await t.data(): a GPU read-back must not block.
        asyncRead: true,
        // tfjs-webgpu keeps tf.tensor's array until the first use; upload
        // at once so that the download buffer can be freed after load.
        upload: (t) => tf.backend().uploadToGPU(t.dataId),
        copies: true,
        weightsLeft: false,
      };
    }
    reason = probe.reason;
  }
  const w = await initBackend({ threads, wasmPaths, wasmModules });
  await activateAsync('wasm');
  const info = backend === 'auto' ? Object.freeze({ ...w, requested: 'auto', reason }) : w;
  // tfjs-wasm copies tf.tensor's values into its heap. Its matMul runs
  // XNNPACK's fully-connected operator, cached per right-hand tensor with a
  // packed copy of that operand: the weights go on the left, so only
  // activations (freed after each forward) are packed.
  return { info, session: null, activate: () => activate('wasm'), asyncRead: false, upload: null, copies: true, weightsLeft: true };
}

function activate(name) {
  const engine = tf.engine();
  if (engine.backendName === name) return;
  if (!(engine.registry && engine.registry[name])) throw new BackendInitError(`the ${name} backend is no longer set up (WebGPU device lost?)`);
  // For a backend already initialised, setBackend switches synchronously
  // (its promise only reports).
  tf.setBackend(name);
  if (engine.backendName !== name) throw new BackendInitError(`could not switch tfjs to the ${name} backend`);
}

async function activateAsync(name) {
  if (tf.engine().backendName !== name) await tf.setBackend(name);
}

/** Whether 'auto' should use WebGPU here: {ok} or {ok: false, reason}. */
async function probeWebGPU() {
  if (isNode) return { ok: false, reason: 'Node (or a Node-compatible runtime): wasm' };
  if (webgpu != null) {
    // Already set up in this realm (an earlier load): same answer.
    try {
      const s = await webgpu;
      if (!s.lost && !s.info.adapter.isFallbackAdapter) return { ok: true };
    } catch {
      // fall through to a fresh probe
    }
  }
  const gpu = globalThis.navigator?.gpu;
  if (!gpu) return { ok: false, reason: 'no WebGPU (navigator.gpu is missing)' };
  let adapter;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { ok: false, reason: `WebGPU adapter request failed: ${e?.message ?? e}` };
  }
  if (!adapter) return { ok: false, reason: 'no WebGPU adapter' };
  const a = adapterInfo(adapter);
  if (a.isFallbackAdapter) {
    return { ok: false, reason: `the WebGPU adapter is a software fallback (${a.vendor} ${a.architecture})`.replace(/ +\)/, ')') };
  }
  return { ok: true };
}

function adapterInfo(adapter) {
  const i = adapter.info ?? {};
  const arch = String(i.architecture ?? '');
  return Object.freeze({
    vendor: String(i.vendor ?? ''),
    architecture: arch,
    device: String(i.device ?? ''),
    description: String(i.description ?? ''),
    // Chrome reports SwiftShader as a fallback adapter; older builds only
    // put it in the architecture.
    isFallbackAdapter: Boolean(i.isFallbackAdapter ?? adapter.isFallbackAdapter) || arch === 'swiftshader',
  });
}

let webgpu = null; // Promise<session> of the WebGPU device in use

/**
 * Makes @tensorflow/tfjs-backend-webgpu tf's backend on a device of our own
 * (so that its loss can be watched), or reuses the session set up before.
 * After the device is lost the next call sets up a new one.
 * @returns {Promise<{info: object, device: GPUDevice, lost: boolean, lostInfo: object | null, onLost: Promise<object>}>}
 */
export async function initWebGPU() {
  if (webgpu != null) {
    const s = await webgpu.catch(() => null);
    if (s && !s.lost) {
      await activateAsync('webgpu');
      return s;
    }
  }
  webgpu = setUpWebGPU().catch((e) => {
    webgpu = null;
    throw e;
  });
  return webgpu;
}

async function setUpWebGPU() {
  const gpu = globalThis.navigator?.gpu;
  if (!gpu) {
    throw new BackendInitError('WebGPU is not available here (no navigator.gpu: it needs a browser with WebGPU and a secure context, https or localhost)');
  }
  let mod;
  try {
    mod = await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new BackendInitError(`loading @tensorflow/tfjs-backend-webgpu: ${e?.message ?? e}`, { cause: e });
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new BackendInitError('WebGPU has no adapter here (no GPU, or WebGPU disabled)');
  const info = adapterInfo(adapter);
  // The limits and features tfjs-webgpu's own factory asks for.
  const l = adapter.limits;
  const requiredFeatures = ['timestamp-query', 'bgra8unorm-storage'].filter((f) => adapter.features.has(f));
  let device;
  try {
    device = await adapter.requestDevice({
      requiredFeatures,
      requiredLimits: {
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      },
    });
  } catch (e) {
    throw new BackendInitError(`WebGPU requestDevice failed: ${e?.message ?? e}`, { cause: e });
  }
  const session = { info: null, device, lost: false, lostInfo: null, onLost: null };
  session.onLost = device.lost.then((li) => {
    session.lost = true;
    session.lostInfo = Object.freeze({ reason: String(li?.reason ?? 'unknown'), message: String(li?.message ?? '') });
    // The next load sets up a new device.
    if (webgpu != null) webgpu.then((s) => { if (s === session) webgpu = null; }, () => {});
    return session.lostInfo;
  });
  // Our factory replaces tfjs-webgpu's (which would request its own
  // device) and an earlier one whose device was lost; the kernels stay
  // registered under the name.
  const engine = tf.engine();
  if (engine.registryFactory?.webgpu) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new mod.WebGPUBackend(device, adapter.info), 3);
  let ok;
  try {
    ok = await tf.setBackend('webgpu');
    await tf.ready();
  } catch (e) {
    device.destroy();
    throw new BackendInitError(`tfjs webgpu backend failed to start: ${e?.message ?? e}`, { cause: e });
  }
  if (!ok || engine.backendName !== 'webgpu') {
    device.destroy();
    throw new BackendInitError('tfjs webgpu backend failed to start');
  }
  session.info = Object.freeze({
    name: 'webgpu',
    adapter: info,
    software: info.isFallbackAdapter,
  });
  return session;
}

/**
 * Sets up @tensorflow/tfjs-backend-wasm as tf's backend and reports what tfjs
 * actually uses. The first call decides; later calls (with any options)
 * return the same frozen info object.
 *
 * @param {{threads?: number, wasmPaths?: string | Record<string, string>}} [opts]
 *   threads: XNNPACK threads; default min(cores, 4) where threads work
 *   (Node; browsers only when crossOriginIsolated), else 1.
 *   wasmPaths: directory prefix (ending in '/') or file map, as
 *   tfwasm.setWasmPaths takes; default: the installed package's dist/.
 * @returns {Promise<{name: 'wasm', simd: boolean, threads: number}>}
 */
export async function initBackend({ threads, wasmPaths, wasmModules } = {}) {
  if (pending == null) {
    pending = setUp(threads, wasmPaths, wasmModules).catch((e) => {
      pending = null; // a failed attempt may be retried (e.g. other wasmPaths)
      throw e;
    });
  }
  return pending;
}

async function setUp(threads, wasmPaths, wasmModules) {
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw new BackendInitError(`initBackend: threads must be a positive integer, got ${threads}`, { code: 'InvalidInput' });
  }
  if (wasmModules != null) return setUpPrecompiled(wasmModules);
  // Somebody else (the app) already started tfjs's wasm backend: report,
  // don't redo. (tf.getBackend/findBackend would start one themselves.)
  const engine = tf.engine();
  if (engine.registry && engine.registry.wasm != null) {
    if (engine.backendName !== 'wasm') await tf.setBackend('wasm');
    return report();
  }

  const support = await threadSupport();
  let n = threads ?? (support ? Math.min(logicalCores(), DEFAULT_MAX_THREADS) : 1);
  n = Math.max(1, Math.min(n, support ? MAX_THREADS : 1));

  const restore = [];
  if (n > 1 && isNode) {
    try {
      restore.push(await installNodeWorkerShim());
    } catch {
      // tfjs-backend-wasm not laid out as published (e.g. bundled into one
      // file): no pthread worker script to run, so no threads.
      n = 1;
    }
  }
  // One thread: the plain SIMD build, which starts no workers at all.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', n > 1);
  tfwasm.setThreadsCount(n);

  try {
    const paths = wasmPaths ?? (await defaultWasmPaths());
    if (paths != null) tfwasm.setWasmPaths(paths);
  } catch (e) {
    throw new BackendInitError(`initBackend: setWasmPaths: ${e.message}`, { cause: e });
  }

  try {
    if (n > 1) restore.push(await reportLogicalCores(2 * n));
    let ok;
    try {
      ok = await tf.setBackend('wasm');
      await tf.ready();
    } catch (e) {
      throw new BackendInitError(`initBackend: tfjs wasm backend failed to start: ${e?.message ?? e}`, { cause: e });
    }
    if (!ok || engine.backendName !== 'wasm') {
      throw new BackendInitError('initBackend: tfjs wasm backend failed to start (wasm binaries not found? pass wasmPaths)');
    }
  } finally {
    for (const undo of restore.reverse()) undo();
  }
  return report();
}

const SIMD_WASM = 'tfjs-backend-wasm-simd.wasm';
const PLAIN_WASM = 'tfjs-backend-wasm.wasm';
// A URL prefix no fetch could serve: only the stand-ins below answer it.
const PRECOMPILED = 'imgembed-precompiled:/';

// Runtimes that forbid compiling wasm from bytes (Cloudflare Workers) import
// tfjs's binaries as compiled modules. tfjs has no option for that, so while
// it starts, its fetch of the binary gets an empty response and its
// WebAssembly.instantiate(bytes) the given module instead; both are restored
// at once. No threads: such runtimes have no Workers.
async function setUpPrecompiled(wasmModules) {
  const mods = wasmModules instanceof WebAssembly.Module ? { [SIMD_WASM]: wasmModules } : wasmModules;
  const name = mods[SIMD_WASM] instanceof WebAssembly.Module ? SIMD_WASM
    : mods[PLAIN_WASM] instanceof WebAssembly.Module ? PLAIN_WASM : null;
  if (name == null) {
    throw new BackendInitError(`initBackend: wasmModules must hold a compiled WebAssembly.Module for ${SIMD_WASM} or ${PLAIN_WASM}`);
  }
  const mod = mods[name];
  if (tf.engine().backendName === 'wasm') return report();
  if (tf.env().platform == null) tf.setPlatform('imgembed-edge', edgePlatform());
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  tf.env().set('WASM_HAS_SIMD_SUPPORT', name === SIMD_WASM);
  tfwasm.setThreadsCount(1);
  tfwasm.setWasmPaths(PRECOMPILED, true);
  const realFetch = globalThis.fetch;
  const realInstantiate = WebAssembly.instantiate;
  globalThis.fetch = (url, init) => (String(url).startsWith(PRECOMPILED)
    ? Promise.resolve(new Response(new ArrayBuffer(0))) : realFetch(url, init));
  WebAssembly.instantiate = (src, imports) => (src instanceof WebAssembly.Module
    ? realInstantiate(src, imports)
    : realInstantiate(mod, imports).then((instance) => ({ instance, module: mod })));
  try {
    const ok = await tf.setBackend('wasm');
    await tf.ready();
    if (!ok || tf.engine().backendName !== 'wasm') throw new Error('setBackend returned false');
  } catch (e) {
    throw new BackendInitError(`initBackend: tfjs wasm backend failed to start from the compiled module: ${e?.message ?? e}`, { cause: e });
  } finally {
    globalThis.fetch = realFetch;
    WebAssembly.instantiate = realInstantiate;
  }
  return report();
}

// tfjs registers a platform only where it recognises a browser or Node;
// Workers are neither. What tfjs-core asks of one, from the web platform.
function edgePlatform() {
  const enc = new TextEncoder();
  return {
    fetch: (path, init) => globalThis.fetch(path, init),
    now: () => performance.now(),
    encode: (text, encoding) => {
      if (encoding !== 'utf-8' && encoding !== 'utf8') throw new Error(`encoding ${encoding} not supported`);
      return enc.encode(text);
    },
    decode: (bytes, encoding) => new TextDecoder(encoding).decode(bytes),
    isTypedArray: (a) => a instanceof Float32Array || a instanceof Int32Array || a instanceof Uint8Array || a instanceof Uint8ClampedArray,
    setTimeoutCustom: (fn, delay) => setTimeout(fn, delay),
  };
}

async function report() {
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  const threads = tfwasm.getThreadsCount();
  return Object.freeze({ name: 'wasm', simd, threads });
}

function logicalCores() {
  if (typeof navigator === 'object' && navigator && navigator.hardwareConcurrency > 0) {
    return navigator.hardwareConcurrency;
  }
  return nodeOs?.availableParallelism?.() ?? nodeOs?.cpus?.().length ?? 1;
}

let nodeOs = null;
let nodeModule = null;
let nodeWorkerThreads = null;
let nodePath = null;
if (isNode) {
  // Top-level await keeps these out of browser bundles' static graph
  // (the specifiers are computed so bundlers do not try to resolve them).
  const load = (m) => import(/* webpackIgnore: true */ /* @vite-ignore */ m);
  [nodeOs, nodeModule, nodeWorkerThreads, nodePath] = await Promise.all(
    ['node:os', 'node:module', 'node:worker_threads', 'node:path'].map(load));
  nodeOs = nodeOs.default ?? nodeOs;
}

async function threadSupport() {
  if (typeof SharedArrayBuffer === 'undefined' || typeof WebAssembly !== 'object') return false;
  if (isNode) {
    // Same feature test as tfjs's flag, minus its Node exclusion.
    try {
      return WebAssembly.validate(new Uint8Array([
        0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5,
        4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254, 16, 2, 0, 26, 11]));
    } catch {
      return false;
    }
  }
  // Browsers: SharedArrayBuffer memory needs a cross-origin-isolated page
  // (COOP same-origin + COEP require-corp) or worker.
  if (globalThis.crossOriginIsolated !== true) return false;
  return Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
}

// The directory holding tfjs-backend-wasm's .wasm files, or null to keep
// tfjs's default (next to the script that loaded it, i.e. a bundle's output
// directory, where bundler set-ups copy the .wasm files).
async function defaultWasmPaths() {
  if (isNode) {
    try {
      const require = nodeModule.createRequire(import.meta.url);
      return nodePath.dirname(require.resolve(PKG)) + nodePath.sep;
    } catch {
      return null; // bundled: tfjs looks next to the bundle
    }
  }
  // <script type=module> with an import map (or a runtime that resolves
  // bare specifiers): the package entry lives in dist/, next to the binaries.
  try {
    if (typeof import.meta.resolve === 'function') {
      const entry = import.meta.resolve(PKG);
      if (typeof entry === 'string' && /^(https?|file):/.test(entry)) {
        return entry.slice(0, entry.lastIndexOf('/') + 1);
      }
    }
  } catch {
    // not resolvable here (bundled code): keep tfjs's default
  }
  return null;
}

// Makes XNNPACK accept `cores` / 2 threads; see the file comment, item 3.
// Returns the undo function.
async function reportLogicalCores(cores) {
  if (isNode) {
    const real = nodeOs.cpus;
    nodeOs.cpus = function cpus() {
      const list = real.call(this);
      return Array.from({ length: cores }, (_, i) => list[i % Math.max(1, list.length)]);
    };
    return () => { nodeOs.cpus = real; };
  }
  if (typeof navigator === 'object' && navigator) {
    const own = Object.getOwnPropertyDescriptor(navigator, 'hardwareConcurrency');
    try {
      Object.defineProperty(navigator, 'hardwareConcurrency', { configurable: true, get: () => cores });
    } catch {
      return () => {};
    }
    return () => {
      if (own) Object.defineProperty(navigator, 'hardwareConcurrency', own);
      else delete navigator.hardwareConcurrency;
    };
  }
  return () => {};
}

// The execArgv pthread workers were last started with (null: not yet).
let workerExecArgv = null;
let shimInstalled = false;

// Deno runs worker_threads code in a Web Worker whose `location` is a
// getter-only accessor, and the pthread script assigns it: shadow it with a
// plain own property first (a no-op in Node, where it does not exist).
const LOCATION_WRITABLE = "try{Object.defineProperty(globalThis,'location',{value:undefined,writable:true,configurable:true})}catch{};";

// File comment, item 2. The accessor stays installed: emscripten may create
// further pthread workers later, and tfjs itself would leave
// worker_threads.Worker on the global anyway.
async function installNodeWorkerShim() {
  if (shimInstalled) return () => {};
  const require = nodeModule.createRequire(import.meta.url);
  const root = nodePath.dirname(nodePath.dirname(require.resolve(PKG)));
  const glue = nodePath.join(root, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require(nodePath.join(root, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js'));
  if (typeof wasmWorkerContents !== 'string') {
    throw new BackendInitError(`initBackend: ${PKG} layout changed: no pthread worker script`);
  }
  // As tfjs does for its Blob: the minified script holds "\n" escapes that
  // the template literal turned into real newlines.
  const workerSource = LOCATION_WRITABLE + wasmWorkerContents.replace(/\n/g, '\\n');
  const NodeWorker = nodeWorkerThreads.Worker;

  class PthreadWorker extends NodeWorker {
    constructor(file, options) {
      const pthread = typeof file === 'string' && file.startsWith('blob:');
      if (!pthread) {
        super(file, options);
      } else {
        // Workers refuse per-process and V8 flags (--max-old-space-size,
        // --expose-gc, --title...: ERR_WORKER_INVALID_EXEC_ARGV), and Node
        // has no list of the flags they accept: drop the ones the error
        // names, else pass none. A failed super() binds no `this`, so it
        // may be called again.
        let argv = workerExecArgv ?? scriptExecArgv();
        for (let attempt = 0; ; attempt++) {
          try {
            super(workerSource, { eval: true, execArgv: argv });
            break;
          } catch (e) {
            if (e?.code !== 'ERR_WORKER_INVALID_EXEC_ARGV' || attempt > 1) throw e;
            argv = attempt === 0 ? withoutFlags(argv, e.message) : [];
          }
        }
        workerExecArgv = argv;
      }
      this.imgembedPthread = pthread;
    }

    postMessage(message, transfer) {
      // The glue sends its own source as a Blob to importScripts(); give the
      // worker the package's file of the same factory instead.
      if (this.imgembedPthread && message && message.cmd === 'load' && typeof message.urlOrBlob !== 'string') {
        message = { ...message, urlOrBlob: glue };
      }
      return super.postMessage(message, transfer);
    }

    ref() {
      // XNNPACK's threads run for the life of the module and are never
      // returned to emscripten's pool, which would keep them ref'd and the
      // process alive forever: stay unref'd.
      if (!this.imgembedPthread) super.ref();
    }
  }

  // The flags named in an ERR_WORKER_INVALID_EXEC_ARGV message ("...
  // flags: --a=1, --b"), removed from argv with the value that follows a
  // flag given without "=".
  function withoutFlags(argv, message) {
    const list = message.slice(message.lastIndexOf(':') + 1).split(',').map((f) => f.trim()).filter(Boolean);
    const bad = new Set(list);
    const out = [];
    for (let i = 0; i < argv.length; i++) {
      if (!bad.has(argv[i])) {
        out.push(argv[i]);
        continue;
      }
      if (!argv[i].includes('=') && i + 1 < argv.length && !argv[i + 1].startsWith('-')) i++;
    }
    return out;
  }

  // Eval'd worker code follows the parent's --input-type; the pthread script
  // is CommonJS-style (it calls require), so drop flags that make it ESM.
  function scriptExecArgv() {
    const out = [];
    const argv = process.execArgv;
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (a === '--input-type' || a === '--experimental-default-type') { i++; continue; }
      if (a.startsWith('--input-type=') || a.startsWith('--experimental-default-type=')) continue;
      out.push(a);
    }
    return out;
  }

  Object.defineProperty(globalThis, 'Worker', {
    configurable: true,
    enumerable: false,
    get: () => PthreadWorker,
    set: () => {}, // the glue assigns worker_threads.Worker here; keep ours
  });
  shimInstalled = true;
  return () => {};
}
