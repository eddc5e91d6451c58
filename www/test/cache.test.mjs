// Cache integrity in Chromium (Cache Storage): the cached model carries the
// SHA-256 of its bytes; a byte flipped in the cached entry's tensor data is
// detected on the next load, the entry replaced by a fresh download, the
// damaged bytes never used.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBuild, startServer, launch, collectLogs, testdata, cosine } from './helpers.mjs';

const golden = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-tiny-f32.json'), 'utf8'));
const pixels = (() => {
  const b = readFileSync(join(testdata, 'golden', 'pixels-64', 'coffee.png.f32'));
  return Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
})();

let server;
let ctx;
let page;
let logs;
const modelRequests = [];

before(async () => {
  requireBuild();
  server = await startServer();
  ctx = await launch();
  page = await ctx.newPage();
  logs = collectLogs(page);
  page.on('request', (r) => { if (r.url().includes('/models/')) modelRequests.push(r.url()); });
  await page.goto(new URL('test/pages/package.html', server.url).href);
  await page.waitForFunction(() => window.__pageReady === true, null, { timeout: 30_000 });
});

after(async () => {
  await ctx?.close();
  await server?.close();
});

// Loads the model with the default cache (Cache Storage), embeds the golden
// pixels; then reports the cache entry's header digest.
async function loadAndEmbed() {
  try {
    return await page.evaluate(async (px) => {
      const { ImageEmbeddings } = await import('/js/src/index.js');
      const wasmPaths = new URL('/node_modules/@tensorflow/tfjs-backend-wasm/dist/', location.href).href;
      const m = await ImageEmbeddings.load({ modelSource: '/models/tiny-f32.safetensors', wasmPaths, revalidate: false });
      const e = await m.forward({ pixels: new Float32Array(px) });
      m.dispose();
      return Array.from(e);
    }, pixels);
  } catch (e) {
    throw new Error(`${e.message}\n--- browser log ---\n${logs.join('\n')}`);
  }
}

// Applies fn ('flip' | 'read') to the one Cache Storage entry.
async function cacheEntry(action) {
  return page.evaluate(async (action) => {
    const c = await caches.open('imgembed-v1');
    const keys = await c.keys();
    if (keys.length !== 1) return { error: `${keys.length} entries` };
    const b = new Uint8Array(await (await c.match(keys[0])).arrayBuffer());
    const hl = Number(new DataView(b.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(b.subarray(8, 8 + hl));
    if (action === 'flip') {
      b[b.length - 333] ^= 0x20;
      await c.put(keys[0], new Response(b));
    }
    return { digest: /"imgembed\.sha256":"([0-9a-f]{64})"/.exec(header)?.[1] ?? null, length: b.length, last: Array.from(b.subarray(b.length - 400)) };
  }, action);
}

test('Cache Storage: a damaged entry is detected, replaced, never used', { timeout: 180_000 }, async () => {
  const e1 = await loadAndEmbed();
  assert.ok(cosine(e1, golden['images/coffee.png']) >= 0.99999);
  const good = await cacheEntry('read');
  assert.equal(good.error, undefined, good.error);
  assert.match(good.digest ?? '', /^[0-9a-f]{64}$/, 'the cache entry carries a SHA-256');

  let n = modelRequests.length;
  await loadAndEmbed();
  assert.equal(modelRequests.length, n, 'the intact entry is used without a request');

  await cacheEntry('flip');
  n = modelRequests.length;
  const e2 = await loadAndEmbed();
  assert.ok(modelRequests.length > n, 'the damaged entry was used (no download)');
  assert.ok(cosine(e2, golden['images/coffee.png']) >= 0.99999);
  const repaired = await cacheEntry('read');
  assert.deepEqual(repaired.last, good.last, 'the entry was not replaced by good bytes');
  assert.equal(repaired.digest, good.digest);
});
