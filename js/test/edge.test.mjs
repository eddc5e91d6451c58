// The package in the edge runtimes pinned in package-lock.json: Deno and Bun
// (fixture conformance, the package imported by name, sources, typed
// errors) and Cloudflare's workerd (the example Worker of
// js/examples/cloudflare-worker over HTTP on 127.0.0.1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { root, testdata, images, goldenEmbeddings, cosine, serve, rangeHandler } from '../testlib/common.mjs';

const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const edge = path.join(root, 'js', 'testlib', 'edge');

/** Runs a command to completion: {code, stdout, stderr}. */
function run(cmd, args, { timeout = 240_000 } = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeout);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** Serves testdata/models and testdata/images (Range honoured). */
function fixtureServer() {
  return serve((req, res) => {
    const m = /^\/(models|images)\/([\w.-]+)$/.exec(req.url);
    const file = m && path.join(testdata, m[1], m[2]);
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404);
      res.end();
      return;
    }
    rangeHandler(fs.readFileSync(file))(req, res);
  });
}

function closingLine(out, word) {
  const m = new RegExp(`^${word}: (\\d+) passed, (\\d+) failed$`, 'm').exec(out);
  return m ? { passed: Number(m[1]), failed: Number(m[2]) } : null;
}

const runtimes = [
  { name: 'deno', cmd: bin('deno'), args: (s, ...a) => ['run', '-A', '--node-modules-dir=manual', s, ...a], sources: 'sources-deno.mjs' },
  { name: 'bun', cmd: bin('bun'), args: (s, ...a) => [s, ...a], sources: 'sources-bun.mjs' },
];

for (const rt of runtimes) {
  test(`${rt.name}: fixture conformance (golden pixels, photos, a corrupt file)`, async () => {
    const r = await run(rt.cmd, rt.args(path.join(edge, 'conformance.mjs')));
    const c = closingLine(r.stdout, 'conformance');
    assert.ok(c, `no closing line; code ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.equal(c.failed, 0, r.stderr);
    assert.ok(c.passed >= 30, r.stdout);
    assert.equal(r.code, 0, r.stderr);
    // XNNPACK threads run in both (Deno through its worker_threads).
    for (const line of r.stdout.split('\n').filter((l) => l.startsWith('{'))) {
      const j = JSON.parse(line);
      assert.equal(j.backend.name, 'wasm');
      assert.ok(j.backend.threads >= 1);
    }
  });

  test(`${rt.name}: the package by name, models and images from paths, bytes and URLs`, async (t) => {
    const srv = await fixtureServer();
    t.after(() => srv.close());
    const r = await run(rt.cmd, rt.args(path.join(edge, rt.sources), srv.url));
    const c = closingLine(r.stdout, 'sources');
    assert.ok(c, `no closing line; code ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.equal(c.failed, 0, r.stderr);
    assert.equal(r.code, 0, r.stderr);
    // The URL model was fetched by Range: no request for the whole file.
    const model = srv.log.filter((e) => e.url === '/models/tiny-f32.safetensors');
    assert.ok(model.length >= 2 && model.every((e) => e.range != null), JSON.stringify(model));
  });

  test(`${rt.name}: the CLI`, async () => {
    const r = await run(rt.cmd, rt.args(path.join(root, 'js', 'bin', 'imgembed.mjs'), '--model',
      path.join(testdata, 'models', 'tiny-f32.safetensors'), path.join(testdata, 'images', 'coffee.png'),
      path.join(testdata, 'models', 'tiny-f32.safetensors')));
    assert.equal(r.code, 1, r.stderr); // one input is not an image
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    const golden = goldenEmbeddings('tiny-f32.safetensors');
    assert.ok(cosine(lines[0].embedding, golden['images/coffee.png']) >= 0.9999);
    assert.equal(lines[1].error.code, 'UnsupportedImageFormat');
  });
}

// A package installed without its module (e.g. packed before make build).
for (const rt of [{ name: 'node', cmd: process.execPath, args: (s) => [s] }, ...runtimes]) {
  test(`${rt.name}: a missing dist/imgembed.wasm is a typed load error`, async (t) => {
    const dir = fs.mkdtempSync(path.join(root, 'js', '.edge-nowasm-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.cpSync(path.join(root, 'js', 'src'), path.join(dir, 'src'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'dist'));
    fs.copyFileSync(path.join(root, 'js', 'dist', 'wasm_exec.js'), path.join(dir, 'dist', 'wasm_exec.js'));
    const script = path.join(dir, 'try.mjs');
    fs.writeFileSync(script, `import { ImageEmbeddings } from './src/index.js';
      try {
        await ImageEmbeddings.load({ modelSource: ${JSON.stringify(path.join(testdata, 'models', 'tiny-f32.safetensors'))}, cache: false });
        console.log('loaded');
      } catch (e) {
        console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message }));
      }`);
    const r = await run(rt.cmd, rt.args(script));
    const j = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.equal(j.name, 'ImageEmbeddingsError', r.stdout + r.stderr);
    assert.equal(j.code, 'InvalidModel');
    assert.match(j.message, /imgembed\.wasm/);
  });
}

test('no SharedArrayBuffer: one thread, same numbers (Node)', async () => {
  const script = `delete globalThis.SharedArrayBuffer;
    const { ImageEmbeddings } = await import(${JSON.stringify(path.join(root, 'js', 'src', 'index.js'))});
    const m = await ImageEmbeddings.load({ modelSource: ${JSON.stringify(path.join(testdata, 'models', 'tiny-f32.safetensors'))}, cache: false });
    const e = await m.forward(${JSON.stringify(path.join(testdata, 'images', 'coffee.png'))});
    console.log(JSON.stringify({ backend: m.backend, embedding: Array.from(e) }));`;
  const r = await run(process.execPath, ['--input-type=module', '-e', script]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.backend.threads, 1);
  assert.ok(cosine(j.embedding, goldenEmbeddings('tiny-f32.safetensors')['images/coffee.png']) >= 0.9999);
});

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** Starts the example Worker in workerd; resolves once /healthz answers. */
async function startWorker(t, dist, modelUrl, memoryLimitMB) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-workerd-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const f of fs.readdirSync(dist)) fs.copyFileSync(path.join(dist, f), path.join(dir, f));
  const config = fs.readFileSync(path.join(root, 'js', 'examples', 'cloudflare-worker', 'workerd.capnp.in'), 'utf8')
    .replaceAll('@MODEL_URL@', modelUrl).replaceAll('@MEMORY_LIMIT_MB@', String(memoryLimitMB));
  fs.writeFileSync(path.join(dir, 'workerd.capnp'), config);
  const port = await freePort();
  const p = spawn(bin('workerd'), ['serve', path.join(dir, 'workerd.capnp'), '--socket-addr', `http=127.0.0.1:${port}`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d) => { stderr += d; });
  t.after(() => p.kill('SIGKILL'));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { url, stderr: () => stderr };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`workerd did not start: ${stderr}`);
}

