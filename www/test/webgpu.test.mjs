// The package on tfjs's WebGPU backend in headless Chromium without a GPU:
// Chromium's software adapter (SwiftShader, with --enable-unsafe-webgpu).
// Fixture conformance (golden pixels and the photos) on the main thread and
// in a module Worker, no JS copy of the weights kept, backend 'auto' falling
// back to wasm (no adapter; software adapter), and device loss.
// Software WebGPU is slow: the tiny fixture only.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repo, requireBuild, startServer, launch, collectLogs, watchExternalRequests, testdata, cosine, median, WEBGPU_ARGS } from './helpers.mjs';

const MODEL = '/models/tiny-f32.safetensors';
const IMAGES = ['astronaut.png', 'chelsea.png', 'coffee.png'];
const golden = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-tiny-f32.json'), 'utf8'));
const want = (name) => golden[`images/${name}`];

let server;
const contexts = [];
const external = [];

before(async () => {
  requireBuild();
  server = await startServer();
});

after(async () => {
  for (const c of contexts) await c.close();
  await server?.close();
});

async function openPage(args) {
  const ctx = await launch({ args });
  contexts.push(ctx);
  const page = await ctx.newPage();
  const logs = collectLogs(page);
  const ext = watchExternalRequests(page, server.url.replace(/\/$/, ''));
  await page.goto(new URL('test/pages/webgpu.html', server.url).href);
  await page.waitForFunction(() => window.__pageReady === true, null, { timeout: 30_000 });
  const call = async (where, fn, opts) => {
    try {
      return await page.evaluate(async ({ where, fn, opts }) => {
        const u8 = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const o = { ...opts };
        if (o.images) o.images = o.images.map((i) => ({ name: i.name, bytes: u8(i.b64) }));
        if (o.pixels) o.pixels = o.pixels.map((p) => ({ name: p.name, f32: new Float32Array(u8(p.b64).buffer) }));
        if (o.wasm) o.wasm = u8(o.wasm);
        return where === 'worker' ? window.runWorker(fn, o) : window.run(fn, o);
      }, { where, fn, opts });
    } catch (e) {
      throw new Error(`${e.message}\n--- browser log ---\n${logs.join('\n')}`);
    } finally {
      external.push(...ext.splice(0));
    }
  };
  return { page, call, logs };
}

const images = IMAGES.map((name) => ({ name, b64: readFileSync(join(testdata, 'images', name)).toString('base64') }));
const pixels = IMAGES.map((name) => ({ name, b64: readFileSync(join(testdata, 'golden', 'pixels-64', `${name}.f32`)).toString('base64') }));

const pixels224 = IMAGES.map((name) => ({ name, b64: readFileSync(join(testdata, 'golden', 'pixels-224', `${name}.f32`)).toString('base64') }));
const goldenB32 = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-b32l2-f16.json'), 'utf8'));

function checkSwiftShader(b, where) {
  assert.equal(b.name, 'webgpu', `${where}: ${JSON.stringify(b)}`);
  assert.equal(b.adapter.architecture, 'swiftshader', `${where}: adapter ${JSON.stringify(b.adapter)}`);
  assert.equal(b.adapter.isFallbackAdapter, true);
  assert.equal(b.software, true);
}

function checkConformance(r) {
  checkSwiftShader(r.backend, r.where);
  assert.equal(r.tfBackend, 'webgpu');
  // Weights went to the GPU and no JS array of them is left in tfjs.
  assert.ok(r.weightsWritten >= 20, `${r.where}: only ${r.weightsWritten} tensors written`);
  assert.equal(r.jsCopies, 0, `${r.where}: ${r.jsCopies} tensors keep a JS copy after load`);
  for (const name of IMAGES) {
    const ci = cosine(r.images[name], want(name));
    assert.ok(ci >= 0.9999, `${r.where} photo ${name}: cosine ${ci}`);
    const cp = cosine(r.pixels[name], want(name));
    assert.ok(cp >= 0.9999, `${r.where} golden pixels ${name}: cosine ${cp}`);
  }
  IMAGES.forEach((name, i) => {
    const c = cosine(r.batch[i], r.images[name]);
    assert.ok(c >= 0.99999, `${r.where} batch ${name}: cosine ${c}`);
  });
  assert.equal(r.badInput.isError, true);
  assert.ok(['CorruptImage', 'UnsupportedImageFormat'].includes(r.badInput.code), `bad input code ${r.badInput.code}`);
}

let gpu; // the page of the Chromium with WebGPU, opened by the first test that needs it
async function gpuPage() {
  gpu ??= await openPage(WEBGPU_ARGS);
  return gpu;
}

