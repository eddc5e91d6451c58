// The demo page in a real Chromium: load the tiny checkpoint through the UI,
// embed the three test photos plus a corrupt file, and check the numbers the
// page shows against the Hugging Face goldens.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBuild, startServer, launch, watchExternalRequests, collectLogs, ensureArtifacts, testdata, dot, cosine, synthRGB, encodeBMP, encodeTIFF } from './helpers.mjs';

const IMAGES = ['astronaut.png', 'chelsea.png', 'coffee.png'];
const golden = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-tiny-f32.json'), 'utf8'));

let server;
let ctx;
let tmp;

before(async () => {
  requireBuild();
  server = await startServer();
  ctx = await launch();
  tmp = mkdtempSync(join(tmpdir(), 'imgembed-demo-'));
});

after(async () => {
  await ctx?.close();
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('demo: tiny model through the UI, 3 photos + 1 corrupt file', { timeout: 240_000 }, async () => {
  const page = await ctx.newPage();
  const logs = collectLogs(page);
  const origin = server.url.replace(/\/$/, '');
  const external = watchExternalRequests(page, origin);
  const fail = (msg) => `${msg}\n--- browser log ---\n${logs.join('\n')}\n--- server ---\n${server.stderr()}`;

  await page.goto(server.url);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true, fail('page is not cross-origin isolated'));

  // 1. Model: the server's tiny-f32 checkpoint.
  await page.locator('#server-choice').waitFor({ state: 'visible', timeout: 10_000 });
  await page.selectOption('#server-model', '/models/tiny-f32.safetensors');
  await page.check('#kind-server');
  // Record every progress value the page shows, to check it is monotonic.
  await page.evaluate(() => {
    window.__progressSeen = [];
    const p = document.querySelector('#model-progress');
    new MutationObserver(() => window.__progressSeen.push(Number(p.value))).observe(p, { attributes: true, attributeFilter: ['data-percent'] });
  });
  await page.click('#load-btn');
  try {
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.status), null, { timeout: 120_000 });
  } catch (e) {
    assert.fail(fail(`model never became ready: ${e.message}`));
  }
  const status = await page.evaluate(() => document.body.dataset.status);
  assert.equal(status, 'ready', fail(`model failed: ${await page.textContent('#model-error')}`));

  assert.equal(await page.getAttribute('#model-progress', 'data-percent'), '100');
  assert.equal(await page.evaluate(() => document.querySelector('#model-progress').value), 1);
  assert.match(await page.textContent('#progress-text'), /100 %/);
  const seen = await page.evaluate(() => window.__progressSeen);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1] || seen[i] === 0, `progress went back: ${seen}`);

  const info = await page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll('#model-info dd')].map((d) => [d.dataset.field, d.dataset.value])));
  assert.equal(info.embeddingSize, '32');
  assert.equal(info.imageSize, '64');
  assert.equal(info.layers, '2');
  assert.equal(info.dtype, 'F32');
  assert.ok(Number(info.weightBytes) > 0, `weightBytes ${info.weightBytes}`);
  assert.equal(info.backend, 'wasm');
  assert.ok(['true', 'false'].includes(info.simd));
  assert.ok(Number(info.threads) >= 1);
  assert.equal(await page.locator('#model-info').isVisible(), true);

  // 2. Images: the three photos and a file that claims to be a PNG.
  const corrupt = join(tmp, 'broken.png');
  writeFileSync(corrupt, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('this is not really a png file at all')]));
  await page.setInputFiles('#image-input', [...IMAGES.map((n) => join(testdata, 'images', n)), corrupt]);
  try {
    await page.waitForFunction(() => {
      const r = window.__imgembedResults;
      return r && r.images.length === 4 && r.images.every((i) => i.state === 'done' || i.state === 'error');
    }, null, { timeout: 120_000 });
  } catch (e) {
    assert.fail(fail(`images not embedded: ${e.message}`));
  }
  const res = await page.evaluate(() => window.__imgembedResults);
  const byName = Object.fromEntries(res.images.map((i) => [i.name, i]));

  for (const name of IMAGES) {
    const it = byName[name];
    assert.equal(it.state, 'done', fail(`${name}: ${JSON.stringify(it.error)}`));
    const want = golden[`images/${name}`];
    assert.equal(it.embedding.length, want.length);
    const c = cosine(it.embedding, want);
    assert.ok(c >= 0.9999, `${name}: cosine to golden ${c}`);
    assert.ok(Math.abs(dot(it.embedding, it.embedding) - 1) < 1e-4, `${name}: not unit norm`);
    assert.ok(it.ms > 0);
    // The time is shown on the card.
    const statusText = await page.textContent(`.item[data-name="${name}"] .status`);
    assert.match(statusText, /\d+(\.\d+)? (ms|s)$/);
  }

  // 3. The corrupt file shows its error; the others were not affected.
  const bad = byName['broken.png'];
  assert.equal(bad.state, 'error');
  assert.ok(['CorruptImage', 'UnsupportedImageFormat'].includes(bad.error.code), `code ${bad.error.code}`);
  const badCard = page.locator('.item[data-name="broken.png"]');
  assert.equal(await badCard.getAttribute('data-state'), 'error');
  assert.match(await badCard.locator('.status').textContent(), new RegExp(bad.error.code));
  assert.equal(await badCard.locator('.status').isVisible(), true);

  // 4. The matrix: 3 x 3 cells, each the dot product of the embeddings.
  const cells = await page.$$eval('#matrix td[data-sim]', (tds) => tds.map((td) => ({
    row: Number(td.dataset.row), col: Number(td.dataset.col), sim: Number(td.dataset.sim), text: td.textContent, title: td.title,
  })));
  assert.equal(cells.length, 9);
  const order = res.matrix.names;
  assert.deepEqual(order, IMAGES);
  for (const c of cells) {
    const want = dot(byName[order[c.row]].embedding, byName[order[c.col]].embedding);
    assert.ok(Math.abs(c.sim - want) < 1e-6, `cell ${c.row},${c.col}: ${c.sim} vs ${want}`);
    assert.equal(c.text, want.toFixed(3));
    assert.ok(c.title.includes(order[c.row]) && c.title.includes(order[c.col]));
  }
  assert.equal(await page.locator('#matrix th img').count(), 6, 'thumbnails on both axes');

  // 5. "Most similar": click chelsea; the others re-order by score.
  await page.click('.item[data-name="chelsea.png"] .thumb');
  const ranked = await page.$$eval('#gallery .item', (lis) => lis.map((li) => ({ name: li.dataset.name, score: li.dataset.score })));
  assert.equal(ranked[0].name, 'chelsea.png');
  const others = ['astronaut.png', 'coffee.png']
    .map((n) => ({ n, s: dot(byName['chelsea.png'].embedding, byName[n].embedding) }))
    .sort((a, b) => b.s - a.s);
  assert.deepEqual(ranked.slice(1, 3).map((r) => r.name), others.map((o) => o.n));
  for (let k = 0; k < 2; k++) assert.ok(Math.abs(Number(ranked[k + 1].score) - others[k].s) < 1e-6);
  assert.equal(ranked[3].name, 'broken.png', 'failed image last');
  assert.equal(await page.getAttribute('.item[data-name="chelsea.png"] .thumb', 'aria-pressed'), 'true');
  assert.equal(await page.textContent(`.item[data-name="${others[0].n}"] .score`), others[0].s.toFixed(3));

  // Keyboard: the thumbnails are buttons; Enter on the query deselects.
  await page.focus('.item[data-name="chelsea.png"] .thumb');
  await page.keyboard.press('Enter');
  assert.equal(await page.getAttribute('.item[data-name="chelsea.png"] .thumb', 'aria-pressed'), 'false');
  const back = await page.$$eval('#gallery .item', (lis) => lis.map((li) => li.dataset.name));
  assert.deepEqual(back, [...IMAGES, 'broken.png'], 'original order restored');
  await page.keyboard.press('Enter');

  // Accessible basics: every image has alt text, every control a label.
  const missingAlt = await page.$$eval('img', (imgs) => imgs.filter((i) => !i.alt).length);
  assert.equal(missingAlt, 0);
  const unlabeled = await page.$$eval('input, select, button', (els) => els.filter((e) => {
    if (e.type === 'hidden') return false;
    const byFor = e.id && document.querySelector(`label[for="${e.id}"]`);
    return !(byFor || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') || (e.tagName === 'BUTTON' && e.textContent.trim()));
  }).map((e) => e.id || e.outerHTML.slice(0, 60)));
  assert.deepEqual(unlabeled, []);

  const dir = ensureArtifacts();
  await page.screenshot({ path: join(dir, 'demo.png'), fullPage: true });
  assert.deepEqual(external, [], 'nothing may load from outside the test server');
  const pageErrors = logs.filter((l) => l.startsWith('[pageerror]'));
  assert.deepEqual(pageErrors, []);
  console.log(`demo: backend ${JSON.stringify(res.backend)}, per-image ms ${res.images.map((i) => i.ms.toFixed(1)).join(', ')}`);
  await page.close();
});

