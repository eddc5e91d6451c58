// Embedding worker of the demo: owns the model so that downloading, decoding
// and the forward pass never block the page. Uses the same package as any
// app ('imgembed'; the demo server resolves bare specifiers to URLs).
//
// Page -> worker:  {type: 'load', source: {preset: true} | {url} | {file}, threads, backend: 'auto' | 'webgpu' | 'wasm'}
//                  {type: 'abort'}
//                  {type: 'embed', id, bytes: ArrayBuffer}
//                  {type: 'thumb', id, bytes: ArrayBuffer, size}
//                  {type: 'text', id, texts: string[]}
// Worker -> page:  {type: 'hello', isolated, defaultModel}
//                  {type: 'progress', p, loaded, total}
//                  {type: 'ready', config, backend, loadMs, isolated, textError}
//                    (config.text when the text tower loaded too; else textError says why)
//                  {type: 'load-error', code, message}
//                  {type: 'result', id, embedding?: Float32Array, error?: {code, message}, ms}
//                  {type: 'thumb', id, blob: Blob | null}
//                  {type: 'text-result', id, embeddings?: Float32Array[], error?: {code, message}}

import { ImageEmbeddings, CLIP_VIT_BASE_PATCH32_IMAGE, CLIP_VIT_BASE_PATCH32_TEXT, preprocess } from 'imgembed';

// The tfjs binaries, as the demo server serves them. Set explicitly because
// tfjs would otherwise look next to this worker script.
const WASM_PATHS = new URL('/node_modules/@tensorflow/tfjs-backend-wasm/dist/', self.location.href).href;

let model = null;
let controller = null;
let blobURL = null;
const queue = [];
let draining = false;
let loading = false; // a load is running: the queue waits for its model

function errorInfo(e) {
  return { code: (e && e.code) || 'Error', message: (e && e.message) || String(e) };
}

async function load({ source, threads, backend }) {
  controller?.abort();
  controller = new AbortController();
  const signal = controller.signal;
  // The current model stays until the new one is ready (a failed or
  // cancelled load keeps it); images wait meanwhile.
  loading = true;
  let newBlobURL = null;
  const t0 = performance.now();
  try {
    let modelSource = source.preset ? CLIP_VIT_BASE_PATCH32_IMAGE.modelSource : source.url;
    // File size, if the page knows it: bytes for the progress text when the
    // package reports only a fraction.
    let knownTotal = source.size || 0;
    if (source.file) {
      // A local file: a blob: URL goes through the same streaming loader
      // (with progress) as a remote one, and works offline.
      newBlobURL = URL.createObjectURL(source.file);
      modelSource = newBlobURL;
      knownTotal = source.file.size;
    }
    const opts = {
      modelSource,
      signal,
      threads: threads || undefined,
      backend: backend || 'auto',
      wasmPaths: WASM_PATHS,
      onDownloadProgress: (p, loaded, total) => {
        // The contract promises p in 0..1; byte counts are a bonus if given.
        const t = Number.isFinite(total) && total > 0 ? total : knownTotal;
        const l = Number.isFinite(loaded) ? loaded : t ? p * t : 0;
        postMessage({ type: 'progress', p, loaded: l, total: t });
      },
    };
    // Both towers of a whole-CLIP file in one download (tokenizer.json
    // beside it); a vision-only file, or one without a tokenizer beside it
    // (a local file), loads again with images only.
    let m;
    let textError = null;
    try {
      m = await ImageEmbeddings.load({ ...opts, text: source.preset ? { tokenizerSource: CLIP_VIT_BASE_PATCH32_TEXT.tokenizerSource } : true });
    } catch (e) {
      if (signal.aborted || e?.code === 'Aborted') throw e;
      textError = e?.message ?? String(e);
      m = await ImageEmbeddings.load(opts);
    }
    if (signal.aborted) {
      m.dispose();
      return;
    }
    model?.dispose();
    model = m;
    if (blobURL) URL.revokeObjectURL(blobURL);
    blobURL = newBlobURL;
    newBlobURL = null;
    loading = false;
    postMessage({
      type: 'ready',
      config: { ...m.config },
      backend: { ...m.backend },
      loadMs: performance.now() - t0,
      isolated: self.crossOriginIsolated === true,
      textError,
    });
    drain();
  } catch (e) {
    postMessage({ type: 'load-error', ...errorInfo(e), kept: model != null });
  } finally {
    if (newBlobURL) URL.revokeObjectURL(newBlobURL);
    if (controller.signal === signal) {
      loading = false;
      drain(); // with the model kept, if any
    }
  }
}

async function drain() {
  if (draining) return;
  draining = true;
  try {
    // One image at a time, so that each reported time is its own.
    while (model && !loading && queue.length) {
      const { id, bytes } = queue.shift();
      const t0 = performance.now();
      try {
        const emb = await model.forward(new Uint8Array(bytes));
        const ms = performance.now() - t0;
        // Copied, not transferred: the array may be a view of a larger buffer.
        postMessage({ type: 'result', id, embedding: emb, ms });
      } catch (e) {
        postMessage({ type: 'result', id, error: errorInfo(e), ms: performance.now() - t0 });
      }
    }
  } finally {
    draining = false;
  }
}

// A thumbnail drawn from the module's own decoder, for images the browser
// cannot display (TIFF, for one): the CLIP resize + centre crop with mean 0
// and std 1 gives RGB in 0..1. Needs no model.
async function thumb({ id, bytes, size }) {
  try {
    const px = await preprocess(new Uint8Array(bytes), { size, mean: [0, 0, 0], std: [1, 1, 1] });
    const n = size * size;
    const rgba = new Uint8ClampedArray(4 * n);
    // No "+ 0.5": a Uint8ClampedArray store already rounds to nearest.
    for (let i = 0; i < n; i++) {
      rgba[4 * i] = px[i] * 255;
      rgba[4 * i + 1] = px[n + i] * 255;
      rgba[4 * i + 2] = px[2 * n + i] * 255;
      rgba[4 * i + 3] = 255;
    }
    const canvas = new OffscreenCanvas(size, size);
    canvas.getContext('2d').putImageData(new ImageData(rgba, size, size), 0, 0);
    postMessage({ type: 'thumb', id, blob: await canvas.convertToBlob({ type: 'image/png' }) });
  } catch {
    postMessage({ type: 'thumb', id, blob: null }); // undecodable: keep the placeholder
  }
}

// Text embeddings for the search box and the labels (queued in the module
// with the image calls).
async function text({ id, texts }) {
  try {
    if (!model?.text) throw Object.assign(new Error('the model has no text tower'), { code: 'InvalidInput' });
    const embeddings = await model.text.forwardBatch(texts);
    postMessage({ type: 'text-result', id, embeddings });
  } catch (e) {
    postMessage({ type: 'text-result', id, error: errorInfo(e) });
  }
}

self.onmessage = (ev) => {
  const msg = ev.data;
  switch (msg.type) {
    case 'load':
      load(msg);
      break;
    case 'abort':
      controller?.abort();
      break;
    case 'embed':
      queue.push(msg);
      drain();
      break;
    case 'thumb':
      thumb(msg);
      break;
    case 'text':
      text(msg);
      break;
    case 'clear':
      queue.length = 0;
      break;
    default:
      console.warn('worker: unknown message', msg);
  }
};

postMessage({
  type: 'hello',
  isolated: self.crossOriginIsolated === true,
  defaultModel: CLIP_VIT_BASE_PATCH32_IMAGE.modelSource,
});
