// fetchTimeout: an image URL whose server stalls (headers sent, body never
// finished; or no response at all) fails with DownloadFailed "timed out"
// within a bounded time, and the same model keeps working afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ImageEmbeddings, ImageEmbeddingsError, preprocess } from '../src/index.js';
import { modelPath, imagesDir, goldenEmbeddings, cosine } from '../testlib/common.mjs';

const MODEL = 'tiny-f32.safetensors';
const TIMEOUT = 300; // ms
const BOUND = 5000; // ms: generous for a loaded 2-core machine, far below "forever"
const chelsea = fs.readFileSync(path.join(imagesDir, 'chelsea.png'));
const want = goldenEmbeddings(MODEL)['images/chelsea.png'];

let m;
let server;
let base;
const stalled = new Set(); // responses kept open, ended in after()

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/ok.png') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': chelsea.length });
      res.end(chelsea);
    } else if (req.url.startsWith('/stall-body')) {
      // Headers and the first bytes, then nothing.
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': chelsea.length });
      res.write(chelsea.subarray(0, 100));
      stalled.add(res);
    } else if (req.url.startsWith('/no-answer')) {
      stalled.add(res); // never answers
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
  m = await ImageEmbeddings.load({ modelSource: modelPath(MODEL), cache: false, fetchTimeout: TIMEOUT });
});

after(async () => {
  m?.dispose();
  for (const res of stalled) res.destroy();
  server.closeAllConnections?.();
  await new Promise((r) => server.close(r));
});

async function expectTimeout(url) {
  const t0 = Date.now();
  await assert.rejects(m.forward(url), (e) => {
    assert.ok(e instanceof ImageEmbeddingsError, String(e));
    assert.equal(e.code, 'DownloadFailed', e.message);
    assert.match(e.message, /timed out/);
    return true;
  });
  const took = Date.now() - t0;
  assert.ok(took >= TIMEOUT - 50, `failed after ${took} ms, before the ${TIMEOUT} ms timeout`);
  assert.ok(took < BOUND, `took ${took} ms`);
}

async function expectWorks() {
  const e = await m.forward(`${base}/ok.png`);
  assert.ok(cosine(e, want) >= 0.9999);
}

test('a body that stalls after the headers times out; the next forward works', async () => {
  await expectTimeout(`${base}/stall-body/1`);
  await expectWorks();
});

test('a server that never answers times out; the next forward works', async () => {
  await expectTimeout(`${base}/no-answer/1`);
  await expectWorks();
});

test('in one batch, stalled inputs fail and the others are embedded', async () => {
  const t0 = Date.now();
  const rs = await m.forwardBatchSettled([
    `${base}/no-answer/2`, `${base}/ok.png`, `${base}/stall-body/2`, chelsea,
  ]);
  assert.ok(Date.now() - t0 < BOUND);
  assert.equal(rs[0].code, 'DownloadFailed');
  assert.equal(rs[2].code, 'DownloadFailed');
  assert.ok(cosine(rs[1], want) >= 0.9999);
  assert.ok(cosine(rs[3], want) >= 0.9999);
});

test('a forward queued behind a stalled one is not blocked', async () => {
  const t0 = Date.now();
  const [a, b] = await Promise.allSettled([m.forward(`${base}/stall-body/3`), m.forward(`${base}/ok.png`)]);
  assert.ok(Date.now() - t0 < BOUND);
  assert.equal(a.status, 'rejected');
  assert.equal(a.reason.code, 'DownloadFailed');
  assert.equal(b.status, 'fulfilled');
  assert.ok(cosine(b.value, want) >= 0.9999);
});

test('preprocess honours fetchTimeout too', async () => {
  await assert.rejects(preprocess(`${base}/no-answer/3`, { size: 8, fetchTimeout: TIMEOUT }), (e) => {
    assert.equal(e.code, 'DownloadFailed');
    assert.match(e.message, /timed out/);
    return true;
  });
});

test('fetchTimeout: 0 means no limit (a slow but finishing server works)', async () => {
  const slow = http.createServer((req, res) => {
    res.writeHead(200, { 'content-length': chelsea.length });
    res.write(chelsea.subarray(0, 100));
    setTimeout(() => res.end(chelsea.subarray(100)), 2 * TIMEOUT);
  });
  await new Promise((r) => slow.listen(0, '127.0.0.1', r));
  const m0 = await ImageEmbeddings.load({ modelSource: modelPath(MODEL), cache: false, fetchTimeout: 0 });
  try {
    const e = await m0.forward(`http://127.0.0.1:${slow.address().port}/slow.png`);
    assert.ok(cosine(e, want) >= 0.9999);
  } finally {
    m0.dispose();
    await new Promise((r) => slow.close(r));
  }
});

test('forward({signal}): aborting rejects with Aborted at once and frees the model for the next call', async () => {
  const m0 = await ImageEmbeddings.load({ modelSource: modelPath(MODEL), cache: false, fetchTimeout: 0 });
  try {
    const ac = new AbortController();
    const t0 = Date.now();
    const p = m0.forwardBatch([`${base}/no-answer/4`, `${base}/ok.png`], { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(p, (e) => {
      assert.ok(e instanceof ImageEmbeddingsError, String(e));
      assert.equal(e.code, 'Aborted', e.message);
      return true;
    });
    // With no fetchTimeout, only the abort can have freed the queue.
    const e = await m0.forward(`${base}/ok.png`);
    assert.ok(cosine(e, want) >= 0.9999);
    assert.ok(Date.now() - t0 < BOUND);
    await assert.rejects(m0.forward(chelsea, { signal: AbortSignal.abort() }), { code: 'Aborted' });
  } finally {
    m0.dispose();
  }
});
