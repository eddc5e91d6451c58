// Pure helpers of the demo (no DOM): similarity maths and formatting.
// Kept separate so that node --test can check them without a browser.

/** Dot product of two equal-length vectors (cosine for unit vectors). */
export function dot(a, b) {
  if (a.length !== b.length) throw new RangeError(`dot: lengths ${a.length} and ${b.length} differ`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Cosine similarity, not assuming unit norm. */
export function cosine(a, b) {
  const d = dot(a, b);
  const n = Math.sqrt(dot(a, a) * dot(b, b));
  return n === 0 ? 0 : d / n;
}

/** n x n matrix of dot products (the embeddings are unit vectors). */
export function similarityMatrix(vectors) {
  return vectors.map((a) => vectors.map((b) => dot(a, b)));
}

/**
 * Indices of `vectors` other than `query`, most similar first, with scores.
 * Ties keep the original order (stable sort).
 */
export function rankBySimilarity(vectors, query) {
  const q = vectors[query];
  return vectors
    .map((v, i) => ({ index: i, score: dot(q, v) }))
    .filter((r) => r.index !== query)
    .sort((x, y) => y.score - x.score);
}

/** Smallest and largest off-diagonal value; [0, 1] when there are none. */
export function offDiagonalRange(m) {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < m.length; i++) {
    for (let j = 0; j < m.length; j++) {
      if (i === j) continue;
      lo = Math.min(lo, m[i][j]);
      hi = Math.max(hi, m[i][j]);
    }
  }
  return lo <= hi ? [lo, hi] : [0, 1];
}

/**
 * Heat-map colour for value v scaled into [lo, hi]: a perceptually ordered
 * ramp from pale blue-grey (low) to deep indigo (high). Returns CSS colours
 * for the cell background and a readable text colour.
 */
export function heatColor(v, lo, hi) {
  const t = hi > lo ? Math.min(1, Math.max(0, (v - lo) / (hi - lo))) : 1;
  // HSL: hue 205 (sky) -> 245 (indigo), lightness 94% -> 34%.
  const h = 205 + 40 * t;
  const s = 60 + 25 * t;
  const l = 94 - 60 * t;
  return { background: `hsl(${h.toFixed(0)} ${s.toFixed(0)}% ${l.toFixed(0)}%)`, color: l < 58 ? '#fff' : '#1d2433' };
}

/** Human-readable byte count: 1536 -> "1.5 KB" (powers of 1000, like file managers). */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 0) return '?';
  if (n < 1000) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  do {
    v /= 1000;
    u++;
  } while (v >= 1000 && u < units.length - 1);
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[u]}`;
}

/** "12.3 MB of 45.6 MB · 27 %" (total unknown: "12.3 MB"). */
export function progressText(loaded, total) {
  if (total > 0) {
    const pct = Math.min(100, Math.floor((loaded / total) * 100));
    return `${formatBytes(loaded)} of ${formatBytes(total)} · ${pct} %`;
  }
  return loaded > 0 ? formatBytes(loaded) : '…';
}

/** Milliseconds with sensible precision. */
export function formatMs(ms) {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
