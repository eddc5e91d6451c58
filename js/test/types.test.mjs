// The TypeScript declarations: a consumer file that uses the whole public
// API must compile under --strict with Node16 module resolution (through the
// package's "exports" map).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { root } from '../testlib/common.mjs';

const tsc = path.join(root, 'node_modules', '.bin', 'tsc');
const project = path.join(root, 'js', 'testlib', 'types');

test('index.d.ts compiles for a strict TypeScript consumer', { skip: !fs.existsSync(tsc) && 'typescript not installed' }, async () => {
  const { code, out } = await new Promise((resolve) => {
    execFile(tsc, ['-p', project], (err, stdout, stderr) => resolve({ code: err ? err.code : 0, out: stdout + stderr }));
  });
  assert.equal(code, 0, out);
});
