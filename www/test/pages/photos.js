// Platform JPEG decoding (js/src/sources.js) against Pillow's decoder and
// against the module's own Go decoder. window.runPhotos is called by
// www/test/photos.test.mjs.
import { preprocess } from 'imgembed';
import { imageInput } from '/js/src/sources.js';

const STD = [0.26862954, 0.26130258, 0.27577711];
const BITMAP = { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'none' };

async function rgba(bytes, type) {
  const bmp = await createImageBitmap(new Blob([bytes], { type }), BITMAP);
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0);
  const d = ctx.getImageData(0, 0, bmp.width, bmp.height);
  bmp.close();
  return d;
}

// Mean and max absolute difference in 8-bit levels over the RGB channels.
function levels(a, b) {
  let sum = 0, max = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      const d = Math.abs(a.data[i + c] - b.data[i + c]);
      sum += d;
      max = Math.max(max, d);
    }
  }
  return { mean: sum / (a.width * a.height * 3), max };
}

// Preprocessed floats -> mean absolute difference in 8-bit levels.
function preLevels(a, b, size) {
  const plane = size * size;
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]) * STD[Math.floor(i / plane)] * 255;
  return sum / a.length;
}

/**
 * @param {{photos: {name: string, bytes: Uint8Array, pillow?: Uint8Array}[], size: number}} opts
 *   pillow: Pillow's (libjpeg's) decode of the same file as PNG.
 */
window.runPhotos = async ({ photos, size }) => {
  const out = [];
  for (const p of photos) {
    const r = { name: p.name };
    const inp = await imageInput(p.bytes);
    r.platform = inp.input != null && inp.input.decoded != null;
    if (p.pillow) {
      const [mine, ref] = await Promise.all([rgba(p.bytes, 'image/jpeg'), rgba(p.pillow, 'image/png')]);
      r.size = [mine.width, mine.height];
      r.vsPillow = mine.width === ref.width && mine.height === ref.height ? levels(mine, ref) : null;
    }
    let t = performance.now();
    const a = await preprocess(p.bytes, { size, platformDecode: true });
    r.platformMs = performance.now() - t;
    t = performance.now();
    const b = await preprocess(p.bytes, { size, platformDecode: false });
    r.moduleMs = performance.now() - t;
    r.preprocessedVsModule = preLevels(a, b, size);
    out.push(r);
  }
  return out;
};

document.querySelector('#out').textContent = 'ready';
window.__pageReady = true;
