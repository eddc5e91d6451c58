// Memory of onnxruntime loading and running a CLIP vision ONNX model, for
// js/bench/mem.mjs (the same measure as js/testlib/loadmem.mjs: RSS above
// the RSS before the session is created, peak from getrusage).
// usage: PEERS_DIR=/tmp/imgembed-peers node js/bench/mem-ort.mjs node|web MODEL.onnx IMAGE_SIZE
// onnxruntime-node is given the path (its native loader reads the file);
// onnxruntime-web the file's bytes, as a page would fetch them.
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createRequire } from 'node:module';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
const require = createRequire(import.meta.url);
const [,, backend, modelPath, sizeArg] = process.argv;
const root = process.env.PEERS_DIR || '/tmp/imgembed-peers';
const S = Number(sizeArg);
let ort;
let opts;
if (backend === 'node') {
  ort = require(path.join(root, 'node_modules/onnxruntime-node'));
  opts = { executionProviders: ['cpu'], intraOpNumThreads: 2, graphOptimizationLevel: 'all' };
} else {
  ort = await import(path.join(root, 'node_modules/onnxruntime-web/dist/ort.node.min.mjs'));
  ort.env.wasm.numThreads = 2;
  ort.env.wasm.wasmPaths = 'file://' + path.join(root, 'node_modules/onnxruntime-web/dist/');
  opts = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
}
gc();
const before = process.memoryUsage().rss;
const t0 = performance.now();
const src = backend === 'node' ? modelPath : new Uint8Array(fs.readFileSync(modelPath));
let sess = await ort.InferenceSession.create(src, opts);
const loadMs = performance.now() - t0;
const x = new ort.Tensor('float32', new Float32Array(3 * S * S), [1, 3, S, S]);
await sess.run({ pixel_values: x });
const peak = process.resourceUsage().maxRSS * 1024;
gc();
await new Promise((r) => setTimeout(r, 300));
gc();
const settled = process.memoryUsage().rss;
process.stdout.write(JSON.stringify({ loader: `onnxruntime-${backend}`, file: path.basename(modelPath), loadMs: Math.round(loadMs), rssBefore: before, peakRSS: peak, settledRSS: settled }) + '\n');
process.exit(0);
