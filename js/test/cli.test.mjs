// The imgembed command: JSON lines in input order, exit codes (0 ok, 1 an
// input failed, 2 usage/model error), progress on stderr, and preprocess
// files equal to the golden pixels within the preprocessing tolerance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { modelPath, imagesDir, images, goldenEmbeddings, goldenPixels, cosine } from '../testlib/common.mjs';

const bin = fileURLToPath(new URL('../bin/imgembed.mjs', import.meta.url));
const MODEL = 'tiny-fullclip-f32.safetensors';
const golden = goldenEmbeddings(MODEL);

function run(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, XDG_CACHE_HOME: path.join(os.tmpdir(), 'imgembed-cli-test-cache') },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr, lines: stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)) }));
  });
}

test('embed: JSON lines in input order; a failed input gives exit 1, the others still run', async () => {
  const srcs = [path.join(imagesDir, images[0]), path.join(imagesDir, 'missing.png'), path.join(imagesDir, images[1]), path.join(imagesDir, images[2])];
  const r = await run(['--model', modelPath(MODEL), '--batch', '2', '--no-cache', ...srcs]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.lines.length, 4);
  r.lines.forEach((l, i) => assert.equal(l.source, srcs[i]));
  assert.equal(r.lines[1].error.code, 'InvalidInput');
  assert.equal(typeof r.lines[1].error.message, 'string');
  for (const i of [0, 2, 3]) {
    const name = path.basename(srcs[i]);
    assert.ok(cosine(r.lines[i].embedding, golden[`images/${name}`]) >= 0.9999, name);
    assert.equal(r.lines[i].error, undefined);
  }
  assert.match(r.stderr, /100%/);
});

test('embed: all inputs ok -> exit 0', async () => {
  const r = await run(['--model', modelPath(MODEL), path.join(imagesDir, images[1])]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.lines.length, 1);
  assert.equal(r.lines[0].embedding.length, golden[`images/${images[1]}`].length);
});

test('usage and model errors -> exit 2', async () => {
  for (const args of [
    [],
    ['--batch', '0', 'x.png'],
    ['--bogus', 'x.png'],
    ['--model', path.join(imagesDir, images[0]), path.join(imagesDir, images[0])], // a PNG is not a model
    ['--model', path.join(os.tmpdir(), 'no-such-model.safetensors'), path.join(imagesDir, images[0])],
    ['preprocess', '--out', os.tmpdir(), 'x.png'],
  ]) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', args.join(' '));
    assert.ok(r.stderr.length > 0);
  }
});

test('preprocess writes the golden pixels (within the Pillow tolerance)', async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-pp-'));
  t.after(() => fs.rmSync(out, { recursive: true, force: true }));
  const std = [0.26862954, 0.26130258, 0.27577711];
  for (const size of [64, 224]) {
    const r = await run(['preprocess', '--size', String(size), '--out', out, ...images.map((i) => path.join(imagesDir, i))]);
    assert.equal(r.code, 0, r.stderr);
    for (const img of images) {
      const b = fs.readFileSync(path.join(out, `${img}.f32`));
      const got = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
      const want = goldenPixels(size, img);
      assert.equal(got.length, 3 * size * size);
      let sum = 0;
      let worst = 0;
      const plane = size * size;
      for (let i = 0; i < got.length; i++) {
        const level = Math.abs(got[i] - want[i]) * 255 * std[Math.floor(i / plane)];
        sum += level;
        worst = Math.max(worst, level);
      }
      assert.ok(sum / got.length <= 0.05, `${img}@${size}: mean ${sum / got.length} levels`);
      assert.ok(worst <= 1 + 1e-3, `${img}@${size}: worst ${worst} levels`);
    }
  }
  const bad = await run(['preprocess', '--size', '64', '--out', out, path.join(imagesDir, 'missing.png'), path.join(imagesDir, images[0])]);
  assert.equal(bad.code, 1);
  assert.equal(bad.lines.length, 2);
  assert.equal(bad.lines[0].error.code, 'InvalidInput');
  assert.ok(bad.lines[1].file.endsWith(`${images[0]}.f32`));
});

test('preprocess: a second input with the same basename fails instead of overwriting the first output', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-cli-dup-'));
  try {
    const other = path.join(tmp, 'in');
    fs.mkdirSync(other);
    const name = images[0];
    fs.copyFileSync(path.join(imagesDir, images[1]), path.join(other, name)); // different pixels, same name
    const outDir = path.join(tmp, 'out');
    const r = await run(['preprocess', '--size', '64', '--out', outDir, path.join(imagesDir, name), path.join(other, name)]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.lines.length, 2);
    assert.equal(r.lines[0].file, path.join(outDir, `${name}.f32`));
    assert.equal(r.lines[1].error.code, 'InvalidInput');
    const got = new Float32Array(new Uint8Array(fs.readFileSync(r.lines[0].file)).buffer);
    const want = goldenPixels(64, name);
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
    assert.ok(maxDiff < 0.1, `the first input's output was overwritten (max diff ${maxDiff})`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
