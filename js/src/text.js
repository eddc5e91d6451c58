// Text embeddings: CLIP's text tower (CLIPTextModelWithProjection) and its
// tokenizer, both run by the Go module (wasm/textmodel, wasm/tokenizer).
// A TextEmbeddings wraps a module model loaded with the text tower only, or
// is the `text` view of an ImageEmbeddings loaded with `text: true` (one
// download of a whole-CLIP file serves both towers).

import { makeFetch, resolveString } from './sources.js';
import { defaultCache } from './cache.js';
import { hubFile } from './hub.js';

// index.js's class and errors, handed over by bindText when index.js
// evaluates (an import of index.js here would be a cycle).
let ImageEmbeddings;
let ImageEmbeddingsError;
let ErrorCodes;

/** @internal called once by index.js. */
export function bindText(deps) {
  ({ ImageEmbeddings, ImageEmbeddingsError, ErrorCodes } = deps);
}

/** @internal the key of ImageEmbeddings' text forward, and of the load
 * option TextEmbeddings.load passes ({towers, tokenizer}). */
export const FORWARD_TEXT = Symbol('imgembed.forwardText');
export const LOAD_TOWERS = Symbol('imgembed.loadTowers');

/** OpenAI CLIP ViT-B/32's text tower on Hugging Face: the same whole
 * CLIPModel file as CLIP_VIT_BASE_PATCH32_IMAGE (only the text tensors are
 * downloaded where the server honours Range) and its tokenizer.json. */
export const CLIP_VIT_BASE_PATCH32_TEXT = Object.freeze({
  modelSource: hubFile('openai/clip-vit-base-patch32'),
  tokenizerSource: hubFile('openai/clip-vit-base-patch32', 'tokenizer.json'),
});

const TOKENIZER_CACHE_PREFIX = 'imgembed-v1 tokenizer ';

/**
 * Reads the tokenizer.json for a text load: tokenizerSource (a URL or path,
 * a URL object, a Blob, bytes, or the parsed JSON object), else
 * tokenizer.json beside a URL/path modelSource.
 * @returns {Promise<{towers: string[], tokenizer: string}>}
 */
export async function textLoadOptions(options, resolvedModel, towers) {
  let src = options.tokenizerSource;
  if (src == null) {
    if (typeof resolvedModel !== 'string') {
      throw new ImageEmbeddingsError(ErrorCodes.InvalidInput, 'tokenizerSource is required when modelSource is not a URL or path');
    }
    src = new URL('tokenizer.json', resolvedModel).href;
  }
  return { towers, tokenizer: await readTokenizer(src, options) };
}

async function readTokenizer(src, { fetch: userFetch, cache, signal } = {}) {
  if (typeof Blob === 'function' && src instanceof Blob) return src.text();
  if (src instanceof ArrayBuffer || ArrayBuffer.isView(src)) {
    const u8 = src instanceof ArrayBuffer ? new Uint8Array(src) : new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
    return new TextDecoder().decode(u8);
  }
  if (src instanceof URL) src = src.href;
  if (typeof src !== 'string') {
    if (src && typeof src === 'object') return JSON.stringify(src);
    throw new ImageEmbeddingsError(ErrorCodes.InvalidInput, 'tokenizerSource must be a URL, a path, a Blob, bytes or the parsed tokenizer.json');
  }
  const url = await resolveString(src);
  const cacheable = /^https?:/i.test(url);
  let adapter = null;
  if (cacheable) {
    if (cache === undefined || cache === true) adapter = defaultCache();
    else if (cache && typeof cache.get === 'function' && typeof cache.put === 'function') adapter = cache;
  }
  const key = TOKENIZER_CACHE_PREFIX + url;
  if (adapter) {
    try {
      const hit = await adapter.get(key);
      if (hit) return new TextDecoder().decode(hit);
    } catch {
      // a broken cache is a miss
    }
  }
  let resp;
  try {
    resp = await makeFetch(userFetch)(url, signal ? { signal } : {});
  } catch (e) {
    if (signal?.aborted) throw new ImageEmbeddingsError(ErrorCodes.Aborted, 'aborted', { cause: signal.reason });
    throw new ImageEmbeddingsError(ErrorCodes.DownloadFailed, `fetching ${url}: ${e.message}`, { cause: e });
  }
  if (!resp.ok) throw new ImageEmbeddingsError(ErrorCodes.DownloadFailed, `HTTP status ${resp.status} for ${url}`);
  const bytes = new Uint8Array(await resp.arrayBuffer());
  if (adapter) {
    try {
      await adapter.put(key, bytes);
    } catch {
      // not cached; loaded all the same
    }
  }
  return new TextDecoder().decode(bytes);
}

