// Worker half of the package check (see package.js).
import { runCheck } from './check.js';

self.onmessage = async (ev) => {
  try {
    postMessage({ ok: true, result: await runCheck(ev.data) });
  } catch (e) {
    postMessage({ ok: false, code: e?.code, message: e?.message ?? String(e) });
  }
};
