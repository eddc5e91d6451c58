// Text embeddings (issue 11) on the real tfjs wasm backend: the text tower
// vs the golden, Range loading of the text tensors only, one whole-CLIP
// download serving both towers, and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { TextEmbeddings, ImageEmbeddings, ImageEmbeddingsError, CLIP_VIT_BASE_PATCH32_TEXT } from '../src/index.js';
import {
  testdata, modelPath, serve, rangeHandler, goldenEmbeddings, goldenPixels, cosine, maxAbsDiff, images,
} from '../testlib/common.mjs';

const FULL = 'tiny-fullclip-f32.safetensors';
const fullBytes = fs.readFileSync(modelPath(FULL));
const tokenizerPath = path.join(testdata, 'tokenizer', 'tokenizer.json');
const tokenizerBytes = fs.readFileSync(tokenizerPath);
const golden = JSON.parse(fs.readFileSync(path.join(testdata, 'golden', 'embed-text-tiny-fullclip-f32.json'), 'utf8'));
const texts = Object.keys(golden);

function checkGolden(text, got) {
  assert.ok(got instanceof Float32Array, `${JSON.stringify(text)}: not a Float32Array`);
  const cos = cosine(got, golden[text]);
  const d = maxAbsDiff(got, golden[text]);
  assert.ok(cos >= 0.99999 && d <= 1e-4, `${JSON.stringify(text)}: cosine ${cos}, max abs ${d}`);
}

// Serves the whole-CLIP file and tokenizer.json side by side (Range honoured).
function modelDir(tokenizer = tokenizerBytes) {
  const model = rangeHandler(fullBytes);
  return (req, res, entry) => {
    if (req.url === '/m/model.safetensors') return model(req, res, entry);
    if (req.url === '/m/tokenizer.json' && tokenizer) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(tokenizer);
    }
    res.writeHead(404);
    return res.end();
  };
}

test('text golden: forward and forwardBatch from local files', async (t) => {
  const m = await TextEmbeddings.load({ modelSource: modelPath(FULL), tokenizerSource: tokenizerPath, cache: false, maxBatch: 8 });
  t.after(() => m.dispose());
  assert.equal(m.config.embeddingSize, 32);
  assert.equal(m.config.heads, 2);
  assert.ok(Math.abs(m.config.logitScale - 100) < 0.01, `logitScale ${m.config.logitScale}`); // exp(4.6052)
  assert.equal(m.backend.name, 'wasm');
  for (const text of texts.slice(0, 5)) checkGolden(text, await m.forward(text));
  const all = await m.forwardBatch(texts); // 20 texts: batches of 8, 8, 4
  texts.forEach((text, i) => checkGolden(text, all[i]));
});

test('Range: a text load fetches the header, the text tensors and tokenizer.json beside the model', async (t) => {
  const srv = await serve(modelDir());
  t.after(() => srv.close());
  const m = await TextEmbeddings.load({ modelSource: `${srv.url}/m/model.safetensors`, cache: false });
  t.after(() => m.dispose());
  const modelReqs = srv.log.filter((e) => e.url === '/m/model.safetensors');
  assert.ok(modelReqs.every((e) => e.range !== null), 'every model request has a Range header');
  const sent = modelReqs.reduce((s, e) => s + e.sent, 0);
  const need = m.config.weightBytes;
  t.diagnostic(`file ${fullBytes.length} B, text weights ${need} B, transferred ${sent} B in ${modelReqs.length} requests`);
  assert.ok(sent >= need && sent <= need + 2 * 65536, `sent ${sent} bytes for ${need} bytes of text weights`);
  assert.ok(sent < fullBytes.length / 2, `sent ${sent} of ${fullBytes.length}: the vision tower travelled`);
  assert.equal(srv.log.filter((e) => e.url === '/m/tokenizer.json').length, 1);
  checkGolden(texts[0], await m.forward(texts[0]));
});

test('one whole-CLIP download serves both towers (ImageEmbeddings text: true)', async (t) => {
  const srv = await serve(modelDir());
  t.after(() => srv.close());
  const m = await ImageEmbeddings.load({ modelSource: `${srv.url}/m/model.safetensors`, cache: false, text: true });
  t.after(() => m.dispose());
  const modelReqs = srv.log.filter((e) => e.url === '/m/model.safetensors');
  const sent = modelReqs.reduce((s, e) => s + e.sent, 0);
  t.diagnostic(`file ${fullBytes.length} B, both towers ${m.config.weightBytes} B, transferred ${sent} B`);
  assert.ok(sent <= m.config.weightBytes + 2 * 65536 && sent <= fullBytes.length, `sent ${sent}`);
  const before = srv.log.length;
  const vision = goldenEmbeddings(FULL);
  const img = await m.forward({ pixels: goldenPixels(m.config.imageSize, images[0]) });
  assert.ok(cosine(img, vision[`images/${images[0]}`]) >= 0.99999);
  const text = m.text;
  assert.ok(text instanceof TextEmbeddings);
  assert.equal(m.text, text, 'one view');
  checkGolden(texts[1], await text.forward(texts[1]));
  // Mixed calls on the one model, in flight together.
  const [a, b] = await Promise.all([m.forwardBatch([{ pixels: goldenPixels(m.config.imageSize, images[1]) }]), text.forwardBatch(texts.slice(2, 4))]);
  assert.ok(cosine(a[0], vision[`images/${images[1]}`]) >= 0.99999);
  checkGolden(texts[2], b[0]);
  checkGolden(texts[3], b[1]);
  // One call mixing images and texts: results in input order, errors at their index.
  const mixed = await m.forwardBatchSettled([{ text: texts[5] }, { pixels: goldenPixels(m.config.imageSize, images[2]) }, { text: texts[6] }, new Uint8Array([1, 2, 3])]);
  checkGolden(texts[5], mixed[0]);
  assert.ok(cosine(mixed[1], vision[`images/${images[2]}`]) >= 0.99999);
  checkGolden(texts[6], mixed[2]);
  assert.ok(mixed[3] instanceof ImageEmbeddingsError && mixed[3].index === 3, String(mixed[3]));
  const mb = await m.forwardBatch([{ text: texts[7] }, { pixels: goldenPixels(m.config.imageSize, images[0]) }]);
  checkGolden(texts[7], mb[0]);
  assert.equal(srv.log.length, before, 'no request after the load');
  text.dispose(); // the view only
  await m.forward({ pixels: goldenPixels(m.config.imageSize, images[0]) });
});

