// The npm package without the demo UI, in Chromium, on the main thread and
// in a module Web Worker: cross-origin isolation, tfjs threads, numbers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBuild, startServer, launch, watchExternalRequests, collectLogs, testdata, cosine, median } from './helpers.mjs';

const IMAGES = ['astronaut.png', 'chelsea.png', 'coffee.png'];
const golden = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-tiny-f32.json'), 'utf8'));

let server;
let ctx;
let page;
let logs;
let external;

before(async () => {
  requireBuild();
  server = await startServer();
  ctx = await launch();
  page = await ctx.newPage();
  logs = collectLogs(page);
  external = watchExternalRequests(page, server.url.replace(/\/$/, ''));
  await page.goto(new URL('test/pages/package.html', server.url).href);
  await page.waitForFunction(() => window.__pageReady === true, null, { timeout: 30_000 });
});

after(async () => {
  await ctx?.close();
  await server?.close();
});

async function run(fn, model = '/models/tiny-f32.safetensors') {
  const images = IMAGES.map((name) => ({ name, b64: readFileSync(join(testdata, 'images', name)).toString('base64') }));
  try {
    return await page.evaluate(async ({ fn, images, model }) => {
      const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      return window[fn]({ model, images: images.map((i) => ({ name: i.name, bytes: bytes(i.b64) })) });
    }, { fn, images, model });
  } catch (e) {
    throw new Error(`${e.message}\n--- browser log ---\n${logs.join('\n')}`);
  }
}

function checkResult(r) {
  assert.equal(r.crossOriginIsolated, true, `${r.where}: crossOriginIsolated`);
  assert.equal(r.sharedArrayBuffer, true, `${r.where}: SharedArrayBuffer`);
  assert.equal(r.backend.name, 'wasm');
  assert.equal(typeof r.backend.simd, 'boolean');
  assert.equal(r.config.embeddingSize, 32);
  assert.equal(r.config.imageSize, 64);
  assert.equal(r.config.dtype, 'F32');
  assert.ok(r.progress.length >= 1 && r.progress.at(-1) === 1, `${r.where}: progress ends at 1: ${r.progress}`);
  for (const name of IMAGES) {
    const c = cosine(r.embeddings[name], golden[`images/${name}`]);
    assert.ok(c >= 0.9999, `${r.where} ${name}: cosine ${c}`);
  }
  IMAGES.forEach((name, i) => {
    const c = cosine(r.batch[i], r.embeddings[name]);
    assert.ok(c >= 0.99999, `${r.where} batch ${name}: cosine ${c}`);
  });
  assert.deepEqual(r.badInput, { isError: true, code: r.badInput.code });
  assert.ok(['CorruptImage', 'UnsupportedImageFormat'].includes(r.badInput.code), `bad input code ${r.badInput.code}`);
  assert.deepEqual(r.afterDispose, { isError: true, code: 'ModelNotLoaded' });
  // Threads: tfjs-wasm gets a pthread pool only on an isolated page; with
  // two or more cores the package should ask for more than one.
  if (r.hardwareConcurrency >= 2) {
    assert.ok(r.backend.threads >= 2, `${r.where}: tfjs uses ${r.backend.threads} thread(s) on ${r.hardwareConcurrency} cores`);
  }
}

test('package on the main thread', { timeout: 180_000 }, async () => {
  const r = await run('runMain');
  console.log(`main: backend ${JSON.stringify(r.backend)} cores ${r.hardwareConcurrency} load ${r.loadMs.toFixed(0)} ms, forward median ${median(r.repeatMs).toFixed(1)} ms`);
  checkResult(r);
});

test('package in a module Web Worker', { timeout: 180_000 }, async () => {
  const r = await run('runWorker');
  console.log(`worker: backend ${JSON.stringify(r.backend)} cores ${r.hardwareConcurrency} load ${r.loadMs.toFixed(0)} ms, forward median ${median(r.repeatMs).toFixed(1)} ms`);
  assert.equal(r.where, 'worker');
  checkResult(r);
});

// The int8 fixture (imgembed-weights convert --dtype int8 from tiny-f32),
// downloaded over Range and dequantised by the module in the browser,
// against the F32 goldens at the int8 goal, cosine >= 0.999.
test('int8 model in the browser', { timeout: 180_000 }, async () => {
  const r = await run('runMain', '/models/tiny-int8.safetensors');
  assert.equal(r.config.dtype, 'I8');
  for (const name of IMAGES) {
    const c = cosine(r.embeddings[name], golden[`images/${name}`]);
    console.log(`int8 ${name}: cosine ${c.toFixed(6)} to the F32 golden`);
    assert.ok(c >= 0.999, `int8 ${name}: cosine ${c}`);
  }
});

test('nothing loaded from outside the server', () => {
  assert.deepEqual(external, []);
});
