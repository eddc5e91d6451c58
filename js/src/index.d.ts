import type { BackendInfo, BackendName } from './backend.js';

export type ErrorCode =
  | 'ModelNotLoaded'
  | 'InvalidInput'
  | 'UnsupportedImageFormat'
  | 'CorruptImage'
  | 'ImageTooLarge'
  | 'DownloadFailed'
  | 'Aborted'
  | 'InvalidModel';

export declare const ErrorCodes: Readonly<{ [K in ErrorCode]: K }>;

export declare class ImageEmbeddingsError extends Error {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; index?: number });
  readonly name: 'ImageEmbeddingsError';
  readonly code: ErrorCode;
  /** For a failed input of forwardBatch: its position. */
  readonly index?: number;
}

/** Raw 8-bit pixels, interleaved (ImageData works: channels defaults to 4). */
export interface RawPixels {
  data: Uint8Array | Uint8ClampedArray | ArrayBuffer;
  width: number;
  height: number;
  channels?: 3 | 4;
}

/** Already preprocessed CHW float32 pixels at the model's imageSize. */
export interface PreprocessedPixels {
  pixels: Float32Array;
}

/**
 * An image: http(s)/relative URL, data: URI, blob: URL, file path or
 * file: URL (Node), Blob/File, encoded bytes, raw pixels.
 */
export type ImageSource =
  | string
  | URL
  | Blob
  | ArrayBuffer
  | ArrayBufferView
  | RawPixels
  | PreprocessedPixels;

/** Where weights come from: a safetensors URL or path, a Blob or bytes. */
export type ModelSource = string | URL | Blob | ArrayBuffer | ArrayBufferView;

/** Stores completed downloads. Keys are strings, values whole files. */
export interface CacheAdapter {
  get(key: string): Promise<Uint8Array | null | undefined>;
  put(key: string, bytes: Uint8Array): Promise<unknown>;
}

export interface LoadOptions {
  /**
   * Default: CLIP_VIT_BASE_PATCH32_IMAGE.modelSource. A string of the form
   * "org/name" or "org/name@revision" that is not a local file is a Hugging
   * Face id (its model.safetensors); write "./org/name" for a relative path.
   */
  modelSource?: ModelSource;
  /** Download progress, 0..1, monotonic, ending at exactly 1. */
  onDownloadProgress?: (fraction: number) => void;
  signal?: AbortSignal;
  /**
   * The TensorFlow.js backend. 'auto' (default): WebGPU when an adapter
   * exists and is not a software fallback (SwiftShader), else wasm (always
   * wasm in Node). 'webgpu': WebGPU, software adapters included; the load
   * fails with InvalidModel where there is no adapter. 'wasm': tfjs-wasm.
   * model.backend says what was chosen (and, for 'auto', why).
   * If the WebGPU device is lost, pending and later calls fail with
   * ModelNotLoaded and the model must be loaded again.
   * 'native' (Node only): the Go engine (the `imgembed` binary of the
   * platform package @imgembed/<platform>, $IMGEMBED_BINARY, or this
   * repository's `make native-binary` output) in a child process; same API,
   * same error codes; it refuses `fetch`, `config`, `text`, `memoryLimit` and
   * cache adapters (InvalidInput). 'auto' in Node uses it when an installed
   * binary ($IMGEMBED_BINARY or the platform package) is found.
   */
  backend?: BackendName | 'native';
  /** XNNPACK threads (wasm; see initBackend). */
  threads?: number;
  /** tfjs-backend-wasm binary locations (see initBackend). */
  wasmPaths?: string | Record<string, string>;
  /**
   * undefined/true: the platform cache (Cache Storage in browsers,
   * $XDG_CACHE_HOME/imgembed or ~/.cache/imgembed in Node); false/null: none;
   * or an adapter. Only http(s) sources are cached.
   */
  cache?: boolean | null | CacheAdapter;
  /** Largest width x height of an input image (default 100 megapixels); larger ones fail with ImageTooLarge. */
  maxPixels?: number;
  /**
   * Memory budget in bytes for decoding one input image, estimated from its
   * header before any pixel is allocated; over it the image fails with
   * ImageTooLarge. Default 1 GiB (see README "Limits and hostile inputs").
   */
  maxDecodeBytes?: number;
  /**
   * Milliseconds allowed for fetching one image URL (response and whole
   * body); a slower one fails with DownloadFailed ("timed out") and the
   * next inputs go on. Default 30000; 0: no limit.
   */
  fetchTimeout?: number;
  /**
   * Milliseconds a model download may go without receiving a byte (waiting
   * for a response or for the next body chunk) before it fails with
   * DownloadFailed ("stalled") and its request is aborted. Default 60000;
   * 0: no limit.
   */
  downloadTimeout?: number;
  /**
   * A cached model whose server gave an ETag is revalidated with one
   * conditional request (If-None-Match and a 1-byte Range; the server
   * answers 304 with no body while the file is unchanged): a new version
   * replaces the cached copy; no answer keeps it. false: use the cached copy
   * without any request (offline use). Default true.
   */
  revalidate?: boolean;
  /** In browsers, decode JPEGs (bytes, Blobs and URLs, which the package
   * then fetches itself with the same fetch hook, fetchTimeout, size cap
   * and errors as the module) with the platform's decoder
   * (createImageBitmap) and let the module apply the EXIF orientation;
   * false: the module fetches URLs and its own Go decoder decodes
   * everything. Default true. */
  platformDecode?: boolean;
  /** On the wasm backend the graphs keep every weight as the left
   * operand of its matrix products (activations feature-major): tfjs-wasm
   * packs and caches a copy of a product's right operand for as long as
   * that tensor lives, which with weights on the right held every weight
   * twice while serving (about 2.2x the F32 weight bytes instead of 1.2x).
   * false: the weights-right layout, for comparison benchmarks. Ignored by
   * the WebGPU and native backends. Default true. */
  tfjsWeightsLeft?: boolean;
  /** Images per graph call in forwardBatch (default 8). */
  maxBatch?: number;
  /** A fetch to use instead of globalThis.fetch. */
  fetch?: typeof fetch;
  /** A Hugging Face config.json (object or text) for values the file does not state. */
  config?: string | object;
  /**
   * Compiled wasm modules, for runtimes that refuse to compile WebAssembly
   * from bytes at run time (Cloudflare Workers import them statically):
   * `imgembed` is dist/imgembed.wasm; `tfjs` is @tensorflow/tfjs-backend-wasm's
   * tfjs-backend-wasm-simd.wasm (or a map from that file name, or
   * tfjs-backend-wasm.wasm without SIMD, to its module). tfjs then runs
   * single-threaded.
   */
  wasmModules?: {
    imgembed?: WebAssembly.Module;
    tfjs?: WebAssembly.Module | Record<string, WebAssembly.Module>;
  };
  /**
   * Bytes the model's weights may take (e.g. 96e6 inside a 128 MB Worker).
   * A URL model whose weights to download are larger fails with InvalidModel
   * naming the limit as soon as the file's header is read, before the weights
   * are fetched; bytes given directly are checked at once. F16 and int8 files
   * expand to float32 in memory: their download size understates the need.
   */
  memoryLimit?: number;
  /**
   * Also load the text tower of a whole-CLIP file in the same download
   * (then `text` is its TextEmbeddings); an object may name tokenizerSource
   * (default: tokenizer.json beside modelSource).
   */
  text?: boolean | { tokenizerSource?: TokenizerSource };
  /** backend 'native': path of the imgembed binary to run. */
  nativeBinary?: string;
}

