// ms per image (b32l2 fixture by default, end to end from the three PNG
// photos, after warm-up forwards) in each runtime the package supports:
// Node, Deno, Bun and workerd (the conformance Worker). JSON lines.
// usage: node js/bench/edge.mjs [MODEL=b32l2-f16.safetensors]
import { spawnSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { root, testdata, serve, rangeHandler } from '../testlib/common.mjs';

const model = process.argv[2] ?? 'b32l2-f16.safetensors';
const bin = (n) => path.join(root, 'node_modules', '.bin', n);
const script = path.join(root, 'js', 'testlib', 'edge', 'conformance.mjs');

function report(name, out) {
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) {
    console.log(JSON.stringify({ runtime: name, error: out.slice(-500) }));
    return;
  }
  const j = JSON.parse(line);
  console.log(JSON.stringify({ runtime: j.runtime ?? name, model, threads: j.backend.threads, msPerImage: j.msPerImage }));
}

for (const [name, cmd, args] of [
  ['node', process.execPath, [script, model]],
  ['deno', bin('deno'), ['run', '-A', '--node-modules-dir=manual', script, model]],
  ['bun', bin('bun'), [script, model]],
]) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: 600_000 });
  report(name, r.stdout + r.stderr);
}

// workerd: the conformance Worker, its fixtures from a local server.
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-bench-worker-'));
const dist = spawnSync(process.execPath, [path.join(root, 'js', 'examples', 'cloudflare-worker', 'build.mjs'),
  path.join(root, 'js', 'testlib', 'edge', 'conformance-worker.js'), out], { encoding: 'utf8' }).stdout.trim();
const srv = await serve((req, res) => {
  const file = path.join(testdata, decodeURIComponent(req.url.slice(1)));
  if (!file.startsWith(testdata) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    res.writeHead(404);
    res.end();
    return;
  }
  rangeHandler(fs.readFileSync(file))(req, res);
});
const s = net.createServer();
await new Promise((r) => s.listen(0, '127.0.0.1', r));
const { port } = s.address();
await new Promise((r) => s.close(r));
const config = fs.readFileSync(path.join(root, 'js', 'examples', 'cloudflare-worker', 'workerd.capnp.in'), 'utf8')
  .replaceAll('@MODEL_URL@', 'unused').replaceAll('@MEMORY_LIMIT_MB@', '1000');
fs.writeFileSync(path.join(dist, 'workerd.capnp'), config);
const w = spawn(bin('workerd'), ['serve', path.join(dist, 'workerd.capnp'), '--socket-addr', `http=127.0.0.1:${port}`], { stdio: 'ignore' });
try {
  let text = '';
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/?base=${encodeURIComponent(srv.url)}&models=${model}`);
      text = await r.text();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  report('workerd', text);
} finally {
  w.kill('SIGKILL');
  await srv.close();
  fs.rmSync(out, { recursive: true, force: true });
}
