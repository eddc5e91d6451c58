// The fixture conformance every runtime must pass, written against the
// package's exports and an io object, so that it runs the same in Node,
// Deno, Bun (files) and a Worker (fetch from a test server):
//   io.models: fixture model names; io.bytes(rel): Promise<Uint8Array> of a
//   testdata file; io.source(rel): what to pass as modelSource / an image.
// Golden pixels: cosine >= 0.99999, max abs <= 1e-4; photos: >= 0.9999;
// a corrupt file must give CorruptImage and leave the model usable. An int8
// fixture is held to its F32 source's goldens at cosine >= 0.999 (the int8
// goal), as js/test/conformance.test.mjs does.
const images = ['astronaut.png', 'chelsea.png', 'coffee.png'];
const quantised = { 'tiny-int8.safetensors': 'tiny-f32.safetensors' };

function cosine(a, b) {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return d / Math.sqrt(na * nb);
}

/** Returns {passed, failed, failures: string[], lines: object[]}. */
export async function conformance({ ImageEmbeddings }, io, options = {}) {
  const r = { passed: 0, failed: 0, failures: [], lines: [] };
  const check = (ok, what) => {
    if (ok) r.passed++;
    else {
      r.failed++;
      r.failures.push(what);
    }
  };
  check(io.models.length > 0, 'fixture models found');
  for (const file of io.models) {
    const int8 = file in quantised;
    const goldenOf = quantised[file] ?? file;
    const golden = JSON.parse(new TextDecoder().decode(await io.bytes(`golden/embed-${goldenOf.replace(/\.safetensors$/, '')}.json`)));
    let m;
    try {
      m = await ImageEmbeddings.load({ ...options, modelSource: io.source(`models/${file}`), cache: false });
    } catch (e) {
      check(false, `${file}: load: ${e.code} ${e.message}`);
      continue;
    }
    const size = m.config.imageSize;
    for (const img of images) {
      const want = golden[`images/${img}`];
      const b = await io.bytes(`golden/pixels-${size}/${img}.f32`);
      const px = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      const e = await m.forward({ pixels: px });
      const c = cosine(e, want);
      let d = 0;
      for (let i = 0; i < e.length; i++) d = Math.max(d, Math.abs(e[i] - want[i]));
      check(int8 ? c >= 0.999 : c >= 0.99999 && d <= 1e-4, `${file} ${img} golden pixels: cosine ${c}, max abs ${d}`);
    }
    const t0 = performance.now();
    for (const img of images) {
      const e = await m.forward(io.source(`images/${img}`));
      check(cosine(e, golden[`images/${img}`]) >= (int8 ? 0.999 : 0.9999), `${file} ${img} file: cosine ${cosine(e, golden[`images/${img}`])}`);
    }
    const ms = (performance.now() - t0) / images.length;
    const png = await io.bytes(`images/${images[2]}`);
    try {
      await m.forward(png.subarray(0, 300));
      check(false, `${file}: a truncated PNG was embedded`);
    } catch (e) {
      check(e.code === 'CorruptImage', `${file}: truncated PNG gave ${e.code}: ${e.message}`);
    }
    const again = await m.forward(io.source(`images/${images[0]}`));
    check(cosine(again, golden[`images/${images[0]}`]) >= (int8 ? 0.999 : 0.9999), `${file}: usable after a bad input`);
    r.lines.push({ model: file, backend: m.backend, msPerImage: Math.round(ms * 10) / 10 });
    m.dispose();
  }
  return r;
}
