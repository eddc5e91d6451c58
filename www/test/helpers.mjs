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
export async function startServer({ weights = join(testdata, 'models') } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'imgembed-serve-'));
  const bin = join(dir, 'serve');
  const b = spawnSync('go', ['build', '-o', bin, './www/cmd/serve'], { cwd: repo, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`go build ./www/cmd/serve failed:\n${b.stderr}`);
  // IMGEMBED_WWW_REPO serves another checkout/build with this repo's server.
  const serveRepo = process.env.IMGEMBED_WWW_REPO || repo;
  const proc = spawn(bin, ['--addr', '127.0.0.1', '--port', '0', '--weights', weights, '--repo', serveRepo], {
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

/** Launches headless Chromium with a fresh profile. Returns the context. */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'imgembed-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const close = ctx.close.bind(ctx);
  ctx.close = async () => {
    await close();
    rmSync(profile, { recursive: true, force: true });
  };
  return ctx;
}

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