test('WebGPU (SwiftShader): fixture conformance on the main thread', { timeout: 240_000 }, async () => {
  const r = await (await gpuPage()).call('main', 'conformance', { backend: 'webgpu', model: MODEL, images, pixels, repeat: 3 });
  console.log(`webgpu main: adapter ${JSON.stringify(r.backend.adapter)} load ${r.loadMs.toFixed(0)} ms, ` +
    `forward (golden pixels, software) median ${median(r.repeatMs).toFixed(0)} ms`);
  checkConformance(r);
});

test('WebGPU (SwiftShader): fixture conformance in a module Worker', { timeout: 240_000 }, async () => {
  const r = await (await gpuPage()).call('worker', 'conformance', { backend: 'webgpu', model: MODEL, images, pixels });
  assert.equal(r.where, 'worker');
  checkConformance(r);
});

test("'auto' with a software-only adapter chooses wasm and says why; 'webgpu' takes it", { timeout: 120_000 }, async () => {
  const r = await (await gpuPage()).call('main', 'choose', { model: MODEL });
  assert.equal(r.hasGPU, true);
  assert.equal(r.auto.name, 'wasm', JSON.stringify(r.auto));
  assert.equal(r.auto.requested, 'auto');
  assert.match(r.auto.reason, /software fallback/);
  checkSwiftShader(r.webgpu, 'explicit webgpu');
  assert.deepEqual(r.bogus, { isError: true, code: 'InvalidInput' });
});

test('device lost: pending and later forwards fail with ModelNotLoaded, a new load works, wasm models unaffected', { timeout: 240_000 }, async () => {
  const r = await (await gpuPage()).call('main', 'deviceLost', { model: MODEL, pixels });
  console.log(`device lost: pending ${JSON.stringify(r.pending)}`);
  const g = want(IMAGES[0]);
  assert.ok(cosine(r.before, g) >= 0.9999, `before: ${cosine(r.before, g)}`);
  for (const [k, v] of [['pending', r.pending], ['later', r.later], ['laterBatch', r.laterBatch]]) {
    assert.equal(v.isError, true, `${k}: ${JSON.stringify(v)}`);
    assert.equal(v.code, 'ModelNotLoaded', `${k}: ${JSON.stringify(v)}`);
    assert.match(v.message, /WebGPU device was lost.*load the model again/, k);
  }
  checkSwiftShader(r.reloaded, 'reloaded');
  assert.ok(cosine(r.after, g) >= 0.9999, `after reload: ${cosine(r.after, g)}`);
  // Lost mid-forward: finished before the loss (a correct embedding) or
  // ModelNotLoaded; nothing else (no wrong numbers, no other code).
  const mid = r.midForward;
  console.log(`device lost ${r.midDelayMs} ms into a forward (${r.midForwardMs.toFixed(0)} ms): ${mid.ok ? 'finished first' : mid.code}`);
  if (mid.ok) assert.ok(cosine(mid.ok, g) >= 0.9999, `mid-forward result: ${cosine(mid.ok, g)}`);
  else assert.equal(mid.code, 'ModelNotLoaded', JSON.stringify(mid));
  assert.ok(cosine(r.afterSecondLoss, g) >= 0.9999, `after the second loss: ${cosine(r.afterSecondLoss, g)}`);
  for (const k of ['wasmBefore', 'wasmAfter', 'wasmAfterReload']) {
    assert.ok(cosine(r[k], g) >= 0.9999, `${k}: ${cosine(r[k], g)}`);
  }
});

test('device lost during a load: a typed error (at load or at the first forward), never numbers; the next load works', { timeout: 240_000 }, async () => {
  const r = await (await gpuPage()).call('main', 'deviceLostDuringLoad', { model: MODEL, pixels });
  console.log(`device destroyed at load progress ${r.destroyedAt}: load ${JSON.stringify(r.load)}, forward ${JSON.stringify(r.forward && (r.forward.ok ? 'ok' : r.forward))}`);
  assert.notEqual(r.destroyedAt, null, 'the load reported no progress: nothing was destroyed');
  if (r.load.ok) {
    assert.equal(r.forward.isError, true, `a model loaded on a lost device embedded: ${JSON.stringify(r.forward).slice(0, 200)}`);
    assert.equal(r.forward.code, 'ModelNotLoaded', JSON.stringify(r.forward));
  } else {
    assert.equal(r.load.isError, true, JSON.stringify(r.load));
    assert.ok(['ModelNotLoaded', 'InvalidModel'].includes(r.load.code), JSON.stringify(r.load));
  }
  checkSwiftShader(r.reloaded, 'reloaded');
  assert.ok(cosine(r.after, want(IMAGES[0])) >= 0.9999, `after reload: ${cosine(r.after, want(IMAGES[0]))}`);
});

