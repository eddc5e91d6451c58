// Cache integrity in Node: every cached model carries the SHA-256 of its
// bytes; a damaged entry (a flipped tensor byte, cut short) is detected on
// load, removed and downloaded again, never used; offline, the load fails
// with DownloadFailed naming the damaged cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImageEmbeddings, ImageEmbeddingsError, nodeCache } from '../src/index.js';
import { modelPath, serve, rangeHandler, goldenEmbeddings, goldenPixels, cosine, images } from '../testlib/common.mjs';

const MODEL = 'tiny-f32.safetensors';
const bytes = fs.readFileSync(modelPath(MODEL));
const golden = goldenEmbeddings(MODEL);
let tmp;

before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-cache-')); });
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function assertWorks(m) {
  const img = images[0];
  const e = await m.forward({ pixels: goldenPixels(m.config.imageSize, img) });
  assert.ok(cosine(e, golden[`images/${img}`]) >= 0.99999);
}

test('a damaged cache entry is detected, removed and downloaded again', async (t) => {
  const srv = await serve(rangeHandler(bytes));
  t.after(() => srv.close());
  const dir = path.join(tmp, 'damage');
  const source = `${srv.url}/model.safetensors`;
  const load = () => ImageEmbeddings.load({ modelSource: source, cache: nodeCache(dir), revalidate: false });
  (await load()).dispose();
  const [name] = fs.readdirSync(dir);
  const entry = path.join(dir, name);
  const good = fs.readFileSync(entry);
  assert.match(good.toString('latin1', 8, 8 + Number(good.readBigUInt64LE(0))), /"imgembed\.sha256":"[0-9a-f]{64}"/);

  const damages = {
    'flipped tensor byte': (b) => { b[b.length - 777] ^= 0x04; return b; },
    truncated: (b) => b.subarray(0, b.length - 5000),
  };
  for (const [what, damage] of Object.entries(damages)) {
    fs.writeFileSync(entry, damage(Buffer.from(good)));
    const before = srv.log.length;
    const m = await load();
    assert.ok(srv.log.length > before, `${what}: the damaged entry was used (no download)`);
    await assertWorks(m);
    m.dispose();
    assert.deepEqual(fs.readFileSync(entry), good, `${what}: entry not restored`);
    // Whole again: served from the cache with no request.
    const n = srv.log.length;
    (await load()).dispose();
    assert.equal(srv.log.length, n, `${what}: the repaired entry was not used`);
  }

  const b = Buffer.from(good);
  b[b.length - 777] ^= 0x04;
  fs.writeFileSync(entry, b);
  await srv.close();
  await assert.rejects(load(), (e) => {
    assert.ok(e instanceof ImageEmbeddingsError);
    assert.equal(e.code, 'DownloadFailed');
    assert.match(e.message, /cached copy/);
    return true;
  });
  assert.equal(fs.existsSync(entry), false, 'the damaged entry is still there');
});

test('revalidation: 304 keeps the copy, a new ETag replaces it, offline keeps it, revalidate:false asks nothing', async (t) => {
  const v1 = bytes;
  const v2 = fs.readFileSync(modelPath('tiny-f16.safetensors'));
  let cur = { bytes: v1, etag: '"v1"' };
  const srv = await serve((req, res, entry) => rangeHandler(cur.bytes, { etag: cur.etag })(req, res, entry));
  t.after(() => srv.close());
  const dir = path.join(tmp, 'revalidate');
  const source = `${srv.url}/model.safetensors`;
  const load = (o = {}) => ImageEmbeddings.load({ modelSource: source, cache: nodeCache(dir), ...o });
  (await load()).dispose();

  let n = srv.log.length;
  let m = await load();
  assert.equal(srv.log.length, n + 1);
  assert.deepEqual([srv.log.at(-1).ifNoneMatch, srv.log.at(-1).status, srv.log.at(-1).sent], ['"v1"', 304, 0]);
  assert.equal(m.config.dtype, 'F32');
  m.dispose();

  n = srv.log.length;
  (await load({ revalidate: false })).dispose();
  assert.equal(srv.log.length, n, 'revalidate: false made a request');

  cur = { bytes: v2, etag: '"v2"' };
  m = await load();
  assert.equal(m.config.dtype, 'F16', 'the changed file was not downloaded');
  m.dispose();
  n = srv.log.length;
  m = await load();
  assert.equal(m.config.dtype, 'F16');
  assert.equal(srv.log.at(-1).status, 304);
  m.dispose();

  await srv.close();
  m = await load();
  assert.equal(m.config.dtype, 'F16', 'offline: the cached copy is used');
  m.dispose();
});
