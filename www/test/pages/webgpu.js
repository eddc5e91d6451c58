// Main-thread half of the WebGPU checks: window.run(fn, opts) runs a check
// of webgpu-check.js here, window.runWorker(fn, opts) in a module Worker.
import * as checks from './webgpu-check.js';

window.run = (fn, opts) => checks[fn](opts);

window.runWorker = (fn, opts) => new Promise((resolve, reject) => {
  const w = new Worker(new URL('./webgpu-worker.js', import.meta.url), { type: 'module' });
  w.onmessage = (ev) => {
    w.terminate();
    if (ev.data.ok) resolve(ev.data.result);
    else reject(new Error(`worker: ${ev.data.code}: ${ev.data.message}`));
  };
  w.onerror = (ev) => {
    w.terminate();
    reject(new Error(`worker failed to start: ${ev.message}`));
  };
  w.postMessage({ fn, opts });
});

window.__pageReady = true;
