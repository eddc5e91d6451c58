// Memory of loading ViT-B/32-sized weights and serving (one forward pass),
// per loader and dtype: peak and settled memory above the process's memory
// before the load, as multiples of the model's F32 weight bytes (the
// issue's goal: peak <= 1.25x). Node and Chromium also report the load
// alone (tfjs-wasm packs a copy of each matMul weight on its first use).
//
//   node   js/testlib/loadmem.mjs in a child process (RSS; download over a
//          local Range server, no cache)
//   go-native, go-wasm  host.New with each engine (the Go API) in a child
//          process (go run ./host/internal/memprobe); "go" selects both
//   chromium  the package in headless Chromium (Debian's), page served by
//          www/cmd/serve with the weights under /models/; the renderer
//          process's VmHWM (peak) and VmRSS (settled, after gc()) from /proc
//
//   ort-node, ort-web  onnxruntime-node / -web (js/bench/mem-ort.mjs) on
//          --onnx FILE (the same weights exported by ../shared/bench's
//          export_onnx.py; packages in $PEERS_DIR, as peers.sh installs
//          them); skipped without --onnx
//
// usage: node js/bench/mem.mjs [--dir build/bench] [--files b32.safetensors,b32-f16.safetensors,b32-int8.safetensors] [--loaders node,go,chromium,ort-node,ort-web] [--onnx FILE] [--layouts left,right]
// Output: one JSON line per measurement, then a table.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

const args = { dir: 'build/bench', files: 'b32.safetensors,b32-f16.safetensors,b32-int8.safetensors', loaders: 'node,go,chromium,ort-node,ort-web', onnx: '', layouts: 'left' };
for (let i = 2; i < process.argv.length; i++) {
  const m = /^--(\w+)(?:=(.*))?$/.exec(process.argv[i]);
  if (!m || !(m[1] in args)) throw new Error(`mem.mjs: unknown argument ${process.argv[i]}`);
  args[m[1]] = m[2] ?? process.argv[++i];
}
const files = args.files.split(',');
const loaders = args.loaders.split(',');
// tfjs-wasm's matMul layouts to measure (Node and Chromium; load option
// tfjsWeightsLeft): left, the default; right, weights as the packed and
// cached operand (the layout before, for comparison).
const layouts = args.layouts.split(',');
for (const l of layouts) if (l !== 'left' && l !== 'right') throw new Error(`mem.mjs: layout must be left or right, got ${l}`);
const rows = [];

function child(cmd, argv, env) {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').at(-1);
  return JSON.parse(line);
}

function report(row) {
  rows.push(row);
  process.stdout.write(JSON.stringify(row) + '\n');
}

const MB = (n) => (n / 1e6).toFixed(0);

for (const f of files) {
  const file = path.join(args.dir, f);
  for (const layout of loaders.includes('node') ? layouts : []) {
    const r = child(process.execPath, [path.join(root, 'js/testlib/loadmem.mjs'), file, 'http'], { IMGEMBED_TFJS_WEIGHTS_LEFT: layout === 'left' ? '1' : '0' });
    // peak and settled include one forward pass, as the other loaders' do;
    // loadSettled is after the load alone.
    report({ loader: layouts.length > 1 ? `node-${layout}` : 'node', file: f, dtype: r.dtype, f32Bytes: r.f32Bytes, loadMs: r.loadMs, peakAbove: r.peakRSSServing - r.rssBefore, settledAbove: r.rssAfterForward - r.rssBefore, peak: r.peakCopiesServing, settled: r.copiesAfterForward, loadPeak: r.peakCopiesOfF32Weights, loadSettled: r.retainedCopiesAfterGC, tfWasmHeap: r.tfWasmHeap, tfWasmHeapAfterForward: r.tfWasmHeapAfterForward, goWasmMemory: r.goWasmMemory });
  }
  for (const engine of ['native', 'wasm']) {
    if (!loaders.includes('go') && !loaders.includes(`go-${engine}`)) continue;
    const r = child('go', ['run', './host/internal/memprobe', '-engine', engine, file]);
    report({ loader: `go-${engine}`, file: f, dtype: r.dtype, f32Bytes: r.f32Bytes, loadMs: r.loadMs, peakAbove: r.peakRSS - r.rssBefore, settledAbove: r.settledRSS - r.rssBefore, peak: +r.peakCopiesOfF32.toFixed(2), settled: +r.settledCopiesOfF32.toFixed(2) });
  }
}

if (args.onnx) {
  const f32Bytes = child('go', ['run', './host/internal/memprobe', '-f32', path.join(args.dir, files[0])]).f32Bytes;
  for (const be of ['node', 'web']) {
    if (!loaders.includes(`ort-${be}`)) continue;
    const r = child(process.execPath, [path.join(root, 'js/bench/mem-ort.mjs'), be, args.onnx, '224']);
    report({ loader: r.loader, file: r.file, dtype: 'F32', f32Bytes, loadMs: r.loadMs, peakAbove: r.peakRSS - r.rssBefore, settledAbove: r.settledRSS - r.rssBefore, peak: +((r.peakRSS - r.rssBefore) / f32Bytes).toFixed(2), settled: +((r.settledRSS - r.rssBefore) / f32Bytes).toFixed(2) });
  }
}

