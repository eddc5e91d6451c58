// Differential test of the op-list boundary: the CLIP vision graph runs
// through wasm/internal/opdiff (a Go program built GOOS=js) with every op
// executed on TensorFlow.js-wasm (real tfjs, initialised by js/src/backend.js,
// reached through wasm/jsops as globalThis.tf) and on the pure Go kernels of
// wasm/ops/native compiled into the same .wasm, compared op by op.
//
// Tolerance: with resync each op sees bit-identical inputs on both sides, so
// every op must lie within its float32 error bound (see the doc comment of
// wasm/internal/opdiff): bitwise equality for data movement and for the
// correctly rounded Add/Sub/Mul, 2γk·Σ|a||b| for matrix products, 2γL·Σ|x|/L
// for Mean, and 8-2(L+16) ulp relative for Rsqrt, Sigmoid and Softmax.
// A failure names the op, its call number, shapes, max abs / relative diff.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const testdata = path.join(root, 'testdata');
const go = process.env.GO || 'go';

let wasmBytes;
let backend;

before(async () => {
  const goroot = execFileSync(go, ['env', 'GOROOT'], { encoding: 'utf8' }).trim();
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-opdiff-')), 'opdiff.wasm');
  execFileSync(go, ['build', '-o', out, './wasm/internal/opdiff/cmd/opdiff'], {
    cwd: root, env: { ...process.env, GOOS: 'js', GOARCH: 'wasm' }, stdio: ['ignore', 'inherit', 'inherit'],
  });
  wasmBytes = fs.readFileSync(out);
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  // What wasm_exec_node.js would provide to a Go program under Node.
  globalThis.fs ??= fs;
  globalThis.path ??= path;
  await import(pathToFileURL(path.join(goroot, 'lib', 'wasm', 'wasm_exec.js')).href);
  backend = await initBackend();
  globalThis.tf = tf;
});

async function opdiff(model, images, { resync = true, tfName = 'tf' } = {}) {
  const size = model.startsWith('b32') ? 224 : 64;
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-opdiff-')), 'report.json');
  const g = new globalThis.Go();
  let code = 0;
  g.exit = (c) => {
    code = c;
    // Timers the Go runtime scheduled before exiting would resume a dead
    // instance (wasm_exec_node.js avoids this by exiting the process).
    for (const id of g._scheduledTimeouts.values()) clearTimeout(id);
    g._scheduledTimeouts.clear();
  };
  g.argv = ['opdiff', '-model', path.join(testdata, 'models', `${model}.safetensors`),
    '-pixels', images.map((i) => path.join(testdata, 'golden', `pixels-${size}`, `${i}.png.f32`)).join(','),
    `-resync=${resync}`, `-tf=${tfName}`, '-out', out];
  const { instance } = await WebAssembly.instantiate(wasmBytes, g.importObject);
  await g.run(instance);
  assert.equal(code, 0, 'opdiff exit code');
  const report = JSON.parse(fs.readFileSync(out, 'utf8'));
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  return report;
}

const cosine = (a, b) => {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return d / Math.sqrt(na * nb);
};

function describe(r) {
  return `#${r.seq} ${r.op}(${r.args}) in=${JSON.stringify(r.in_shapes)} out=${JSON.stringify(r.shape)}` +
    (r.shape_b ? ` B-shape=${JSON.stringify(r.shape_b)}` : '') +
    `: max_abs=${r.max_abs.toExponential(3)} max_rel=${r.max_rel.toExponential(3)} ratio=${r.ratio.toPrecision(3)}` +
    ` (element ${r.worst}: tfjs ${r.a} vs native ${r.b})${r.nan ? ' NaN' : ''}`;
}

