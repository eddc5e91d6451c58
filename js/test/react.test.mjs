// Tests of useImageEmbeddings (js/src/react.js) with react-test-renderer in
// Node: the real tiny fixture model served by a local node:http server, and a
// deferred loader (the hook's documented `loader` option) where a test must
// control timing exactly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import React, { act } from 'react';
import TestRenderer from 'react-test-renderer';
import { useImageEmbeddings } from '../src/react.js';
import { ImageEmbeddingsError } from '../src/index.js';

globalThis.IS_REACT_ACT_ENVIRONMENT = true;

const here = path.dirname(fileURLToPath(import.meta.url));
const testdata = path.resolve(here, '..', '..', 'testdata');
const modelBytes = fs.readFileSync(path.join(testdata, 'models', 'tiny-f32.safetensors'));
const golden = JSON.parse(fs.readFileSync(path.join(testdata, 'golden', 'embed-tiny-f32.json'), 'utf8'));
const png = (name) => new Uint8Array(fs.readFileSync(path.join(testdata, 'images', `${name}.png`)));

// --- a model server: /tiny.safetensors (fast), /slow/tiny.safetensors (64 KiB
// every 40 ms), anything else 404. Range is ignored (a 200 with the whole
// file is a valid answer, wasm/API.md step 4). Records how requests ended.
let server;
let base;
const requests = [];
before(async () => {
  server = http.createServer((req, res) => {
    const rec = { url: req.url, completed: false, closedEarly: false };
    requests.push(rec);
    res.on('close', () => { if (!rec.completed) rec.closedEarly = true; });
    if (req.url !== '/tiny.safetensors' && req.url !== '/slow/tiny.safetensors') {
      res.writeHead(404).end('not found');
      rec.completed = true;
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': modelBytes.length });
    if (req.url === '/tiny.safetensors') {
      res.end(modelBytes, () => { rec.completed = true; });
      return;
    }
    let off = 0;
    const step = () => {
      if (res.destroyed) return;
      const end = Math.min(off + 65536, modelBytes.length);
      res.write(modelBytes.subarray(off, end));
      off = end;
      if (off >= modelBytes.length) res.end(() => { rec.completed = true; });
      else setTimeout(step, 40);
    };
    step();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => new Promise((r) => { server.closeAllConnections(); server.close(r); }));

// --- hook harness
function renderHook(props) {
  const h = { current: null, history: [], root: null };
  function Probe(p) {
    const r = useImageEmbeddings(p);
    h.current = r;
    h.history.push({ isReady: r.isReady, isGenerating: r.isGenerating, downloadProgress: r.downloadProgress, error: r.error });
    return null;
  }
  act(() => { h.root = TestRenderer.create(React.createElement(Probe, props)); });
  h.rerender = (p) => act(() => { h.root.update(React.createElement(Probe, p)); });
  h.unmount = () => act(() => { h.root.unmount(); });
  return h;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond, what, timeoutMs = 60000) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await act(async () => { await sleep(10); });
  }
}
// Settles a promise inside act, so the state updates it causes are flushed.
async function settle(p) {
  let out;
  await act(async () => { out = await p.then((v) => ({ v }), (e) => ({ e })); });
  return out;
}

function cosine(a, b) {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return d / Math.sqrt(na * nb);
}
function assertEmbeds(e, name) {
  assert.ok(e instanceof Float32Array, `${name}: not a Float32Array`);
  assert.equal(e.length, 32);
  const c = cosine(e, golden[`images/${name}.png`]);
  assert.ok(c >= 0.9999, `${name}: cosine to golden ${c}`);
}

function deferred() {
  let resolve, reject;
  const promise = new Promise((a, b) => { resolve = a; reject = b; });
  return { promise, resolve, reject };
}

// A controllable loader: each call is recorded with its options and a
// deferred result.
function deferredLoader() {
  const calls = [];
  const loader = (opts) => {
    const d = deferred();
    calls.push({ opts, ...d });
    return d.promise;
  };
  return { loader, calls };
}

function fakeModel(name) {
  const m = {
    name, disposed: 0, forwards: [],
    forward: (src) => {
      const d = deferred();
      m.forwards.push({ src, ...d });
      return d.promise;
    },
    forwardBatch: async (srcs) => srcs.map((s) => Float32Array.of(s)),
    dispose: () => { m.disposed++; },
  };
  return m;
}

// --- real model

test('real model: progress 0..1, ready, forward embeds correctly, isGenerating follows', async () => {
  const h = renderHook({ model: { modelSource: `${base}/tiny.safetensors` }, cache: false });
  assert.equal(h.history[0].isReady, false);
  assert.equal(h.history[0].downloadProgress, 0);
  assert.equal(h.history[0].isGenerating, false);
  await waitFor(() => h.current.isReady || h.current.error, 'ready');
  assert.equal(h.current.error, null);
  assert.equal(h.current.downloadProgress, 1);
  const progress = h.history.map((s) => s.downloadProgress);
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i] >= progress[i - 1] && progress[i] <= 1, `progress ${progress}`);

  let p;
  act(() => { p = h.current.forward(png('astronaut')); });
  assert.equal(h.current.isGenerating, true, 'isGenerating during forward');
  const r = await settle(p);
  assert.equal(r.e, undefined, r.e?.message);
  assertEmbeds(r.v, 'astronaut');
  assert.equal(h.current.isGenerating, false);
  h.unmount();
});

