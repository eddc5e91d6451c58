// backend 'native' vs backend 'wasm' in Node, same model, same process, runs
// interleaved: per-image milliseconds (medians) at each batch size for
//   pixels  forward alone from preprocessed 3x224x224 pixels ({pixels} input),
//   jpeg    end to end from a 512x512 JPEG's bytes (decode, preprocess, forward),
// the native numbers including the stdio round trip to the child process.
// Output: JSON lines on stdout, then one line per case/batch with the ratio.
//
// usage: node js/bench/native.mjs [--threads 2] [--batches 1,8] [--runs 7]
//          [--warmup 2] [--model FILE]
// Without --model: the weights bench.mjs synthesises ($TMPDIR/imgembed-bench).
// Needs js/dist/imgembed.wasm (make build); builds the native binary itself.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { ImageEmbeddings, preprocess } from '../src/index.js';
import { buildNativeBinary } from '../testlib/native.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

const o = { threads: '2', batches: '1,8', runs: '7', warmup: '2', model: '' };
for (let i = 2; i < process.argv.length; i++) {
  const m = /^--([a-z]+)(?:=(.*))?$/.exec(process.argv[i]);
  if (!m || !(m[1] in o)) throw new Error(`bench-native: unknown argument ${process.argv[i]}`);
  o[m[1]] = m[2] ?? process.argv[++i];
}
const threads = Number(o.threads);
const batches = o.batches.split(',').map(Number);
const runs = Number(o.runs);
const warmup = Number(o.warmup);

function ensureModel(file) {
  if (file) return path.resolve(file);
  const dir = path.join(os.tmpdir(), 'imgembed-bench');
  const out = path.join(dir, 'b32-f32-seed1.safetensors');
  if (!fs.existsSync(out)) {
    fs.mkdirSync(dir, { recursive: true });
    process.stderr.write(`bench-native: synthesising ViT-B/32 random weights into ${out}\n`);
    execFileSync(process.env.GO || 'go', ['run', './weights/cmd/imgembed-weights', 'synth', '--preset', 'b32', '--seed', '1', '--out', out],
      { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return out;
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

const model = ensureModel(o.model);
const bin = buildNativeBinary();
const wasm = await ImageEmbeddings.load({ backend: 'wasm', modelSource: model, threads, cache: false, maxBatch: Math.max(...batches) });
const native = await ImageEmbeddings.load({ backend: 'native', nativeBinary: bin, modelSource: model, threads, cache: false, maxBatch: Math.max(...batches) });
const jpeg = new Uint8Array(fs.readFileSync(path.join(here, 'astronaut.jpg')));
const pixels = await preprocess(jpeg, { size: wasm.config.imageSize });
const inputs = { pixels: { pixels }, jpeg };
const models = { wasm, native };

const summary = [];
for (const kase of Object.keys(inputs)) {
  for (const batch of batches) {
    const srcs = Array(batch).fill(inputs[kase]);
    const times = { wasm: [], native: [] };
    for (let r = 0; r < warmup + runs; r++) {
      for (const name of r % 2 ? ['native', 'wasm'] : ['wasm', 'native']) { // interleaved, alternating order
        const t0 = performance.now();
        await models[name].forwardBatch(srcs);
        const dt = performance.now() - t0;
        if (r >= warmup) times[name].push(dt / batch);
      }
    }
    const ms = {};
    for (const name of ['wasm', 'native']) {
      ms[name] = median(times[name]);
      console.log(JSON.stringify({ bench: 'node-backend', backend: name, case: kase, batch, threads, runs, ms_per_image: Number(ms[name].toFixed(1)) }));
    }
    summary.push(`${kase} batch ${batch}, ${threads} threads: native ${ms.native.toFixed(1)} ms/image, wasm ${ms.wasm.toFixed(1)} ms/image, native/wasm ${(ms.native / ms.wasm).toFixed(2)}`);
  }
}
native.dispose();
wasm.dispose();
process.stderr.write(`bench-native (${path.basename(model)}; medians of ${runs}, noisy unless the machine is quiet):\n  ${summary.join('\n  ')}\n`);