/** @internal a TextEmbeddings over a loaded ImageEmbeddings' module model. */
export function textView(inner, owned) {
  return new TextEmbeddings(inner, owned);
}

/** CLIP text embeddings. Create with TextEmbeddings.load, or use the `text`
 * of an ImageEmbeddings loaded with `text: true`. */
export class TextEmbeddings {
  #inner;
  #owned;
  #disposed = false;

  /** @private */
  constructor(inner, owned) {
    this.#inner = inner;
    this.#owned = owned;
    const c = inner.config.text;
    /** @type {import('./index.js').TextModelConfig} */
    this.config = Object.freeze({ ...c, dtype: inner.config.dtype, weightBytes: inner.config.weightBytes });
    this.backend = inner.backend;
  }

  /**
   * Loads the text tower of a whole-CLIP file (only its text tensors are
   * downloaded where the server honours Range) and its tokenizer.
   * @param {import('./index.js').TextLoadOptions} [options]
   * @returns {Promise<TextEmbeddings>}
   */
  static async load(options = {}) {
    const { modelSource = CLIP_VIT_BASE_PATCH32_TEXT.modelSource } = options;
    let tokenizerSource = options.tokenizerSource;
    if (tokenizerSource == null && options.modelSource == null) tokenizerSource = CLIP_VIT_BASE_PATCH32_TEXT.tokenizerSource;
    let resolved = modelSource;
    if (typeof modelSource === 'string') resolved = await resolveString(modelSource);
    else if (modelSource instanceof URL) resolved = modelSource.href;
    const towers = await textLoadOptions({ ...options, tokenizerSource }, resolved, ['text']);
    const inner = await ImageEmbeddings.load({ ...options, modelSource, [LOAD_TOWERS]: towers });
    return new TextEmbeddings(inner, true);
  }

  /**
   * Embeds one text.
   * @param {string} text
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<Float32Array>} unit-norm embedding
   */
  async forward(text, options) {
    const [r] = await this.forwardBatchSettled([text], options);
    if (r instanceof ImageEmbeddingsError) throw r;
    return r;
  }

  /**
   * Embeds several texts; rejects with the first failure (its .index says
   * which input).
   * @param {string[]} texts
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<Float32Array[]>}
   */
  async forwardBatch(texts, options) {
    const rs = await this.forwardBatchSettled(texts, options);
    for (const r of rs) if (r instanceof ImageEmbeddingsError) throw r;
    return rs;
  }

  /**
   * Embeds several texts; each result is a Float32Array or the
   * ImageEmbeddingsError of that input (a non-string is InvalidInput; a
   * long text is cut to 77 tokens, as CLIP's tokenizer does).
   * @param {string[]} texts
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<Array<Float32Array | ImageEmbeddingsError>>}
   */
  async forwardBatchSettled(texts, options) {
    if (this.#disposed) throw new ImageEmbeddingsError(ErrorCodes.ModelNotLoaded, 'the model was disposed');
    return this.#inner[FORWARD_TEXT](texts, options);
  }

  /** Frees the model (for the `text` view of an ImageEmbeddings: only this
   * view; dispose the ImageEmbeddings to free both towers). */
  dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#owned) this.#inner.dispose();
  }
}
