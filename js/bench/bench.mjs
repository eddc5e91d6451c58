// imgembed benchmark (Node): ViT-B/32 with seeded random weights on the
// TensorFlow.js wasm backend, per-image milliseconds at each batch size for
//   pixels  forward alone from preprocessed 3x224x224 pixels ({pixels} input),
//   raw     forward from raw 224x224 RGB pixels (preprocessing included, no resize),
//   jpeg    end to end from a 512x512 JPEG (decode, resize, crop, normalise, forward),
// plus a large tf.matMul to show what the XNNPACK threads do on their own.
// Each thread count runs in its own child process (tfjs's backend is
// process-global); all in one invocation. Output: JSON lines on stdout,
// medians of --runs timed runs after --warmup untimed ones, with the SIMD and
// thread settings tfjs actually used and the process's CPU utilisation
// (CPU time / wall time: about 1 per busy thread).
//
// usage: node js/bench/bench.mjs [--threads 1,2] [--batches 1,8] [--runs 7]
//          [--warmup 2] [--cases pixels,raw,jpeg,matmul] [--model FILE]
//          [--layouts left,right]  (tfjsWeightsLeft true/false, timed in turn)
// Without --model the weights are synthesised once with
// `go run ./weights/cmd/imgembed-weights synth --preset b32 --seed 1` into
// $TMPDIR/imgembed-bench/ (outside the repository) and reused.
// Needs js/dist/imgembed.wasm (make build).

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

function parseArgs(argv) {
  const o = { threads: '1,2', batches: '1,8', runs: '7', warmup: '2', cases: 'matmul,pixels,raw,jpeg', model: '', layouts: 'left', child: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--child') { o.child = true; continue; }
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(a);
    if (!m || !(m[1] in o)) throw new Error(`bench: unknown argument ${a}`);
    o[m[1]] = m[2] ?? argv[++i];
  }
  return {
    child: o.child,
    threads: o.threads.split(',').map(Number),
    batches: o.batches.split(',').map(Number),
    runs: Number(o.runs),
    warmup: Number(o.warmup),
    cases: o.cases.split(','),
    model: o.model,
    layouts: o.layouts.split(','),
  };
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const r1 = (x) => Number(x.toFixed(1));
const r2 = (x) => Number(x.toFixed(2));

// CPU ticks per OS thread of this process (Linux /proc; null elsewhere).
// Node's main thread, its helper threads and every worker (tfjs's pthreads)
// are separate OS threads, so this shows which threads did the work.
export function threadTicks() {
  try {
    const out = new Map();
    for (const tid of fs.readdirSync('/proc/self/task')) {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, Number(f[11]) + Number(f[12])); // utime + stime
    }
    return out;
  } catch {
    return null;
  }
}

// How many threads did at least 10 % of the CPU work between two samples.
export function busyThreads(before, after) {
  if (!before || !after) return null;
  const d = [...after].map(([tid, t]) => t - (before.get(tid) ?? 0)).filter((x) => x > 0);
  const total = d.reduce((a, b) => a + b, 0);
  return { busy_threads: d.filter((x) => x >= 0.1 * total).length, cpu_ticks: total };
}

async function time(fn, runs, warmup) {
  for (let i = 0; i < warmup; i++) await fn();
  const ts = [];
  const k0 = threadTicks();
  const c0 = process.cpuUsage(), w0 = performance.now();
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  const cu = process.cpuUsage(c0);
  return { med: median(ts), min: Math.min(...ts), util: (cu.user + cu.system) / 1000 / (performance.now() - w0), ...busyThreads(k0, threadTicks()) };
}

