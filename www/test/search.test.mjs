// The demo's search and zero-shot helpers (www/search.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rankByText, zeroShot, parseLabels, debounce, fixtureReason, textUnavailableReason } from '../search.js';

const unit = (v) => { const n = Math.hypot(...v); return v.map((x) => x / n); };

test('rankByText orders by cosine, best first', () => {
  const imgs = [unit([1, 0]), unit([0, 1]), unit([1, 1])];
  const r = rankByText(imgs, unit([1, 0.1]));
  assert.deepEqual(r.map((x) => x.index), [0, 2, 1]);
  assert.ok(Math.abs(r[0].score - unit([1, 0.1])[0]) < 1e-12);
});

test('zeroShot is the softmax of logitScale x cosine', () => {
  const img = unit([1, 0]);
  const labels = [unit([1, 0]), unit([0, 1]), unit([1, 1])];
  const p = zeroShot(img, labels, 100);
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  const cos = [1, 0, Math.SQRT1_2];
  const e = cos.map((c) => Math.exp(100 * c));
  e.forEach((x, i) => assert.ok(Math.abs(p[i] - x / (e[0] + e[1] + e[2])) < 1e-12));
  // A smaller scale spreads the probabilities.
  assert.ok(zeroShot(img, labels, 1)[0] < p[0]);
  // Large logits do not overflow.
  assert.deepEqual(zeroShot(img, [img, img], 1e6), [0.5, 0.5]);
});

test('parseLabels', () => {
  assert.deepEqual(parseLabels(' cat, dog ,,cat\nbird\n'), ['cat', 'dog', 'bird']);
  assert.deepEqual(parseLabels(''), []);
});

test('debounce calls once, with the last arguments', async () => {
  const calls = [];
  const f = debounce((x) => calls.push(x), 20);
  f(1); f(2); f(3);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(calls, [3]);
});

test('fixtureReason: fixture names and test-size shapes; not real CLIP sizes', () => {
  assert.match(fixtureReason('/models/tiny-fullclip-f32.safetensors', null), /test fixtures/);
  assert.match(fixtureReason('https://x/model.safetensors', { layers: 2, hiddenSize: 768 }), /smaller than any published CLIP/);
  assert.match(fixtureReason('', { layers: 12, hiddenSize: 768, text: { layers: 2, hiddenSize: 64 } }), /text tower/);
  assert.equal(fixtureReason('https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/model.safetensors',
    { layers: 12, hiddenSize: 768, text: { layers: 12, hiddenSize: 512 } }), '');
});

test('textUnavailableReason says it in plain words', () => {
  assert.equal(textUnavailableReason('InvalidModel: load x: the text tower: weights: checkpoint has no complete CLIP text tower: text_model.embeddings.token_embedding.weight: missing (want shape [])'),
    'this checkpoint has only the image (vision) tower');
  assert.match(textUnavailableReason('HTTP status 404 for http://x/tokenizer.json'), /tokenizer\.json/);
  assert.match(textUnavailableReason('Invalid URL', { file: {} }), /local file/);
});