test('real model: concurrent forward calls are queued and each resolves with its own embedding', async () => {
  const h = renderHook({ model: { modelSource: `${base}/tiny.safetensors` }, cache: false });
  await waitFor(() => h.current.isReady || h.current.error, 'ready');
  let ps;
  act(() => {
    ps = [
      h.current.forward(png('astronaut')),
      h.current.forward(png('chelsea')),
      h.current.forward([png('coffee'), png('astronaut')]),
      h.current.forward(png('coffee')),
    ];
  });
  assert.equal(h.current.isGenerating, true);
  const rs = await settle(Promise.all(ps));
  assert.equal(rs.e, undefined, rs.e?.message);
  const [a, c, batch, cof] = rs.v;
  assertEmbeds(a, 'astronaut');
  assertEmbeds(c, 'chelsea');
  assert.equal(batch.length, 2);
  assertEmbeds(batch[0], 'coffee');
  assertEmbeds(batch[1], 'astronaut');
  assertEmbeds(cof, 'coffee');
  await waitFor(() => !h.current.isGenerating, 'isGenerating false');
  h.unmount();
});

test('forward before ready rejects with ModelNotLoaded and sets error', async () => {
  const h = renderHook({ model: { modelSource: `${base}/tiny.safetensors` }, preventLoad: true, cache: false });
  let p;
  act(() => { p = h.current.forward(png('astronaut')); });
  const r = await settle(p);
  assert.ok(r.e instanceof ImageEmbeddingsError);
  assert.equal(r.e.code, 'ModelNotLoaded');
  assert.equal(h.current.error?.code, 'ModelNotLoaded');
  assert.equal(h.current.isReady, false);
  assert.equal(h.current.isGenerating, false);
  h.unmount();
});

test('a forward error is cleared by a later successful forward', async () => {
  const h = renderHook({ model: { modelSource: `${base}/tiny.safetensors` }, cache: false });
  await waitFor(() => h.current.isReady || h.current.error, 'ready');
  let p;
  act(() => { p = h.current.forward(new Uint8Array([1, 2, 3])); });
  const bad = await settle(p);
  assert.equal(bad.e?.code, 'UnsupportedImageFormat');
  assert.equal(h.current.error?.code, 'UnsupportedImageFormat');
  act(() => { p = h.current.forward(png('chelsea')); });
  const good = await settle(p);
  assertEmbeds(good.v, 'chelsea');
  assert.equal(h.current.error, null);
  h.unmount();
});

