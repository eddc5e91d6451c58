// An imgembed Cloudflare Worker: POST an image (its bytes as the body, or
// JSON {"url": "https://…"}) and get back {"embedding": [...]} or
// {"error": {"code", "message"}}. The model is fetched once per isolate
// (Range requests for the vision tensors only) from env.MODEL_URL and kept
// between requests. Workers cannot compile WebAssembly at run time, so both
// wasm binaries are imported as compiled modules; there are no threads.
import imgembedWasm from './imgembed.wasm';
import tfjsWasm from './tfjs-backend-wasm-simd.wasm';
import { ImageEmbeddings } from 'imgembed';

// 128 MB is the isolate limit on Cloudflare; the model must leave room for
// the code and the activations.
const DEFAULT_MEMORY_LIMIT_MB = 96;

let loading = null; // Promise<ImageEmbeddings> of this isolate

function model(env) {
  if (loading == null) {
    loading = ImageEmbeddings.load({
      modelSource: env.MODEL_URL,
      wasmModules: { imgembed: imgembedWasm, tfjs: tfjsWasm },
      memoryLimit: Number(env.MEMORY_LIMIT_MB || DEFAULT_MEMORY_LIMIT_MB) * 1e6,
      cache: false, // no Cache Storage for wasm-assembled files here
    }).catch((e) => {
      loading = null; // a later request tries again
      throw e;
    });
  }
  return loading;
}

function json(body, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

const STATUS = { InvalidInput: 400, UnsupportedImageFormat: 415, CorruptImage: 422, ImageTooLarge: 413, DownloadFailed: 502 };

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (request.method === 'GET' && pathname === '/healthz') return json({ ok: true });
    if (request.method !== 'POST' || pathname !== '/embed') {
      return json({ error: { code: 'InvalidInput', message: 'POST an image to /embed' } }, 404);
    }
    let m;
    try {
      m = await model(env);
    } catch (e) {
      return json({ error: { code: e.code ?? 'InvalidModel', message: e.message } }, 503);
    }
    try {
      let input;
      if ((request.headers.get('content-type') || '').startsWith('application/json')) {
        const { url } = await request.json();
        if (typeof url !== 'string') return json({ error: { code: 'InvalidInput', message: 'expected {"url": "..."}' } }, 400);
        input = url;
      } else {
        input = new Uint8Array(await request.arrayBuffer());
      }
      const embedding = await m.forward(input);
      return json({ embedding: Array.from(embedding), backend: m.backend });
    } catch (e) {
      return json({ error: { code: e.code ?? 'InvalidInput', message: e.message } }, STATUS[e.code] ?? 500);
    }
  },
};
