// The same check on the main thread and in a worker: load a model with the
// public API, embed images given as bytes, report what tfjs uses.

import { ImageEmbeddings, ImageEmbeddingsError } from 'imgembed';

const WASM_PATHS = new URL('/node_modules/@tensorflow/tfjs-backend-wasm/dist/', self.location.href).href;

/**
 * @param {{model: string, images: {name: string, bytes: Uint8Array}[], threads?: number}} opts
 */
export async function runCheck({ model, images, threads }) {
  const out = {
    where: typeof window === 'undefined' ? 'worker' : 'main',
    crossOriginIsolated: self.crossOriginIsolated === true,
    sharedArrayBuffer: typeof SharedArrayBuffer === 'function',
    hardwareConcurrency: navigator.hardwareConcurrency,
  };
  const t0 = performance.now();
  const progress = [];
  const m = await ImageEmbeddings.load({ modelSource: model, threads, wasmPaths: WASM_PATHS, onDownloadProgress: (p) => progress.push(p) });
  out.loadMs = performance.now() - t0;
  out.progress = progress;
  out.backend = { ...m.backend };
  out.config = { ...m.config };
  out.embeddings = {};
  out.ms = {};
  for (const { name, bytes } of images) {
    const t = performance.now();
    const e = await m.forward(bytes);
    out.ms[name] = performance.now() - t;
    out.embeddings[name] = Array.from(e);
  }
  // Repeat for a steadier time per image (median is taken by the test).
  out.repeatMs = [];
  for (let k = 0; k < 5; k++) {
    const t = performance.now();
    await m.forward(images[0].bytes);
    out.repeatMs.push(performance.now() - t);
  }
  const batch = await m.forwardBatch(images.map((i) => i.bytes));
  out.batch = batch.map((e) => Array.from(e));
  try {
    await m.forward(new Uint8Array([1, 2, 3, 4]));
    out.badInput = 'no error';
  } catch (e) {
    out.badInput = { isError: e instanceof ImageEmbeddingsError, code: e.code };
  }
  m.dispose();
  try {
    await m.forward(images[0].bytes);
    out.afterDispose = 'no error';
  } catch (e) {
    out.afterDispose = { isError: e instanceof ImageEmbeddingsError, code: e.code };
  }
  return out;
}
