// What `npm pack` ships: the module, its loader, the sources, types and the
// LICENSE; and that packing without the built module fails loudly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { root } from '../testlib/common.mjs';

const npm = (args, cwd) => promisify(execFile)('npm', args, { cwd, timeout: 120_000 });

test('npm pack ships the module, wasm_exec.js, sources, types and LICENSE', async () => {
  const { stdout } = await npm(['pack', '--dry-run', '--json', '--ignore-scripts=false'], path.join(root, 'js'));
  const files = JSON.parse(stdout)[0].files.map((f) => f.path);
  for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/imgembed.wasm', 'dist/wasm_exec.js', 'bin/imgembed.mjs',
    'src/index.js', 'src/index.d.ts', 'src/react.js', 'src/react.d.ts', 'src/backend.js']) {
    assert.ok(files.includes(f), `${f} not packed: ${files}`);
  }
  assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('testlib/')), `tests packed: ${files}`);
  assert.equal(fs.readFileSync(path.join(root, 'js', 'LICENSE'), 'utf8'), fs.readFileSync(path.join(root, 'LICENSE'), 'utf8'));
});

test('npm pack without dist/imgembed.wasm fails and says to run make build', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-pack-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const f of ['package.json', 'README.md', 'src', 'bin', 'scripts']) {
    fs.cpSync(path.join(root, 'js', f), path.join(dir, f), { recursive: true });
  }
  await assert.rejects(npm(['pack', '--dry-run'], dir), (e) => {
    assert.notEqual(e.code, 0);
    assert.match(e.stderr, /dist\/imgembed\.wasm and dist\/wasm_exec\.js missing: run `make build`/);
    return true;
  });
});
