// backend: 'native': the Go engine as a child process (js/src/native.js,
// protocol host/cmd/imgembed/PROTOCOL.md), with this working tree's binary.
// Conformance to the goldens with conformance.test.mjs's tolerances, typed
// errors, dispose, process exit, a crashed child, abort, and 'auto'.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ImageEmbeddings, ImageEmbeddingsError, nodeCache } from '../src/index.js';
import {
  root, modelsDir, imagesDir, images, goldenEmbeddings, goldenPixels, cosine, maxAbsDiff, modelPath,
} from '../testlib/common.mjs';
import { buildNativeBinary, privateCacheDir, alive, waitGone } from '../testlib/native.mjs';

let bin;
let cacheDir;
before(() => {
  bin = buildNativeBinary();
  cacheDir = privateCacheDir();
});
after(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

const models = fs.readdirSync(modelsDir).filter((f) => f.endsWith('.safetensors')).sort();
const tiny = modelPath('tiny-f32.safetensors');
// int8 fixtures and the F32 file they were converted from (as in conformance.test.mjs).
const quantised = { 'tiny-int8.safetensors': 'tiny-f32.safetensors' };

function check(what, got, want, pixels, int8 = false) {
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
}

for (const file of models) {
  test(`native conformance ${file}`, async (t) => {
    const m = await ImageEmbeddings.load({ backend: 'native', modelSource: path.join(modelsDir, file), maxBatch: 4, threads: 2 });
    t.after(() => m.dispose());
    assert.equal(m.backend.name, 'native');
    const int8 = file in quantised;
    const golden = goldenEmbeddings(quantised[file] ?? file);
    if (int8) assert.equal(m.config.dtype, 'I8');
    const size = m.config.imageSize;
    assert.equal(m.config.embeddingSize, golden[`images/${images[0]}`].length);
    for (const img of images) {
      check(`${file} ${img} pixels`, await m.forward({ pixels: goldenPixels(size, img) }), golden[`images/${img}`], true, int8);
    }
    const px = await m.forwardBatch(images.map((img) => ({ pixels: goldenPixels(size, img) })));
    px.forEach((e, i) => check(`${file} ${images[i]} pixels batch`, e, golden[`images/${images[i]}`], true, int8));
    for (const img of images) {
      check(`${file} ${img} file`, await m.forward(path.join(imagesDir, img)), golden[`images/${img}`], false, int8);
    }
    const srcs = [...images, ...images].map((img) => path.join(imagesDir, img));
    const es = await m.forwardBatch(srcs);
    assert.equal(es.length, srcs.length);
    es.forEach((e, i) => check(`${file} ${srcs[i]} batch`, e, golden[`images/${images[i % 3]}`], false, int8));
  });
}

test('native: bytes, Blob and concurrent calls; typed per-input errors; the model stays usable', async (t) => {
  const m = await ImageEmbeddings.load({ backend: 'native', modelSource: tiny });
  t.after(() => m.dispose());
  const golden = goldenEmbeddings('tiny-f32.safetensors');
  const bytes = fs.readFileSync(path.join(imagesDir, 'chelsea.png'));
  const results = await m.forwardBatchSettled([
    new Uint8Array(bytes),
    new Blob([bytes]),
    new Uint8Array([1, 2, 3, 4]),
    path.join(imagesDir, 'nope.png'),
    { data: new Uint8Array(16), width: 2, height: 2 },
    { pixels: new Float32Array(5) },
    'ftp://example.com/x.png',
    `data:image/png;base64,${bytes.toString('base64')}`,
    new Uint8ClampedArray(bytes),
  ]);
  check('bytes', results[0], golden['images/chelsea.png'], false);
  check('blob', results[1], golden['images/chelsea.png'], false);
  check('data: URL', results[7], golden['images/chelsea.png'], false);
  check('Uint8ClampedArray', results[8], golden['images/chelsea.png'], false);
  const codes = results.slice(2, 7).map((r) => (r instanceof ImageEmbeddingsError ? r.code : 'not an error'));
  assert.ok(['UnsupportedImageFormat', 'CorruptImage'].includes(codes[0]), codes[0]);
  assert.deepEqual(codes.slice(1), ['InvalidInput', 'InvalidInput', 'InvalidInput', 'InvalidInput']);
  results.slice(2, 7).forEach((r, i) => assert.equal(r.index, i + 2));
  await assert.rejects(m.forward(new Uint8Array([0x89, 0x50, 0x4e, 0x47])), (e) => e instanceof ImageEmbeddingsError && e.index === 0);
  await assert.rejects(m.forwardBatch('x'), (e) => e instanceof ImageEmbeddingsError && e.code === 'InvalidInput');

  // Pipelined: 12 calls at once, each equal to the sequential answer.
  const seq = [];
  for (const img of images) seq.push(await m.forward(path.join(imagesDir, img)));
  const par = await Promise.all(Array.from({ length: 12 }, (_, i) => m.forward(path.join(imagesDir, images[i % 3]))));
  par.forEach((e, i) => assert.ok(maxAbsDiff(e, seq[i % 3]) <= 1e-6, `concurrent call ${i}`));
});

test('native: load errors are typed', async () => {
  const bad = async (opts, code) => {
    await assert.rejects(ImageEmbeddings.load({ backend: 'native', ...opts }),
      (e) => e instanceof ImageEmbeddingsError && (Array.isArray(code) ? code.includes(e.code) : e.code === code),
      JSON.stringify(opts));
  };
  await bad({ modelSource: path.join(root, 'testdata', 'missing.safetensors') }, ['DownloadFailed', 'InvalidModel']);
  await bad({ modelSource: path.join(imagesDir, 'chelsea.png') }, 'InvalidModel');
  await bad({ modelSource: tiny, nativeBinary: path.join(root, 'no-such-binary') }, 'InvalidModel');
  await bad({ modelSource: tiny, config: {} }, 'InvalidInput');
  await bad({ modelSource: tiny, threads: 0 }, 'InvalidInput');
  const ac = new AbortController();
  ac.abort();
  await bad({ modelSource: tiny, signal: ac.signal }, 'Aborted');
  // Bytes as the model source (written to a temp file for the child).
  const m = await ImageEmbeddings.load({ backend: 'native', modelSource: fs.readFileSync(tiny) });
  assert.equal(m.config.embeddingSize, 32);
  m.dispose();
});

test('native: a nodeCache names where the binary keeps its cache; other adapters are refused', async (t) => {
  const data = fs.readFileSync(tiny);
  const server = http.createServer((req, res) => {
    res.setHeader('Content-Length', data.length);
    res.end(data);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${server.address().port}/m.safetensors`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-native-nodecache-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const m = await ImageEmbeddings.load({ backend: 'native', modelSource: url, cache: nodeCache(dir) });
  const golden = goldenEmbeddings('tiny-f32.safetensors');
  check('via nodeCache', await m.forward(path.join(imagesDir, images[0])), golden[`images/${images[0]}`], false);
  m.dispose();
  const cached = fs.readdirSync(path.join(dir, 'models'));
  assert.equal(cached.length, 1, `the binary's cache in the nodeCache directory: ${cached}`);
  const adapter = { get: async () => null, put: async () => {} };
  await assert.rejects(ImageEmbeddings.load({ backend: 'native', modelSource: url, cache: adapter }),
    (e) => e instanceof ImageEmbeddingsError && e.code === 'InvalidInput' && /nodeCache/.test(e.message));
});

test('native: dispose stops the child; later calls fail with ModelNotLoaded', async () => {
  const m = await ImageEmbeddings.load({ backend: 'native', modelSource: tiny });
  const pid = m.backend.pid;
  assert.ok(alive(pid));
  const inFlight = m.forward(path.join(imagesDir, 'coffee.png'));
  m.dispose();
  assert.ok((await inFlight) instanceof Float32Array, 'a call made before dispose still finishes');
  assert.ok(await waitGone(pid), `child ${pid} still running after dispose`);
  await assert.rejects(m.forward(path.join(imagesDir, 'coffee.png')), (e) => e instanceof ImageEmbeddingsError && e.code === 'ModelNotLoaded');
});

test('native: a crashed child gives a typed error; a reload works', async () => {
  const m = await ImageEmbeddings.load({ backend: 'native', modelSource: tiny });
  const inFlight = m.forwardBatch(Array(6).fill(path.join(imagesDir, 'astronaut.png')));
  process.kill(m.backend.pid, 'SIGKILL');
  await assert.rejects(inFlight, (e) => e instanceof ImageEmbeddingsError && e.code === 'ModelNotLoaded' && /exited unexpectedly/.test(e.message));
  await assert.rejects(m.forward(path.join(imagesDir, 'coffee.png')), (e) => e instanceof ImageEmbeddingsError && e.code === 'ModelNotLoaded');
  m.dispose();
  const m2 = await ImageEmbeddings.load({ backend: 'native', modelSource: tiny });
  check('after reload', await m2.forward(path.join(imagesDir, 'coffee.png')), goldenEmbeddings('tiny-f32.safetensors')['images/coffee.png'], false);
  m2.dispose();
});

test('native: abort rejects at once with Aborted; the model goes on', async (t) => {
  const m = await ImageEmbeddings.load({ backend: 'native', modelSource: tiny });
  t.after(() => m.dispose());
  const ac = new AbortController();
  const p = m.forwardBatch(Array(8).fill(path.join(imagesDir, 'astronaut.png')), { signal: ac.signal });
  ac.abort();
  await assert.rejects(p, (e) => e instanceof ImageEmbeddingsError && e.code === 'Aborted');
  assert.ok((await m.forward(path.join(imagesDir, 'coffee.png'))) instanceof Float32Array);
});

// A Node process that loads a native model exits when it is done with it,
// disposed or not (the child and its pipes are unref'd while idle), and the
// child does not outlive it.
for (const dispose of [true, false]) {
  test(`native: the Node process exits (${dispose ? 'after dispose' : 'model left loaded'})`, async () => {
    const script = `
      import { ImageEmbeddings } from ${JSON.stringify(new URL('../src/index.js', import.meta.url).href)};
      const m = await ImageEmbeddings.load({ backend: 'native', modelSource: ${JSON.stringify(tiny)} });
      const e = await m.forward(${JSON.stringify(path.join(imagesDir, 'chelsea.png'))});
      console.log(JSON.stringify({ pid: m.backend.pid, n: e.length }));
      ${dispose ? 'm.dispose();' : ''}
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    const code = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`node did not exit in 60 s; stdout ${out}`));
      }, 60000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.equal(code, 0, out);
    const { pid, n } = JSON.parse(out);
    assert.equal(n, 32);
    assert.ok(await waitGone(pid), `engine ${pid} outlived its Node process`);
  });
}

test("backend 'auto' uses the binary when one is installed or named, else wasm", async () => {
  const saved = process.env.IMGEMBED_BINARY;
  try {
    process.env.IMGEMBED_BINARY = bin;
    const a = await ImageEmbeddings.load({ backend: 'auto', modelSource: tiny });
    assert.equal(a.backend.name, 'native');
    a.dispose();
    delete process.env.IMGEMBED_BINARY;
    const b = await ImageEmbeddings.load({ backend: 'auto', modelSource: tiny, cache: false });
    assert.notEqual(b.backend.name, 'native', 'the working tree build is not an installed binary');
    b.dispose();
  } finally {
    if (saved === undefined) delete process.env.IMGEMBED_BINARY;
    else process.env.IMGEMBED_BINARY = saved;
  }
});

test('platform packages: one per platform native.js knows, os/cpu and file as the Makefile builds them', async () => {
  const { PLATFORMS } = await import('../src/native.js');
  const makefile = fs.readFileSync(path.join(root, 'Makefile'), 'utf8');
  const line = /^NATIVE_PLATFORMS := (.*)$/m.exec(makefile);
  assert.ok(line, 'NATIVE_PLATFORMS in the Makefile');
  const built = Object.fromEntries(line[1].trim().split(/\s+/).map((e) => {
    const [key, goos, goarch] = e.split(':');
    return [key, { goos, goarch }];
  }));
  assert.deepEqual(Object.keys(built).sort(), [...PLATFORMS].sort());
  const goOS = { linux: 'linux', darwin: 'darwin', win32: 'windows' };
  const goArch = { x64: 'amd64', arm64: 'arm64' };
  for (const key of PLATFORMS) {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'js', 'npm', key, 'package.json'), 'utf8'));
    const [os, cpu] = key.split('-');
    assert.equal(pkg.name, `@imgembed/${key}`);
    assert.deepEqual([pkg.os, pkg.cpu], [[os], [cpu]], key);
    assert.deepEqual(pkg.files, [os === 'win32' ? 'bin/imgembed.exe' : 'bin/imgembed'], key);
    assert.deepEqual(built[key], { goos: goOS[os], goarch: goArch[cpu] }, key);
  }
});