function checkOps(report, model) {
  const seen = new Set(report.records.map((r) => r.op));
  for (const op of ['Tensor', 'MatMul', 'FusedMatMul', 'Add', 'Sub', 'Mul', 'Sigmoid', 'Rsqrt', 'Softmax', 'Mean',
    'Reshape', 'Transpose', 'Slice', 'DepthwiseConv2d']) {
    assert.ok(seen.has(op), `${model}: op ${op} never ran`);
  }
  const bad = report.records.filter((r) => !r.within);
  assert.equal(bad.length, 0, `${model}: ${bad.length} op(s) outside their float32 bound, first:\n  ` +
    bad.slice(0, 5).map(describe).join('\n  '));
  // The bookkeeping itself: the Go side's verdicts match the numbers.
  for (const r of report.records) assert.ok(r.ratio <= 1 && !r.nan && !r.shape_b, describe(r));
}

function checkEndToEnd(report, model) {
  const golden = JSON.parse(fs.readFileSync(path.join(testdata, 'golden', `embed-${model}.json`), 'utf8'));
  const names = ['astronaut', 'chelsea'];
  for (let i = 0; i < report.embeddings.tfjs.length; i++) {
    const t = report.embeddings.tfjs[i], n = report.embeddings.native[i];
    const want = golden[`images/${names[i]}.png`];
    assert.ok(cosine(t, n) >= 0.99999, `${model} image ${i}: tfjs vs native cosine ${cosine(t, n)}`);
    assert.ok(cosine(t, want) >= 0.99999, `${model} image ${i}: tfjs vs golden cosine ${cosine(t, want)}`);
    let maxAbs = 0;
    for (let j = 0; j < t.length; j++) maxAbs = Math.max(maxAbs, Math.abs(t[j] - want[j]));
    assert.ok(maxAbs <= 1e-4, `${model} image ${i}: tfjs vs golden max abs ${maxAbs}`);
  }
}

test('tiny-f32: every op of the graph on tfjs-wasm agrees with native Go within its float32 bound', async (t) => {
  const report = await opdiff('tiny-f32', ['astronaut', 'chelsea']);
  t.diagnostic(`tfjs backend ${JSON.stringify(backend)}; ${report.records.length} ops compared; worst per op:`);
  for (const line of report.summary.trim().split('\n')) t.diagnostic(line);
  assert.ok(report.records.length > 100);
  checkOps(report, 'tiny-f32');
  checkEndToEnd(report, 'tiny-f32');
});

test('tiny-f32 without resync: differences stay small through the whole graph', async (t) => {
  const report = await opdiff('tiny-f32', ['astronaut', 'chelsea'], { resync: false });
  const maxRel = Math.max(...report.records.map((r) => r.max_rel));
  t.diagnostic(`largest relative difference of any op output after accumulation: ${maxRel.toExponential(3)}`);
  assert.ok(maxRel < 1e-4, `accumulated relative difference ${maxRel}`);
  checkEndToEnd(report, 'tiny-f32');
});

test('a fault injected into tfjs softmax (1e-5 relative) is reported, naming Softmax and only Softmax', async () => {
  globalThis.tfFaulty = {
    ...tf,
    softmax: (x) => tf.tidy(() => tf.mul(tf.softmax(x), tf.scalar(1 + 1e-5))),
  };
  try {
    const report = await opdiff('tiny-f32', ['astronaut'], { tfName: 'tfFaulty' });
    const bad = report.records.filter((r) => !r.within);
    assert.ok(bad.length > 0, 'fault not detected');
    assert.deepEqual([...new Set(bad.map((r) => r.op))], ['Softmax'], bad.map(describe).join('\n'));
  } finally {
    delete globalThis.tfFaulty;
  }
});

test('b32l2-f16 (ViT-B/32 widths, F16 weights): every op within its bound', { timeout: 600000 }, async (t) => {
  const report = await opdiff('b32l2-f16', ['astronaut']);
  t.diagnostic(`${report.records.length} ops compared; worst per op:`);
  for (const line of report.summary.trim().split('\n')) t.diagnostic(line);
  checkOps(report, 'b32l2-f16');
  checkEndToEnd(report, 'b32l2-f16');
});
