// Fixture conformance of the built module on the real tfjs wasm backend:
// every model in testdata/models, fed the golden pixels (cosine >= 0.99999,
// max abs diff <= 1e-4; F16 goldens were computed after the upcast, as the
// loader does) and end to end from the image files (cosine >= 0.9999),
// one image at a time and as one batch. An int8 file (made by
// `imgembed-weights convert --dtype int8` from an F32 fixture) is checked
// against its source's F32 goldens at cosine >= 0.999, the int8 goal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ImageEmbeddings } from '../src/index.js';
import {
  modelsDir, imagesDir, images, goldenEmbeddings, goldenPixels, cosine, maxAbsDiff,
} from '../testlib/common.mjs';

const models = fs.readdirSync(modelsDir).filter((f) => f.endsWith('.safetensors')).sort();

test('there are fixture models', () => {
  assert.ok(models.length >= 4, `models: ${models}`);
});

// int8 fixtures and the F32 file they were converted from.
const quantised = { 'tiny-int8.safetensors': 'tiny-f32.safetensors' };

test('the int8 fixture is among the models', () => {
  assert.ok(models.includes('tiny-int8.safetensors'), `models: ${models}`);
});

for (const file of models) {
  test(`conformance ${file}`, async (t) => {
    const m = await ImageEmbeddings.load({ modelSource: path.join(modelsDir, file), cache: false, maxBatch: 4 });
    t.after(() => m.dispose());
    const int8 = file in quantised;
    const golden = goldenEmbeddings(quantised[file] ?? file);
    if (int8) assert.equal(m.config.dtype, 'I8');
    const size = m.config.imageSize;
    assert.equal(m.backend.name, 'wasm');
    assert.equal(m.config.embeddingSize, golden[`images/${images[0]}`].length);

    const check = (what, got, want, pixels) => {
      assert.ok(got instanceof Float32Array, `${what}: not a Float32Array`);
      assert.equal(got.length, want.length, what);
      const cos = cosine(got, want);
      if (int8) {
        assert.ok(cos >= 0.999, `${what}: cosine ${cos} to the F32 golden`);
      } else if (pixels) {
        assert.ok(cos >= 0.99999, `${what}: cosine ${cos}`);
        const d = maxAbsDiff(got, want);
        assert.ok(d <= 1e-4, `${what}: max abs diff ${d}`);
      } else {
        assert.ok(cos >= 0.9999, `${what}: cosine ${cos}`);
      }
      let n = 0;
      for (const v of got) n += v * v;
      assert.ok(Math.abs(Math.sqrt(n) - 1) < 1e-5, `${what}: norm ${Math.sqrt(n)}`);
    };

    await t.test('golden pixels, single', async () => {
      for (const img of images) {
        const e = await m.forward({ pixels: goldenPixels(size, img) });
        check(`${file} ${img} pixels`, e, golden[`images/${img}`], true);
      }
    });
    await t.test('golden pixels, batch', async () => {
      const es = await m.forwardBatch(images.map((img) => ({ pixels: goldenPixels(size, img) })));
      es.forEach((e, i) => check(`${file} ${images[i]} pixels batch`, e, golden[`images/${images[i]}`], true));
    });
    await t.test('image files, single', async () => {
      for (const img of images) {
        const e = await m.forward(path.join(imagesDir, img));
        check(`${file} ${img} file`, e, golden[`images/${img}`], false);
      }
    });
    await t.test('image files, batch (batches of 4 and a remainder)', async () => {
      const srcs = [...images, ...images].map((img) => path.join(imagesDir, img));
      const es = await m.forwardBatch(srcs);
      assert.equal(es.length, srcs.length);
      es.forEach((e, i) => check(`${file} ${srcs[i]} batch`, e, golden[`images/${images[i % 3]}`], false));
    });
  });
}
