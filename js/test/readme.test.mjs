// The JavaScript snippets of README.md and js/README.md run as written.
// A block that starts with an import is a whole program: it must import
// every name of the package it uses, and it is run by Node in a folder
// holding the files it names (cat.jpg, dog.png, ...) with HF_ENDPOINT
// pointing at a local server that answers every Hugging Face file with the
// whole-CLIP test fixture (so the presets load). Other blocks are
// fragments: the names they use must be imported by an earlier block of
// the same document.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import * as pkg from '../src/index.js';
import * as react from '../src/react.js';
import { root, testdata, serve, rangeHandler } from '../testlib/common.mjs';

const exported = new Set([...Object.keys(pkg), ...Object.keys(react)]);

function blocks(file) {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  return [...text.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
}
const importedBy = (code) => new Set([...code.matchAll(/import\s*\{([^}]*)\}\s*from\s*'imgembed(?:\/react)?'/g)]
  .flatMap((m) => m[1].split(',').map((n) => n.trim().split(/\s+as\s+/).pop()).filter(Boolean)));
const usedIn = (code) => new Set([...code.replace(/\/\/.*$/gm, '').matchAll(/\b[A-Za-z_]\w*\b/g)]
  .map((m) => m[0]).filter((n) => exported.has(n)));

for (const file of ['README.md', 'js/README.md']) {
  test(`${file}: every snippet imports what it uses`, () => {
    const bs = blocks(file);
    assert.ok(bs.length >= 2, `${file}: ${bs.length} js blocks`);
    const seen = new Set();
    for (const code of bs) {
      const whole = /^\s*import\b/.test(code);
      const mine = importedBy(code);
      for (const n of mine) assert.ok(exported.has(n), `${file}: imports ${n}, which the package does not export:\n${code}`);
      for (const n of usedIn(code)) {
        assert.ok(mine.has(n) || (!whole && seen.has(n)), `${file}: uses ${n} without importing it:\n${code}`);
      }
      for (const n of mine) seen.add(n);
    }
  });
}

test('the whole-program snippets run', { timeout: 600_000 }, async (t) => {
  const model = fs.readFileSync(path.join(testdata, 'models', 'tiny-fullclip-f32.safetensors'));
  const tokenizer = fs.readFileSync(path.join(testdata, 'tokenizer', 'tokenizer.json'));
  const hub = await serve((req, res) => {
    if (/^\/[^/]+\/[^/]+\/resolve\/[^/]+\/model\.safetensors$/.test(req.url)) return rangeHandler(model)(req, res);
    if (/^\/[^/]+\/[^/]+\/resolve\/[^/]+\/tokenizer\.json$/.test(req.url)) return rangeHandler(tokenizer)(req, res);
    res.writeHead(404);
    res.end();
  });
  t.after(() => hub.close());
  const dir = fs.mkdtempSync(path.join(root, '.readme-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const png = fs.readFileSync(path.join(testdata, 'images', 'chelsea.png'));
  const jpg = fs.readFileSync(path.join(root, 'wasm', 'imagefile', 'testdata', 'chelsea-q95-420.jpg'));
  for (const [name, bytes] of [['cat.jpg', jpg], ['dog.jpg', jpg], ['photo.jpg', jpg], ['dog.png', png], ['cat.png', png]]) {
    fs.writeFileSync(path.join(dir, name), bytes);
  }
  let n = 0;
  for (const file of ['README.md', 'js/README.md']) {
    for (const code of blocks(file).filter((c) => /^\s*import\b/.test(c))) {
      const script = path.join(dir, `snippet-${n++}.mjs`);
      fs.writeFileSync(script, code);
      try {
        await promisify(execFile)(process.execPath, [script], {
          cwd: dir, timeout: 180_000,
          env: { ...process.env, HF_ENDPOINT: hub.url, XDG_CACHE_HOME: path.join(dir, 'cache') },
        });
      } catch (e) {
        assert.fail(`${file} snippet failed (exit ${e.code}):\n${code}\n--- stderr ---\n${e.stderr}`);
      }
    }
  }
  assert.ok(n >= 4, `${n} snippets run`);
  assert.ok(hub.log.some((e) => e.url.includes('/openai/clip-vit-base-patch32/resolve/main/model.safetensors')), 'the preset was loaded from the local hub');
});
