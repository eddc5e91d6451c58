// imgembed: CLIP ViT image embeddings for the web. The Go module
// (dist/imgembed.wasm) loads weights, decodes and preprocesses images and
// runs the graph; TensorFlow.js (its wasm or WebGPU backend) does the
// arithmetic. This file
// is the framework-free public API; the protocol it speaks to the module is
// wasm/API.md.

import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from './backend.js';
import { startModule, isNode } from './runtime.js';
import { defaultCache, nodeCache, browserCache } from './cache.js';
import { makeFetch, resolveModelString, localModelProblem, imageInput, platformURLInputs, platformURL, fetchedHere } from './sources.js';
import { hubFile } from './hub.js';

export { nodeCache, browserCache, defaultCache };
export { TextEmbeddings, CLIP_VIT_BASE_PATCH32_TEXT } from './text.js';
import { textView, textLoadOptions, bindText, FORWARD_TEXT, LOAD_TOWERS } from './text.js';


/** Stable error codes (ImageEmbeddingsError.code). */
export const ErrorCodes = Object.freeze({
  ModelNotLoaded: 'ModelNotLoaded',
  InvalidInput: 'InvalidInput',
  UnsupportedImageFormat: 'UnsupportedImageFormat',
  CorruptImage: 'CorruptImage',
  ImageTooLarge: 'ImageTooLarge',
  DownloadFailed: 'DownloadFailed',
  Aborted: 'Aborted',
  InvalidModel: 'InvalidModel',
});

const CODES = new Set(Object.values(ErrorCodes));
// Failures that belong to an input, not to the model: kept as they are when
// the WebGPU device was lost during the call.
const CODES_OF_INPUT = new Set(['UnsupportedImageFormat', 'CorruptImage', 'ImageTooLarge', 'DownloadFailed', 'Aborted']);

/** The error every failure of the package is reported with. */
export class ImageEmbeddingsError extends Error {
  /**
   * @param {string} code one of ErrorCodes
   * @param {string} message
   * @param {{cause?: unknown, index?: number}} [options]
   */
  constructor(code, message, options = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'ImageEmbeddingsError';
    this.code = CODES.has(code) ? code : ErrorCodes.InvalidModel;
    if (options.index !== undefined) this.index = options.index;
  }
}

export { hubFile };

/** OpenAI CLIP ViT-B/32 on Hugging Face (the whole CLIPModel file; only the
 * vision tower's bytes are downloaded where the server honours Range:
 * 351 MB of F32 weights). The weights list (weights/known.go) is Go's. */
export const CLIP_VIT_BASE_PATCH32_IMAGE = Object.freeze({ modelSource: hubFile('openai/clip-vit-base-patch32') });
/** OpenAI CLIP ViT-B/16 (345 MB of vision weights; 4x the patches of B/32). */
export const CLIP_VIT_BASE_PATCH16_IMAGE = Object.freeze({ modelSource: hubFile('openai/clip-vit-base-patch16') });
/** OpenAI CLIP ViT-L/14 (1.22 GB of vision weights; 768-number embeddings). */
export const CLIP_VIT_LARGE_PATCH14_IMAGE = Object.freeze({ modelSource: hubFile('openai/clip-vit-large-patch14') });
/** OpenAI CLIP ViT-L/14 at 336 pixels (1.22 GB of vision weights; 768-number embeddings). */
export const CLIP_VIT_LARGE_PATCH14_336_IMAGE = Object.freeze({ modelSource: hubFile('openai/clip-vit-large-patch14-336') });

/**
 * Cosine similarity of two embeddings (for the unit vectors forward returns,
 * their dot product). Throws on vectors of different lengths.
 * @param {ArrayLike<number>} a
 * @param {ArrayLike<number>} b
 * @returns {number}
 */