test('demo: local .safetensors file (offline path) and a URL to an F16 checkpoint', { timeout: 240_000 }, async () => {
  const page = await ctx.newPage();
  const logs = collectLogs(page);
  const origin = server.url.replace(/\/$/, '');
  const external = watchExternalRequests(page, origin);
  const fail = (msg) => `${msg}\n--- browser log ---\n${logs.join('\n')}`;
  await page.goto(server.url);

  async function loadAndEmbed(goldenFile) {
    await page.click('#load-btn');
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.status) &&
      document.querySelector('#load-btn').textContent !== 'Cancel', null, { timeout: 120_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.status), 'ready', fail(await page.textContent('#model-error')));
    assert.equal(await page.getAttribute('#model-progress', 'data-percent'), '100');
    await page.waitForFunction(() => {
      const r = window.__imgembedResults;
      return r.images.length === 1 && r.images[0].state !== 'pending';
    }, null, { timeout: 120_000 });
    const res = await page.evaluate(() => window.__imgembedResults);
    const g = JSON.parse(readFileSync(join(testdata, 'golden', goldenFile), 'utf8'));
    assert.equal(res.images[0].state, 'done', fail(JSON.stringify(res.images[0].error)));
    const c = cosine(res.images[0].embedding, g['images/coffee.png']);
    assert.ok(c >= 0.9999, `${goldenFile}: cosine ${c}`);
    return res;
  }

  // A local file: read through a blob: URL, no network involved.
  await page.setInputFiles('#model-file', join(testdata, 'models', 'tiny-f32.safetensors'));
  assert.equal(await page.isChecked('#kind-file'), true, 'choosing a file selects its option');
  // An image added before the model is ready waits for it.
  await page.setInputFiles('#image-input', join(testdata, 'images', 'coffee.png'));
  assert.equal(await page.getAttribute('.item[data-name="coffee.png"]', 'data-state'), 'pending');
  let res = await loadAndEmbed('embed-tiny-f32.json');
  assert.equal(res.config.dtype, 'F32');

  // Then a URL: the F16 checkpoint; the image is embedded again with it.
  await page.fill('#model-url', new URL('/models/tiny-f16.safetensors', server.url).href);
  assert.equal(await page.isChecked('#kind-url'), true, 'typing a URL selects its option');
  res = await loadAndEmbed('embed-tiny-f16.json');
  assert.equal(res.config.dtype, 'F16');
  assert.equal(await page.textContent('#model-info [data-field=dtype]'), 'F16');

  // Offline: a checkpoint dropped on the model panel still loads (blob: URL,
  // the module and tfjs are already in memory), and a dropped image embeds.
  await ctx.setOffline(true);
  try {
    assert.equal(await page.evaluate(() => fetch('/models/').then(() => 'online', () => 'offline')), 'offline', 'emulation is offline');
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped-tiny.safetensors'));
      const target = document.querySelector('#model-panel');
      target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, readFileSync(join(testdata, 'models', 'tiny-f32.safetensors')).toString('base64'));
    assert.equal(await page.isChecked('#kind-file'), true, 'dropping a checkpoint selects "Local file"');
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.status) &&
      document.querySelector('#load-btn').textContent !== 'Cancel' && window.__imgembedResults.config?.dtype === 'F32', null, { timeout: 120_000 })
      .catch(() => {});
    assert.equal(await page.evaluate(() => document.body.dataset.status), 'ready', fail(`offline drop: ${await page.textContent('#model-error')}`));
    assert.equal(await page.textContent('#model-info [data-field=dtype]'), 'F32');
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped-chelsea.png', { type: 'image/png' }));
      document.querySelector('#image-drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, readFileSync(join(testdata, 'images', 'chelsea.png')).toString('base64'));
    await page.waitForFunction(() => {
      const r = window.__imgembedResults;
      return r.images.length === 2 && r.images.every((i) => i.state !== 'pending');
    }, null, { timeout: 120_000 });
    res = await page.evaluate(() => window.__imgembedResults);
    const g32 = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-tiny-f32.json'), 'utf8'));
    const dropped = res.images.find((i) => i.name === 'dropped-chelsea.png');
    assert.equal(dropped.state, 'done', fail(JSON.stringify(dropped.error)));
    assert.ok(cosine(dropped.embedding, g32['images/chelsea.png']) >= 0.9999);
  } finally {
    await ctx.setOffline(false);
  }

  // A URL that does not exist: a readable error, and the model loaded
  // before stays in use (a new image embeds with it).
  await page.fill('#model-url', new URL('/models/missing.safetensors', server.url).href);
  await page.click('#load-btn');
  await page.waitForFunction(() => !document.querySelector('#model-error').hidden &&
    document.querySelector('#load-btn').textContent !== 'Cancel', null, { timeout: 60_000 });
  assert.match(await page.textContent('#model-error'), /^DownloadFailed: .*missing\.safetensors.*\(the model loaded before is still in use\)$/);
  assert.equal(await page.evaluate(() => document.body.dataset.status), 'ready');
  assert.equal(await page.isVisible('#progress-text'), false, 'no stale progress text after a failed load');
  assert.equal(await page.textContent('#load-btn'), 'Load another model');
  assert.equal(await page.textContent('#model-info [data-field=dtype]'), 'F32');
  await page.setInputFiles('#image-input', join(testdata, 'images', 'astronaut.png'));
  await page.waitForFunction(() => {
    const r = window.__imgembedResults;
    return r.images.length === 3 && r.images.every((i) => i.state !== 'pending');
  }, null, { timeout: 120_000 });
  res = await page.evaluate(() => window.__imgembedResults);
  const astro = res.images.find((i) => i.name === 'astronaut.png');
  assert.equal(astro.state, 'done', fail(JSON.stringify(astro.error)));
  const gKept = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-tiny-f32.json'), 'utf8'));
  assert.ok(cosine(astro.embedding, gKept['images/astronaut.png']) >= 0.9999);
  assert.deepEqual(external, []);
  await page.close();
});

