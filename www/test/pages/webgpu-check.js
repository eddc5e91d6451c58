// The WebGPU checks of www/test/webgpu.test.mjs, run on the main thread
// (webgpu.js) and in a module Web Worker (webgpu-worker.js).

import * as tf from '@tensorflow/tfjs-core';
import { ImageEmbeddings, ImageEmbeddingsError } from 'imgembed';
import { initWebGPU } from 'imgembed/backend';

const WASM_PATHS = new URL('/node_modules/@tensorflow/tfjs-backend-wasm/dist/', self.location.href).href;

// Every tensor the WebGPU backend is given values for, to check that none
// keeps its JS array once the model is loaded (weights live on the GPU only).
const written = [];
let watching = false;
async function watchWrites() {
  if (watching) return;
  watching = true;
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  const write = WebGPUBackend.prototype.write;
  WebGPUBackend.prototype.write = function (values, shape, dtype) {
    const id = write.call(this, values, shape, dtype);
    if (values != null) written.push({ backend: this, id });
    return id;
  };
}

function jsCopies() {
  let n = 0;
  for (const { backend, id } of written) {
    // (tensorMap.get of a disposed id would ask the engine to move it)
    if (backend.tensorMap.has(id) && backend.tensorMap.get(id).values != null) n++;
  }
  return n;
}

/**
 * Loads `model` on `backend` and embeds the photos (bytes) and the golden
 * pixels ({pixels}), one at a time and as one batch.
 * @param {{backend: string, model: string, images: {name: string, bytes: Uint8Array}[],
 *   pixels: {name: string, f32: Float32Array}[], repeat?: number}} opts
 */
export async function conformance({ backend, model, images, pixels, repeat = 0 }) {
  if (typeof navigator.gpu === 'object') await watchWrites();
  written.length = 0;
  const out = { where: typeof window === 'undefined' ? 'worker' : 'main' };
  let t = performance.now();
  const m = await ImageEmbeddings.load({ modelSource: model, backend, wasmPaths: WASM_PATHS, cache: false });
  out.loadMs = performance.now() - t;
  out.backend = JSON.parse(JSON.stringify(m.backend));
  out.tfBackend = tf.getBackend();
  out.weightsWritten = written.length;
  out.jsCopies = jsCopies();
  out.images = {};
  out.ms = {};
  for (const { name, bytes } of images) {
    t = performance.now();
    out.images[name] = Array.from(await m.forward(bytes));
    out.ms[name] = performance.now() - t;
  }
  out.pixels = {};
  for (const { name, f32 } of pixels) out.pixels[name] = Array.from(await m.forward({ pixels: f32 }));
  out.batch = (await m.forwardBatch(images.map((i) => i.bytes))).map((e) => Array.from(e));
  out.repeatMs = [];
  for (let k = 0; k < repeat; k++) {
    t = performance.now();
    await m.forward({ pixels: pixels[0].f32 });
    out.repeatMs.push(performance.now() - t);
  }
  try {
    await m.forward(new Uint8Array([1, 2, 3, 4]));
    out.badInput = 'no error';
  } catch (e) {
    out.badInput = { isError: e instanceof ImageEmbeddingsError, code: e.code };
  }
  m.dispose();
  return out;
}

/** What 'auto' and 'webgpu' do here. */
export async function choose({ model }) {
  const out = { hasGPU: typeof navigator.gpu === 'object' };
  const m = await ImageEmbeddings.load({ modelSource: model, backend: 'auto', wasmPaths: WASM_PATHS, cache: false });
  out.auto = JSON.parse(JSON.stringify(m.backend));
  m.dispose();
  try {
    const g = await ImageEmbeddings.load({ modelSource: model, backend: 'webgpu', wasmPaths: WASM_PATHS, cache: false });
    out.webgpu = JSON.parse(JSON.stringify(g.backend));
    g.dispose();
  } catch (e) {
    out.webgpu = { error: { isError: e instanceof ImageEmbeddingsError, code: e.code, message: e.message } };
  }
  try {
    await ImageEmbeddings.load({ modelSource: model, backend: 'cuda', wasmPaths: WASM_PATHS, cache: false });
    out.bogus = 'no error';
  } catch (e) {
    out.bogus = { isError: e instanceof ImageEmbeddingsError, code: e.code };
  }
  return out;
}

function errInfo(e) {
  return { isError: e instanceof ImageEmbeddingsError, code: e?.code, message: e?.message ?? String(e) };
}

/**
 * Device loss: a forward pending when the device is destroyed and one made
 * afterwards fail with ModelNotLoaded; a wasm model loaded on the same page
 * keeps working; loading on WebGPU again gives a working model.
 */
