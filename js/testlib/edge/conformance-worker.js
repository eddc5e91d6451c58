// The fixture conformance (checks.mjs) inside workerd: GET /?base=URL runs
// it against a test server that serves testdata/ under URL and answers
// the closing line "conformance: N passed, N failed" (failures before it).
import imgembedWasm from './imgembed.wasm';
import tfjsWasm from './tfjs-backend-wasm-simd.wasm';
import * as pkg from 'imgembed';
import { conformance } from './checks.mjs';

export default {
  async fetch(request) {
    const base = new URL(request.url).searchParams.get('base');
    const models = (new URL(request.url).searchParams.get('models') || '').split(',').filter(Boolean);
    const bytes = async (rel) => {
      const r = await fetch(`${base}/${rel}`);
      if (!r.ok) throw new Error(`${rel}: HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    };
    const r = await conformance(pkg, { models, bytes, source: (rel) => `${base}/${rel}` },
      { wasmModules: { imgembed: imgembedWasm, tfjs: tfjsWasm } });
    const out = [...r.lines.map((l) => JSON.stringify({ runtime: 'workerd', ...l })),
      ...r.failures.map((f) => `FAIL ${f}`), `conformance: ${r.passed} passed, ${r.failed} failed`];
    return new Response(out.join('\n') + '\n');
  },
};