test('demo: a failed first load says so (no stale progress text); layout at 390 px and 1280 px', { timeout: 240_000 }, async () => {
  const page = await ctx.newPage();
  await page.goto(server.url);
  await page.fill('#model-url', new URL('/models/missing.safetensors', server.url).href);
  await page.click('#load-btn');
  await page.waitForFunction(() => document.body.dataset.status === 'error', null, { timeout: 60_000 });
  assert.match(await page.textContent('#model-error'), /^DownloadFailed: /);
  assert.equal(await page.isVisible('#progress-text'), false);
  assert.equal(await page.textContent('#load-btn'), 'Load model');
  const dir = ensureArtifacts();
  const checkLayout = async (state) => {
    for (const width of [390, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      await page.locator('#server-choice').waitFor({ state: 'visible', timeout: 10_000 });
      // Nothing wider than the viewport, and no content sticking out of its box.
      const over = await page.evaluate(() => {
        const out = [];
        if (document.documentElement.scrollWidth > window.innerWidth) out.push(`page ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
        for (const el of document.querySelectorAll('body *')) {
          const r = el.getBoundingClientRect();
          const name = `${el.tagName.toLowerCase()}#${el.id}.${el.className}`;
          if (r.width > 0 && r.right > window.innerWidth + 0.5) out.push(`${name} ends at ${r.right}`);
          const card = el.parentElement?.closest('.card');
          const cr = card?.getBoundingClientRect();
          if (card && r.width > 0 && getComputedStyle(el).position !== 'absolute' && r.right > cr.right + 0.5) {
            out.push(`${name} ends at ${r.right}, outside its card (${cr.right})`);
          }
          const cs = getComputedStyle(el);
          if (cs.overflowX === 'visible' && el.scrollWidth > el.clientWidth + 1 && r.left + el.scrollWidth > window.innerWidth + 0.5) {
            out.push(`${name}'s content is ${el.scrollWidth} px wide in ${el.clientWidth}`);
          }
        }
        return out;
      });
      assert.deepEqual(over, [], `overflow at ${width} px (${state})`);
      await page.screenshot({ path: join(dir, `demo-${state}-${width}.png`), fullPage: true });
    }
  };
  await checkLayout('load-error');
  // Loaded, with its facts and an image: the same at both widths.
  await page.setViewportSize({ width: 390, height: 900 });
  await page.selectOption('#server-model', '/models/tiny-f32.safetensors');
  await page.check('#kind-server');
  await page.click('#load-btn');
  await page.waitForFunction(() => document.body.dataset.status === 'ready', null, { timeout: 120_000 });
  await page.setInputFiles('#image-input', join(testdata, 'images', 'chelsea.png'));
  await page.waitForFunction(() => window.__imgembedResults.images.every((i) => i.state !== 'pending'), null, { timeout: 120_000 });
  await checkLayout('ready');
  await page.close();
});

test('demo: ViT-B/32-sized checkpoint: progress in steps, Cancel, then a full load', { timeout: 300_000 }, async () => {
  const page = await ctx.newPage();
  const logs = collectLogs(page);
  const fail = (msg) => `${msg}\n--- browser log ---\n${logs.join('\n')}`;
  const MODEL = '**/models/b32l2-f16.safetensors';
  // Hold the download back long enough to press Cancel (routes apply to the
  // worker's fetches too).
  await ctx.route(MODEL, async (route) => {
    await new Promise((r) => setTimeout(r, 4000));
    await route.continue().catch(() => {}); // the request may be gone (aborted)
  });
  await page.goto(server.url);
  await page.locator('#server-choice').waitFor({ state: 'visible' });
  await page.selectOption('#server-model', '/models/b32l2-f16.safetensors');
  await page.check('#kind-server');
  await page.click('#load-btn');
  assert.equal(await page.textContent('#load-btn'), 'Cancel');
  assert.equal(await page.isDisabled('#server-model'), true, 'model choice is locked while loading');
  await page.click('#load-btn');
  await page.waitForFunction(() => document.body.dataset.status === 'idle', null, { timeout: 30_000 });
  assert.match(await page.textContent('#model-error'), /cancelled/);
  assert.equal(await page.textContent('#load-btn'), 'Load model');
  assert.equal(await page.isDisabled('#server-model'), false);
  await ctx.unroute(MODEL);

  await page.evaluate(() => {
    window.__progressSeen = [];
    const p = document.querySelector('#model-progress');
    new MutationObserver(() => window.__progressSeen.push([Number(p.value), document.querySelector('#progress-text').textContent]))
      .observe(p, { attributes: true, attributeFilter: ['data-percent'] });
  });
  await page.click('#load-btn');
  await page.setInputFiles('#image-input', join(testdata, 'images', 'coffee.png'));
  try {
    await page.waitForFunction(() => {
      const r = window.__imgembedResults;
      return r.status === 'error' || (r.status === 'ready' && r.images.length === 1 && r.images[0].state !== 'pending');
    }, null, { timeout: 240_000 });
  } catch (e) {
    assert.fail(fail(e.message));
  }
  const res = await page.evaluate(() => window.__imgembedResults);
  assert.equal(res.status, 'ready', fail(await page.textContent('#model-error')));
  assert.equal(res.config.imageSize, 224);
  assert.equal(res.config.embeddingSize, 512);
  assert.equal(res.config.dtype, 'F16');
  const seen = await page.evaluate(() => window.__progressSeen);
  const steps = seen.filter(([p]) => p > 0 && p < 1);
  assert.ok(steps.length >= 3, `progress shown in steps: ${JSON.stringify(seen)}`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] >= seen[i - 1][0], `progress went back: ${JSON.stringify(seen)}`);
  assert.ok(steps.every(([, text]) => /^\S+ [KMGT]?B of 33\.\d MB · \d+ %$/.test(text)), `bytes and percent: ${JSON.stringify(steps.slice(0, 3))}`);
  assert.match(seen.at(-1)[1], /100 %/);
  const g = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-b32l2-f16.json'), 'utf8'));
  assert.equal(res.images[0].state, 'done', fail(JSON.stringify(res.images[0].error)));
  const c = cosine(res.images[0].embedding, g['images/coffee.png']);
  assert.ok(c >= 0.9999, `b32l2 coffee: cosine ${c}`);
  console.log(`b32l2-f16: load ${res.loadMs.toFixed(0)} ms, coffee ${res.images[0].ms.toFixed(0)} ms, ${steps.length} progress steps`);
  await page.close();
});

