#!/usr/bin/env node
// imgembed command: CLIP image embeddings as JSON lines, and the model's
// preprocessing as raw float32 files. Exit status: 0 all inputs ok, 1 some
// input failed (the others are still processed), 2 usage or model error.

import path from 'node:path';
import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ImageEmbeddings, ImageEmbeddingsError, TextEmbeddings, CLIP_VIT_BASE_PATCH32_IMAGE, CLIP_VIT_BASE_PATCH32_TEXT, preprocess, nodeCache } from '../src/index.js';
import { surrogateEscape } from '../src/sources.js';

const USAGE = `usage:
  imgembed [--model PATH|URL|ORG/NAME[@REV]] [--batch N] [--threads N] [--cache-dir DIR] [--no-cache]
           [--no-revalidate] [--max-pixels N] [--download-timeout SECONDS] IMAGE...
      --no-revalidate: use a cached model without asking its server whether it changed (offline use)
      one JSON object a line, in input order (numbers: float32, shortest digits):
      {"source": IMAGE, "embedding": [...]} or {"source": IMAGE, "error": {"code", "message"}}
      IMGEMBED_MODEL and IMGEMBED_CACHE_DIR set the defaults of --model and --cache-dir.
  imgembed [--model M] [--tokenizer T] --text "a cat" --text "a dog" [IMAGE...]
      texts through the whole-CLIP model's text tower (tokenizer.json beside the
      model by default), mixed with images in command-line order; source = the text
  imgembed preprocess --size S --out DIR IMAGE...
      writes DIR/<basename of IMAGE>.f32: little-endian float32, 3 x S x S, CHW
      (an IMAGE whose basename an earlier one had fails: no overwrite)
IMAGE: a file path, file:, http(s): or data: URL. Exit: 0 ok, 1 an input failed, 2 usage/model error.`;

class UsageError extends Error {}

function positiveInt(name, v) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// The shortest decimal that reads back as the same float32 (what Go's
// encoding/json prints for a float32), instead of the float64 digits of
// the widened value: -0.06895906, not -0.0689590573310852.
function shortestFloat32(v) {
  for (let p = 1; p < 9; p++) {
    const n = Number(v.toPrecision(p));
    if (Math.fround(n) === v) return n;
  }
  return Number(v.toPrecision(9));
}

function errorJSON(e) {
  return { code: e?.code ?? 'InvalidInput', message: e?.message ?? String(e) };
}

function progressPrinter(label) {
  let shown = -1;
  const tty = process.stderr.isTTY;
  return (f) => {
    const pct = Math.floor(f * 100);
    if (tty) {
      if (pct !== shown) process.stderr.write(`\r${label} ${pct}%${f === 1 ? '\n' : ''}`);
      shown = pct;
    } else if (pct >= shown + 10 || (f === 1 && shown !== 100)) {
      shown = f === 1 ? 100 : pct - (pct % 10);
      process.stderr.write(`${label} ${shown}%\n`);
    }
  };
}

