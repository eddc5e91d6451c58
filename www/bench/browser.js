// Browser half of `make bench-browser` (js/bench/browser.mjs drives it):
// one configuration per fresh page, since tfjs's backend and
// onnxruntime-web's settings are global to a page. Peers (onnxruntime-web,
// transformers.js, the ONNX export) are served under /files/ (installed
// into /tmp by the driver, never from a CDN).
import { ImageEmbeddings } from 'imgembed';

const WASM_PATHS = new URL('/node_modules/@tensorflow/tfjs-backend-wasm/dist/', location.href).href;

const median = (a) => {
  const s = [...a].sort((x, y) => x - y), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

async function time(fn, runs, warmup) {
  for (let i = 0; i < warmup; i++) await fn();
  const ts = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return { median: median(ts), min: Math.min(...ts), runs };
}

// Seeded preprocessed pixels (CLIP-normalised range), the same in every page.
function pixels(n) {
  let s = 1;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 4 - 2);
}

async function adapterInfo() {
  if (!navigator.gpu) return null;
  const a = await navigator.gpu.requestAdapter();
  if (!a) return null;
  const i = a.info ?? {};
  return { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, isFallbackAdapter: a.isFallbackAdapter ?? i.isFallbackAdapter };
}

const bytesOf = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

/** A deterministic 4000x3000 JPEG (q 0.9): a photo upscaled plus a fixed
 * +-12 level texture, so its entropy-coded data is as dense as a camera's. */
window.make12MP = async (pngURL) => {
  const src = await createImageBitmap(await (await fetch(pngURL)).blob());
  const W = 4000, H = 3000;
  const c = new OffscreenCanvas(W, H);
  const ctx = c.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(src, 0, 0, W, H);
  const img = ctx.getImageData(0, 0, W, H);
  let s = 12345;
  for (let i = 0; i < img.data.length; i += 4) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const n = ((s >>> 24) % 25) - 12;
    for (let k = 0; k < 3; k++) img.data[i + k] = Math.max(0, Math.min(255, img.data[i + k] + n));
  }
  ctx.putImageData(img, 0, 0);
  const blob = await c.convertToBlob({ type: 'image/jpeg', quality: 0.9 });
  const u8 = new Uint8Array(await blob.arrayBuffer());
  let bin = '';
  for (let i = 0; i < u8.length; i += 0x8000) bin += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  return btoa(bin);
};

/** imgembed: forward from pixels at each batch, then end to end from each photo's bytes. */
window.benchImgembed = async ({ model, backend, threads, batches, runs, warmup, photos, photoRuns, ifSoftware, tfjsWeightsLeft = true }) => {
  const t0 = performance.now();
  const m = await ImageEmbeddings.load({ modelSource: model, backend, threads, wasmPaths: WASM_PATHS, cache: false, tfjsWeightsLeft });
  // A software WebGPU adapter (SwiftShader) takes tens of seconds a forward:
  // fewer, smaller runs there unless the caller asked otherwise.
  if (m.backend.software === true && ifSoftware) ({ batches, runs, warmup, photos } = { batches, runs, warmup, photos, ...ifSoftware });
  const out = { runtime: 'imgembed', backend: { ...m.backend }, load_ms: performance.now() - t0, crossOriginIsolated, forward: [], photos: [] };
  const S = m.config.imageSize;
  const px = pixels(3 * S * S);
  for (const B of batches) {
    const srcs = Array.from({ length: B }, () => ({ pixels: px }));
    const r = await time(() => m.forwardBatch(srcs), B > 1 ? Math.max(2, Math.ceil(runs / 2)) : runs, warmup);
    out.forward.push({ batch: B, ms_per_batch: r.median, ms_per_image: r.median / B, min_ms_per_batch: r.min, runs: r.runs });
  }
  for (const p of photos ?? []) {
    const bytes = bytesOf(p.b64);
    const r = await time(() => m.forward(bytes.slice()), photoRuns, 1);
    out.photos.push({ photo: p.name, bytes: bytes.length, ms: r.median, min_ms: r.min, runs: r.runs });
  }
  m.dispose();
  return out;
};

/** onnxruntime-web on the same weights exported to ONNX. */
window.benchOrt = async ({ ortModule, ortDir, onnx, ep, threads, batches, runs, warmup, size }) => {
  const ort = await import(ortModule);
  ort.env.wasm.wasmPaths = ortDir;
  ort.env.wasm.numThreads = threads;
  const t0 = performance.now();
  const sess = await ort.InferenceSession.create(onnx, { executionProviders: [ep], graphOptimizationLevel: 'all' });
  const out = { runtime: 'onnxruntime-web', version: ort.env.versions?.web ?? null, ep, threads, load_ms: performance.now() - t0,
    crossOriginIsolated, adapter: ep === 'webgpu' ? await adapterInfo() : null, forward: [] };
  const name = sess.inputNames[0];
  for (const B of batches) {
    const x = new ort.Tensor('float32', pixels(B * 3 * size * size), [B, 3, size, size]);
    const r = await time(async () => { const o = await sess.run({ [name]: x }); for (const k in o) await o[k].getData?.(); }, B > 1 ? Math.max(2, Math.ceil(runs / 2)) : runs, warmup);
    out.forward.push({ batch: B, ms_per_batch: r.median, ms_per_image: r.median / B, min_ms_per_batch: r.min, runs: r.runs });
  }
  await sess.release();
  return out;
};

/** transformers.js (web build): end to end from each photo's bytes, its own decoding and preprocessing. */
window.benchTjs = async ({ tjsModule, ortDir, modelsDir, modelName, threads, device, photos, photoRuns }) => {
  const T = await import(tjsModule);
  T.env.allowRemoteModels = false;
  T.env.allowLocalModels = true;
  T.env.localModelPath = modelsDir;
  T.env.backends.onnx.wasm.wasmPaths = ortDir;
  T.env.backends.onnx.wasm.numThreads = threads;
  const t0 = performance.now();
  const processor = await T.AutoProcessor.from_pretrained(modelName);
  const model = await T.CLIPVisionModelWithProjection.from_pretrained(modelName, { device, dtype: 'fp32' });
  const out = { runtime: 'transformers.js', version: T.env.version, device, threads, load_ms: performance.now() - t0, crossOriginIsolated, photos: [] };
  for (const p of photos) {
    const bytes = bytesOf(p.b64);
    const embed = async () => {
      const image = await T.RawImage.fromBlob(new Blob([bytes.slice()], { type: 'image/jpeg' }));
      const inputs = await processor(image);
      const { image_embeds } = await model(inputs);
      return image_embeds.data;
    };
    const r = await time(embed, photoRuns, 1);
    out.photos.push({ photo: p.name, bytes: bytes.length, ms: r.median, min_ms: r.min, runs: r.runs });
  }
  return out;
};

document.querySelector('#out').textContent = 'ready';
window.__pageReady = true;
