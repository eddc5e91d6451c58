// The Node half of `make soak` (host/soak_test.go starts it): loads the
// model once, then for the given time embeds the same mixed list of good
// and hostile inputs round after round, and now and then loads faulty
// models; prints one JSON line per round (codes, a checksum of each
// embedding, memory) for the Go side to assert.
import { ImageEmbeddings } from '../src/index.js';

const cfg = JSON.parse(process.argv[2]);
const until = Date.now() + cfg.seconds * 1000;
const model = await ImageEmbeddings.load({ modelSource: cfg.model, cache: false, fetchTimeout: cfg.fetchTimeoutMs, threads: 1 });
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
for (let round = 0; Date.now() < until; round++) {
  const rs = await model.forwardBatchSettled(cfg.inputs);
  const codes = rs.map((r) => (r instanceof Float32Array ? '' : r.code ?? 'untyped'));
  const sums = rs.map((r) => (r instanceof Float32Array ? r.reduce((a, v, i) => a + v * (i + 1), 0) : 0));
  const loads = [];
  if (round % cfg.loadEvery === 1) {
    for (const f of cfg.faultModels) {
      try {
        const m = await ImageEmbeddings.load({ modelSource: f, cache: false, downloadTimeout: cfg.downloadTimeoutMs, threads: 1 });
        m.dispose();
        loads.push('');
      } catch (e) {
        loads.push(e.code ?? 'untyped');
      }
    }
  }
  globalThis.gc?.();
  const mu = process.memoryUsage();
  out({ round, codes, sums, loads, rss: mu.rss, heap: mu.heapUsed, external: mu.external + mu.arrayBuffers });
}
model.dispose();