test('an image model without text: true has no text view; a text model refuses images', async (t) => {
  const img = await ImageEmbeddings.load({ modelSource: modelPath(FULL), cache: false });
  t.after(() => img.dispose());
  assert.equal(img.text, undefined);
  const m = await TextEmbeddings.load({ modelSource: modelPath(FULL), tokenizerSource: tokenizerPath, cache: false });
  t.after(() => m.dispose());
  assert.equal(m.config.imageSize, undefined);
});

test('bad input: non-strings fail per input, a 1 MB string is cut, the model stays usable', async (t) => {
  const m = await TextEmbeddings.load({ modelSource: modelPath(FULL), tokenizerSource: tokenizerPath, cache: false });
  t.after(() => m.dispose());
  const rs = await m.forwardBatchSettled([42, 'a photo of a cat', null, { text: 'x' }]);
  for (const i of [0, 2, 3]) {
    assert.ok(rs[i] instanceof ImageEmbeddingsError && rs[i].code === 'InvalidInput' && rs[i].index === i, `input ${i}: ${rs[i]}`);
  }
  checkGolden('a photo of a cat', rs[1]);
  await assert.rejects(m.forward(undefined), (e) => e.code === 'InvalidInput');
  await assert.rejects(m.forwardBatch('a cat'), (e) => e.code === 'InvalidInput');
  const long = 'the quick brown fox jumps over the lazy dog '.repeat(24000); // ~1 MB
  const start = performance.now();
  const e = await m.forward(long);
  t.diagnostic(`1 MB text in ${(performance.now() - start).toFixed(0)} ms`);
  assert.equal(e.length, 32);
  // Cut to 77 tokens: the same as the golden 140-token text's prefix words.
  const cut = texts.find((s) => s.startsWith('the quick brown fox'));
  checkGolden(cut, await m.forward(long));
  checkGolden(texts[0], await m.forward(texts[0]));
});

test('a model without a text tower is InvalidModel naming what is missing', async () => {
  await assert.rejects(
    TextEmbeddings.load({ modelSource: modelPath('tiny-f32.safetensors'), tokenizerSource: tokenizerPath, cache: false }),
    (e) => e instanceof ImageEmbeddingsError && e.code === 'InvalidModel' && /token_embedding/.test(e.message),
  );
});

test('tokenizer.json: malformed is InvalidModel; missing is DownloadFailed; bytes and objects work', async (t) => {
  for (const bad of ['{"model": {"type": "WordPiece"}}', 'not json', '{}']) {
    await assert.rejects(
      TextEmbeddings.load({ modelSource: modelPath(FULL), tokenizerSource: new TextEncoder().encode(bad), cache: false }),
      (e) => e.code === 'InvalidModel' && /tokenizer/.test(e.message),
      bad,
    );
  }
  const srv = await serve(modelDir(null));
  t.after(() => srv.close());
  await assert.rejects(
    TextEmbeddings.load({ modelSource: `${srv.url}/m/model.safetensors`, cache: false }),
    (e) => e.code === 'DownloadFailed' && /404/.test(e.message),
  );
  await assert.rejects(
    TextEmbeddings.load({ modelSource: new Uint8Array(fullBytes), cache: false }),
    (e) => e.code === 'InvalidInput' && /tokenizerSource/.test(e.message),
  );
  const m = await TextEmbeddings.load({ modelSource: new Uint8Array(fullBytes), tokenizerSource: JSON.parse(tokenizerBytes.toString()), cache: false });
  checkGolden(texts[4], await m.forward(texts[4]));
  m.dispose();
  await assert.rejects(m.forward('x'), (e) => e.code === 'ModelNotLoaded');
});

test('preset', () => {
  assert.match(CLIP_VIT_BASE_PATCH32_TEXT.modelSource, /clip-vit-base-patch32\/resolve\/main\/model\.safetensors$/);
  assert.match(CLIP_VIT_BASE_PATCH32_TEXT.tokenizerSource, /clip-vit-base-patch32\/resolve\/main\/tokenizer\.json$/);
});
