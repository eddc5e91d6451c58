// The demo's text search and zero-shot labels in Chromium (issue 11): the
// tiny whole-CLIP checkpoint through the UI, three photos, a query typed
// key by key (debounced, live) and labels, checked against the text golden;
// the random-weights notice; a vision-only checkpoint says it cannot search.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBuild, startServer, launch, collectLogs, testdata, dot, cosine } from './helpers.mjs';

const IMAGES = ['astronaut.png', 'chelsea.png', 'coffee.png'];
const textGolden = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-text-tiny-fullclip-f32.json'), 'utf8'));

let server;
let ctx;

before(async () => {
  requireBuild();
  server = await startServer();
  ctx = await launch();
});

after(async () => {
  await ctx?.close();
  await server?.close();
});

async function loadServerModel(page, file, fail) {
  await page.goto(server.url);
  await page.locator('#server-choice').waitFor({ state: 'visible', timeout: 10_000 });
  await page.selectOption('#server-model', `/models/${file}`);
  await page.check('#kind-server');
  await page.click('#load-btn');
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.status), null, { timeout: 120_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.status), 'ready', fail(`load: ${await page.textContent('#model-error')}`));
}

test('demo: search with words and zero-shot labels on the whole-CLIP fixture', { timeout: 240_000 }, async () => {
  const page = await ctx.newPage();
  const logs = collectLogs(page);
  const fail = (msg) => `${msg}\n--- browser log ---\n${logs.join('\n')}\n--- server ---\n${server.stderr()}`;
  await loadServerModel(page, 'tiny-fullclip-f32.safetensors', fail);

  // The page says the weights are random test fixtures, in the model panel and the search panel.
  for (const sel of ['#weights-notice', '#search-notice']) {
    assert.equal(await page.locator(sel).isVisible(), true, `${sel} hidden`);
    assert.match(await page.textContent(sel), /random test weights.*test fixtures/s);
  }
  assert.equal(await page.locator('#search-tools').isVisible(), true);

  await page.setInputFiles('#image-input', IMAGES.map((n) => join(testdata, 'images', n)));
  await page.waitForFunction(() => window.__imgembedResults?.images.filter((i) => i.state === 'done').length === 3, null, { timeout: 120_000 });

  // Typed key by key: live (no Enter), debounced (fewer requests than keys).
  const query = 'a photo of a cat';
  await page.locator('#query').pressSequentially(query, { delay: 15 });
  await page.waitForFunction((q) => {
    const s = window.__imgembedResults?.search;
    return s && s.query === q && s.results.length === 3;
  }, query, { timeout: 60_000 }).catch((e) => assert.fail(fail(`no search results: ${e.message}`)));
  let res = await page.evaluate(() => window.__imgembedResults);
  assert.ok(res.search.requests < query.length, `${res.search.requests} text requests for ${query.length} keys`);
  assert.ok(cosine(res.search.queryEmbedding, textGolden[query]) >= 0.99999, 'query embedding vs golden');
  const imgs = Object.fromEntries(res.images.map((i) => [i.name, i.embedding]));
  const want = IMAGES.map((name) => ({ name, score: dot(imgs[name], textGolden[query]) })).sort((a, b) => b.score - a.score);
  assert.deepEqual(res.search.results.map((r) => r.name), want.map((w) => w.name));
  res.search.results.forEach((r, i) => assert.ok(Math.abs(r.score - want[i].score) < 1e-4, `${r.name}: ${r.score} vs ${want[i].score}`));
  const shown = await page.$$eval('#search-results li', (lis) => lis.map((li) => [li.dataset.name, li.querySelector('.score').textContent]));
  assert.deepEqual(shown, res.search.results.map((r) => [r.name, r.score.toFixed(3)]));

  // Zero-shot: three golden texts as labels; softmax of logitScale x cosine.
  const labels = ['a photo of a cat', 'A photo of a dog.', 'xylophone quixotic zephyr'];
  await page.fill('#labels', labels.join(', '));
  await page.waitForFunction(() => window.__imgembedResults?.search.zeroShot.length === 3, null, { timeout: 60_000 })
    .catch((e) => assert.fail(fail(`no zero-shot labels: ${e.message}`)));
  res = await page.evaluate(() => window.__imgembedResults);
  assert.ok(Math.abs(res.search.logitScale - 100) < 0.01, `logitScale ${res.search.logitScale}`);
  for (const z of res.search.zeroShot) {
    const logits = labels.map((l) => res.search.logitScale * dot(imgs[z.name], textGolden[l]));
    const m = Math.max(...logits);
    const e = logits.map((x) => Math.exp(x - m));
    const sum = e.reduce((a, b) => a + b, 0);
    const probs = e.map((x) => x / sum);
    const best = probs.indexOf(Math.max(...probs));
    assert.equal(z.label, labels[best], `${z.name}: ${JSON.stringify(z.probs)} vs ${probs}`);
    labels.forEach((l, i) => assert.ok(Math.abs(z.probs[l] - probs[i]) < 1e-3, `${z.name} ${l}: ${z.probs[l]} vs ${probs[i]}`));
    const row = await page.textContent(`#zeroshot tr[data-name="${z.name}"] td`);
    assert.ok(row.startsWith(z.label), row);
  }
  await page.close();
});

test('demo: a vision-only checkpoint loads, and the page says it cannot search with words', { timeout: 240_000 }, async () => {
  const page = await ctx.newPage();
  const logs = collectLogs(page);
  const fail = (msg) => `${msg}\n--- browser log ---\n${logs.join('\n')}`;
  await loadServerModel(page, 'tiny-f32.safetensors', fail);
  assert.equal(await page.locator('#text-unavailable').isVisible(), true);
  const why = await page.textContent('#text-unavailable');
  assert.match(why, /not available: this checkpoint has only the image \(vision\) tower/);
  assert.doesNotMatch(why, /token_embedding|shape/);
  assert.equal(await page.locator('#search-tools').isVisible(), false);
  assert.equal(await page.locator('#weights-notice').isVisible(), true);
  await page.close();
});
