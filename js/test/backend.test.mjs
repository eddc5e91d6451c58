// Tests of js/src/backend.js. tfjs's backend is process-global, so every
// scenario runs in its own child Node process (same Node binary) and reports
// JSON on stdout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const jsDir = path.dirname(here);
const backendURL = pathToFileURL(path.join(jsDir, 'src', 'backend.js')).href;

// Runs `body` (an async function body with tf, initBackend, tfwasm in scope,
// returning a JSON-able value) in a fresh process. The child is NOT told to
// exit: it must end by itself, which is what proves no worker keeps it alive.
function child(body, { timeoutMs = 180000 } = {}) {
  const src = `
    import * as tf from '@tensorflow/tfjs-core';
    import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
    import { initBackend, BackendInitError } from ${JSON.stringify(backendURL)};
    const out = await (async () => { ${body} })();
    process.stdout.write(JSON.stringify(out) + '\\n');
  `;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', src], { cwd: jsDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`child did not exit within ${timeoutMs} ms (hung?)\nstdout: ${out}\nstderr: ${err}`)); }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`child exited ${code}\nstdout: ${out}\nstderr: ${err}`));
      try { resolve(JSON.parse(out.trim().split('\n').pop())); } catch (e) { reject(new Error(`bad child output: ${out}\n${err}`)); }
    });
  });
}

// A matMul checked against a plain JS product, in the child.
const MATMUL_CHECK = `
  const m = 67, k = 300, n = 129;
  let seed = 7; const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
  const a = Float32Array.from({ length: m * k }, rnd), b = Float32Array.from({ length: k * n }, rnd);
  const got = tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])).dataSync();
  let maxErr = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0; for (let q = 0; q < k; q++) s += a[i * k + q] * b[q * n + j];
    maxErr = Math.max(maxErr, Math.abs(s - got[i * n + j]));
  }
`;

// Which OS threads of the child did the work of a long matMul loop: Linux
// /proc per-thread CPU ticks (null elsewhere). Independent of machine load.
const BUSY_THREADS = `
  const fs = await import('node:fs');
  const ticks = () => {
    try {
      const m = new Map();
      for (const tid of fs.readdirSync('/proc/self/task')) {
        const st = fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        m.set(tid, Number(f[11]) + Number(f[12]));
      }
      return m;
    } catch { return null; }
  };
  const x = tf.randomUniform([200, 768]), y = tf.randomUniform([768, 3072]);
  tf.matMul(x, y).dataSync();
  const k0 = ticks();
  for (let i = 0; i < 8; i++) { const z = tf.matMul(x, y); z.dataSync(); z.dispose(); }
  const k1 = ticks();
  let busy = null;
  if (k0 && k1) {
    const d = [...k1].map(([t, v]) => v - (k0.get(t) ?? 0)).filter((v) => v > 0);
    const total = d.reduce((a, b) => a + b, 0);
    busy = { threads: d.filter((v) => v >= 0.15 * total).length, total };
  }
`;

test('threads=2 runs XNNPACK with 2 threads in Node, correct results, process exits by itself', async () => {
  const r = await child(`
    const info = await initBackend({ threads: 2 });
    ${MATMUL_CHECK}
    ${BUSY_THREADS}
    return { info, backend: tf.getBackend(), tc: tfwasm.getThreadsCount(),
             mt: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'), maxErr, busy };
  `);
  if (r.busy) {
    assert.ok(r.busy.total >= 20, `too little CPU time measured: ${JSON.stringify(r.busy)}`);
    assert.equal(r.busy.threads, 2, `OS threads doing >= 15 % of the matMul work: ${JSON.stringify(r.busy)}`);
  }
  assert.deepEqual(r.info, { name: 'wasm', simd: true, threads: 2 });
  assert.equal(r.backend, 'wasm');
  assert.equal(r.tc, 2, 'getThreadsCount');
  assert.equal(r.mt, true, 'the threaded build was loaded');
  assert.ok(r.maxErr < 1e-4, `matMul max error ${r.maxErr}`);
});

test('threads=3 is honoured although this machine may have fewer cores (no /2 cap)', async () => {
  const r = await child(`const info = await initBackend({ threads: 3 }); return { info, tc: tfwasm.getThreadsCount() };`);
  assert.equal(r.info.threads, 3);
  assert.equal(r.tc, 3);
});

test('threads=1 uses the plain SIMD build (no workers)', async () => {
  const r = await child(`
    const info = await initBackend({ threads: 1 });
    ${MATMUL_CHECK}
    ${BUSY_THREADS}
    return { info, mt: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'), maxErr, busy };
  `);
  if (r.busy) assert.equal(r.busy.threads, 1, `OS threads doing >= 15 % of the matMul work: ${JSON.stringify(r.busy)}`);
  assert.deepEqual(r.info, { name: 'wasm', simd: true, threads: 1 });
  assert.equal(r.mt, false);
  assert.ok(r.maxErr < 1e-4, `matMul max error ${r.maxErr}`);
});

test('default threads = min(availableParallelism, 4) in Node', async () => {
  const r = await child(`
    const os = await import('node:os');
    const info = await initBackend();
    return { info, want: Math.min(os.availableParallelism(), 4) };
  `);
  assert.equal(r.info.threads, r.want);
});

test('idempotent: later calls return the same frozen info, whatever they ask', async () => {
  const r = await child(`
    const [a, b] = await Promise.all([initBackend({ threads: 2 }), initBackend({ threads: 1 })]);
    const c = await initBackend({ threads: 4 });
    return { same: a === b && b === c, frozen: Object.isFrozen(a), threads: c.threads };
  `);
  assert.deepEqual(r, { same: true, frozen: true, threads: 2 });
});

test('wasmPaths is what tfjs loads from: a wrong prefix fails with BackendInitError (not a hang)', async () => {
  const r = await child(`
    const path = await import('node:path');
    const { createRequire } = await import('node:module');
    let first;
    try { await initBackend({ threads: 1, wasmPaths: '/nonexistent/dir/' }); first = 'resolved'; }
    catch (e) { first = { name: e.name, code: e.code, isErr: e instanceof BackendInitError }; }
    return { first };
  `);
  assert.deepEqual(r.first, { name: 'BackendInitError', code: 'InvalidModel', isErr: true });
});

test('a file map for wasmPaths is accepted (Node)', async () => {
  const r = await child(`
    const path = await import('node:path');
    const { createRequire } = await import('node:module');
    const dist = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
    const names = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];
    const info = await initBackend({ threads: 2, wasmPaths: Object.fromEntries(names.map((n) => [n, path.join(dist, n)])) });
    return info;
  `);
  assert.deepEqual(r, { name: 'wasm', simd: true, threads: 2 });
});

test('bad threads value is rejected', async () => {
  const r = await child(`
    try { await initBackend({ threads: 0 }); return 'resolved'; } catch (e) { return e.code; }
  `);
  assert.equal(r, 'InvalidInput');
});