test('demo: a TIFF (shown via the module) embeds like a BMP of the same pixels', { timeout: 240_000 }, async () => {
  const page = await ctx.newPage();
  const logs = collectLogs(page);
  const fail = (msg) => `${msg}\n--- browser log ---\n${logs.join('\n')}`;
  const [w, h] = [120, 90];
  const rgb = synthRGB(w, h);
  const tiff = join(tmp, 'synthetic.tiff');
  const bmp = join(tmp, 'synthetic.bmp');
  writeFileSync(tiff, encodeTIFF(rgb, w, h));
  writeFileSync(bmp, encodeBMP(rgb, w, h));

  await page.goto(server.url);
  await page.locator('#server-choice').waitFor({ state: 'visible' });
  await page.selectOption('#server-model', '/models/tiny-f32.safetensors');
  await page.check('#kind-server');
  await page.click('#load-btn');
  await page.setInputFiles('#image-input', [tiff, bmp]);
  try {
    await page.waitForFunction(() => {
      const r = window.__imgembedResults;
      return r.status === 'error' || (r.images.length === 2 && r.images.every((i) => i.state !== 'pending'));
    }, null, { timeout: 120_000 });
  } catch (e) {
    assert.fail(fail(e.message));
  }
  const res = await page.evaluate(() => window.__imgembedResults);
  for (const it of res.images) assert.equal(it.state, 'done', fail(`${it.name}: ${JSON.stringify(it.error)}`));
  const c = cosine(res.images[0].embedding, res.images[1].embedding);
  assert.ok(c >= 0.99999, `TIFF vs BMP of the same pixels: cosine ${c}`);

  // Chromium cannot show TIFF: the worker draws its thumbnail with the module.
  await page.waitForSelector('.item[data-name="synthetic.tiff"][data-thumb="module"]', { timeout: 30_000 });
  const shown = await page.$eval('.item[data-name="synthetic.tiff"] .thumb img', (img) => ({ w: img.naturalWidth, hidden: img.hidden, alt: img.alt }));
  assert.deepEqual(shown, { w: 192, hidden: false, alt: 'synthetic.tiff' });
  assert.equal(await page.getAttribute('.item[data-name="synthetic.bmp"]', 'data-thumb'), null, 'BMP shown by the browser itself');
  // The module's thumbnail has the picture's colours: the disc is red-ish.
  const centre = await page.$eval('.item[data-name="synthetic.tiff"] .thumb img', (img) => {
    const c = new OffscreenCanvas(img.naturalWidth, img.naturalHeight);
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const x = Math.round(img.naturalWidth * 0.6);
    const y = Math.round(img.naturalHeight * 0.45);
    return Array.from(g.getImageData(x, y, 1, 1).data);
  });
  assert.ok(Math.abs(centre[0] - 230) <= 3 && Math.abs(centre[1] - 60) <= 3, `disc colour ${centre}`);
  const dir = ensureArtifacts();
  await page.screenshot({ path: join(dir, 'demo-tiff.png'), fullPage: true });
  await page.close();
});
