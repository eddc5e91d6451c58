// What an edge runtime must do with the package, given its exports (so that
// each runtime can import it its own way: 'npm:imgembed' in Deno, 'imgembed'
// in Bun and Node): load a model from a URL (Range) and from a local path,
// embed a file path, bytes and a URL, and give typed errors. argv: the base
// URL of a server holding /models/tiny-f32.safetensors and /images/*.png.
// Closes with "sources: N passed, N failed"; exits 1 on any failure.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const testdata = path.join(root, 'testdata');

export async function run(pkg, base) {
  const { ImageEmbeddings, ImageEmbeddingsError } = pkg;
  let passed = 0;
  let failed = 0;
  const check = (ok, what) => {
    if (ok) passed++;
    else {
      failed++;
      console.error(`FAIL ${what}`);
    }
  };
  const golden = JSON.parse(fs.readFileSync(path.join(testdata, 'golden', 'embed-tiny-f32.json'), 'utf8'));
  const cos = (a, b) => {
    let d = 0, na = 0, nb = 0;
    for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
    return d / Math.sqrt(na * nb);
  };
  for (const [what, modelSource] of [
    ['URL', `${base}/models/tiny-f32.safetensors`],
    ['path', path.join(testdata, 'models', 'tiny-f32.safetensors')],
  ]) {
    let m;
    try {
      m = await ImageEmbeddings.load({ modelSource, cache: false });
    } catch (e) {
      check(false, `load from ${what}: ${e.code}: ${e.message}`);
      continue;
    }
    const want = golden['images/chelsea.png'];
    const file = await m.forward(path.join(testdata, 'images', 'chelsea.png'));
    check(cos(file, want) >= 0.9999, `model from ${what}, image path`);
    const bytes = await m.forward(new Uint8Array(fs.readFileSync(path.join(testdata, 'images', 'chelsea.png'))));
    check(cos(bytes, want) >= 0.9999, `model from ${what}, image bytes`);
    const url = await m.forward(`${base}/images/chelsea.png`);
    check(cos(url, want) >= 0.9999, `model from ${what}, image URL`);
    try {
      await m.forward(`${base}/images/missing.png`);
      check(false, 'a 404 image was embedded');
    } catch (e) {
      check(e instanceof ImageEmbeddingsError && e.code === 'DownloadFailed', `404 image gave ${e.code}`);
    }
    m.dispose();
  }
  try {
    await ImageEmbeddings.load({ modelSource: `${base}/models/tiny-f32.safetensors`, cache: false, memoryLimit: 1e6 });
    check(false, 'a 2 MB model loaded under a 1 MB memoryLimit');
  } catch (e) {
    check(e.code === 'InvalidModel' && /memory limit of 1 MB/.test(e.message), `memoryLimit gave ${e.code}: ${e.message}`);
  }
  console.log(`sources: ${passed} passed, ${failed} failed`);
  return failed;
}