function ensureModel(file) {
  if (file) return path.resolve(file);
  const dir = path.join(os.tmpdir(), 'imgembed-bench');
  const out = path.join(dir, 'b32-f32-seed1.safetensors');
  if (!fs.existsSync(out)) {
    fs.mkdirSync(dir, { recursive: true });
    process.stderr.write(`bench: synthesising ViT-B/32 random weights into ${out}\n`);
    execFileSync(process.env.GO || 'go', ['run', './weights/cmd/imgembed-weights', 'synth', '--preset', 'b32', '--seed', '1', '--out', out],
      { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return out;
}

async function parent(args) {
  if (!fs.existsSync(path.join(root, 'js', 'dist', 'imgembed.wasm'))) {
    throw new Error('bench: js/dist/imgembed.wasm is missing: run make build');
  }
  const model = ensureModel(args.model);
  const results = [];
  for (const t of args.threads) {
    const argv = [fileURLToPath(import.meta.url), '--child', '--threads', String(t), '--batches', args.batches.join(','),
      '--runs', String(args.runs), '--warmup', String(args.warmup), '--cases', args.cases.join(','), '--model', model,
      '--layouts', args.layouts.join(',')];
    await new Promise((resolve, reject) => {
      const p = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
      let buf = '';
      p.stdout.on('data', (d) => {
        buf += d;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          process.stdout.write(line + '\n');
          try { results.push(JSON.parse(line)); } catch { /* not ours */ }
        }
      });
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench child (threads ${t}) exited ${code}`))));
    });
  }
  // Speed-up of each case from the first thread count to the others.
  const [t0, ...rest] = args.threads;
  for (const t of rest) {
    for (const r of results.filter((x) => x.bench === 'imgembed' && x.threads === t)) {
      const b = results.find((x) => x.bench === 'imgembed' && x.threads === t0 && x.case === r.case && x.batch === r.batch && x.layout === r.layout);
      if (b) {
        console.log(JSON.stringify({ compare: `threads ${t0} -> ${t}`, case: r.case, batch: r.batch,
          layout: r.layout, ms_per_image: [b.ms_per_image, r.ms_per_image], speedup: r2(b.ms_per_image / r.ms_per_image),
          speedup_of_min: r2(b.min_ms_per_batch / r.min_ms_per_batch), cpu_util: [b.cpu_util, r.cpu_util] }));
      }
    }
  }
}

async function child(args) {
  const threads = args.threads[0];
  const tf = await import('@tensorflow/tfjs-core');
  const tfwasm = await import('@tensorflow/tfjs-backend-wasm');
  const { initBackend } = await import('../src/backend.js');
  const info = await initBackend({ threads });
  const setting = {
    threads,
    tf_threads: tfwasm.getThreadsCount(),
    simd: info.simd,
    multithread_build: Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')),
    tfjs: tfwasm.version_wasm,
    node: process.version,
  };
  console.log(JSON.stringify({ backend: info, ...setting }));

  if (args.cases.includes('matmul')) {
    for (const [m, k, n] of [[50, 768, 3072], [400, 768, 3072]]) {
      const a = tf.randomUniform([m, k], -1, 1, 'float32', 1);
      const b = tf.randomUniform([k, n], -1, 1, 'float32', 2);
      const r = await time(() => { const c = tf.matMul(a, b); c.dataSync(); c.dispose(); }, args.runs * 3, args.warmup + 1);
      console.log(JSON.stringify({ bench: 'tf.matMul', shape: `${m}x${k}x${n}`, ...setting, ms: r1(r.med), min_ms: r1(r.min),
        gflops: r1((2 * m * k * n) / r.med / 1e6), cpu_util: r2(r.util), busy_threads: r.busy_threads, cpu_ticks: r.cpu_ticks }));
      tf.dispose([a, b]);
    }
  }

  const imgCases = args.cases.filter((c) => c !== 'matmul');
  if (imgCases.length === 0) return;
  const { ImageEmbeddings, preprocess } = await import('../src/index.js');
  // --layouts left,right: one model per tfjs matMul layout (load option
  // tfjsWeightsLeft), timed in alternation so both see the same machine.
  const models = [];
  let loadMs;
  for (const layout of args.layouts) {
    if (layout !== 'left' && layout !== 'right') throw new Error(`bench: layout must be left or right, got ${layout}`);
    const t0 = performance.now();
    const model = await ImageEmbeddings.load({ modelSource: args.model, threads, cache: false, tfjsWeightsLeft: layout === 'left' });
    loadMs = performance.now() - t0;
    models.push({ layout, model });
  }
  const S = models[0].model.config.imageSize;
  const jpeg = new Uint8Array(fs.readFileSync(path.join(here, 'astronaut.jpg')));
  const pixels = await preprocess(jpeg, { size: S });
  let seed = 1;
  const raw = { data: Uint8Array.from({ length: S * S * 3 }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24), width: S, height: S, channels: 3 };
  const input = { pixels: { pixels }, raw, jpeg };

  for (const c of imgCases) {
    if (!(c in input)) throw new Error(`bench: unknown case ${c}`);
    for (const B of args.batches) {
      const srcs = Array.from({ length: B }, () => input[c]);
      for (const { model } of models) {
        const out = await model.forwardBatch(srcs);
        if (out.length !== B || out[0].length !== model.config.embeddingSize) throw new Error('bench: bad output');
      }
      // Batch 8 costs 8 images a run: fewer runs keep the total time sane.
      const runs = B > 1 ? Math.max(3, Math.ceil(args.runs / 2)) : args.runs;
      const rs = models.length === 1 ? [await time(() => models[0].model.forwardBatch(srcs), runs, B > 1 ? 1 : args.warmup)]
        : await timeAlternating(models.map(({ model }) => () => model.forwardBatch(srcs)), runs, B > 1 ? 1 : args.warmup);
      models.forEach(({ layout }, i) => {
        const r = rs[i];
        console.log(JSON.stringify({ bench: 'imgembed', case: c, ...setting, layout, batch: B, ms_per_batch: r1(r.med), ms_per_image: r1(r.med / B),
          min_ms_per_batch: r1(r.min), runs, cpu_util: r2(r.util), busy_threads: r.busy_threads, load_ms: Math.round(loadMs), model: path.basename(args.model) }));
      });
      if (models.length > 1) {
        console.log(JSON.stringify({ compare: models.map((m) => m.layout).join(' vs '), case: c, threads, batch: B,
          ms_per_image: rs.map((r) => r1(r.med / B)), ratio: r2(rs[0].med / rs[1].med) }));
      }
    }
  }
  for (const { model } of models) model.dispose();
}

// Like time, for several functions run in turn (one run of each per round):
// medians and minimums per function; cpu_util is over all of them.
async function timeAlternating(fns, runs, warmup) {
  for (let i = 0; i < warmup; i++) for (const fn of fns) await fn();
  const ts = fns.map(() => []);
  const c0 = process.cpuUsage(), w0 = performance.now();
  for (let i = 0; i < runs; i++) {
    for (const [j, fn] of fns.entries()) {
      const t0 = performance.now();
      await fn();
      ts[j].push(performance.now() - t0);
    }
  }
  const cu = process.cpuUsage(c0);
  const util = (cu.user + cu.system) / 1000 / (performance.now() - w0);
  return ts.map((t) => ({ med: median(t), min: Math.min(...t), util, busy_threads: null }));
}

const args = parseArgs(process.argv.slice(2));
await (args.child ? child(args) : parent(args));