test('real download: flipping preventLoad aborts the HTTP transfer; flipping back loads again', async () => {
  const n0 = requests.length;
  const props = { model: { modelSource: `${base}/slow/tiny.safetensors` }, cache: false };
  const h = renderHook(props);
  await waitFor(() => h.current.downloadProgress > 0, 'first progress');
  h.rerender({ ...props, preventLoad: true });
  assert.equal(h.current.isReady, false);
  await waitFor(() => requests.slice(n0).some((r) => r.closedEarly), 'server sees the request aborted', 10000);
  const slow = requests.slice(n0).filter((r) => r.url === '/slow/tiny.safetensors');
  assert.ok(slow.length >= 1 && slow.every((r) => !r.completed), 'no slow download ran to the end');
  await act(async () => { await sleep(300); });
  assert.equal(h.current.isReady, false, 'an aborted load never becomes ready');
  assert.equal(h.current.error, null, 'an abort asked for by the hook is not an error');

  h.rerender({ ...props, model: { modelSource: `${base}/tiny.safetensors` }, preventLoad: false });
  await waitFor(() => h.current.isReady || h.current.error, 'ready after re-enabling');
  assert.equal(h.current.error, null);
  h.unmount();
});

test('load failure: error carries the code, not ready', async () => {
  const h = renderHook({ model: { modelSource: `${base}/missing.safetensors` }, cache: false });
  await waitFor(() => h.current.error || h.current.isReady, 'error');
  assert.equal(h.current.isReady, false);
  assert.ok(h.current.error instanceof ImageEmbeddingsError, String(h.current.error));
  assert.equal(h.current.error.code, 'DownloadFailed');
  h.unmount();
});

// --- deferred loader: exact timing

test('unmount during load aborts the signal and disposes the model that arrives later', async () => {
  const { loader, calls } = deferredLoader();
  const h = renderHook({ model: { modelSource: 'a' }, loader, threads: 1 });
  await waitFor(() => calls.length === 1, 'loader called');
  assert.equal(calls[0].opts.modelSource, 'a');
  assert.equal(calls[0].opts.threads, 1, 'load options are passed through');
  assert.equal(calls[0].opts.signal.aborted, false);
  act(() => calls[0].opts.onDownloadProgress(0.25));
  assert.equal(h.current.downloadProgress, 0.25);
  h.unmount();
  assert.equal(calls[0].opts.signal.aborted, true);
  const m = fakeModel('late');
  await act(async () => { calls[0].resolve(m); await sleep(0); });
  assert.equal(m.disposed, 1);
});

test('unmount after ready disposes the model once', async () => {
  const { loader, calls } = deferredLoader();
  const h = renderHook({ model: { modelSource: 'a' }, loader });
  await waitFor(() => calls.length === 1, 'loader called');
  const m = fakeModel('a');
  await act(async () => { calls[0].resolve(m); });
  assert.equal(h.current.isReady, true);
  assert.equal(h.current.downloadProgress, 1);
  h.unmount();
  await act(async () => { await sleep(0); });
  assert.equal(m.disposed, 1);
  assert.equal(calls[0].opts.signal.aborted, true);
});

test('changing modelSource disposes the old model and loads the new one', async () => {
  const { loader, calls } = deferredLoader();
  const h = renderHook({ model: { modelSource: 'a' }, loader });
  await waitFor(() => calls.length === 1, 'first load');
  const a = fakeModel('a');
  await act(async () => { calls[0].resolve(a); });
  assert.equal(h.current.isReady, true);

  h.rerender({ model: { modelSource: 'b' }, loader });
  assert.equal(h.current.isReady, false);
  assert.equal(h.current.downloadProgress, 0);
  await waitFor(() => calls.length === 2, 'second load');
  assert.equal(calls[1].opts.modelSource, 'b');
  await act(async () => { await sleep(0); });
  assert.equal(a.disposed, 1);

  // Same source again (new object, same value): no reload.
  h.rerender({ model: { modelSource: 'b' }, loader });
  await act(async () => { await sleep(0); });
  assert.equal(calls.length, 2);

  const b = fakeModel('b');
  await act(async () => { calls[1].resolve(b); });
  assert.equal(h.current.isReady, true);
  let p;
  act(() => { p = h.current.forward(7); });
  await act(async () => { await sleep(0); });
  assert.equal(b.forwards.length, 1, 'forward goes to the new model');
  assert.equal(a.forwards.length, 0);
  b.forwards[0].resolve(Float32Array.of(7));
  assert.deepEqual([...(await settle(p)).v], [7]);
  h.unmount();
});