if (loaders.includes('chromium')) {
  const { startServer, launch } = await import('../../www/test/helpers.mjs');
  const server = await startServer({ weights: args.dir });
  try {
    for (const f of files) {
      for (const layout of layouts) {
        const r = await chromiumProbe(server, launch, f, layout === 'left');
        if (layouts.length > 1) r.loader += `-${layout}`;
        report(r);
      }
    }
  } finally {
    await server.close();
  }
}

// Renderer processes of a Chromium launched with the profile dir.
function renderers(profile) {
  const out = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd;
    try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (cmd.includes('--type=renderer') && cmd.includes(profile)) out.push(Number(pid));
  }
  return out;
}

function status(pid, key) {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch { return 0; }
}

async function chromiumProbe(server, launch, f, weightsLeft) {
  const ctx = await launch();
  const profile = ctx.profileDir;
  try {
    const page = await ctx.newPage();
    await page.goto(new URL('test/pages/package.html', server.url).href);
    await page.waitForFunction(() => window.__pageReady === true, null, { timeout: 30_000 });
    // Start tfjs (and its threads) first, so the baseline includes them.
    await page.evaluate(async () => {
      const { ImageEmbeddings } = await import('/js/src/index.js');
      window.__IE = ImageEmbeddings;
      const wasmPaths = new URL('/node_modules/@tensorflow/tfjs-backend-wasm/dist/', location.href).href;
      window.__wasmPaths = wasmPaths;
      // A tiny model loads the backend and the module.
      const m = await ImageEmbeddings.load({ modelSource: '/models/../models/' + 'none', wasmPaths }).catch(() => null);
      m?.dispose();
    });
    const pids = renderers(profile);
    const before = new Map(pids.map((p) => [p, status(p, 'VmRSS')]));
    const f32Bytes = JSON.parse(spawnSync('go', ['run', './host/internal/memprobe', '-f32', path.join(args.dir, f)], { cwd: root, encoding: 'utf8' }).stdout || '{}').f32Bytes;
    const r = await page.evaluate(async ([file, tfjsWeightsLeft]) => {
      const t0 = performance.now();
      const m = await window.__IE.load({ modelSource: `/models/${file}`, wasmPaths: window.__wasmPaths, cache: false, tfjsWeightsLeft });
      const loadMs = performance.now() - t0;
      window.__model = m;
      return { loadMs, dtype: m.config.dtype };
    }, [f, weightsLeft]);
    const cdp = await ctx.newCDPSession(page);
    // After the load alone (collected), then after one forward pass.
    for (let i = 0; i < 2; i++) {
      await cdp.send('HeapProfiler.collectGarbage');
      await new Promise((res) => setTimeout(res, 300));
    }
    const loaded = new Map(renderers(profile).map((p) => [p, { hwm: status(p, 'VmHWM'), rss: status(p, 'VmRSS') }]));
    await page.evaluate(async () => {
      const s = window.__model.config.imageSize;
      await window.__model.forward({ pixels: new Float32Array(3 * s * s) });
    });
    for (let i = 0; i < 2; i++) {
      await cdp.send('HeapProfiler.collectGarbage');
      await new Promise((res) => setTimeout(res, 300));
    }
    let best = null;
    for (const p of renderers(profile)) {
      const peakAbove = status(p, 'VmHWM') - (before.get(p) ?? 0);
      const settledAbove = status(p, 'VmRSS') - (before.get(p) ?? 0);
      const l = loaded.get(p);
      const base = before.get(p) ?? 0;
      if (!best || peakAbove > best.peakAbove) best = { pid: p, peakAbove, settledAbove, loadPeakAbove: l ? l.hwm - base : NaN, loadSettledAbove: l ? l.rss - base : NaN };
    }
    return {
      loader: 'chromium', file: f, dtype: r.dtype, f32Bytes, loadMs: Math.round(r.loadMs),
      peakAbove: best.peakAbove, settledAbove: best.settledAbove,
      peak: +(best.peakAbove / f32Bytes).toFixed(2), settled: +(best.settledAbove / f32Bytes).toFixed(2),
      loadPeak: +(best.loadPeakAbove / f32Bytes).toFixed(2), loadSettled: +(best.loadSettledAbove / f32Bytes).toFixed(2),
      note: 'renderer VmHWM and VmRSS (after two CDP collections) minus VmRSS before the load',
    };
  } finally {
    await ctx.close();
  }
}

// peak and settled: load plus one forward pass (a model in use); the last
// columns: after the load alone (Node, Chromium), x F32 weights.
console.log('\nloader          file                      dtype  F32 MB  peak MB (x F32)  settled MB (x F32)  load ms  load-only peak/settled (x)');
for (const r of rows) {
  console.log(`${r.loader.padEnd(15)} ${r.file.padEnd(25)} ${String(r.dtype).padEnd(6)} ${MB(r.f32Bytes).padStart(6)}  ${MB(r.peakAbove).padStart(7)} (${r.peak.toFixed(2)})  ${MB(r.settledAbove).padStart(10)} (${r.settled.toFixed(2)})     ${String(r.loadMs).padStart(6)}  ${r.loadPeak !== undefined ? `${r.loadPeak.toFixed(2)} / ${r.loadSettled.toFixed(2)}` : ''}`);
}
