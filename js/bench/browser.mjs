// imgembed in headless Chromium next to the runtimes a web developer would
// otherwise pick (make bench-browser):
//   - forward from preprocessed pixels at each batch size: imgembed on wasm
//     (each thread count, cross-origin isolated) and on WebGPU, and
//     onnxruntime-web 1.30 (wasm at each thread count, and its webgpu
//     execution provider) on the same weights exported to ONNX;
//   - end to end from image bytes (decode, preprocess, forward) for a small
//     photo (512x512 JPEG) and a 12 MP JPEG: imgembed next to
//     transformers.js 4.3.1's web build (CLIPVisionModelWithProjection on the
//     same ONNX file, its own decoding and preprocessing).
// Every configuration runs in a fresh page (tfjs's backend and
// onnxruntime-web's settings are global to a page). Peers are installed into
// --peers (default /tmp/imgembed-browser-peers, outside the repository) and
// served from 127.0.0.1 with the page: nothing loads from a CDN.
// Output: JSON lines (medians of --runs after --warmup; ms per image), with
// the WebGPU adapter's description; then `compare` lines with the ratio
// imgembed / peer from this same run.
//
// usage: node js/bench/browser.mjs --model FILE.safetensors [--threads 1,2]
//          [--batches 1,8] [--runs 5] [--warmup 1] [--photo-runs 3]
//          [--webgpu-batches 1,8] [--webgpu-runs 3] [--skip webgpu,ort,tjs,photos]
//          [--layouts left,right]  (imgembed wasm with tfjsWeightsLeft true/false)
//          [--peers DIR]
// The ONNX export needs /usr/bin/python3 with torch (Debian python3-torch)
// and the export script of the team's peer harness
// ($IMGEMBED_TJS_SETUP, default ../shared/bench/tjs/setup.sh next to the
// repository). WebGPU without a GPU is SwiftShader (software): its
// figures mean little, and a ViT-B/32 forward takes tens of seconds, so
// on a software adapter the WebGPU rows default to batch 1, one run.
// Needs js/dist/imgembed.wasm (make build) and Debian's chromium.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, launch, WEBGPU_ARGS, requireBuild, repo } from '../../www/test/helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const o = { model: '', threads: '1,2', batches: '1,8', runs: '5', warmup: '1', 'photo-runs': '3',
    'webgpu-batches': '', 'webgpu-runs': '', skip: '', layouts: 'left', peers: process.env.IMGEMBED_BROWSER_PEERS || '/tmp/imgembed-browser-peers' };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m || !(m[1] in o)) throw new Error(`bench-browser: unknown argument ${argv[i]}`);
    o[m[1]] = m[2] ?? argv[++i];
  }
  if (!o.model) throw new Error('bench-browser: --model FILE.safetensors is required (e.g. imgembed-weights synth --preset b32)');
  const list = (s) => (s ? s.split(',').map(Number) : null);
  return { model: path.resolve(o.model), threads: list(o.threads), batches: list(o.batches), runs: Number(o.runs), warmup: Number(o.warmup),
    photoRuns: Number(o['photo-runs']), webgpuBatches: list(o['webgpu-batches']), webgpuRuns: o['webgpu-runs'] ? Number(o['webgpu-runs']) : null,
    skip: new Set(o.skip ? o.skip.split(',') : []), peers: path.resolve(o.peers), layouts: o.layouts.split(',') };
}

const say = (x) => process.stdout.write(JSON.stringify(x) + '\n');
const r1 = (x) => (x == null ? x : Number(x.toFixed(1)));

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`bench-browser: ${cmd} ${args.join(' ')} failed (${r.status})`);
  return r.stdout;
}