async function embed(argv) {
  const { values, positionals, tokens } = parseArgs({
    args: argv,
    allowPositionals: true,
    tokens: true,
    options: {
      text: { type: 'string', multiple: true },
      tokenizer: { type: 'string' },
      model: { type: 'string' },
      batch: { type: 'string' },
      threads: { type: 'string' },
      'no-cache': { type: 'boolean' },
      'no-revalidate': { type: 'boolean' },
      'cache-dir': { type: 'string' },
      'max-pixels': { type: 'string' },
      'download-timeout': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  // As the Go command: the environment gives the defaults.
  const modelFlag = values.model ?? (process.env.IMGEMBED_MODEL || undefined);
  const cacheDir = values['cache-dir'] ?? (process.env.IMGEMBED_CACHE_DIR || undefined);
  const maxPixels = values['max-pixels'] !== undefined ? positiveInt('max-pixels', values['max-pixels']) : undefined;
  const texts = values.text ?? [];
  if (positionals.length === 0 && texts.length === 0) throw new UsageError('no images given');
  // The inputs in command-line order.
  // Images as the caller's bytes: their source for the package and their
  // name for the output (callerBytes).
  const raw = rawArgs(argv.length);
  const items = tokens.filter((t) => t.kind === 'positional' || (t.kind === 'option' && t.name === 'text'))
    .map((t) => (t.kind === 'option' ? { src: t.value, name: t.value, text: true } : { ...callerBytes(t.value, raw?.[t.index]), text: false }));
  const batch = values.batch !== undefined ? positiveInt('batch', values.batch) : 8;
  const threads = values.threads !== undefined ? positiveInt('threads', values.threads) : undefined;
  let downloadTimeout;
  if (values['download-timeout'] !== undefined) {
    const s = Number(values['download-timeout']);
    if (!Number.isFinite(s) || s < 0) throw new UsageError(`--download-timeout must be a number of seconds >= 0, got ${JSON.stringify(values['download-timeout'])}`);
    downloadTimeout = s * 1000;
  }
  let model;
  let textModel;
  try {
    const common = {
      modelSource: modelFlag ?? CLIP_VIT_BASE_PATCH32_IMAGE.modelSource,
      onDownloadProgress: progressPrinter('loading model'),
      threads,
      maxBatch: batch,
      maxPixels,
      cache: values['no-cache'] ? false : cacheDir ? nodeCache(cacheDir) : undefined,
      revalidate: values['no-revalidate'] ? false : undefined,
      downloadTimeout,
    };
    const tokenizerSource = values.tokenizer ?? (modelFlag ? undefined : CLIP_VIT_BASE_PATCH32_TEXT.tokenizerSource);
    if (texts.length > 0 && positionals.length === 0) {
      textModel = await TextEmbeddings.load({ ...common, tokenizerSource });
    } else {
      model = await ImageEmbeddings.load({ ...common, ...(texts.length > 0 ? { text: { tokenizerSource } } : {}) });
      textModel = model.text;
    }
  } catch (e) {
    process.stderr.write(`imgembed: cannot load the model: ${e.code ?? 'Error'}: ${e.message}\n`);
    return 2;
  }
  let failed = false;
  // Runs of images and runs of texts, each in batches.
  for (let i = 0; i < items.length;) {
    let j = i + 1;
    while (j < items.length && j - i < batch && items[j].text === items[i].text) j++;
    const srcs = items.slice(i, j).map((it) => it.name);
    const rs = await (items[i].text ? textModel : model).forwardBatchSettled(items.slice(i, j).map((it) => it.src));
    rs.forEach((r, k) => {
      const bad = r instanceof Float32Array ? r.findIndex((v) => !Number.isFinite(v)) : -1;
      if (bad >= 0) {
        // JSON has no NaN/Infinity (JSON.stringify would print null): an
        // error line, as the module reports such outputs anyway.
        failed = true;
        out({ source: srcs[k], error: { code: 'InvalidModel', message: `the model produced a non-finite embedding (component ${bad} is ${r[bad]})` } });
      } else if (r instanceof Float32Array) {
        out({ source: srcs[k], embedding: Array.from(r, shortestFloat32) });
      } else {
        failed = true;
        out({ source: srcs[k], error: errorJSON(r) });
      }
    });
    i = j;
  }
  (model ?? textModel).dispose();
  return failed ? 1 : 0;
}

// The last n command-line arguments as the bytes the caller passed
// (Linux: /proc/self/cmdline), or null. process.argv decodes them as UTF-8,
// turning bytes that are not UTF-8 (a file name in another encoding) into
// U+FFFD: such a name no longer names its file.
function rawArgs(n) {
  let b;
  try {
    b = readFileSync('/proc/self/cmdline');
  } catch {
    return null;
  }
  const parts = [];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0) {
      parts.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < b.length) parts.push(b.subarray(start));
  return parts.length >= n ? parts.slice(parts.length - n) : null;
}

// An image argument whose bytes are not UTF-8 becomes a file: URL of those
// bytes (the package reads the file by its bytes) and is printed with each
// such byte as \udc80..\udcff (surrogateescape, as the Go command does);
// any other argument is used and printed as given.
function callerBytes(value, raw) {
  if (!raw || Buffer.from(value, 'utf8').equals(raw) || /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(value)) {
    return { src: value, name: value };
  }
  const abs = raw[0] === 0x2f ? raw : Buffer.concat([Buffer.from(process.cwd() + '/'), raw]);
  let enc = '';
  for (const c of abs) {
    const ch = String.fromCharCode(c);
    enc += c < 0x80 && /[A-Za-z0-9\-._~/]/.test(ch) ? ch : `%${c.toString(16).padStart(2, '0').toUpperCase()}`;
  }
  return { src: new URL(`file://${enc}`), name: surrogateEscape(raw) };
}

async function preprocessCmd(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      size: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.size === undefined) throw new UsageError('preprocess needs --size');
  if (values.out === undefined) throw new UsageError('preprocess needs --out');
  const size = positiveInt('size', values.size);
  if (positionals.length === 0) throw new UsageError('no images given');
  await fs.mkdir(values.out, { recursive: true });
  let failed = false;
  const written = new Set();
  for (const src of positionals) {
    let base = path.basename(src);
    if (/^[a-z]+:/i.test(src) && !/^[a-zA-Z]:[\\/]/.test(src)) {
      try {
        base = path.posix.basename(new URL(src).pathname) || 'image';
      } catch {
        base = 'image';
      }
    }
    const file = path.join(values.out, `${base}.f32`);
    if (written.has(file)) {
      // Two inputs with one basename (a/x.png, b/x.png): the second would
      // silently overwrite the first's output.
      failed = true;
      out({ source: src, error: { code: 'InvalidInput', message: `${file} is already the output of an earlier input with the same name` } });
      continue;
    }
    written.add(file);
    try {
      const px = await preprocess(src, { size });
      await fs.writeFile(file, new Uint8Array(px.buffer, px.byteOffset, px.byteLength));
      out({ source: src, file });
    } catch (e) {
      failed = true;
      out({ source: src, error: errorJSON(e) });
    }
  }
  return failed ? 1 : 0;
}

async function main(argv) {
  try {
    if (argv[0] === 'preprocess') return await preprocessCmd(argv.slice(1));
    return await embed(argv);
  } catch (e) {
    if (e instanceof UsageError || e?.code?.startsWith?.('ERR_PARSE_ARGS')) {
      process.stderr.write(`imgembed: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    if (e instanceof ImageEmbeddingsError) {
      process.stderr.write(`imgembed: ${e.code}: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`imgembed: ${e?.stack ?? e}\n`);
    return 2;
  }
}

process.exit(await main(process.argv.slice(2)));
