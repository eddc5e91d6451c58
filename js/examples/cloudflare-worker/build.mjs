// Bundles worker.js with the package into dist/worker.js and copies the two
// wasm binaries beside it, as workerd's config and wrangler expect them.
// usage: node js/examples/cloudflare-worker/build.mjs [ENTRY.js OUTDIR]
// (the tests bundle their own Worker the same way); prints OUTDIR.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const entry = process.argv[2] ? path.resolve(process.argv[2]) : path.join(here, 'worker.js');
const out = process.argv[3] ? path.resolve(process.argv[3]) : path.join(here, 'dist');
const require = createRequire(import.meta.url);
const tfjsDist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
const moduleWasm = path.join(here, '..', '..', 'dist', 'imgembed.wasm');
if (!fs.existsSync(moduleWasm)) {
  console.error(`${moduleWasm} is missing: run make build first`);
  process.exit(2);
}
fs.mkdirSync(out, { recursive: true });
fs.copyFileSync(moduleWasm, path.join(out, 'imgembed.wasm'));
fs.copyFileSync(path.join(tfjsDist, 'tfjs-backend-wasm-simd.wasm'), path.join(out, 'tfjs-backend-wasm-simd.wasm'));
await build({
  entryPoints: [entry],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  outfile: path.join(out, 'worker.js'),
  // wasm: imported as compiled modules by the runtime; node:*: imported by
  // the package only under Node.
  external: ['*.wasm', 'node:*'],
  logLevel: 'warning',
});
console.log(out);
