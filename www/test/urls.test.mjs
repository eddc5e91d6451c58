// Image URL inputs in Chromium: with platformDecode (the default) the package
// fetches them itself and a JPEG is decoded by the browser, as bytes are
// (js/src/sources.js); the results and every error (code and message) must
// match the module's own fetch-and-decode path (platformDecode: false). The
// images come from a second server on 127.0.0.1 (cross-origin, with CORS),
// which also answers 404, a text file, a body that never comes, and a
// Content-Length over the 256 MiB cap; plus a port nobody listens on.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBuild, startServer, launch, collectLogs, cosine, repo, testdata } from './helpers.mjs';

const JPEG = readFileSync(join(repo, 'wasm', 'imagefile', 'testdata', 'chelsea-q95-420.jpg'));
const PNG = readFileSync(join(testdata, 'images', 'coffee.png'));

let server, images, ctx, page, logs, deadPort;
const pending = new Set(); // responses never finished (/slow)
let slowClosed = 0; // /slow.jpg connections the client closed

before(async () => {
  requireBuild();
  server = await startServer();
  images = http.createServer((req, res) => {
    const h = { 'access-control-allow-origin': '*', 'cross-origin-resource-policy': 'cross-origin' };
    switch (req.url) {
      case '/cat.jpg': res.writeHead(200, { ...h, 'content-type': 'image/jpeg' }); res.end(JPEG); return;
      case '/coffee.png': res.writeHead(200, { ...h, 'content-type': 'image/png' }); res.end(PNG); return;
      case '/notes.txt': res.writeHead(200, { ...h, 'content-type': 'text/plain' }); res.end('not an image\n'.repeat(20)); return;
      case '/huge.jpg': res.writeHead(200, { ...h, 'content-type': 'image/jpeg', 'content-length': String(300 * 1024 * 1024) }); res.write(JPEG.subarray(0, 100)); pending.add(res); return;
      case '/slow.jpg':
        res.writeHead(200, { ...h, 'content-type': 'image/jpeg' });
        res.write(JPEG.subarray(0, 100));
        pending.add(res);
        res.on('close', () => { if (!res.writableFinished) slowClosed++; });
        return;
      default: res.writeHead(404, h); res.end('no such image');
    }
  });
  await new Promise((ok) => images.listen(0, '127.0.0.1', ok));
  // A port that refuses connections: bound, then closed.
  const s = net.createServer();
  await new Promise((ok) => s.listen(0, '127.0.0.1', ok));
  deadPort = s.address().port;
  await new Promise((ok) => s.close(ok));
  ctx = await launch();
  page = await ctx.newPage();
  logs = collectLogs(page);
  await page.goto(new URL('test/pages/urls.html', server.url).href);
  await page.waitForFunction(() => window.__pageReady === true, null, { timeout: 30_000 });
});

after(async () => {
  for (const r of pending) r.destroy();
  await ctx?.close();
  await new Promise((ok) => (images ? images.close(ok) : ok()));
  images?.closeAllConnections?.();
  await server?.close();
});

