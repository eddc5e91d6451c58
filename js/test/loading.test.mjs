// Loading weights over HTTP from a local server (node:http on 127.0.0.1):
// progress, Range honoured or ignored, bytes transferred, failures and their
// codes, the cache (nothing cached after a failure; a second load served
// without a request) and abort.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImageEmbeddings, ImageEmbeddingsError, nodeCache } from '../src/index.js';
import {
  modelPath, serve, rangeHandler, goldenEmbeddings, goldenPixels, cosine, images,
} from '../testlib/common.mjs';

const FULL = 'tiny-fullclip-f32.safetensors';
const fullBytes = fs.readFileSync(modelPath(FULL));
const golden = goldenEmbeddings(FULL);
let tmp;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-load-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function freshCacheDir(name) {
  return path.join(tmp, name);
}

function cacheFiles(dir) {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

async function assertWorks(m) {
  const img = images[1];
  const e = await m.forward({ pixels: goldenPixels(m.config.imageSize, img) });
  assert.ok(cosine(e, golden[`images/${img}`]) >= 0.99999);
}

function checkProgress(calls) {
  assert.ok(calls.length >= 2, `progress calls: ${calls}`);
  for (let i = 0; i < calls.length; i++) {
    assert.ok(calls[i] >= 0 && calls[i] <= 1, `progress ${calls[i]}`);
    if (i > 0) assert.ok(calls[i] >= calls[i - 1], `progress went back: ${calls}`);
  }
  assert.equal(calls.at(-1), 1, 'progress must end at exactly 1');
  assert.equal(calls.filter((f) => f === 1).length, 1, 'exactly one final call');
}

test('Range honoured: only the header and vision tensors travel; then served from the cache', async (t) => {
  const srv = await serve(rangeHandler(fullBytes));
  t.after(() => srv.close());
  const dir = freshCacheDir('range');
  const progress = [];
  const m = await ImageEmbeddings.load({
    modelSource: `${srv.url}/model.safetensors`,
    cache: nodeCache(dir),
    onDownloadProgress: (f) => progress.push(f),
  });
  checkProgress(progress);
  assert.ok(srv.log.every((e) => e.range !== null), 'every request has a Range header');
  const sent = srv.sent();
  const need = m.config.weightBytes;
  assert.ok(sent < fullBytes.length, `sent ${sent} of ${fullBytes.length}`);
  assert.ok(sent <= need + 2 * 65536, `sent ${sent} bytes for ${need} bytes of vision weights`);
  assert.ok(sent >= need, `sent ${sent} < needed ${need}`);
  t.diagnostic(`file ${fullBytes.length} B, vision weights ${need} B, transferred ${sent} B in ${srv.log.length} requests`);
  await assertWorks(m);
  m.dispose();
  assert.equal(cacheFiles(dir).length, 1, 'one cache entry');

  const before = srv.log.length;
  const progress2 = [];
  const m2 = await ImageEmbeddings.load({
    modelSource: `${srv.url}/model.safetensors`,
    cache: nodeCache(dir),
    onDownloadProgress: (f) => progress2.push(f),
  });
  // One revalidation (If-None-Match with the cached ETag), answered 304
  // with no body.
  assert.equal(srv.log.length, before + 1, 'the second load made one request');
  assert.equal(srv.log.at(-1).ifNoneMatch, '"t1"');
  assert.equal(srv.log.at(-1).status, 304);
  assert.equal(srv.log.at(-1).sent, 0);
  assert.equal(progress2.at(-1), 1);
  await assertWorks(m2);
  m2.dispose();
});

test('Range ignored (200): one full download, progress over Content-Length', async (t) => {
  const srv = await serve(rangeHandler(fullBytes, { ignoreRange: true }));
  t.after(() => srv.close());
  const progress = [];
  const m = await ImageEmbeddings.load({
    modelSource: `${srv.url}/m.safetensors`,
    cache: false,
    onDownloadProgress: (f) => progress.push(f),
  });
  checkProgress(progress);
  assert.equal(srv.log.length, 1);
  assert.equal(srv.sent(), fullBytes.length);
  await assertWorks(m);
  m.dispose();
});

test('a small model over Range: progress and result', async (t) => {
  const bytes = fs.readFileSync(modelPath('tiny-f16.safetensors'));
  const srv = await serve(rangeHandler(bytes));
  t.after(() => srv.close());
  const progress = [];
  const m = await ImageEmbeddings.load({ modelSource: `${srv.url}/f16`, cache: false, onDownloadProgress: (f) => progress.push(f) });
  checkProgress(progress);
  assert.equal(m.config.dtype, 'F16');
  const g = goldenEmbeddings('tiny-f16.safetensors');
  const e = await m.forward({ pixels: goldenPixels(64, images[0]) });
  assert.ok(cosine(e, g[`images/${images[0]}`]) >= 0.99999);
  m.dispose();
});

const failures = [
  ['404', (req, res) => { res.writeHead(404); res.end('not found'); }, 'DownloadFailed'],
  ['500', (req, res) => { res.writeHead(500); res.end('boom'); }, 'DownloadFailed'],
  ['connection dropped mid-body', (req, res) => {
    res.writeHead(200, { 'content-length': String(fullBytes.length) });
    res.write(fullBytes.subarray(0, fullBytes.length >> 1), () => setTimeout(() => res.socket.destroy(), 20));
  }, 'DownloadFailed'],
  ['truncated file, Range', rangeHandler(fullBytes.subarray(0, fullBytes.length - 5000)), 'InvalidModel'],
  ['truncated file, no Range', rangeHandler(fullBytes.subarray(0, fullBytes.length - 5000), { ignoreRange: true }), 'InvalidModel'],
  ['not a model (HTML)', (req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<!doctype html><p>hi</p>'); }, 'InvalidModel'],
];

for (const [name, handler, code] of failures) {
  test(`failure: ${name} -> ${code}, nothing cached`, async (t) => {
    const srv = await serve(handler);
    t.after(() => srv.close());
    const dir = freshCacheDir(name.replace(/\W+/g, '-'));
    await assert.rejects(
      ImageEmbeddings.load({ modelSource: `${srv.url}/m`, cache: nodeCache(dir) }),
      (e) => e instanceof ImageEmbeddingsError && e.code === code,
    );
    assert.deepEqual(cacheFiles(dir), []);
  });
}

test('connection refused -> DownloadFailed', async () => {
  const srv = await serve((req, res) => res.end());
  const url = srv.url;
  await srv.close();
  await assert.rejects(
    ImageEmbeddings.load({ modelSource: `${url}/m`, cache: false }),
    (e) => e.code === 'DownloadFailed',
  );
});

test('abort during the download -> Aborted, nothing cached', async (t) => {
  // The server answers the header prefix at once and stalls on the rest.
  const srv = await serve((req, res) => {
    if ((req.headers.range ?? '').startsWith('bytes=0-')) return rangeHandler(fullBytes)(req, res);
    setTimeout(() => rangeHandler(fullBytes)(req, res), 2000);
  });
  t.after(() => srv.close());
  const dir = freshCacheDir('abort');
  const ac = new AbortController();
  const p = ImageEmbeddings.load({ modelSource: `${srv.url}/m`, cache: nodeCache(dir), signal: ac.signal });
  setTimeout(() => ac.abort(), 300);
  await assert.rejects(p, (e) => e instanceof ImageEmbeddingsError && e.code === 'Aborted');
  await new Promise((r) => setTimeout(r, 2500));
  assert.deepEqual(cacheFiles(dir), []);
});

test('already aborted signal -> Aborted', async () => {
  await assert.rejects(
    ImageEmbeddings.load({ modelSource: modelPath('tiny-f32.safetensors'), signal: AbortSignal.abort() }),
    (e) => e.code === 'Aborted',
  );
});

test('model from bytes, Blob and a local path give the same result', async () => {
  const bytes = fs.readFileSync(modelPath('tiny-f32.safetensors'));
  const g = goldenEmbeddings('tiny-f32.safetensors')[`images/${images[2]}`];
  // An odd offset makes every F32 tensor misaligned: the module copies.
  const odd = new Uint8Array(bytes.length + 1);
  odd.set(bytes, 1);
  for (const source of [bytes, new Blob([bytes]), bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length), odd.subarray(1), modelPath('tiny-f32.safetensors')]) {
    const m = await ImageEmbeddings.load({ modelSource: source, cache: false });
    const e = await m.forward({ pixels: goldenPixels(64, images[2]) });
    assert.ok(cosine(e, g) >= 0.99999, `source ${source.constructor.name}`);
    m.dispose();
  }
});

test('invalid model bytes -> InvalidModel', async () => {
  await assert.rejects(ImageEmbeddings.load({ modelSource: new Uint8Array([1, 2, 3]) }), (e) => e.code === 'InvalidModel');
  const b = fs.readFileSync(modelPath('tiny-f32.safetensors'));
  await assert.rejects(ImageEmbeddings.load({ modelSource: b.subarray(0, b.length - 10) }), (e) => e.code === 'InvalidModel');
});

// A copy of the file with mantissa bits 17-22 of every float32 flipped
// (never the exponent: values stay finite): same size, other values; a new
// version of the file on the server.
function otherVersion(bytes) {
  const b = Uint8Array.from(bytes);
  const hl = Number(new DataView(b.buffer).getBigUint64(0, true));
  for (let i = 8 + hl + 2; i < b.length; i += 4) b[i] ^= 0x5a;
  return b;
}

test('a file that changes during the download: restarted once, never mixed or cached; changing again -> DownloadFailed', async (t) => {
  const other = otherVersion(fullBytes);
  const seen = [];
  // Versions by request number: 1 old, then the new one for good.
  let n = 0;
  const srv = await serve((req, res) => {
    n++;
    seen.push({ ifRange: req.headers['if-range'], ifMatch: req.headers['if-match'] });
    const [bytes, etag] = n === 1 ? [fullBytes, '"v1"'] : [other, '"v2"'];
    if (req.headers['if-match'] && req.headers['if-match'] !== etag) {
      res.writeHead(412);
      res.end();
      return;
    }
    rangeHandler(bytes, { etag })(req, res);
  });
  t.after(() => srv.close());
  const dir = freshCacheDir('changed-once');
  const m = await ImageEmbeddings.load({ modelSource: `${srv.url}/m`, cache: nodeCache(dir) });
  const ref = await ImageEmbeddings.load({ modelSource: other, cache: false });
  try {
    // The new version's weights, whole: exactly what the new file gives.
    const px = goldenPixels(m.config.imageSize, images[1]);
    const e = await m.forward({ pixels: px });
    assert.deepEqual(e, await ref.forward({ pixels: px }), 'not the new version whole');
    assert.ok(cosine(e, golden[`images/${images[1]}`]) < 0.999, 'the new version should differ from the old');
  } finally {
    m.dispose();
    ref.dispose();
  }
  assert.equal(seen[1].ifMatch, '"v1"', 'the second request is pinned to the first ETag');
  assert.equal(seen[1].ifRange, '"v1"');

  // Alternating on every request: fails, nothing cached.
  let k = 0;
  const srv2 = await serve((req, res) => {
    k++;
    rangeHandler(k % 2 ? fullBytes : other, { etag: k % 2 ? '"v1"' : '"v2"' })(req, res);
  });
  t.after(() => srv2.close());
  const dir2 = freshCacheDir('changed-always');
  await assert.rejects(
    ImageEmbeddings.load({ modelSource: `${srv2.url}/m`, cache: nodeCache(dir2) }),
    (e) => e instanceof ImageEmbeddingsError && e.code === 'DownloadFailed' && /changed during download/.test(e.message),
  );
  assert.deepEqual(cacheFiles(dir2), []);
});

test('a download that stalls mid-body fails with DownloadFailed "stalled" after downloadTimeout', async (t) => {
  const srv = await serve((req, res) => {
    res.writeHead(200, { 'content-length': String(fullBytes.length) });
    res.write(fullBytes.subarray(0, 100_000));
    // ...and nothing more until the client gives up.
    req.on('close', () => res.destroy());
  });
  t.after(() => srv.close());
  const t0 = Date.now();
  await assert.rejects(
    ImageEmbeddings.load({ modelSource: `${srv.url}/m`, cache: false, downloadTimeout: 500 }),
    (e) => e instanceof ImageEmbeddingsError && e.code === 'DownloadFailed' && /stalled/.test(e.message),
  );
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
});
