// Runs before `npm pack` / `npm publish`: the package is nothing without the
// module built by `make build`, so refuse to pack without it; and ship the
// repository's LICENSE.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const missing = ['dist/imgembed.wasm', 'dist/wasm_exec.js'].filter((f) => !fs.existsSync(path.join(pkg, f)));
if (missing.length > 0) {
  console.error(`imgembed prepack: ${missing.join(' and ')} missing: run \`make build\` in the repository first`);
  process.exit(1);
}
const license = path.join(pkg, '..', 'LICENSE');
if (fs.existsSync(license)) fs.copyFileSync(license, path.join(pkg, 'LICENSE'));
if (!fs.existsSync(path.join(pkg, 'LICENSE'))) {
  console.error('imgembed prepack: no LICENSE to ship');
  process.exit(1);
}
