// Hugging Face ids as model sources (the cases are weights/hub.go's too),
// the presets, and cosineSimilarity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as pkg from '../src/index.js';
import { hubFile } from '../src/hub.js';
import { root, testdata, images, goldenEmbeddings, cosine, serve, rangeHandler } from '../testlib/common.mjs';

test('hubFile: the shared cases', () => {
  const cases = JSON.parse(fs.readFileSync(path.join(testdata, 'hub-ids.json'), 'utf8'));
  assert.ok(cases.length >= 8);
  for (const c of cases) assert.equal(hubFile(c.id, c.file), c.want === '' ? null : c.want, c.id);
});

test('presets: one per known model, each a hub URL', () => {
  const presets = Object.entries(pkg).filter(([k]) => /^CLIP_VIT_.*_IMAGE$/.test(k));
  assert.deepEqual(presets.map(([k]) => k).sort(), [
    'CLIP_VIT_BASE_PATCH16_IMAGE', 'CLIP_VIT_BASE_PATCH32_IMAGE', 'CLIP_VIT_LARGE_PATCH14_336_IMAGE', 'CLIP_VIT_LARGE_PATCH14_IMAGE']);
  for (const [k, v] of presets) {
    assert.match(v.modelSource, /^https:\/\/huggingface\.co\/openai\/clip-vit-[a-z0-9-]+\/resolve\/main\/model\.safetensors$/, k);
    assert.ok(Object.isFrozen(v));
  }
});

test('a hub id loads from HF_ENDPOINT (local server), a local path of the same form wins', async (t) => {
  const bytes = fs.readFileSync(path.join(testdata, 'models', 'tiny-f32.safetensors'));
  const srv = await serve((req, res) => {
    if (req.url === '/acme/tiny-clip/resolve/v2/model.safetensors') rangeHandler(bytes)(req, res);
    else {
      res.writeHead(404);
      res.end();
    }
  });
  t.after(() => srv.close());
  const dir = fs.mkdtempSync(path.join(root, 'js', '.hub-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'acme'));
  fs.copyFileSync(path.join(testdata, 'models', 'tiny-f32.safetensors'), path.join(dir, 'acme', 'local-clip'));
  // A child process: HF_ENDPOINT is read when the package is imported.
  const script = `
    import { ImageEmbeddings } from ${JSON.stringify(path.join(root, 'js', 'src', 'index.js'))};
    const out = {};
    for (const id of ['acme/tiny-clip@v2', 'acme/local-clip', 'acme/missing']) {
      try {
        const m = await ImageEmbeddings.load({ modelSource: id, cache: false });
        out[id] = Array.from(await m.forward(${JSON.stringify(path.join(testdata, 'images', images[1]))}));
        m.dispose();
      } catch (e) { out[id] = { code: e.code, message: e.message }; }
    }
    console.log(JSON.stringify(out));`;
  // Asynchronously: the server answering it runs in this process.
  const r = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script],
    { cwd: dir, env: { ...process.env, HF_ENDPOINT: srv.url }, timeout: 120_000 });
  const out = JSON.parse(r.stdout);
  const want = goldenEmbeddings('tiny-f32.safetensors')[`images/${images[1]}`];
  assert.ok(cosine(out['acme/tiny-clip@v2'], want) >= 0.9999, JSON.stringify(out['acme/tiny-clip@v2']).slice(0, 200));
  assert.ok(cosine(out['acme/local-clip'], want) >= 0.9999, JSON.stringify(out['acme/local-clip']).slice(0, 200));
  assert.equal(out['acme/missing'].code, 'DownloadFailed');
  assert.match(out['acme/missing'].message, /acme\/missing\/resolve\/main\/model\.safetensors/);
  assert.ok(srv.log.some((e) => e.url.startsWith('/acme/tiny-clip/') && e.range != null));
});

test('cosineSimilarity', () => {
  assert.equal(pkg.cosineSimilarity([1, 0], [0, 1]), 0);
  assert.ok(Math.abs(pkg.cosineSimilarity(new Float32Array([3, 4]), [6, 8]) - 1) < 1e-12);
  assert.ok(Math.abs(pkg.cosineSimilarity([1, 1], [-1, -1]) + 1) < 1e-12);
  assert.equal(pkg.cosineSimilarity([0, 0], [1, 1]), 0);
  assert.throws(() => pkg.cosineSimilarity([1], [1, 2]), (e) => e.code === 'InvalidInput');
});