/** The backend of a model loaded with backend 'native'. */
export interface NativeBackendInfo {
  readonly name: 'native';
  /** The binary running the model. */
  readonly binary: string;
  /** Its process id. */
  readonly pid: number;
  /** The stdio protocol version (host/cmd/imgembed/PROTOCOL.md). */
  readonly protocol: number;
  /** Kernel threads (the binary's default: the machine's cores). */
  readonly threads: number;
}

export interface ForwardOptions {
  /**
   * Aborting it rejects the call at once with code Aborted; the call's image
   * fetches are aborted and its remaining inputs skipped, so later calls on
   * the model are not held up.
   */
  signal?: AbortSignal;
}

export interface ModelConfig {
  readonly embeddingSize: number;
  readonly imageSize: number;
  readonly patchSize: number;
  readonly hiddenSize: number;
  readonly layers: number;
  readonly heads: number;
  readonly mlpSize: number;
  /** Stored dtype of the vision weights, e.g. 'F32', 'F16'. */
  readonly dtype: string;
  /** Bytes of the vision weights as stored. */
  readonly weightBytes: number;
  /** The text tower's config, when loaded with `text`. */
  readonly text?: Omit<TextModelConfig, 'dtype' | 'weightBytes'>;
}

export declare class ImageEmbeddings {
  private constructor();
  static load(options?: LoadOptions): Promise<ImageEmbeddings>;
  readonly config: ModelConfig;
  readonly backend: BackendInfo | NativeBackendInfo;
  /** A unit-norm embedding of length config.embeddingSize. */
  forward(src: ImageSource, options?: ForwardOptions): Promise<Float32Array>;
  /** Rejects with the first failed input's error (its index set). */
  forwardBatch(srcs: Array<ImageSource | TextInput>, options?: ForwardOptions): Promise<Float32Array[]>;
  /** One result per input: an embedding or that input's error. */
  forwardBatchSettled(srcs: Array<ImageSource | TextInput>, options?: ForwardOptions): Promise<Array<Float32Array | ImageEmbeddingsError>>;
  /** The text tower of the same model, when loaded with `text`. */
  readonly text: TextEmbeddings | undefined;
  dispose(): void;
}

