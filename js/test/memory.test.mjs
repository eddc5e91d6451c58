// Memory of a load (measured in a child process by testlib/loadmem.mjs):
// the weights never pass wholly through the Go heap, and the download
// buffer is freed once the graph is built. Peak RSS is reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { modelPath } from '../testlib/common.mjs';

const script = fileURLToPath(new URL('../testlib/loadmem.mjs', import.meta.url));

function measure(...args) {
  return measureEnv({}, ...args);
}

function measureEnv(env, ...args) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, ...args], { maxBuffer: 1 << 20, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1)));
    });
  });
}

for (const mode of ['http', 'file']) {
  test(`load memory, b32l2-f16 over ${mode}`, async (t) => {
    const r = await measure(modelPath('b32l2-f16.safetensors'), mode);
    t.diagnostic(JSON.stringify(r));
    // Go's linear memory holds at most a few tensors' conversion buffers,
    // never the 34 MB of weights.
    assert.ok(r.goWasmMemory < r.weightBytes, `Go memory ${r.goWasmMemory} >= weights ${r.weightBytes}`);
    // The assembled download is released (detached) after the load.
    assert.ok(r.arrayBuffersAfterGC - r.arrayBuffersBefore < r.weightBytes / 10,
      `ArrayBuffers grew by ${r.arrayBuffersAfterGC - r.arrayBuffersBefore}`);
    if (mode === 'http') assert.equal(r.transferred, r.fileBytes);
  });
}

// Serving: tfjs-wasm's matMul packs a copy of its right operand into an
// XNNPACK operator cached for as long as that tensor lives. The graph keeps
// the weights on the left (load option tfjsWeightsLeft, the default), so a
// forward pass must not grow tf's wasm heap by anything like the weights;
// with weights on the right it grows by about their size (the control,
// which shows that this measurement sees the packed copies).
test('serving memory: a forward pass does not pack a copy of the weights (b32l2-f16)', async (t) => {
  const left = await measureEnv({ IMGEMBED_TFJS_WEIGHTS_LEFT: '1' }, modelPath('b32l2-f16.safetensors'), 'http');
  const right = await measureEnv({ IMGEMBED_TFJS_WEIGHTS_LEFT: '0' }, modelPath('b32l2-f16.safetensors'), 'http');
  const grew = (r) => r.tfWasmHeapAfterForward - r.tfWasmHeap;
  t.diagnostic(`tf wasm heap growth over one forward: weights left ${grew(left)}, right ${grew(right)}; F32 weights ${left.f32Bytes}`);
  assert.ok(grew(left) < left.f32Bytes / 4, `weights left: tf's heap grew by ${grew(left)} over a forward (F32 weights ${left.f32Bytes})`);
  assert.ok(grew(right) > right.f32Bytes / 2, `control (weights right): tf's heap grew by only ${grew(right)}; the measurement no longer sees XNNPACK's packed copies`);
});