test('URL inputs: browser-decoded JPEG, same results and errors as the module path', { timeout: 180_000 }, async () => {
  const base = `http://127.0.0.1:${images.address().port}`;
  const urls = [`${base}/cat.jpg`, `${base}/coffee.png`, `${base}/missing.jpg`, `${base}/notes.txt`,
    `http://127.0.0.1:${deadPort}/gone.jpg`, `${base}/slow.jpg`, `${base}/huge.jpg`, `${base}/cat.jpg`];
  let r;
  try {
    r = await page.evaluate((opts) => window.runURLs(opts), { model: '/models/tiny-f32.safetensors', urls, fetchTimeout: 1500, preprocessURL: urls[0] });
  } catch (e) {
    throw new Error(`${e.message}\n--- browser log ---\n${logs.join('\n')}`);
  }
  const { platform: p, module: m } = r;
  // JPEGs went through createImageBitmap on the platform path only.
  assert.ok(p.bitmaps >= 2, `platform path decoded the two JPEG URLs with createImageBitmap (${p.bitmaps} calls)`);
  assert.equal(m.bitmaps, 0, 'module path never calls createImageBitmap');
  for (const kind of ['batch', 'single']) {
    urls.forEach((u, i) => {
      const a = p[kind][i], b = m[kind][i];
      console.log(JSON.stringify({ kind, url: u, platform: a.emb ? 'embedding' : a, module: b.emb ? 'embedding' : b }));
      if (b.emb) {
        assert.ok(a.emb, `${kind} ${u}: embedded on the platform path too (${a.code}: ${a.message})`);
        const c = cosine(a.emb, b.emb);
        if (u.endsWith('.png')) assert.deepEqual(a.emb, b.emb, `${kind} ${u}: lossless stays identical`);
        else assert.ok(c >= 0.9999, `${kind} ${u}: cosine ${c}`);
      } else {
        assert.deepEqual({ code: a.code, message: a.message }, { code: b.code, message: b.message }, `${kind} ${u}: same error`);
      }
    });
  }
  const codes = m.batch.map((x) => x.code ?? 'ok');
  assert.deepEqual(codes, ['ok', 'ok', 'DownloadFailed', 'UnsupportedImageFormat', 'DownloadFailed', 'DownloadFailed', 'ImageTooLarge', 'ok']);
  assert.match(p.batch[5].message, /no complete response within 1\.5s/);
  // preprocess() of a URL: browser decode vs module decode within the JPEG tolerance.
  assert.ok(Array.isArray(p.preprocess) && Array.isArray(m.preprocess), 'preprocess of the JPEG URL worked on both paths');
  let sum = 0;
  for (let i = 0; i < p.preprocess.length; i++) sum += Math.abs(p.preprocess[i] - m.preprocess[i]);
  const meanLevels = (sum / p.preprocess.length) * 0.27 * 255;
  assert.ok(meanLevels <= 0.5, `preprocess: browser vs module decoder mean ${meanLevels} levels`);
});

test('URL inputs: aborting a call stops its browser-side fetch at once; the model stays usable', { timeout: 120_000 }, async () => {
  const base = `http://127.0.0.1:${images.address().port}`;
  const before = slowClosed;
  const r = await page.evaluate((o) => window.abortURL(o), { model: '/models/tiny-f32.safetensors', slowURL: `${base}/slow.jpg`, url: `${base}/cat.jpg`, ms: 300 });
  console.log(JSON.stringify(r));
  assert.equal(r.code, 'Aborted', `aborted call rejects Aborted (${r.message})`);
  assert.match(r.message, /user gave up/);
  assert.ok(r.ms < 5000, `rejected ${r.ms} ms after the start (abort at 300 ms; the fetch timeout is 60 s)`);
  assert.equal(r.after, 32, 'the model embeds the next call');
  // The browser closed the never-ending response (the package aborted its fetch).
  for (let i = 0; i < 50 && slowClosed === before; i++) await new Promise((ok) => setTimeout(ok, 100));
  assert.ok(slowClosed > before, 'the slow response was abandoned by the browser');
});

test('URL inputs: an abort ends the wait even when the fetch hook ignores its signal; the next call is not held up', { timeout: 120_000 }, async () => {
  const base = `http://127.0.0.1:${images.address().port}`;
  const r = await page.evaluate((o) => window.abortURL(o), { model: '/models/tiny-f32.safetensors', slowURL: `${base}/slow.jpg`, url: `${base}/cat.jpg`, ms: 300, deafHook: true });
  console.log(JSON.stringify(r));
  assert.equal(r.code, 'Aborted');
  assert.ok(r.ms < 5000, `rejected after ${r.ms} ms`);
  assert.equal(r.after, 32);
  assert.ok(r.afterMs < 20000, `the next call took ${r.afterMs} ms (the hook never settles; the fetch timeout is 60 s)`);
});