test('queue: one forward at a time, in order; preventLoad waits for the running call, rejects the queued ones', async () => {
  const { loader, calls } = deferredLoader();
  const h = renderHook({ model: { modelSource: 'a' }, loader });
  await waitFor(() => calls.length === 1, 'load');
  const m = fakeModel('a');
  await act(async () => { calls[0].resolve(m); });

  let p1, p2, p3;
  act(() => { p1 = h.current.forward(1); p2 = h.current.forward(2); p3 = h.current.forward(3); });
  await act(async () => { await sleep(0); });
  assert.equal(m.forwards.length, 1, 'only the first call runs');
  assert.equal(m.forwards[0].src, 1);
  assert.equal(h.current.isGenerating, true);

  m.forwards[0].resolve(Float32Array.of(1));
  await act(async () => { await sleep(0); });
  assert.equal(m.forwards.length, 2, 'then the second');
  assert.equal(m.forwards[1].src, 2);

  // Turn loading off while call 2 runs.
  h.rerender({ model: { modelSource: 'a' }, loader, preventLoad: true });
  assert.equal(h.current.isReady, false);
  assert.equal(m.disposed, 0, 'not disposed under a running forward');
  m.forwards[1].reject(new ImageEmbeddingsError('CorruptImage', 'bad image 2'));
  const [r1, r2, r3] = [await settle(p1), await settle(p2), await settle(p3)];
  assert.deepEqual([...r1.v], [1]);
  assert.equal(r2.e.code, 'CorruptImage', 'each call gets its own outcome');
  assert.equal(r3.e.code, 'ModelNotLoaded', 'queued call after dispose');
  assert.equal(m.forwards.length, 2, 'call 3 never reached the model');
  await act(async () => { await sleep(0); });
  assert.equal(m.disposed, 1);
  assert.equal(h.current.isGenerating, false);
  assert.equal(h.current.error?.code, 'ModelNotLoaded', 'error holds the last error');
  assert.equal(calls[0].opts.signal.aborted, true);
  h.unmount();
  assert.equal(m.disposed, 1, 'disposed exactly once');
});

test('a load error is reported; a new load clears it', async () => {
  const { loader, calls } = deferredLoader();
  const h = renderHook({ model: { modelSource: 'a' }, loader });
  await waitFor(() => calls.length === 1, 'load');
  await act(async () => { calls[0].reject(new ImageEmbeddingsError('InvalidModel', 'not a CLIP file')); });
  assert.equal(h.current.error?.code, 'InvalidModel');
  assert.equal(h.current.isReady, false);
  h.rerender({ model: { modelSource: 'b' }, loader });
  assert.equal(h.current.error, null);
  await waitFor(() => calls.length === 2, 'reload');
  await act(async () => { calls[1].resolve(fakeModel('b')); });
  assert.equal(h.current.isReady, true);
  h.unmount();
});

test('StrictMode (mount, unmount, mount): the first load is aborted and its model disposed, the second is used', async () => {
  const { loader, calls } = deferredLoader();
  const h = { current: null };
  function Probe(p) { h.current = useImageEmbeddings(p); return null; }
  let root;
  act(() => {
    root = TestRenderer.create(React.createElement(React.StrictMode, null,
      React.createElement(Probe, { model: { modelSource: 'a' }, loader })));
  });
  await waitFor(() => calls.length === 2, 'two loads');
  assert.equal(calls[0].opts.signal.aborted, true);
  assert.equal(calls[1].opts.signal.aborted, false);
  const first = fakeModel('first'), second = fakeModel('second');
  await act(async () => { calls[0].resolve(first); calls[1].resolve(second); await sleep(0); });
  assert.equal(first.disposed, 1);
  assert.equal(second.disposed, 0);
  assert.equal(h.current.isReady, true);
  let p;
  act(() => { p = h.current.forward(5); });
  await act(async () => { await sleep(0); });
  assert.equal(second.forwards.length, 1);
  second.forwards[0].resolve(Float32Array.of(5));
  assert.deepEqual([...(await settle(p)).v], [5]);
  act(() => root.unmount());
  await act(async () => { await sleep(0); });
  assert.equal(second.disposed, 1);
});
