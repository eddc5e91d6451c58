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
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, ...args], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
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
