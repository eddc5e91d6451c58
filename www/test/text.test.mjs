// Text embeddings in Chromium (issue 11): TextEmbeddings on the tiny
// whole-CLIP fixture (tokenizer.json found beside the model) against the
// text golden, only the text tensors fetched; and one ImageEmbeddings
// loaded with `text: true` serving both towers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBuild, startServer, launch, collectLogs, testdata, cosine } from './helpers.mjs';

const golden = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-text-tiny-fullclip-f32.json'), 'utf8'));
const imageGolden = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-tiny-fullclip-f32.json'), 'utf8'));
const pixels = (() => {
  const b = readFileSync(join(testdata, 'golden', 'pixels-64', 'coffee.png.f32'));
  return Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
})();

let server;
let ctx;
let page;
let logs;
const requests = [];

before(async () => {
  requireBuild();
  server = await startServer();
  ctx = await launch();
  page = await ctx.newPage();
  logs = collectLogs(page);
  // Every request as it is made: the loader cancels a 206 body once its
  // range has arrived, which Chromium may report as an aborted request
  // rather than a finished one, so 'requestfinished' can miss them.
  page.on('request', (r) => {
    if (r.url().includes('/models/')) requests.push({ url: r.url(), range: r.headers().range ?? null });
  });
  await page.goto(new URL('test/pages/package.html', server.url).href);
  await page.waitForFunction(() => window.__pageReady === true, null, { timeout: 30_000 });
});

after(async () => {
  await ctx?.close();
  await server?.close();
});

async function evaluate(fn, arg) {
  try {
    return await page.evaluate(fn, arg);
  } catch (e) {
    throw new Error(`${e.message}\n--- browser log ---\n${logs.join('\n')}`);
  }
}

test('TextEmbeddings in Chromium: golden texts, text tensors only', async (t) => {
  requests.length = 0;
  const r = await evaluate(async (texts) => {
    const { TextEmbeddings } = await import('/js/src/index.js');
    const wasmPaths = new URL('/node_modules/@tensorflow/tfjs-backend-wasm/dist/', location.href).href;
    const m = await TextEmbeddings.load({ modelSource: '/models/tiny-fullclip-f32.safetensors', wasmPaths, cache: false });
    const out = await m.forwardBatch(texts);
    const bad = await m.forwardBatchSettled([7]);
    const config = m.config;
    m.dispose();
    return { out: out.map((e) => Array.from(e)), config, badCode: bad[0].code };
  }, Object.keys(golden));
  Object.keys(golden).forEach((text, i) => {
    const c = cosine(r.out[i], golden[text]);
    const d = Math.max(...r.out[i].map((v, k) => Math.abs(v - golden[text][k])));
    assert.ok(c >= 0.99999 && d <= 1e-4, `${JSON.stringify(text)}: cosine ${c}, max abs ${d}`);
  });
  assert.equal(r.badCode, 'InvalidInput');
  const model = requests.filter((q) => q.url.endsWith('tiny-fullclip-f32.safetensors'));
  // The bytes asked for (what a server honouring Range sends at most).
  const rangeLen = (h) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(h ?? '');
    return m ? Number(m[2]) - Number(m[1]) + 1 : Infinity;
  };
  const asked = model.reduce((s, q) => s + rangeLen(q.range), 0);
  t.diagnostic(`text weights ${r.config.weightBytes} B, ${asked} B asked for in ${model.length} requests`);
  assert.ok(model.length > 0 && model.every((q) => q.range), `model requests ${JSON.stringify(model)}`);
  assert.ok(asked <= r.config.weightBytes + 2 * 65536, `asked for ${asked} bytes for ${r.config.weightBytes} bytes of text weights`);
  assert.equal(requests.filter((q) => q.url.endsWith('/models/tokenizer.json')).length, 1);
});

test('ImageEmbeddings with text: true serves both towers in Chromium', async () => {
  const r = await evaluate(async ({ px, text }) => {
    const { ImageEmbeddings } = await import('/js/src/index.js');
    const wasmPaths = new URL('/node_modules/@tensorflow/tfjs-backend-wasm/dist/', location.href).href;
    const m = await ImageEmbeddings.load({ modelSource: '/models/tiny-fullclip-f32.safetensors', wasmPaths, cache: false, text: true });
    const [img, txt] = await Promise.all([m.forward({ pixels: new Float32Array(px) }), m.text.forward(text)]);
    m.dispose();
    return { img: Array.from(img), txt: Array.from(txt) };
  }, { px: pixels, text: 'a photo of a cat' });
  assert.ok(cosine(r.img, imageGolden['images/coffee.png']) >= 0.99999);
  assert.ok(cosine(r.txt, golden['a photo of a cat']) >= 0.99999);
});
