// Shared set-up of the browser tests: build and start the Go demo server,
// launch Debian's Chromium through playwright-core (never a downloaded
// browser), and small numeric helpers.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const testdata = join(repo, 'testdata');
export const artifacts = join(repo, 'test-artifacts');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Fails early, with the fix, when `make build` has not run. */
export function requireBuild() {
  const root = process.env.IMGEMBED_WWW_REPO || repo;
  for (const f of ['js/dist/imgembed.wasm', 'js/dist/wasm_exec.js', 'js/src/index.js']) {
    if (!existsSync(join(root, f))) throw new Error(`${f} is missing: run \`make build\` (and wait for js/src) first`);
  }
}

/**
 * Builds www/cmd/serve and starts it on a free port of 127.0.0.1.
 * Resolves to {url, close()}.
 */
export async function startServer({ weights = join(testdata, 'models'), files } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'imgembed-serve-'));
  const bin = join(dir, 'serve');
  const b = spawnSync('go', ['build', '-o', bin, './www/cmd/serve'], { cwd: repo, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`go build ./www/cmd/serve failed:\n${b.stderr}`);
  // IMGEMBED_WWW_REPO serves another checkout/build with this repo's server.
  const serveRepo = process.env.IMGEMBED_WWW_REPO || repo;
  const proc = spawn(bin, ['--addr', '127.0.0.1', '--port', '0', '--weights', weights, '--repo', serveRepo, ...(files ? ['--files', files] : [])], {
    cwd: repo,
    env: { ...process.env, IMGEMBED_SERVE_QUIET: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${stderr}`)), 20000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/serving (http:\/\/\S+\/)/);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
    proc.on('exit', (code) => fail(new Error(`server exited with ${code}:\n${stderr}`)));
  });
  return {
    url,
    stderr: () => stderr,
    close: async () => {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode != null ? r() : proc.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Launches headless Chromium with a fresh profile. Returns the context.
 * `args`: extra command-line flags (e.g. WEBGPU_ARGS).
 */
export async function launch({ args = [] } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'imgembed-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...args,
    ],
  });
  ctx.profileDir = profile; // js/bench/mem.mjs finds the renderer by it
  const close = ctx.close.bind(ctx);
  ctx.close = async () => {
    await close();
    rmSync(profile, { recursive: true, force: true });
  };
  return ctx;
}

/**
 * Chromium flags for WebGPU without a GPU: the software adapter
 * (SwiftShader). navigator.gpu also needs a secure context (127.0.0.1).
 */
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu'];

/** Records every request of a page that leaves the test server. */
export function watchExternalRequests(page, origin) {
  const external = [];
  page.context().on('request', (req) => {
    const u = req.url();
    if (!(u.startsWith(origin) || u.startsWith('blob:') || u.startsWith('data:'))) external.push(u);
  });
  return external;
}

/** Collects console errors and uncaught page errors (for failure messages). */
export function collectLogs(page) {
  const logs = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  page.on('worker', (w) => w.on('console', (m) => logs.push(`[worker ${m.type()}] ${m.text()}`)));
  return logs;
}

export function ensureArtifacts() {
  mkdirSync(artifacts, { recursive: true });
  return artifacts;
}

export function dot(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function cosine(a, b) {
  return dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** A synthetic RGB test picture (smooth gradients and a disc), w*h*3 bytes. */
export function synthRGB(w, h) {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 3 * (y * w + x);
      const inDisc = (x - w * 0.6) ** 2 + (y - h * 0.45) ** 2 < (Math.min(w, h) * 0.25) ** 2;
      px[i] = inDisc ? 230 : Math.round((255 * x) / (w - 1));
      px[i + 1] = inDisc ? 60 : Math.round((255 * y) / (h - 1));
      px[i + 2] = (x * 7 + y * 3) % 256;
    }
  }
  return px;
}

/** Uncompressed 24-bit BMP (bottom-up rows, BGR, rows padded to 4 bytes). */
export function encodeBMP(rgb, w, h) {
  const stride = (w * 3 + 3) & ~3;
  const size = 54 + stride * h;
  const b = Buffer.alloc(size);
  b.write('BM', 0, 'ascii');
  b.writeUInt32LE(size, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(w, 18);
  b.writeInt32LE(h, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  b.writeUInt32LE(stride * h, 34);
  for (let y = 0; y < h; y++) {
    const row = 54 + (h - 1 - y) * stride;
    for (let x = 0; x < w; x++) {
      const s = 3 * (y * w + x);
      b[row + 3 * x] = rgb[s + 2];
      b[row + 3 * x + 1] = rgb[s + 1];
      b[row + 3 * x + 2] = rgb[s];
    }
  }
  return b;
}

/** Baseline little-endian TIFF: RGB, 8 bits per sample, one uncompressed strip. */
export function encodeTIFF(rgb, w, h) {
  const entries = [
    // tag, type (3 SHORT, 4 LONG), count, value
    [256, 4, 1, w], // ImageWidth
    [257, 4, 1, h], // ImageLength
    [258, 3, 3, 'bps'], // BitsPerSample -> offset
    [259, 3, 1, 1], // Compression: none
    [262, 3, 1, 2], // Photometric: RGB
    [273, 4, 1, 'data'], // StripOffsets
    [277, 3, 1, 3], // SamplesPerPixel
    [278, 4, 1, h], // RowsPerStrip
    [279, 4, 1, rgb.length], // StripByteCounts
    [284, 3, 1, 1], // PlanarConfiguration: chunky
  ];
  const ifdSize = 2 + 12 * entries.length + 4;
  const bpsOff = 8 + ifdSize;
  const dataOff = bpsOff + 6;
  const b = Buffer.alloc(dataOff + rgb.length);
  b.write('II', 0, 'ascii');
  b.writeUInt16LE(42, 2);
  b.writeUInt32LE(8, 4);
  b.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, count, value], k) => {
    const o = 10 + 12 * k;
    b.writeUInt16LE(tag, o);
    b.writeUInt16LE(type, o + 2);
    b.writeUInt32LE(count, o + 4);
    const v = value === 'bps' ? bpsOff : value === 'data' ? dataOff : value;
    if (type === 3 && count === 1) b.writeUInt16LE(v, o + 8);
    else b.writeUInt32LE(v, o + 8);
  });
  b.writeUInt32LE(0, 10 + 12 * entries.length); // no next IFD
  for (let i = 0; i < 3; i++) b.writeUInt16LE(8, bpsOff + 2 * i);
  rgb.copy(b, dataOff);
  return b;
}
