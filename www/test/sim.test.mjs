// Unit tests of the demo's pure helpers (no browser).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dot, cosine, similarityMatrix, rankBySimilarity, offDiagonalRange, heatColor, formatBytes, progressText, formatMs } from '../sim.js';

test('dot, cosine and the similarity matrix', () => {
  const a = [1, 0, 0];
  const b = [0.6, 0.8, 0];
  const c = [0, 0, 1];
  assert.equal(dot(a, b), 0.6);
  assert.ok(Math.abs(cosine([2, 0, 0], [3, 4, 0]) - 0.6) < 1e-12);
  assert.equal(cosine([0, 0], [1, 1]), 0);
  assert.throws(() => dot([1], [1, 2]), RangeError);
  const m = similarityMatrix([a, b, c]);
  assert.deepEqual(m, [[1, 0.6, 0], [0.6, 1, 0], [0, 0, 1]]);
  assert.deepEqual(offDiagonalRange(m), [0, 0.6]);
  assert.deepEqual(offDiagonalRange([[1]]), [0, 1]);
});

test('rankBySimilarity orders the others, most similar first', () => {
  const v = [[1, 0], [0, 1], [0.8, 0.6], [-1, 0]];
  const r = rankBySimilarity(v, 0);
  assert.deepEqual(r.map((x) => x.index), [2, 1, 3]);
  assert.deepEqual(r.map((x) => x.score), [0.8, 0, -1]);
});

test('heatColor is monotonic in lightness and clamps', () => {
  const light = (c) => Number(c.background.match(/(\d+)%\)$/)[1]);
  const lo = heatColor(0.2, 0.2, 0.9);
  const mid = heatColor(0.55, 0.2, 0.9);
  const hi = heatColor(0.9, 0.2, 0.9);
  assert.ok(light(lo) > light(mid) && light(mid) > light(hi));
  assert.equal(heatColor(5, 0, 1).background, heatColor(1, 0, 1).background);
  assert.equal(heatColor(-5, 0, 1).background, heatColor(0, 0, 1).background);
  assert.equal(hi.color, '#fff');
  assert.equal(lo.color, '#1d2433');
});

test('formatting', () => {
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1536), '1.54 KB');
  assert.equal(formatBytes(87_456_000), '87.5 MB');
  assert.equal(formatBytes(351_000_000), '351 MB');
  assert.equal(formatBytes(-1), '?');
  assert.equal(progressText(500_000, 2_000_000), '500 KB of 2.00 MB · 25 %');
  assert.equal(progressText(2_000_000, 2_000_000), '2.00 MB of 2.00 MB · 100 %');
  assert.equal(progressText(0, 0), '…');
  assert.equal(formatMs(3.14159), '3.14 ms');
  assert.equal(formatMs(123.45), '123.5 ms');
  assert.equal(formatMs(2500), '2.50 s');
});