export function cosineSimilarity(a, b) {
  if (a == null || b == null || a.length !== b.length) {
    throw new ImageEmbeddingsError(ErrorCodes.InvalidInput, `cosineSimilarity: vectors of lengths ${a?.length} and ${b?.length}`);
  }
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/** message, with the input's own name in front unless it names it already. */
function named(message, src) {
  const name = typeof src === 'string' ? (src.startsWith('data:') ? 'data: URL' : src)
    : src instanceof URL ? src.href
      : typeof File === 'function' && src instanceof File ? src.name : null;
  return name && !message.includes(name) ? `${name}: ${message}` : message;
}

function tooBig(bytes, limit) {
  const mb = (n) => `${Math.round(n / 1e6)} MB`;
  return new ImageEmbeddingsError(ErrorCodes.InvalidModel,
    `the model's weights are ${mb(bytes)}, more than the memory limit of ${mb(limit)} (memoryLimit); use a smaller model`);
}

/** A text input of a mixed call: {text: string}. */
function isTextInput(s) {
  return s != null && typeof s === 'object' && !ArrayBuffer.isView(s) && typeof s.text === 'string';
}

function toError(e, fallback) {
  if (e instanceof ImageEmbeddingsError) return e;
  const code = e && typeof e.code === 'string' && CODES.has(e.code) ? e.code : fallback;
  return new ImageEmbeddingsError(code, e?.message ?? String(e), { cause: e });
}

/** The module's API; a module that cannot start is an InvalidModel error
 * like every other failure of the package. */
async function moduleAPI(wasmModule) {
  try {
    return (await startModule({ wasmModule })).api;
  } catch (e) {
    throw new ImageEmbeddingsError(ErrorCodes.InvalidModel, `starting the module: ${e.message}`, { cause: e });
  }
}

function abortError(signal) {
  const r = signal?.reason;
  return new ImageEmbeddingsError(ErrorCodes.Aborted, r?.message ? `aborted: ${r.message}` : 'aborted', { cause: r });
}

/** A loaded model. Create with ImageEmbeddings.load. */
export class ImageEmbeddings {
  #model;
  #disposed = false;
  #released = false;
  #preparing = 0;
  #session = null; // the WebGPU device's state, null on wasm
  #platformDecode = true;
  #imageFetch = {}; // {fetch, fetchTimeout} of the load, for URL inputs fetched here

  /** @private */
  constructor(model, config, backend, session, platformDecode = true, imageFetch = {}) {
    this.#model = model;
    this.#platformDecode = platformDecode !== false;
    this.#imageFetch = imageFetch;
    /** @type {import('./index.js').ModelConfig} */
    this.config = Object.freeze({ ...config });
    /** What tfjs actually uses. */
    this.backend = backend;
    if (session) {
      this.#session = session;
      // The tensors died with the device: free the module's side at once
      // (after the calls already queued, which fail).
      session.onLost.then(() => this.dispose(), () => {});
    }
  }

  /** The error of a call on a model whose WebGPU device was lost. */
  #lostError(index) {
    const li = this.#session.lostInfo;
    const why = li ? `${li.reason}${li.message ? `: ${li.message}` : ''}` : 'lost';
    return new ImageEmbeddingsError(ErrorCodes.ModelNotLoaded,
      `the WebGPU device was lost (${why}); load the model again`, index !== undefined ? { index } : {});
  }

  /** Whether the WebGPU device is lost; after a failed call, waits briefly
   * for the loss to be reported (a read on a destroyed device can reject
   * before device.lost settles). */
  async #isLost(afterFailure) {
    const s = this.#session;
    if (!s) return false;
    if (!s.lost && afterFailure) await Promise.race([s.onLost, new Promise((r) => setTimeout(r, 100))]);
    return s.lost;
  }

  /**
   * Loads a model.
   * @param {import('./index.js').LoadOptions} [options]
   * @returns {Promise<ImageEmbeddings>}
   */
  static async load(options = {}) {
    // backend 'native' (Node): the Go engine in a child process (native.js);
    // 'auto' (the default) picks it when an installed binary is found (not
    // the working tree's build output: that one is for explicit 'native').
    if (options.backend === 'native' || ((options.backend ?? 'auto') === 'auto' && isNode &&
        (await (await import('./native.js')).findBinary({ installedOnly: true })))) {
      if (!isNode) throw new ImageEmbeddingsError(ErrorCodes.InvalidInput, "backend 'native' needs Node");
      const { startNative } = await import('./native.js');
      const { model, config, backend } = await startNative(options, { ImageEmbeddingsError, ErrorCodes });
      return new ImageEmbeddings(model, config, backend);
    }
    const {
      modelSource = CLIP_VIT_BASE_PATCH32_IMAGE.modelSource,
      onDownloadProgress,
      signal,
      backend: wanted = 'auto',
      threads,
      cache,
      wasmPaths,
      maxBatch,
      fetch: userFetch,
      config: hfConfig,
      maxPixels,
      maxDecodeBytes,
      fetchTimeout,
      wasmModules,
      memoryLimit,
      downloadTimeout,
      revalidate,
      platformDecode = true,
      tfjsWeightsLeft = true,
    } = options;
    if (signal?.aborted) throw abortError(signal);
    if (memoryLimit !== undefined && !(memoryLimit > 0)) {
      throw new ImageEmbeddingsError(ErrorCodes.InvalidInput, `memoryLimit must be a positive number of bytes, got ${memoryLimit}`);
    }
    let sel;
    switch (wanted) {
      case 'auto':
      case 'webgpu':
      case 'wasm':
        try {
          sel = await selectBackend({ backend: wanted, threads, wasmPaths, wasmModules: wasmModules?.tfjs });
        } catch (e) {
          const code = CODES.has(e?.code) ? e.code : ErrorCodes.InvalidModel;
          throw new ImageEmbeddingsError(code, `TensorFlow.js ${wanted} backend: ${e.message}`, { cause: e });
        }
        break;
      default:
        throw new ImageEmbeddingsError(ErrorCodes.InvalidInput, `backend must be 'auto', 'webgpu' or 'wasm', got ${JSON.stringify(wanted)}`);
    }
    const backend = sel.info;
    const api = await moduleAPI(wasmModules?.imgembed);

    let source = modelSource;
    let cacheable = false;
    // Messages name a local model as the caller did, not as the file: URL
    // it is fetched by.
    let shown = (e) => e;
    if (typeof source === 'string') {
      source = await resolveModelString(source);
      const problem = await localModelProblem(source, modelSource);
      if (problem) throw new ImageEmbeddingsError(problem.code, problem.message);
      if (/^file:/i.test(source) && !/^file:/i.test(modelSource)) {
        const url = source;
        shown = (e) => (e instanceof ImageEmbeddingsError && e.message.includes(url)
          ? new ImageEmbeddingsError(e.code, e.message.replaceAll(url, modelSource), { cause: e.cause }) : e);
      }
      cacheable = /^https?:/i.test(source);
    } else if (source instanceof URL) {
      source = source.href;
      cacheable = /^https?:/i.test(source);
    } else if (typeof Blob === 'function' && source instanceof Blob) {
      source = new Uint8Array(await source.arrayBuffer());
    } else if (source instanceof ArrayBuffer) {
      source = new Uint8Array(source);
    } else if (ArrayBuffer.isView(source)) {
      source = new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
    } else {
      throw new ImageEmbeddingsError(ErrorCodes.InvalidInput, 'modelSource must be a URL, a path, a Blob or bytes');
    }
    if (memoryLimit !== undefined && source instanceof Uint8Array && source.byteLength > memoryLimit) {
      throw tooBig(source.byteLength, memoryLimit);
    }
    let adapter = null;
    if (cacheable) {
      if (cache === undefined || cache === true) adapter = defaultCache();
      else if (cache && typeof cache.get === 'function' && typeof cache.put === 'function') adapter = cache;
    }
    // The text tower: TextEmbeddings.load asks for it alone; `text` asks
    // for both towers of a whole-CLIP file in one download.
    let towers = options[LOAD_TOWERS];
    if (!towers && options.text) {
      towers = await textLoadOptions({ ...options, ...(typeof options.text === 'object' ? options.text : {}) }, source, ['vision', 'text']);
    }

    // memoryLimit: the first progress report carries the size of the
    // weights to download; past the limit the load is aborted before they
    // are fetched.
    let over = null;
    let loadSignal = signal;
    let stop;
    if (memoryLimit !== undefined && typeof source === 'string') {
      stop = new AbortController();
      if (signal) {
        if (signal.aborted) stop.abort(signal.reason);
        else signal.addEventListener('abort', () => stop.abort(signal.reason), { once: true });
      }
      loadSignal = stop.signal;
    }
    let last = -1;
    const onProgress = onDownloadProgress || stop
      ? (loaded, total) => {
          if (stop && over == null && total > memoryLimit) {
            over = tooBig(total, memoryLimit);
            stop.abort(over);
            return;
          }
          if (!onDownloadProgress) return;
          const f = total > 0 ? Math.min(1, loaded / total) : 0;
          if (f > last) {
            last = f;
            onDownloadProgress(f);
          }
        }
      : undefined;

    const loading = api.load({
      source,
      tf,
      fetch: makeFetch(userFetch),
      cache: adapter,
      onProgress,
      signal: loadSignal,
      maxBatch,
      maxPixels,
      maxDecodeBytes,
      fetchTimeout,
      downloadTimeout,
      revalidate,
      towers: towers?.towers,
      tokenizer: towers?.tokenizer,
      // tfjs-wasm copies tf.tensor's values into its heap, and the upload
      // hook copies them to the GPU, so the module may free (detach) the
      // buffers it created them from.
      detach: sel.copies,
      backend: { asyncRead: sel.asyncRead, upload: sel.upload ?? undefined, activate: sel.activate,
        weightsLeft: sel.weightsLeft && tfjsWeightsLeft !== false,
        // tf.tensor copies the values before it returns (tfjs-wasm: into its
        // heap), so the module may reuse one array for every weight.
        copiesNow: sel.copies && sel.upload == null },
      config: typeof hfConfig === 'string' ? hfConfig : hfConfig ? JSON.stringify(hfConfig) : undefined,
    });
    let model;
    try {
      if (signal) {
        // Settle at once on abort; the module notices too and cleans up.
        let onAbort;
        const aborted = new Promise((_, reject) => {
          onAbort = () => reject(abortError(signal));
          signal.addEventListener('abort', onAbort, { once: true });
        });
        try {
          model = await Promise.race([loading, aborted]);
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
      } else {
        model = await loading;
      }
    } catch (e) {
      loading.then((m) => m.dispose(), () => {});
      if (signal?.aborted) throw abortError(signal);
      if (over) throw over;
      throw shown(toError(e, ErrorCodes.InvalidModel));
    }
    if (onDownloadProgress && last < 1) {
      last = 1;
      // Like the calls made during the download (the module ignores their
      // exceptions): a throwing callback must not lose the loaded model.
      try {
        onDownloadProgress(1);
      } catch {
        // ignored
      }
    }
    // device.lost settles a task or more after the loss: let the queue
    // drain (the weights' uploads) so a loss during the load is seen here.
    if (sel.session && !sel.session.lost) {
      await Promise.race([sel.session.onLost, sel.session.device.queue.onSubmittedWorkDone().catch(() => {})]);
      await Promise.race([sel.session.onLost, new Promise((r) => setTimeout(r, 0))]);
    }
    if (sel.session?.lost) {
      model.dispose();
      throw new ImageEmbeddingsError(ErrorCodes.ModelNotLoaded, 'the WebGPU device was lost while loading; load the model again');
    }
    return new ImageEmbeddings(model, model.config, backend, sel.session, platformDecode, { fetch: makeFetch(userFetch), fetchTimeout });
  }

  /** With `text` at load: the text tower of the same model, as a
   * TextEmbeddings (disposed with this object). */
  get text() {
    if (this.config.text == null || this.config.imageSize == null) return undefined;
    this.#textView ??= textView(this, false);
    return this.#textView;
  }

  #textView;

  /** Internal (TextEmbeddings): embeds strings; per-input results as
   * forwardBatchSettled. */
  async [FORWARD_TEXT](texts, { signal } = {}) {
    if (signal?.aborted) throw abortError(signal);
    if (this.#session?.lost) throw this.#lostError();
    if (this.#disposed) throw new ImageEmbeddingsError(ErrorCodes.ModelNotLoaded, 'the model was disposed');
    if (!Array.isArray(texts)) throw new ImageEmbeddingsError(ErrorCodes.InvalidInput, 'forwardBatch takes an array');
    const results = await this.#settle(this.#model.forwardText(texts, signal ? { signal } : undefined), signal);
    const lost = results.some((r) => !(r instanceof Float32Array)) && await this.#isLost(true);
    return texts.map((_, i) => {
      const r = results[i];
      if (r instanceof Float32Array) return r;
      if (lost) return this.#lostError(i);
      return new ImageEmbeddingsError(r?.code, r?.message ?? 'failed', { index: i });
    });
  }

  /**
   * Embeds one image.
   * @param {import('./index.js').ImageSource} src
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<Float32Array>} unit-norm embedding
   */
  async forward(src, options) {
    const [r] = await this.forwardBatchSettled([src], options);
    if (r instanceof ImageEmbeddingsError) throw r;
    return r;
  }

  /**
   * Embeds several images; rejects with the first failure (its .index says
   * which input).
   * @param {import('./index.js').ImageSource[]} srcs
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<Float32Array[]>}
   */
  async forwardBatch(srcs, options) {
    const rs = await this.forwardBatchSettled(srcs, options);
    for (const r of rs) if (r instanceof ImageEmbeddingsError) throw r;
    return rs;
  }

  /**
   * Embeds several images; each result is a Float32Array or the
   * ImageEmbeddingsError of that input.
   * @param {import('./index.js').ImageSource[]} srcs
   * @param {{signal?: AbortSignal}} [options] signal: aborting it rejects
   *   the call with Aborted at once; the module aborts its image fetches and
   *   skips the inputs not yet embedded, so later calls are not held up.
   * @returns {Promise<Array<Float32Array | ImageEmbeddingsError>>}
   */
  async forwardBatchSettled(srcs, { signal } = {}) {
    // {text: string} inputs go to the text tower of a model loaded with
    // `text`, the others through the image path; results in input order.
    if (Array.isArray(srcs) && srcs.some(isTextInput) && this.config.text != null) {
      const ti = [];
      const ii = [];
      srcs.forEach((s, i) => (isTextInput(s) ? ti : ii).push(i));
      const opts = signal ? { signal } : undefined;
      const [tr, ir] = await Promise.all([
        this[FORWARD_TEXT](ti.map((i) => srcs[i].text), opts),
        ii.length ? this.forwardBatchSettled(ii.map((i) => srcs[i]), opts) : [],
      ]);
      const out = new Array(srcs.length);
      const place = (idx, rs) => idx.forEach((i, k) => {
        out[i] = rs[k];
        if (rs[k] instanceof ImageEmbeddingsError) rs[k].index = i;
      });
      place(ti, tr);
      place(ii, ir);
      return out;
    }
    if (signal?.aborted) throw abortError(signal);
    if (this.#session?.lost) throw this.#lostError();
    if (this.#disposed) throw new ImageEmbeddingsError(ErrorCodes.ModelNotLoaded, 'the model was disposed');
    if (!Array.isArray(srcs)) throw new ImageEmbeddingsError(ErrorCodes.InvalidInput, 'forwardBatch takes an array');
    // Calls made before dispose() still run: the module frees the graph
    // only after every call that reached it, and dispose() waits for the
    // calls still preparing their inputs here.
    this.#preparing++;
    let prepared;
    try {
      prepared = await Promise.all(srcs.map((s) => imageInput(s, { platformDecode: this.#platformDecode }).catch((e) => ({
        error: { code: ErrorCodes.InvalidInput, message: e.message },
      }))));
    } finally {
      this.#preparing--;
    }
    const inputs = [];
    const where = [];
    prepared.forEach((p, i) => {
      if (!p.error) {
        where.push(i);
        inputs.push(p.input);
      }
    });
    if (this.#platformDecode) await platformURLInputs(inputs, { ...this.#imageFetch, signal });
    let running = null;
    if (signal?.aborted) throw abortError(signal);
    if (inputs.length > 0) running = this.#model.forward(inputs, signal ? { signal } : undefined);
    this.#releaseIfDone();
    let results = [];
    if (running) {
      results = await this.#settle(running, signal);
      if (this.#session && results.some((r) => !(r instanceof Float32Array)) && await this.#isLost(true)) {
        // Inputs that failed because the device went away (not because of
        // the input) say so.
        results = results.map((r) => (r instanceof Float32Array || CODES_OF_INPUT.has(r?.code) ? r : this.#lostError()));
      }
    }
    // Every message names its input (a path, a URL, a File's name).
    const fail = (i, code, message) => new ImageEmbeddingsError(code, named(message ?? 'failed', srcs[i]), { index: i });
    const out = prepared.map((p, i) => (p.error ? fail(i, p.error.code, p.error.message) : null));
    where.forEach((i, k) => {
      const r = results[k];
      out[i] = r instanceof Float32Array ? r : fail(i, r?.code, r?.message);
    });
    return out;
  }

  /** The module's answer to a call, or Aborted at once when signal aborts
   * (the call itself then ends in the module); a rejection is the device's
   * loss if that is why, else a typed error. */
  async #settle(running, signal) {
    let onAbort;
    try {
      if (!signal) return await running;
      const aborted = new Promise((_, reject) => {
        onAbort = () => reject(abortError(signal));
        signal.addEventListener('abort', onAbort, { once: true });
      });
      return await Promise.race([running, aborted]);
    } catch (e) {
      if (signal?.aborted) {
        running.catch(() => {});
        throw abortError(signal);
      }
      if (await this.#isLost(true)) throw this.#lostError();
      throw toError(e, ErrorCodes.InvalidInput);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  #releaseIfDone() {
    if (this.#disposed && this.#preparing === 0 && !this.#released) {
      this.#released = true;
      this.#model.dispose();
    }
  }

  /** Frees the model's tensors once the calls already made have finished;
   * later calls fail with ModelNotLoaded. */
  dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#releaseIfDone();
  }
}
/**
 * The preprocessing the model applies (CLIPImageProcessor): 3 x size x size
 * CHW float32.
 * @param {import('./index.js').ImageSource} src
 * @param {{size: number, mean?: number[], std?: number[], maxPixels?: number, fetchTimeout?: number, fetch?: typeof fetch}} options
 * @returns {Promise<Float32Array>}
 */
export async function preprocess(src, { size, mean, std, maxPixels, fetchTimeout, fetch: userFetch, platformDecode = true } = {}) {
  const api = await moduleAPI();
  let p = await imageInput(src, { platformDecode });
  if (platformDecode && !p.error && await fetchedHere(p.input)) {
    p = await platformURL(p.input, { fetch: makeFetch(userFetch), fetchTimeout });
  }
  if (p.error) throw new ImageEmbeddingsError(p.error.code, p.error.message);
  try {
    return await api.preprocess(p.input, { size, mean, std, maxPixels, fetchTimeout, fetch: makeFetch(userFetch) });
  } catch (e) {
    throw toError(e, ErrorCodes.InvalidInput);
  }
}

// text.js gets the class and errors from here, rather than importing this
// module: an import cycle makes bundlers initialise modules lazily (esbuild's
// broke the workerd example; see native.js).
bindText({ ImageEmbeddings, ImageEmbeddingsError, ErrorCodes });
