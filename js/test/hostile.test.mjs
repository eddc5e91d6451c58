// Inputs and callbacks that must not hang, eat memory or lose a model:
// oversized or non-regular image files (Node paths), a throwing
// onDownloadProgress.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImageEmbeddings, ImageEmbeddingsError } from '../src/index.js';
import { modelPath, imagesDir } from '../testlib/common.mjs';

const MODEL = 'tiny-f32.safetensors';
let m;
let tmp;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-hostile-'));
  m = await ImageEmbeddings.load({ modelSource: modelPath(MODEL), cache: false });
});
after(() => {
  m?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('an image file over the 256 MiB cap fails with ImageTooLarge without being read', async () => {
  const big = path.join(tmp, 'big.png');
  const fd = fs.openSync(big, 'w');
  fs.ftruncateSync(fd, 256 * 1024 * 1024 + 1); // sparse: no disk, no memory
  fs.closeSync(fd);
  await assert.rejects(m.forward(big), (e) => e instanceof ImageEmbeddingsError && e.code === 'ImageTooLarge');
});

test('a path that is not a regular file fails with InvalidInput', async () => {
  await assert.rejects(m.forward(tmp), (e) => e instanceof ImageEmbeddingsError && e.code === 'InvalidInput');
  if (fs.existsSync('/dev/zero')) {
    // Without the check this reads forever.
    await assert.rejects(m.forward('/dev/zero'), (e) => e instanceof ImageEmbeddingsError && e.code === 'InvalidInput');
  }
  const e = await m.forward(path.join(imagesDir, 'chelsea.png'));
  assert.equal(e.length, m.config.embeddingSize);
});

test('a throwing onDownloadProgress does not fail the load', async () => {
  let calls = 0;
  const m2 = await ImageEmbeddings.load({
    modelSource: fs.readFileSync(modelPath(MODEL)),
    cache: false,
    onDownloadProgress: () => {
      calls++;
      throw new Error('callback bug');
    },
  });
  try {
    assert.equal(calls, 1);
    assert.equal(m2.config.embeddingSize, m.config.embeddingSize);
  } finally {
    m2.dispose();
  }
});

test('loading a local file leaves no abort listener on the caller\'s signal', async () => {
  const { getEventListeners } = await import('node:events');
  const controller = new AbortController();
  const m2 = await ImageEmbeddings.load({
    modelSource: modelPath('tiny-fullclip-f32.safetensors'),
    cache: false,
    signal: controller.signal,
  });
  try {
    // Let the streams of the finished requests close (asynchronously).
    const count = () => getEventListeners(controller.signal, 'abort').length;
    for (let i = 0; i < 100 && count() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(count(), 0);
  } finally {
    m2.dispose();
  }
});

test('{pixels} holding NaN or Infinity fail with InvalidInput; the model stays usable', async () => {
  const s = m.config.imageSize;
  for (const bad of [NaN, Infinity, -Infinity]) {
    const px = new Float32Array(3 * s * s);
    px[px.length >> 1] = bad;
    await assert.rejects(m.forward({ pixels: px }), (e) => e instanceof ImageEmbeddingsError && e.code === 'InvalidInput' && /finite/.test(e.message));
  }
  const px = Float32Array.from({ length: 3 * s * s }, (_, i) => (i % 7) / 7);
  const e = await m.forward({ pixels: px });
  assert.equal(e.length, m.config.embeddingSize);
});

test('a model with NaN weights fails to load with InvalidModel naming the tensor', async () => {
  const bytes = Uint8Array.from(fs.readFileSync(modelPath(MODEL)));
  const hl = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hl)));
  const name = 'vision_model.encoder.layers.0.mlp.fc1.weight';
  const at = 8 + hl + header[name].data_offsets[0] + 8;
  new DataView(bytes.buffer).setFloat32(at, NaN, true);
  await assert.rejects(
    ImageEmbeddings.load({ modelSource: bytes, cache: false }),
    (e) => e instanceof ImageEmbeddingsError && e.code === 'InvalidModel' && e.message.includes(name),
  );
});

