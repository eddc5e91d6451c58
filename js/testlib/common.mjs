// Shared helpers of the package's tests (kept out of test/, where Node's
// test runner would run every file).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const testdata = path.join(root, 'testdata');
export const modelsDir = path.join(testdata, 'models');
export const imagesDir = path.join(testdata, 'images');
export const images = ['astronaut.png', 'chelsea.png', 'coffee.png'];

export function modelPath(name) {
  return path.join(modelsDir, name);
}

/** Golden embeddings of a model file name: {"images/<name>": number[]}. */
export function goldenEmbeddings(modelFile) {
  const base = modelFile.replace(/\.safetensors$/, '');
  return JSON.parse(fs.readFileSync(path.join(testdata, 'golden', `embed-${base}.json`), 'utf8'));
}

export function goldenPixels(size, image) {
  const b = fs.readFileSync(path.join(testdata, 'golden', `pixels-${size}`, `${image}.f32`));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function cosine(a, b) {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return d / Math.sqrt(na * nb);
}

export function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Starts an HTTP server on 127.0.0.1 whose handler gets (req, res, log).
 * Returns {url, log: [{method, url, range, sent}], sent(): total body bytes, close()}.
 */
export async function serve(handler) {
  const log = [];
  const server = http.createServer((req, res) => {
    const entry = { method: req.method, url: req.url, range: req.headers.range ?? null, ifNoneMatch: req.headers['if-none-match'] ?? null, status: 0, sent: 0 };
    log.push(entry);
    const write = res.write.bind(res);
    const end = res.end.bind(res);
    res.write = (chunk, ...rest) => {
      if (chunk) entry.sent += chunk.length;
      return write(chunk, ...rest);
    };
    res.end = (chunk, ...rest) => {
      if (chunk && typeof chunk !== 'function') entry.sent += chunk.length;
      return end(chunk, ...rest);
    };
    const writeHead = res.writeHead.bind(res);
    res.writeHead = (status, ...rest) => {
      entry.status = status;
      return writeHead(status, ...rest);
    };
    handler(req, res, entry);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    sent: () => log.reduce((s, e) => s + e.sent, 0),
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

/** Serves bytes honouring single Range requests (206/416), with an ETag
 * (If-None-Match with it: 304, no body). */
export function rangeHandler(bytes, { etag = '"t1"', ignoreRange = false } = {}) {
  return (req, res) => {
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    const m = !ignoreRange && /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const size = bytes.length;
    if (m) {
      const start = Number(m[1]);
      const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
      if (start >= size || end < start) {
        res.writeHead(416, { 'content-range': `bytes */${size}` });
        res.end();
        return;
      }
      res.writeHead(206, {
        'content-range': `bytes ${start}-${end}/${size}`,
        'content-length': String(end - start + 1),
        'accept-ranges': 'bytes',
        etag,
      });
      res.end(bytes.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { 'content-length': String(size), etag });
    res.end(bytes);
  };
}