export async function deviceLost({ model, pixels }) {
  const out = {};
  const px = pixels[0].f32;
  const m = await ImageEmbeddings.load({ modelSource: model, backend: 'webgpu', wasmPaths: WASM_PATHS, cache: false });
  const w = await ImageEmbeddings.load({ modelSource: model, backend: 'wasm', wasmPaths: WASM_PATHS, cache: false });
  out.before = Array.from(await m.forward({ pixels: px }));
  out.wasmBefore = Array.from(await w.forward({ pixels: px }));
  const device = tf.engine().registry.webgpu.device;
  const pending = m.forward({ pixels: px }).then((e) => ({ ok: e.length }), errInfo);
  device.destroy();
  out.pending = await pending;
  out.later = await m.forward({ pixels: px }).then((e) => ({ ok: e.length }), errInfo);
  out.laterBatch = await m.forwardBatchSettled([{ pixels: px }]).then((rs) => ({ settled: rs.map((r) => (r instanceof Float32Array ? r.length : errInfo(r))) }), errInfo);
  out.wasmAfter = Array.from(await w.forward({ pixels: px }));
  const m2 = await ImageEmbeddings.load({ modelSource: model, backend: 'webgpu', wasmPaths: WASM_PATHS, cache: false });
  out.reloaded = JSON.parse(JSON.stringify(m2.backend));
  out.after = Array.from(await m2.forward({ pixels: px }));
  out.wasmAfterReload = Array.from(await w.forward({ pixels: px }));
  // Lost while a forward is running (its GPU work submitted, or its read
  // awaited): it either finished before the loss or fails ModelNotLoaded.
  const dev2 = tf.engine().registry.webgpu.device;
  const t0 = performance.now();
  const running = m2.forward({ pixels: px }).then((e) => ({ ok: Array.from(e) }), errInfo);
  await new Promise((r) => setTimeout(r, out.midDelayMs = 30));
  dev2.destroy();
  out.midForward = await running;
  out.midForwardMs = performance.now() - t0;
  const m3 = await ImageEmbeddings.load({ modelSource: model, backend: 'webgpu', wasmPaths: WASM_PATHS, cache: false });
  out.afterSecondLoss = Array.from(await m3.forward({ pixels: px }));
  m.dispose();
  m2.dispose();
  m3.dispose();
  w.dispose();
  return out;
}

/**
 * Device loss while a model loads: the device is destroyed at the load's
 * first progress report (weights still to come). The load either fails
 * with a typed error or gives a model whose forward fails ModelNotLoaded;
 * never an embedding from a dead device. The next load works.
 */
export async function deviceLostDuringLoad({ model, pixels }) {
  const px = pixels[0].f32;
  const out = { destroyedAt: null };
  // A device to destroy: set up by a first load (the backend keeps it).
  const warm = await ImageEmbeddings.load({ modelSource: model, backend: 'webgpu', wasmPaths: WASM_PATHS, cache: false });
  warm.dispose();
  const onDownloadProgress = (f) => {
    if (out.destroyedAt !== null) return;
    out.destroyedAt = f;
    tf.engine().registry.webgpu.device.destroy();
  };
  try {
    const m = await ImageEmbeddings.load({ modelSource: model, backend: 'webgpu', wasmPaths: WASM_PATHS, cache: false, onDownloadProgress });
    out.load = { ok: true };
    out.forward = await m.forward({ pixels: px }).then((e) => ({ ok: Array.from(e) }), errInfo);
    m.dispose();
  } catch (e) {
    out.load = errInfo(e);
  }
  const m2 = await ImageEmbeddings.load({ modelSource: model, backend: 'webgpu', wasmPaths: WASM_PATHS, cache: false });
  out.reloaded = JSON.parse(JSON.stringify(m2.backend));
  out.after = Array.from(await m2.forward({ pixels: px }));
  m2.dispose();
  return out;
}

/**
 * The op-by-op differential test (wasm/internal/opdiff) on WebGPU: `wasm` is
 * the GOOS=js build of wasm/internal/opdiff/cmd/opdiff, run here with tf on
 * the WebGPU backend against the Go kernels compiled into it.
 * @returns {Promise<{code: number, report: object | null, backend: string}>}
 */
export async function opdiff({ wasm, model, pixels, resync = true }) {
  await initWebGPU();
  if (typeof globalThis.Go !== 'function') await import('/js/dist/wasm_exec.js');
  const io = { files: { model: new Uint8Array(await (await fetch(model)).arrayBuffer()) } };
  pixels.forEach((p, i) => { io.files[`px${i}`] = new Uint8Array(p.f32.buffer, p.f32.byteOffset, p.f32.byteLength); });
  globalThis.opdiffIO = io;
  globalThis.tf = tf;
  const go = new globalThis.Go();
  go.argv = ['opdiff', '-js-io', 'opdiffIO', '-async-read', '-model', 'model',
    '-pixels', pixels.map((_, i) => `px${i}`).join(','), `-resync=${resync}`, '-out', 'report'];
  let code = 0;
  go.exit = (c) => { code = c; };
  const { instance } = await WebAssembly.instantiate(wasm, go.importObject);
  await go.run(instance);
  delete globalThis.opdiffIO;
  return { code, backend: tf.getBackend(), report: io.report ? JSON.parse(io.report) : null };
}

/** Both towers of a full CLIP file on `backend`: texts and pixels. */
export async function textTower({ backend, model, tokenizer, texts, pixels }) {
  const m = await ImageEmbeddings.load({ modelSource: model, backend, wasmPaths: WASM_PATHS, cache: false, text: { tokenizerSource: tokenizer } });
  const out = { backend: JSON.parse(JSON.stringify(m.backend)), texts: {}, pixels: {} };
  for (const t of texts) out.texts[t] = Array.from(await m.text.forward(t));
  for (const { name, f32 } of pixels) out.pixels[name] = Array.from(await m.forward({ pixels: f32 }));
  m.dispose();
  return out;
}