// Peers: onnxruntime-web 1.30 and transformers.js 4.3.1 (with the
// onnxruntime-web build it pins), the ONNX export and the Hugging Face
// config files transformers.js reads. Installed once into args.peers.
function setUpPeers(args) {
  const P = args.peers;
  fs.mkdirSync(P, { recursive: true });
  if (!fs.existsSync(path.join(P, 'node_modules', 'onnxruntime-web', 'dist')) ||
      !fs.existsSync(path.join(P, 'node_modules', '@huggingface', 'transformers', 'dist'))) {
    if (!fs.existsSync(path.join(P, 'package.json'))) fs.writeFileSync(path.join(P, 'package.json'), '{"private": true}\n');
    // --ignore-scripts: onnxruntime-node (a transformers.js dependency)
    // downloads CUDA libraries from an unreachable host in its install script.
    run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', 'onnxruntime-web@1.30.0', '@huggingface/transformers@4.3.1'], { cwd: P, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  // The peer harness lives beside the checkout (../shared/bench), as the
  // Makefile's PEERS does.
  // (a worktree may sit deeper: the nearest ../shared up the tree).
  let script = process.env.IMGEMBED_TJS_SETUP;
  for (let d = path.resolve(repo, '..'); !script; d = path.dirname(d)) {
    const f = path.join(d, 'shared', 'bench', 'tjs', 'setup.sh');
    if (fs.existsSync(f)) script = f;
    else if (path.dirname(d) === d) script = path.resolve(repo, '..', 'shared', 'bench', 'tjs', 'setup.sh');
  }
  if (!fs.existsSync(script)) throw new Error(`bench-browser: no ONNX export script (set IMGEMBED_TJS_SETUP to shared/bench/tjs/setup.sh)`);
  const modelDir = run('bash', [script, args.model], { env: { ...process.env, TJS_DIR: P } }).trim().split('\n').pop();
  return { modelDir, name: path.basename(modelDir) };
}

// The directory the server exposes under /files/ (and its model.safetensors
// under /models/): hard links (or copies)
// of the checkpoint, the ONNX model folder, the peers' dist folders and the
// photo the 12 MP JPEG is made from. os.Root (the server) refuses symlinks
// out of it.
function serveDir(args, peers) {
  const S = path.join(args.peers, 'serve');
  fs.rmSync(S, { recursive: true, force: true });
  fs.mkdirSync(S, { recursive: true });
  const place = (src, dst) => {
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    try { fs.linkSync(src, dst); } catch { fs.copyFileSync(src, dst); }
  };
  const placeDir = (src, dst) => {
    for (const e of fs.readdirSync(src, { withFileTypes: true })) {
      if (e.isDirectory()) placeDir(path.join(src, e.name), path.join(dst, e.name));
      else if (e.isFile()) place(path.join(src, e.name), path.join(dst, e.name));
    }
  };
  place(args.model, path.join(S, 'model.safetensors'));
  placeDir(peers.modelDir, path.join(S, 'tjs-models', peers.name));
  const nm = path.join(args.peers, 'node_modules');
  placeDir(path.join(nm, 'onnxruntime-web', 'dist'), path.join(S, 'ort'));
  placeDir(path.join(nm, '@huggingface', 'transformers', 'dist'), path.join(S, 'tjs'));
  const nested = path.join(nm, '@huggingface', 'transformers', 'node_modules', 'onnxruntime-web', 'dist');
  placeDir(fs.existsSync(nested) ? nested : path.join(nm, 'onnxruntime-web', 'dist'), path.join(S, 'tjs-ort'));
  place(path.join(repo, 'testdata', 'images', 'coffee.png'), path.join(S, 'coffee.png'));
  place(path.join(here, 'astronaut.jpg'), path.join(S, 'astronaut.jpg'));
  return S;
}

// The checkpoint's image size: sqrt(positions - 1) * patch.
function imageSizeOf(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const hb = Buffer.alloc(Number(len.readBigUInt64LE(0)));
    fs.readSync(fd, hb, 0, hb.length, 8);
    const h = JSON.parse(hb.toString('utf8'));
    const pos = h['vision_model.embeddings.position_embedding.weight'].shape[0];
    return Math.round(Math.sqrt(pos - 1)) * h['vision_model.embeddings.patch_embedding.weight'].shape[2];
  } finally {
    fs.closeSync(fd);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  requireBuild();
  const wantPeers = !(args.skip.has('ort') && args.skip.has('tjs'));
  const peers = wantPeers ? setUpPeers(args) : null;
  const dir = serveDir(args, peers ?? { modelDir: fs.mkdtempSync(path.join(args.peers, 'none-')), name: 'none' });
  const size = imageSizeOf(args.model);
  const server = await startServer({ weights: dir, files: dir });
  const ctx = await launch({ args: WEBGPU_ARGS });
  const origin = server.url.replace(/\/$/, '');
  const results = [];
  const page = async (fn, opts) => {
    const p = await ctx.newPage();
    const logs = [];
    p.on('console', (m) => logs.push(m.text()));
    p.on('request', (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) logs.push(`EXTERNAL ${r.url()}`); });
    try {
      await p.goto(`${origin}/bench/browser.html`);
      await p.waitForFunction(() => window.__pageReady === true, null, { timeout: 60_000 });
      return await p.evaluate(({ fn, opts }) => window[fn](opts), { fn, opts });
    } catch (e) {
      throw new Error(`${fn}: ${e.message}\n--- page log ---\n${logs.join('\n')}`);
    } finally {
      if (logs.some((l) => l.startsWith('EXTERNAL'))) console.error(logs.filter((l) => l.startsWith('EXTERNAL')).join('\n'));
      await p.close();
    }
  };
  try {
    const photos = [];
    if (!args.skip.has('photos')) {
      photos.push({ name: 'astronaut-512.jpg', b64: fs.readFileSync(path.join(here, 'astronaut.jpg')).toString('base64') });
      photos.push({ name: 'synthetic-4000x3000.jpg', b64: await page('make12MP', '/files/coffee.png') });
    }
    const common = { model: '/models/model.safetensors', batches: args.batches, runs: args.runs, warmup: args.warmup };
    const emit = (r, extra) => {
      for (const f of r.forward ?? []) {
        const row = { bench: 'forward', runtime: r.runtime, ...extra, batch: f.batch, ms_per_image: r1(f.ms_per_image), ms_per_batch: r1(f.ms_per_batch),
          min_ms_per_batch: r1(f.min_ms_per_batch), runs: f.runs, load_ms: Math.round(r.load_ms), cross_origin_isolated: r.crossOriginIsolated };
        results.push(row);
        say(row);
      }
      for (const ph of r.photos ?? []) {
        const row = { bench: 'end-to-end', runtime: r.runtime, ...extra, photo: ph.photo, photo_bytes: ph.bytes, ms: r1(ph.ms), min_ms: r1(ph.min_ms), runs: ph.runs };
        results.push(row);
        say(row);
      }
    };
    for (const t of args.threads) {
      for (const layout of args.layouts) {
        const r = await page('benchImgembed', { ...common, backend: 'wasm', threads: t, photos, photoRuns: args.photoRuns, tfjsWeightsLeft: layout !== 'right' });
        emit(r, { backend: 'wasm', threads: r.backend.threads, simd: r.backend.simd, ...(args.layouts.length > 1 ? { layout } : {}) });
      }
      if (!args.skip.has('ort')) {
        const o = await page('benchOrt', { ...common, ortModule: '/files/ort/ort.all.min.mjs', ortDir: '/files/ort/', onnx: `/files/tjs-models/${peers.name}/onnx/vision_model.onnx`, ep: 'wasm', threads: t, size });
        emit(o, { backend: 'wasm', threads: t, version: o.version });
      }
      if (!args.skip.has('tjs') && photos.length) {
        const j = await page('benchTjs', { tjsModule: '/files/tjs/transformers.min.js', ortDir: '/files/tjs-ort/', modelsDir: '/files/tjs-models/', modelName: peers.name, threads: t, device: 'wasm', photos, photoRuns: args.photoRuns });
        emit(j, { backend: 'wasm', threads: t, version: j.version });
      }
    }
    if (!args.skip.has('webgpu')) {
      const ifSoftware = { batches: args.webgpuBatches ?? [1], runs: args.webgpuRuns ?? 1, warmup: 1, photos: [] };
      const g = await page('benchImgembed', { ...common, backend: 'webgpu', photos, photoRuns: args.photoRuns, ifSoftware,
        ...(args.webgpuBatches ? { batches: args.webgpuBatches } : {}), ...(args.webgpuRuns ? { runs: args.webgpuRuns } : {}) })
        .catch((e) => ({ error: e.message }));
      if (g.error || g.backend?.name !== 'webgpu') {
        say({ bench: 'forward', runtime: 'imgembed', backend: 'webgpu', skipped: g.error ?? `backend ${JSON.stringify(g.backend)}` });
      } else {
        const software = g.backend.software === true;
        const label = { backend: 'webgpu', adapter: g.backend.adapter ?? null, software };
        emit(g, label);
        if (!args.skip.has('ort')) {
          const o = await page('benchOrt', { ...common, batches: g.forward.map((f) => f.batch), runs: software ? ifSoftware.runs : args.runs,
            warmup: software ? 1 : args.warmup, ortModule: '/files/ort/ort.all.min.mjs', ortDir: '/files/ort/',
            onnx: `/files/tjs-models/${peers.name}/onnx/vision_model.onnx`, ep: 'webgpu', threads: 1, size });
          emit(o, { ...label, adapter: o.adapter ?? label.adapter, version: o.version });
        }
      }
    }
  } finally {
    await ctx.close();
    await server.close();
  }
  // Ratios from this run: imgembed / peer (below 1: imgembed faster).
  for (const r of results.filter((x) => x.runtime === 'imgembed')) {
    if (r.layout === 'right') continue; // the comparison is for the default layout
    const peer = r.bench === 'forward'
      ? results.find((x) => x.runtime === 'onnxruntime-web' && x.bench === 'forward' && x.backend === r.backend && x.batch === r.batch && (r.backend !== 'wasm' || x.threads === r.threads))
      : results.find((x) => x.runtime === 'transformers.js' && x.photo === r.photo && x.threads === r.threads);
    if (!peer) continue;
    const a = r.bench === 'forward' ? r.ms_per_image : r.ms, b = peer.bench === 'forward' ? peer.ms_per_image : peer.ms;
    say({ compare: `imgembed / ${peer.runtime}`, bench: r.bench, backend: r.backend, threads: r.threads, batch: r.batch, photo: r.photo,
      ms: [a, b], ratio: Number((a / b).toFixed(2)) });
  }
}

await main();