const buildWorker = (...args) => execFileSync(process.execPath,
  [path.join(root, 'js', 'examples', 'cloudflare-worker', 'build.mjs'), ...args], { encoding: 'utf8' }).trim();

test('workerd: fixture conformance (golden pixels, photos, a corrupt file) inside a Worker', async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-conf-worker-'));
  t.after(() => fs.rmSync(out, { recursive: true, force: true }));
  const dist = buildWorker(path.join(edge, 'conformance-worker.js'), out);
  const srv = await serve((req, res) => {
    const rel = decodeURIComponent(req.url.slice(1));
    const file = path.join(testdata, rel);
    if (rel.includes('..') || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      res.end();
      return;
    }
    rangeHandler(fs.readFileSync(file))(req, res);
  });
  t.after(() => srv.close());
  const w = await startWorker(t, dist, 'unused', 96);
  const models = fs.readdirSync(path.join(testdata, 'models')).filter((f) => f.endsWith('.safetensors')).sort();
  const r = await fetch(`${w.url}/?base=${encodeURIComponent(srv.url)}&models=${models.join(',')}`);
  const out2 = await r.text();
  const c = closingLine(out2, 'conformance');
  assert.ok(c, `${r.status} ${out2} ${w.stderr()}`);
  assert.equal(c.failed, 0, out2);
  assert.ok(c.passed >= 30, out2);
});

test('workerd: the example Worker embeds 3 photos, answers a corrupt file with a typed error and keeps serving', async (t) => {
  const dist = buildWorker();
  const srv = await fixtureServer();
  t.after(() => srv.close());
  const w = await startWorker(t, dist, `${srv.url}/models/tiny-f32.safetensors`, 96);
  const golden = goldenEmbeddings('tiny-f32.safetensors');
  const post = async (body, type = 'application/octet-stream') => {
    const r = await fetch(`${w.url}/embed`, { method: 'POST', body, headers: { 'content-type': type } });
    return { status: r.status, json: await r.json() };
  };
  for (const img of images) {
    const r = await post(fs.readFileSync(path.join(testdata, 'images', img)));
    assert.equal(r.status, 200, `${img}: ${JSON.stringify(r.json)} ${w.stderr()}`);
    assert.ok(cosine(r.json.embedding, golden[`images/${img}`]) >= 0.9999, img);
    // backend 'auto' (the default) says why it is not WebGPU: no navigator.gpu in workerd.
    assert.deepEqual(r.json.backend, { name: 'wasm', simd: true, threads: 1, requested: 'auto', reason: 'no WebGPU (navigator.gpu is missing)' });
  }
  const bad = await post(fs.readFileSync(path.join(testdata, 'images', 'coffee.png')).subarray(0, 300)); // truncated
  assert.equal(bad.json.error.code, 'CorruptImage', JSON.stringify(bad.json));
  const byUrl = await post(JSON.stringify({ url: `${srv.url}/images/astronaut.png` }), 'application/json');
  assert.equal(byUrl.status, 200, JSON.stringify(byUrl.json));
  assert.ok(cosine(byUrl.json.embedding, golden['images/astronaut.png']) >= 0.9999);
  // The model was fetched once (header prefix + tensor ranges), not per request.
  const modelRequests = srv.log.filter((e) => e.url.startsWith('/models/'));
  assert.ok(modelRequests.length <= 3 && modelRequests.every((e) => e.range != null), JSON.stringify(modelRequests));
});

test('workerd: a model over the memory limit fails the load with a message naming the limit; the isolate keeps serving', async (t) => {
  const dist = buildWorker();
  const srv = await fixtureServer();
  t.after(() => srv.close());
  const w = await startWorker(t, dist, `${srv.url}/models/b32l2-f16.safetensors`, 16);
  for (let i = 0; i < 2; i++) {
    const r = await fetch(`${w.url}/embed`, { method: 'POST', body: fs.readFileSync(path.join(testdata, 'images', 'coffee.png')) });
    const j = await r.json();
    assert.equal(r.status, 503);
    assert.equal(j.error.code, 'InvalidModel');
    assert.match(j.error.message, /memory limit of 16 MB/);
  }
  assert.ok((await fetch(`${w.url}/healthz`)).ok);
  // Aborted after the header: the 34 MB of weights were not downloaded.
  assert.ok(srv.sent() < 4e6, `sent ${srv.sent()} bytes`);
});
