// Text tower benchmark (Node, tfjs-wasm): CLIP ViT-B/32's text tower with
// seeded random weights, ms per string at each batch size, for a caption
// (the graph runs only to its end-of-text token) and a text cut to 77
// tokens. Medians of --runs timed runs after --warmup untimed ones. Output:
// JSON lines on stdout. The machine's load shows in the numbers: compare
// rows of one run, not runs of different days.
//
// usage: node js/bench/text-bench.mjs [--threads N] [--batches 1,16] [--runs 7] [--warmup 2]
//          [--layouts left,right]  (tfjsWeightsLeft true/false, timed in turn)
// The weights (text tower only, F32, 253 MB) are written once to
// $TMPDIR/imgembed-bench/b32-text-seed1.safetensors; the tokenizer is the
// fixture's (testdata/models/tokenizer.json: CLIP's pipeline, a small
// vocabulary, which changes token counts, not the cost per token).
// Needs js/dist/imgembed.wasm (make build).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { TextEmbeddings } from '../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

function parseArgs(argv) {
  const o = { threads: '', batches: '1,16', runs: '7', warmup: '2', layouts: 'left' };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m || !(m[1] in o)) throw new Error(`text-bench: unknown argument ${argv[i]}`);
    o[m[1]] = m[2] ?? argv[++i];
  }
  return { threads: o.threads ? Number(o.threads) : undefined, batches: o.batches.split(',').map(Number), runs: Number(o.runs), warmup: Number(o.warmup),
    layouts: o.layouts.split(',') };
}

// B/32's text tower: width 512, 12 layers, 8 heads, MLP 2048, vocabulary
// 49408, 77 positions, projection 512 (weights.TextTensors' names/shapes).
const D = 512, L = 12, M = 2048, V = 49408, C = 77, P = 512;
function tensors() {
  const t = [['text_model.embeddings.token_embedding.weight', [V, D]], ['text_model.embeddings.position_embedding.weight', [C, D]]];
  for (let i = 0; i < L; i++) {
    const p = `text_model.encoder.layers.${i}.`;
    for (const n of ['layer_norm1', 'layer_norm2']) t.push([`${p}${n}.weight`, [D]], [`${p}${n}.bias`, [D]]);
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) t.push([`${p}self_attn.${n}.weight`, [D, D]], [`${p}self_attn.${n}.bias`, [D]]);
    t.push([`${p}mlp.fc1.weight`, [M, D]], [`${p}mlp.fc1.bias`, [M]], [`${p}mlp.fc2.weight`, [D, M]], [`${p}mlp.fc2.bias`, [D]]);
  }
  t.push(['text_model.final_layer_norm.weight', [D]], ['text_model.final_layer_norm.bias', [D]], ['text_projection.weight', [P, D]]);
  return t;
}

function ensureModel() {
  const dir = path.join(os.tmpdir(), 'imgembed-bench');
  const out = path.join(dir, 'b32-text-seed1.safetensors');
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(dir, { recursive: true });
  process.stderr.write(`text-bench: writing ViT-B/32 text-tower random weights to ${out}\n`);
  const list = tensors();
  const header = { __metadata__: { text_num_attention_heads: '8' } };
  let off = 0;
  for (const [name, shape] of list) {
    const n = shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [off, off + 4 * n] };
    off += 4 * n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fd = fs.openSync(`${out}.part`, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeSync(fd, len);
  fs.writeSync(fd, json);
  let s = 1; // xorshift32, then a sum of uniforms as a cheap normal-ish value
  const rnd = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
  for (const [name, shape] of list) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    const ln = /layer_norm\d?\.weight$/.test(name);
    for (let i = 0; i < n; i++) v[i] = ln ? 1 : (rnd() + rnd() + rnd() - 1.5) * 0.04;
    fs.writeSync(fd, new Uint8Array(v.buffer));
  }
  fs.closeSync(fd);
  fs.renameSync(`${out}.part`, out);
  return out;
}

const median = (a) => { const s = [...a].sort((x, y) => x - y), n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };

const args = parseArgs(process.argv.slice(2));
const model = ensureModel();
const models = [];
for (const layout of args.layouts) {
  if (layout !== 'left' && layout !== 'right') throw new Error(`text-bench: layout must be left or right, got ${layout}`);
  models.push({ layout, m: await TextEmbeddings.load({
    modelSource: model, tokenizerSource: path.join(root, 'testdata', 'models', 'tokenizer.json'),
    cache: false, threads: args.threads, maxBatch: Math.max(...args.batches), tfjsWeightsLeft: layout === 'left',
  }) });
}
const texts = {
  caption: 'a photo of a dog playing in the snow',
  cut77: 'the quick brown fox jumps over the lazy dog '.repeat(20),
};
for (const [kind, text] of Object.entries(texts)) {
  for (const batch of args.batches) {
    const inputs = Array.from({ length: batch }, (_, i) => `${text} ${i}`);
    for (let i = 0; i < args.warmup; i++) for (const { m } of models) await m.forwardBatch(inputs);
    // One run of each layout per round, so that they see the same machine.
    const ts = models.map(() => []);
    for (let i = 0; i < args.runs; i++) {
      for (const [j, { m }] of models.entries()) {
        const t0 = performance.now();
        await m.forwardBatch(inputs);
        ts[j].push(performance.now() - t0);
      }
    }
    for (const [j, { layout, m }] of models.entries()) {
      const med = median(ts[j]);
      process.stdout.write(JSON.stringify({
        bench: 'text', runtime: 'node-tfjs-wasm', model: 'b32-text (random)', layout, text: kind, batch,
        threads: m.backend.threads, ms_per_call: Number(med.toFixed(1)), ms_per_string: Number((med / batch).toFixed(2)),
        min_ms_per_call: Number(Math.min(...ts[j]).toFixed(1)),
      }) + '\n');
    }
  }
}
for (const { m } of models) m.dispose();