export declare const CLIP_VIT_BASE_PATCH32_IMAGE: Readonly<{ modelSource: string }>;
/** OpenAI CLIP ViT-B/16 on Hugging Face (345 MB of vision weights). */
export declare const CLIP_VIT_BASE_PATCH16_IMAGE: Readonly<{ modelSource: string }>;
/** OpenAI CLIP ViT-L/14 on Hugging Face (1.22 GB of vision weights, 768-number embeddings). */
export declare const CLIP_VIT_LARGE_PATCH14_IMAGE: Readonly<{ modelSource: string }>;
/** OpenAI CLIP ViT-L/14 at 336 pixels (1.22 GB of vision weights, 768-number embeddings). */
export declare const CLIP_VIT_LARGE_PATCH14_336_IMAGE: Readonly<{ modelSource: string }>;

/**
 * The URL of `file` (default model.safetensors) in the Hugging Face
 * repository `id` ("org/name" or "org/name@revision"; HF_ENDPOINT in the
 * environment names another host), or null when `id` is not of that form.
 * Load options take such ids as modelSource directly.
 */
export declare function hubFile(id: string, file?: string): string | null;

/** Cosine similarity of two embeddings; throws InvalidInput on different lengths. */
export declare function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number;

/** CLIPImageProcessor's preprocessing: 3 x size x size CHW float32. */
export declare function preprocess(
  src: ImageSource,
  options: { size: number; mean?: [number, number, number]; std?: [number, number, number]; maxPixels?: number; fetchTimeout?: number; fetch?: typeof fetch; platformDecode?: boolean },
): Promise<Float32Array>;

/** Cache Storage adapter (browsers, workers). */
export declare function browserCache(name?: string): CacheAdapter & { delete(key: string): Promise<boolean> };
/** Directory adapter (Node); default directory $XDG_CACHE_HOME/imgembed or ~/.cache/imgembed. */
export declare function nodeCache(dir?: string): CacheAdapter & { delete(key: string): Promise<void> };
/** The platform's default adapter, or null. */
export declare function defaultCache(): CacheAdapter | null;

/** A text among the inputs of forwardBatch / forwardBatchSettled of a model loaded with `text`. */
export interface TextInput {
  text: string;
}

/** Where a tokenizer.json comes from: a URL or path, a Blob, bytes, or the parsed JSON. */
export type TokenizerSource = string | URL | Blob | ArrayBuffer | ArrayBufferView | object;

export interface TextLoadOptions extends Omit<LoadOptions, 'maxPixels' | 'maxDecodeBytes' | 'fetchTimeout' | 'text'> {
  /** A whole-CLIP safetensors file (only its text tensors are read). Default: CLIP_VIT_BASE_PATCH32_TEXT.modelSource. */
  modelSource?: ModelSource;
  /** Default: tokenizer.json beside a URL/path modelSource (required for Blob/bytes sources). */
  tokenizerSource?: TokenizerSource;
  /** Texts per graph call in forwardBatch (default 8). */
  maxBatch?: number;
}

export interface TextModelConfig {
  readonly embeddingSize: number;
  readonly hiddenSize: number;
  readonly layers: number;
  readonly heads: number;
  readonly mlpSize: number;
  readonly vocabSize: number;
  readonly contextLength: number;
  /** exp(logit_scale) of the file (100 for OpenAI CLIP), to scale cosines before a softmax; absent when the file has none. */
  readonly logitScale?: number;
  /** Stored dtype of the loaded weights. */
  readonly dtype: string;
  /** Bytes of the loaded weights as stored. */
  readonly weightBytes: number;
}

/** CLIP text embeddings (CLIPTextModelWithProjection + L2), in the image embeddings' space. */
export declare class TextEmbeddings {
  private constructor();
  static load(options?: TextLoadOptions): Promise<TextEmbeddings>;
  readonly config: TextModelConfig;
  readonly backend: BackendInfo;
  /** A unit-norm embedding; texts longer than 77 tokens are cut as CLIP's tokenizer does. */
  forward(text: string, options?: ForwardOptions): Promise<Float32Array>;
  forwardBatch(texts: string[], options?: ForwardOptions): Promise<Float32Array[]>;
  forwardBatchSettled(texts: string[], options?: ForwardOptions): Promise<Array<Float32Array | ImageEmbeddingsError>>;
  dispose(): void;
}

export declare const CLIP_VIT_BASE_PATCH32_TEXT: Readonly<{ modelSource: string; tokenizerSource: string }>;