test('a zero projection gives a per-input InvalidModel, never an all-zero "unit" vector', async () => {
  const bytes = Uint8Array.from(fs.readFileSync(modelPath(MODEL)));
  const hl = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hl)));
  const [a, b] = header['visual_projection.weight'].data_offsets;
  bytes.fill(0, 8 + hl + a, 8 + hl + b);
  const z = await ImageEmbeddings.load({ modelSource: bytes, cache: false });
  try {
    const rs = await z.forwardBatchSettled([path.join(imagesDir, 'chelsea.png')]);
    assert.ok(rs[0] instanceof ImageEmbeddingsError && rs[0].code === 'InvalidModel' && /zero-norm/.test(rs[0].message), String(rs[0]));
  } finally {
    z.dispose();
  }
});

test('node started with flags workers refuse (--max-old-space-size, --expose-gc, --title) still loads with threads', async () => {
  const { spawnSync } = await import('node:child_process');
  const { pathToFileURL } = await import('node:url');
  const script = path.join(tmp, 'flags.mjs');
  const index = pathToFileURL(path.resolve(import.meta.dirname, '../src/index.js')).href;
  fs.writeFileSync(script, `
    import { ImageEmbeddings } from ${JSON.stringify(index)};
    const m = await ImageEmbeddings.load({ modelSource: ${JSON.stringify(modelPath(MODEL))}, cache: false, threads: 2 });
    const e = await m.forward(${JSON.stringify(path.join(imagesDir, 'chelsea.png'))});
    console.log(JSON.stringify({ n: e.length, gc: typeof globalThis.gc, title: process.title }));
    m.dispose();
  `);
  const r = spawnSync(process.execPath, ['--max-old-space-size=512', '--expose-gc', '--title=x', script], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1));
  assert.equal(out.n, m.config.embeddingSize);
  assert.equal(out.gc, 'function', 'the flags reached the main thread');
  assert.equal(out.title, 'x');
});

test('a file whose name is not UTF-8: a file: URL with its bytes percent-escaped reads it (API), the CLI reads it by the bytes given and prints them surrogate-escaped', async () => {
  const { Buffer } = await import('node:buffer');
  const { spawnSync } = await import('node:child_process');
  const dirBytes = Buffer.from(tmp + '/');
  const nameBytes = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x6e, 0x2e, 0x70, 0x6e, 0x67]); // bad\xff\xfen.png
  fs.copyFileSync(path.join(imagesDir, 'chelsea.png'), Buffer.concat([dirBytes, nameBytes]));
  const want = await m.forward(path.join(imagesDir, 'chelsea.png'));
  const url = new URL(`file://${tmp}/bad%FF%FEn.png`);
  assert.deepEqual(await m.forward(url), want);
  await assert.rejects(m.forward(new URL(`file://${tmp}/bad%FFgone.png`)), (e) => e.code === 'InvalidInput' && /ENOENT/.test(e.message));

  // The CLI, given the raw bytes as an argument (a shell's printf makes them).
  const cli = path.resolve(import.meta.dirname, '../bin/imgembed.mjs');
  const r = spawnSync('/bin/sh', ['-c', `exec "$0" "$1" --no-cache --model "$2" "$(printf 'bad\\377\\376n.png')"`, process.execPath, cli, modelPath(MODEL)],
    { cwd: tmp, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const line = r.stdout.trim();
  assert.ok(line.startsWith('{"source":"bad\\udcff\\udcfen.png","embedding":['), line.slice(0, 80));
  const got = JSON.parse(line).embedding;
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-6);
});

test('maxDecodeBytes: an image whose decoding would exceed the budget fails with ImageTooLarge before decoding', async () => {
  const small = await ImageEmbeddings.load({ modelSource: modelPath(MODEL), cache: false, maxDecodeBytes: 100_000 });
  try {
    const rs = await small.forwardBatchSettled([path.join(imagesDir, 'coffee.png')]);
    assert.ok(rs[0] instanceof ImageEmbeddingsError && rs[0].code === 'ImageTooLarge' && /budget/.test(rs[0].message), String(rs[0]));
  } finally {
    small.dispose();
  }
  // The default budget embeds it.
  assert.equal((await m.forward(path.join(imagesDir, 'coffee.png'))).length, m.config.embeddingSize);
});
