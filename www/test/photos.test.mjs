// Platform JPEG decoding in Chromium (js/src/sources.js: createImageBitmap
// without colour management or EXIF orientation, the module applying the
// orientation itself): on every JPEG the repository has, and on the same
// file with each EXIF orientation, the browser's pixels must be within the
// fixtures' JPEG tolerance (mean <= 0.5 level) of Pillow's decoder (libjpeg,
// stored as the *.djpeg.png next to each file), and preprocessing through
// the browser's decoder must agree with the module's own Go decoder to the
// same tolerance, orientation included. Lossless files must stay with the
// module (exact).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { requireBuild, startServer, launch, watchExternalRequests, collectLogs, repo, testdata } from './helpers.mjs';

const IMAGEFILE = join(repo, 'wasm', 'imagefile', 'testdata');

// withOrientation inserts an APP1 Exif segment (big-endian TIFF, IFD0 with
// one Orientation entry) right after the JPEG's SOI.
function withOrientation(jpg, o) {
  const tiff = Buffer.from([0x4d, 0x4d, 0, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, o, 0, 0, 0, 0, 0, 0]);
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const seg = Buffer.from([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
  return Buffer.concat([jpg.subarray(0, 2), seg, payload, jpg.subarray(2)]);
}

let server, ctx, page, logs, external;

before(async () => {
  requireBuild();
  server = await startServer();
  ctx = await launch();
  page = await ctx.newPage();
  logs = collectLogs(page);
  external = watchExternalRequests(page, server.url.replace(/\/$/, ''));
  await page.goto(new URL('test/pages/photos.html', server.url).href);
  await page.waitForFunction(() => window.__pageReady === true, null, { timeout: 30_000 });
});

after(async () => {
  await ctx?.close();
  await server?.close();
});

async function run(photos, size) {
  const arg = photos.map((p) => ({ name: p.name, b64: p.bytes.toString('base64'), pillow: p.pillow?.toString('base64') }));
  try {
    return await page.evaluate(async ({ arg, size }) => {
      const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      return window.runPhotos({ size, photos: arg.map((p) => ({ name: p.name, bytes: bytes(p.b64), pillow: p.pillow && bytes(p.pillow) })) });
    }, { arg, size });
  } catch (e) {
    throw new Error(`${e.message}\n--- browser log ---\n${logs.join('\n')}`);
  }
}

test('JPEGs: browser decode vs Pillow, and through the module', { timeout: 180_000 }, async () => {
  const photos = [];
  for (const f of readdirSync(IMAGEFILE).filter((f) => f.endsWith('.jpg')).sort()) {
    const bytes = readFileSync(join(IMAGEFILE, f));
    // The progressive file holds the 4:2:0 file's coefficients.
    const ref = join(IMAGEFILE, f.replace('-progressive', '').replace(/\.jpg$/, '.djpeg.png'));
    photos.push({ name: f, bytes, pillow: readFileSync(ref) });
  }
  assert.ok(photos.length >= 3, 'test JPEGs present');
  const base = readFileSync(join(IMAGEFILE, 'chelsea-q95-420.jpg'));
  for (let o = 2; o <= 8; o++) photos.push({ name: `chelsea-q95-420 orientation ${o}`, bytes: withOrientation(base, o) });
  const rs = await run(photos, 224);
  for (const r of rs) {
    console.log(JSON.stringify(r));
    assert.equal(r.platform, true, `${r.name}: decoded by the browser`);
    if (r.vsPillow !== undefined) {
      assert.ok(r.vsPillow, `${r.name}: same size as Pillow's decode`);
      assert.ok(r.vsPillow.mean <= 0.5, `${r.name}: browser vs Pillow mean ${r.vsPillow.mean} levels`);
    }
    assert.ok(r.preprocessedVsModule <= 0.5, `${r.name}: preprocessed, browser vs module decoder: mean ${r.preprocessedVsModule} levels`);
  }
  assert.deepEqual(external, [], 'nothing loaded from outside the server');
});

test('lossless files stay with the module', { timeout: 60_000 }, async () => {
  const photos = readdirSync(join(testdata, 'images')).filter((f) => f.endsWith('.png'))
    .map((f) => ({ name: f, bytes: readFileSync(join(testdata, 'images', f)) }));
  const rs = await run(photos, 64);
  for (const r of rs) {
    assert.equal(r.platform, false, `${r.name}: must not be decoded by the browser`);
    assert.equal(r.preprocessedVsModule, 0, `${r.name}: identical`);
  }
});