test('WebGPU (SwiftShader): text tower and image tower of one CLIP file', { timeout: 240_000 }, async () => {
  const goldenText = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-text-tiny-fullclip-f32.json'), 'utf8'));
  const goldenFull = JSON.parse(readFileSync(join(testdata, 'golden', 'embed-tiny-fullclip-f32.json'), 'utf8'));
  const tokenizer = JSON.parse(readFileSync(join(testdata, 'tokenizer', 'tokenizer.json'), 'utf8'));
  const texts = Object.keys(goldenText).slice(0, 3);
  const r = await (await gpuPage()).call('main', 'textTower', { backend: 'webgpu', model: '/models/tiny-fullclip-f32.safetensors', tokenizer, texts, pixels: pixels.slice(0, 1) });
  checkSwiftShader(r.backend, 'text');
  for (const t of texts) {
    const c = cosine(r.texts[t], goldenText[t]);
    assert.ok(c >= 0.9999, `text ${JSON.stringify(t)}: cosine ${c}`);
  }
  const c = cosine(r.pixels[IMAGES[0]], goldenFull[`images/${IMAGES[0]}`]);
  assert.ok(c >= 0.9999, `image tower: cosine ${c}`);
});

// The op list's contract on WebGPU: every op of the tiny graph against the
// Go kernels, each within its float32 bound (see wasm/internal/opdiff and
// js/test/differential.test.mjs, which runs the same against tfjs-wasm).
test('differential: every op of the graph on tfjs-webgpu agrees with native Go within its float32 bound', { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgembed-opdiff-'));
  let wasm;
  try {
    execFileSync(process.env.GO || 'go', ['build', '-o', join(dir, 'opdiff.wasm'), './wasm/internal/opdiff/cmd/opdiff'], {
      cwd: repo, env: { ...process.env, GOOS: 'js', GOARCH: 'wasm' }, stdio: ['ignore', 'inherit', 'inherit'],
    });
    wasm = readFileSync(join(dir, 'opdiff.wasm')).toString('base64');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const model = process.env.OPDIFF_MODEL || MODEL; // e.g. /models/b32l2-f16.safetensors (224 px)
  const px = model.includes('b32') ? pixels224.slice(0, 1) : pixels.slice(0, 2);
  const t0 = Date.now();
  const { code, report, backend } = await (await gpuPage()).call('main', 'opdiff', { wasm, model, pixels: px });
  t.diagnostic(`${model}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  assert.equal(code, 0, 'opdiff exit code (see the browser log)');
  assert.equal(backend, 'webgpu');
  t.diagnostic(`${report.records.length} ops compared on WebGPU (SwiftShader); worst per op:`);
  for (const line of report.summary.trim().split('\n')) t.diagnostic(line);
  const seen = new Set(report.records.map((r) => r.op));
  // Every op the vision graph's forward runs.
  for (const op of ['Tensor', 'MatMul', 'FusedMatMul', 'Add', 'Sub', 'Mul', 'Sigmoid', 'Rsqrt', 'Softmax', 'Mean',
    'Reshape', 'Transpose', 'Slice', 'DepthwiseConv2d']) {
    assert.ok(seen.has(op), `op ${op} never ran`);
  }
  const describe = (r) => `#${r.seq} ${r.op}(${r.args}) in=${JSON.stringify(r.in_shapes)} out=${JSON.stringify(r.shape)}` +
    `: max_abs=${r.max_abs.toExponential(3)} max_rel=${r.max_rel.toExponential(3)} ratio=${r.ratio.toPrecision(3)}` +
    ` (element ${r.worst}: tfjs ${r.a} vs native ${r.b})${r.nan ? ' NaN' : ''}`;
  const bad = report.records.filter((r) => !r.within);
  assert.equal(bad.length, 0, `${bad.length} op(s) outside their float32 bound, first:\n  ${bad.slice(0, 8).map(describe).join('\n  ')}`);
  for (const r of report.records) assert.ok(r.ratio <= 1 && !r.nan && !r.shape_b, describe(r));
  report.embeddings.tfjs.forEach((e, i) => {
    const g = model.includes('b32') ? goldenB32[`images/${IMAGES[i]}`] : want(IMAGES[i]);
    const c = cosine(e, g);
    assert.ok(c >= 0.9999, `webgpu alone, image ${i}: cosine ${c}`);
  });
});

// The demo on WebGPU, then switched to wasm with its backend picker: the
// same photos, embedded again on the new backend, match the goldens.
test('demo: backend picker loads on WebGPU, then switches to wasm', { timeout: 300_000 }, async () => {
  const page = await (await gpuPage()).page.context().newPage();
  const logs = collectLogs(page);
  const ext = watchExternalRequests(page, server.url.replace(/\/$/, ''));
  const fail = (msg) => `${msg}\n--- browser log ---\n${logs.join('\n')}`;
  try {
    await page.goto(server.url);
    await page.locator('#server-choice').waitFor({ state: 'visible', timeout: 10_000 });
    await page.selectOption('#server-model', MODEL);
    await page.check('#kind-server');
    const loadOn = async (backend) => {
      await page.selectOption('#backend', backend);
      await page.click('#load-btn');
      try {
        // Ready on the backend asked for ('auto' marks its choice with requested).
        await page.waitForFunction((b) => {
          const r = window.__imgembedResults;
          if (r?.status === 'error') return true;
          return r?.status === 'ready' && (b === 'auto' ? r.backend?.requested === 'auto' : r.backend?.name === b && !r.backend.requested);
        }, backend, { timeout: 120_000 });
      } catch (e) {
        const r = await page.evaluate(() => window.__imgembedResults);
        assert.fail(fail(`load on ${backend}: ${e.message}; page state ${JSON.stringify({ status: r?.status, backend: r?.backend })}`));
      }
      const r = await page.evaluate(() => window.__imgembedResults);
      assert.equal(r.status, 'ready', fail(`load on ${backend}: ${await page.textContent('#model-error')}`));
      return Object.fromEntries(await page.$$eval('#model-info dd', (dds) => dds.map((d) => [d.dataset.field, d.dataset.value])));
    };
    const embedded = async () => {
      await page.waitForFunction(() => {
        const r = window.__imgembedResults;
        return r && r.images.length === 3 && r.images.every((i) => i.state === 'done' || i.state === 'error');
      }, null, { timeout: 180_000 });
      const r = await page.evaluate(() => window.__imgembedResults);
      for (const it of r.images) {
        assert.equal(it.state, 'done', fail(`${it.name}: ${JSON.stringify(it.error)}`));
        const c = cosine(it.embedding, want(it.name));
        assert.ok(c >= 0.9999, `${r.backend.name} ${it.name}: cosine ${c}`);
      }
      return r;
    };

    const gpuInfo = await loadOn('webgpu');
    assert.equal(gpuInfo.backend, 'webgpu');
    assert.equal(gpuInfo.adapter, 'swiftshader');
    await page.setInputFiles('#image-input', IMAGES.map((n) => join(testdata, 'images', n)));
    const r1 = await embedded();
    assert.equal(r1.backend.name, 'webgpu');

    const wasmInfo = await loadOn('wasm');
    assert.equal(wasmInfo.backend, 'wasm');
    assert.ok(Number(wasmInfo.threads) >= 1);
    const r2 = await embedded(); // a new model embeds the gallery again
    assert.equal(r2.backend.name, 'wasm');
    r2.images.forEach((it, i) => {
      const c = cosine(it.embedding, r1.images[i].embedding);
      assert.ok(c >= 0.9999, `${it.name}: wasm vs webgpu cosine ${c}`);
    });

    // 'auto' on a software-only adapter: wasm, and the page says why.
    const autoInfo = await loadOn('auto');
    assert.equal(autoInfo.backend, 'wasm');
    assert.match(await page.textContent('#model-info [data-field=backend]'), /software fallback/);
  } finally {
    external.push(...ext.splice(0));
    await page.close();
  }
});

test("no adapter (Chromium without --enable-unsafe-webgpu): 'auto' is wasm, 'webgpu' fails with InvalidModel", { timeout: 120_000 }, async () => {
  const plain = await openPage([]);
  for (const where of ['main', 'worker']) {
    const r = await plain.call(where, 'choose', { model: MODEL });
    assert.equal(r.auto.name, 'wasm', `${where}: ${JSON.stringify(r.auto)}`);
    assert.equal(r.auto.requested, 'auto');
    assert.match(r.auto.reason, /no WebGPU/, where);
    assert.equal(r.webgpu.error?.isError, true, `${where}: ${JSON.stringify(r.webgpu)}`);
    assert.equal(r.webgpu.error.code, 'InvalidModel');
    assert.match(r.webgpu.error.message, /WebGPU/);
  }
});

test('nothing loaded from outside the server', () => {
  assert.deepEqual(external, []);
});
