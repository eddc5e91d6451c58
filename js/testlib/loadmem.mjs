// Measures memory during one model load; prints one JSON object.
// usage: [PORT=N] node loadmem.mjs MODEL_FILE [http|file] [cacheDir]  (a fixed PORT keeps the URL, so a second run hits the cache)
// "http" serves MODEL_FILE from a local Range-capable server that streams
// from disk (so the server adds no copy of the file to this process).
import fs from 'node:fs';
import http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as tf from '@tensorflow/tfjs-core';
import { ImageEmbeddings, nodeCache } from '../src/index.js';
import { initBackend } from '../src/backend.js';
import { startModule } from '../src/runtime.js';

// gc() without --expose-gc, which tfjs's pthread workers would reject.
v8.setFlagsFromString('--expose-gc');
globalThis.gc = vm.runInNewContext('gc');

const [file, mode = 'http', cacheDir] = process.argv.slice(2);
const size = fs.statSync(file).size;
let server;
let source = file;
let sent = 0;
if (mode === 'http') {
  server = http.createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let start = 0;
    let end = size - 1;
    if (m) {
      start = Number(m[1]);
      end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': String(end - start + 1) });
    } else {
      res.writeHead(200, { 'content-length': String(size) });
    }
    sent += end - start + 1;
    fs.createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise((r) => server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', r));
  source = `http://127.0.0.1:${server.address().port}/model.safetensors`;
}
const backend = await initBackend({});
const { memory } = await startModule();
globalThis.gc?.();
const { rss: rss0, arrayBuffers: arrayBuffers0 } = process.memoryUsage();
const t0 = performance.now();
// IMGEMBED_TFJS_WEIGHTS_LEFT=0: the weights-right layout (for comparison).
const m = await ImageEmbeddings.load({ modelSource: source, cache: cacheDir ? nodeCache(cacheDir) : false,
  tfjsWeightsLeft: process.env.IMGEMBED_TFJS_WEIGHTS_LEFT !== '0' });
const ms = performance.now() - t0;
const peakRSS = process.resourceUsage().maxRSS * 1024;
// Let the module's finalizers release the download buffer, then collect.
await new Promise((r) => setTimeout(r, 200));
globalThis.gc?.();
await new Promise((r) => setTimeout(r, 200));
globalThis.gc?.();
const { rss: rssAfter, arrayBuffers: arrayBuffersAfterGC } = process.memoryUsage();
// The vision tower's size as F32, from the config (whatever the file's dtype).
const f32Bytes = (() => {
  const c = m.config;
  const d = c.hiddenSize;
  const tokens = (c.imageSize / c.patchSize) ** 2 + 1;
  const layer = 4 * d * d + 4 * d + 2 * d * c.mlpSize + c.mlpSize + d + 4 * d;
  return 4 * (d * 3 * c.patchSize * c.patchSize + d + tokens * d + 2 * d + c.layers * layer + 2 * d + c.embeddingSize * d);
})();
const out = {
  file,
  mode,
  fileBytes: size,
  transferred: sent,
  dtype: m.config.dtype,
  weightBytes: m.config.weightBytes,
  f32Bytes,
  loadMs: Math.round(ms),
  threads: backend.threads,
  rssBefore: rss0,
  peakRSS,
  rssAfterGC: rssAfter,
  goWasmMemory: memory.buffer.byteLength,
  tfWasmHeap: tf.backend().wasm.HEAPU8.length,
  numTensors: tf.memory().numTensors,
  // V8's ArrayBuffer accounting (the download buffer and chunks live here).
  arrayBuffersBefore: arrayBuffers0,
  arrayBuffersAfterGC,
  peakCopiesOfF32Weights: +((peakRSS - rss0) / f32Bytes).toFixed(2),
  retainedCopiesAfterGC: +((rssAfter - rss0) / f32Bytes).toFixed(2),
};
// Serving: one forward pass (zero pixels), then the same collections.
// tfjs-wasm's matMuls can keep state per weight (XNNPACK packs a copy of
// each weight on first use), so the load alone understates what a model
// in use holds.
{
  const s = m.config.imageSize;
  await m.forward({ pixels: new Float32Array(3 * s * s) });
  await new Promise((r) => setTimeout(r, 200));
  globalThis.gc?.();
  out.peakRSSServing = process.resourceUsage().maxRSS * 1024;
  out.rssAfterForward = process.memoryUsage().rss;
  out.tfWasmHeapAfterForward = tf.backend().wasm.HEAPU8.length;
  out.peakCopiesServing = +((out.peakRSSServing - rss0) / f32Bytes).toFixed(2);
  out.copiesAfterForward = +((out.rssAfterForward - rss0) / f32Bytes).toFixed(2);
}
process.stdout.write(JSON.stringify(out) + '\n');
m.dispose();
server?.close();
process.exit(0);
