// Builds this working tree's imgembed binary for backend 'native' tests
// (go's build cache makes it quick when nothing changed), where findBinary
// looks for it: js/npm/<platform>/bin.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { root } from './common.mjs';

export function buildNativeBinary() {
  const exe = process.platform === 'win32' ? 'imgembed.exe' : 'imgembed';
  const bin = path.join(root, 'js', 'npm', `${process.platform}-${process.arch}`, 'bin', exe);
  execFileSync('go', ['build', '-trimpath', '-buildvcs=false', '-o', bin, './host/cmd/imgembed'], {
    cwd: root,
    env: { ...process.env, CGO_ENABLED: '0' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return bin;
}

/** A private cache dir for the children (never the user's). */
export function privateCacheDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'imgembed-native-test-'));
  process.env.IMGEMBED_CACHE_DIR = d;
  return d;
}

export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitGone(pid, ms = 10000) {
  const end = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
