// Per-kernel profile of one imgembed forward on TensorFlow.js's wasm backend
// (tf.profile: each kernel's time, summed by kernel name and input shapes).
// Shows where the forward's time goes at a given thread count and batch.
//
// usage: node js/bench/profile.mjs [--threads 2] [--batch 1] [--runs 3]
//          [--model FILE] [--by name|shape] [--layout left|right]
// Prints one JSON line per kernel name (or name + input shapes), sorted by
// time, then a total line: kernel time vs the forward's wall time (the rest is
// JS/Go overhead between kernels). Medians over --runs profiled forwards.
// Needs js/dist/imgembed.wasm (make build) and a model file (see bench.mjs).

import path from 'node:path';
import { performance } from 'node:perf_hooks';

function parseArgs(argv) {
  const o = { threads: "2", batch: "1", runs: "3", model: "", by: "name", layout: "left" };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m || !(m[1] in o)) throw new Error(`profile: unknown argument ${argv[i]}`);
    o[m[1]] = m[2] ?? argv[++i];
  }
  if (!o.model) throw new Error('profile: --model FILE.safetensors is required');
  return { threads: Number(o.threads), batch: Number(o.batch), runs: Number(o.runs), model: path.resolve(o.model), by: o.by, layout: o.layout };
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };

const args = parseArgs(process.argv.slice(2));
const tf = await import('@tensorflow/tfjs-core');
const { initBackend } = await import('../src/backend.js');
const { ImageEmbeddings } = await import('../src/index.js');
const info = await initBackend({ threads: args.threads });
const model = await ImageEmbeddings.load({ modelSource: args.model, threads: args.threads, cache: false, tfjsWeightsLeft: args.layout !== 'right' });
const S = model.config.imageSize;
let seed = 1;
const pixels = Float32Array.from({ length: 3 * S * S }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 4 - 2);
const srcs = Array.from({ length: args.batch }, () => ({ pixels }));
await model.forwardBatch(srcs); // warm-up

const per = new Map(); // key -> [ms per run]
const walls = [], kernelTotals = [];
for (let r = 0; r < args.runs; r++) {
  const t0 = performance.now();
  const prof = await tf.profile(() => model.forwardBatch(srcs));
  walls.push(performance.now() - t0);
  const sums = new Map();
  let total = 0;
  for (const k of prof.kernels) {
    if (k.name.endsWith('__op')) continue; // op wrappers around kernels
    const key = args.by === 'shape' ? `${k.name} ${JSON.stringify(k.inputShapes)}` : k.name;
    const e = sums.get(key) ?? { ms: 0, calls: 0 };
    e.ms += k.kernelTimeMs; e.calls++;
    sums.set(key, e);
    total += k.kernelTimeMs;
  }
  kernelTotals.push(total);
  for (const [key, e] of sums) {
    if (!per.has(key)) per.set(key, { ms: [], calls: e.calls });
    per.get(key).ms.push(e.ms);
  }
}
const rows = [...per].map(([key, v]) => ({ kernel: key, calls: v.calls, ms: Number(median(v.ms).toFixed(2)) })).sort((a, b) => b.ms - a.ms);
for (const r of rows) console.log(JSON.stringify({ ...r, ms_per_image: Number((r.ms / args.batch).toFixed(2)) }));
console.log(JSON.stringify({ total_kernel_ms: Number(median(kernelTotals).toFixed(1)), wall_ms: Number(median(walls).toFixed(1)),
  batch: args.batch, threads: info.threads, simd: info.simd }));
model.dispose();
