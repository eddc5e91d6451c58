// useTextEmbeddings (js/src/react.js): the same fields and transitions as
// useImageEmbeddings, on the real text tower of the tiny whole-CLIP fixture
// and with a deferred loader where timing must be controlled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import React, { act } from 'react';
import TestRenderer from 'react-test-renderer';
import { useTextEmbeddings } from '../src/react.js';
import { ImageEmbeddingsError } from '../src/index.js';
import { testdata, modelPath, cosine } from '../testlib/common.mjs';

globalThis.IS_REACT_ACT_ENVIRONMENT = true;

const model = { modelSource: modelPath('tiny-fullclip-f32.safetensors'), tokenizerSource: path.join(testdata, 'tokenizer', 'tokenizer.json') };
const golden = JSON.parse(fs.readFileSync(path.join(testdata, 'golden', 'embed-text-tiny-fullclip-f32.json'), 'utf8'));

function renderHook(props) {
  const h = { current: null, history: [], root: null };
  function Probe(p) {
    const r = useTextEmbeddings(p);
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
async function settle(p) {
  let out;
  await act(async () => { out = await p.then((v) => ({ v }), (e) => ({ e })); });
  return out;
}

test('real model: not ready -> progress to 1 -> ready; forward (one and many) with isGenerating', async () => {
  const h = renderHook({ model, cache: false });
  assert.deepEqual(h.history[0], { isReady: false, isGenerating: false, downloadProgress: 0, error: null });
  await waitFor(() => h.current.isReady || h.current.error, 'ready');
  assert.equal(h.current.error, null);
  assert.equal(h.current.downloadProgress, 1);
  const texts = Object.keys(golden).slice(0, 3);
  let p1;
  let p2;
  act(() => {
    p1 = h.current.forward(texts[0]);
    p2 = h.current.forward(texts.slice(1));
  });
  assert.equal(h.current.isGenerating, true);
  const r = await settle(Promise.all([p1, p2]));
  assert.equal(r.e, undefined, r.e?.message);
  const [one, many] = r.v;
  assert.ok(cosine(one, golden[texts[0]]) >= 0.99999);
  assert.equal(many.length, 2);
  many.forEach((e, i) => assert.ok(cosine(e, golden[texts[i + 1]]) >= 0.99999));
  await waitFor(() => !h.current.isGenerating, 'isGenerating false');
  // A bad input rejects and sets error; the model stays ready.
  const bad = await settle(h.current.forward(42));
  assert.equal(bad.e?.code, 'InvalidInput');
  assert.equal(h.current.error?.code, 'InvalidInput');
  assert.equal(h.current.isReady, true);
  h.unmount();
});

test('preventLoad: forward rejects with ModelNotLoaded; a malformed tokenizer is a load error', async () => {
  const h = renderHook({ model, preventLoad: true, cache: false });
  const r = await settle(h.current.forward('a cat'));
  assert.ok(r.e instanceof ImageEmbeddingsError && r.e.code === 'ModelNotLoaded');
  assert.equal(h.current.isReady, false);
  h.unmount();

  const h2 = renderHook({ model: { ...model, tokenizerSource: { model: { type: 'WordPiece' } } }, cache: false });
  await waitFor(() => h2.current.error, 'load error');
  assert.equal(h2.current.error.code, 'InvalidModel');
  assert.equal(h2.current.isReady, false);
  h2.unmount();
});

test('loader receives modelSource and tokenizerSource; a modelSource change disposes and reloads', async () => {
  const calls = [];
  const loader = (opts) => {
    let resolve;
    const p = new Promise((r) => { resolve = r; });
    calls.push({ opts, resolve });
    return p;
  };
  const fake = (name) => ({ name, disposed: 0, forward: async (t) => Float32Array.of(t.length), forwardBatch: async (ts) => ts.map((t) => Float32Array.of(t.length)), dispose() { this.disposed++; } });
  const h = renderHook({ model: { modelSource: 'a.safetensors', tokenizerSource: 'a.json' }, loader });
  await waitFor(() => calls.length === 1, 'first load');
  assert.equal(calls[0].opts.modelSource, 'a.safetensors');
  assert.equal(calls[0].opts.tokenizerSource, 'a.json');
  const a = fake('a');
  await act(async () => { calls[0].resolve(a); });
  assert.equal(h.current.isReady, true);
  const r = await settle(h.current.forward('abc'));
  assert.deepEqual([...r.v], [3]);
  h.rerender({ model: { modelSource: 'b.safetensors', tokenizerSource: 'b.json' }, loader });
  assert.equal(h.current.isReady, false);
  await waitFor(() => calls.length === 2, 'second load');
  assert.equal(calls[1].opts.tokenizerSource, 'b.json');
  await waitFor(() => a.disposed === 1, 'old model disposed');
  await act(async () => { calls[1].resolve(fake('b')); });
  assert.equal(h.current.isReady, true);
  h.unmount();
});
