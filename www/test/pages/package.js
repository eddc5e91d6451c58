// Main-thread half of the package check; the worker half is
// package-worker.js. window.runMain / window.runWorker are called by the test.
import { runCheck } from './check.js';

window.runMain = (opts) => runCheck(opts);

window.runWorker = (opts) => new Promise((resolve, reject) => {
  const w = new Worker(new URL('./package-worker.js', import.meta.url), { type: 'module' });
  w.onmessage = (ev) => {
    w.terminate();
    if (ev.data.ok) resolve(ev.data.result);
    else reject(new Error(`worker: ${ev.data.code}: ${ev.data.message}`));
  };
  w.onerror = (ev) => {
    w.terminate();
    reject(new Error(`worker failed to start: ${ev.message}`));
  };
  w.postMessage(opts);
});

document.querySelector('#out').textContent = 'ready';
window.__pageReady = true;
