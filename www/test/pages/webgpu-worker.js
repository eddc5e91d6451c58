// Worker half of the WebGPU checks (see webgpu.js).
import * as checks from './webgpu-check.js';

self.onmessage = async (ev) => {
  try {
    postMessage({ ok: true, result: await checks[ev.data.fn](ev.data.opts) });
  } catch (e) {
    postMessage({ ok: false, code: e?.code, message: e?.message ?? String(e) });
  }
};
