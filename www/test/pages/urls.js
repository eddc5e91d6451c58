// Image URLs in a browser (js/src/sources.js): fetched by the package and
// decoded by the browser (JPEG) when platformDecode is on, fetched and
// decoded by the module when it is off. window.runURLs is called by
// www/test/urls.test.mjs, which compares the two.
import { ImageEmbeddings, preprocess } from 'imgembed';

const WASM_PATHS = new URL('/node_modules/@tensorflow/tfjs-backend-wasm/dist/', self.location.href).href;

// createImageBitmap calls, to see which path decoded what.
let bitmaps = 0;
const cib = globalThis.createImageBitmap;
globalThis.createImageBitmap = (...a) => {
  bitmaps++;
  return cib(...a);
};

const plain = (r) => (r instanceof Float32Array ? { emb: Array.from(r) } : { code: r.code, message: r.message });

/** Embeds urls with platformDecode on and off ({fetchTimeout} for both);
 * per path: the results, createImageBitmap calls, and preprocess of
 * preprocessURL. */
window.runURLs = async ({ model, urls, fetchTimeout, preprocessURL }) => {
  const out = {};
  for (const platformDecode of [true, false]) {
    const m = await ImageEmbeddings.load({ modelSource: model, backend: 'wasm', wasmPaths: WASM_PATHS, cache: false, platformDecode, fetchTimeout });
    const before = bitmaps;
    const batch = (await m.forwardBatchSettled(urls)).map(plain);
    const calls = bitmaps - before;
    // One by one too: each URL through its own call.
    const single = [];
    for (const u of urls) {
      try {
        single.push({ emb: Array.from(await m.forward(u)) });
      } catch (e) {
        single.push({ code: e.code, message: e.message });
      }
    }
    let pre;
    try {
      pre = Array.from(await preprocess(preprocessURL, { size: m.config.imageSize, platformDecode, fetchTimeout }));
    } catch (e) {
      pre = { code: e.code, message: e.message };
    }
    m.dispose();
    out[platformDecode ? 'platform' : 'module'] = { batch, single, bitmaps: calls, preprocess: pre };
  }
  return out;
};

/** A call with a URL that never completes, aborted after ms: how it ends
 * and how long it took; then the same model embeds url (still usable). */
window.abortURL = async ({ model, slowURL, url, ms, deafHook }) => {
  // deafHook: a fetch hook that never settles and ignores its signal.
  const fetch = deafHook ? (u, init) => (u === slowURL ? new Promise(() => {}) : globalThis.fetch(u, init)) : undefined;
  const m = await ImageEmbeddings.load({ modelSource: model, backend: 'wasm', wasmPaths: WASM_PATHS, cache: false, fetchTimeout: 60000, fetch });
  const ac = new AbortController();
  const t0 = performance.now();
  setTimeout(() => ac.abort(new Error('user gave up')), ms);
  let outcome;
  try {
    await m.forwardBatchSettled([slowURL, url], { signal: ac.signal });
    outcome = { resolved: true };
  } catch (e) {
    outcome = { code: e.code, message: e.message };
  }
  outcome.ms = performance.now() - t0;
  const t1 = performance.now();
  outcome.after = Array.from(await m.forward(url)).length;
  outcome.afterMs = performance.now() - t1;
  m.dispose();
  return outcome;
};

document.querySelector('#out').textContent = 'ready';
window.__pageReady = true;
