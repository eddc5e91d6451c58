// Fixture conformance (checks.mjs) in the runtime that runs this script:
// Node, Deno or Bun, reading testdata/ with node:fs, which all three have.
// Prints a JSON line per model and closes with "conformance: N passed,
// N failed"; exits 1 on any failure. argv: model names (default: all).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as pkg from '../../src/index.js';
import { conformance } from './checks.mjs';

const testdata = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'testdata');
const runtime = typeof Deno === 'object' ? `deno ${Deno.version.deno}`
  : typeof Bun === 'object' ? `bun ${Bun.version}` : `node ${process.versions.node}`;
const only = process.argv.slice(2);
const models = fs.readdirSync(path.join(testdata, 'models'))
  .filter((f) => f.endsWith('.safetensors') && (only.length === 0 || only.includes(f))).sort();
const r = await conformance(pkg, {
  models,
  bytes: async (rel) => new Uint8Array(fs.readFileSync(path.join(testdata, rel))),
  source: (rel) => path.join(testdata, rel),
});
for (const l of r.lines) console.log(JSON.stringify({ runtime, ...l }));
for (const f of r.failures) console.error(`FAIL ${f}`);
console.log(`conformance: ${r.passed} passed, ${r.failed} failed`);
process.exit(r.failed > 0 ? 1 : 0);
