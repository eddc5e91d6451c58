import type { ImageEmbeddingsError, ImageSource, LoadOptions, ModelSource, TextLoadOptions, TokenizerSource } from './index.js';

/** What the hook needs of a loaded model (ImageEmbeddings satisfies it). */
export interface EmbeddingModel {
  forward(src: ImageSource): Promise<Float32Array>;
  forwardBatch(srcs: ImageSource[]): Promise<Float32Array[]>;
  dispose(): void;
}

export interface UseImageEmbeddingsOptions extends Omit<LoadOptions, 'modelSource' | 'signal'> {
  /** The model to load; a change of modelSource reloads. */
  model: { modelSource: ModelSource };
  /** While true nothing is loaded; turning it on aborts a download and disposes the model. */
  preventLoad?: boolean;
  /**
   * Replaces ImageEmbeddings.load (tests, or sharing one model). Receives the
   * load options with `modelSource`, `signal` and `onDownloadProgress`.
   */
  loader?: (options: LoadOptions & { signal: AbortSignal; onDownloadProgress: (p: number) => void }) => Promise<EmbeddingModel>;
}

export interface UseImageEmbeddingsResult {
  /**
   * Embeds one image (Float32Array, unit norm) or an array of images. Calls
   * are queued and run one at a time in call order. Rejects with
   * ImageEmbeddingsError code 'ModelNotLoaded' before the model is ready or
   * after it is gone.
   */
  forward: {
    (src: ImageSource): Promise<Float32Array>;
    (srcs: ImageSource[]): Promise<Float32Array[]>;
  };
  /** The last error (load or forward); cleared when a load starts or a forward call succeeds. */
  error: ImageEmbeddingsError | Error | null;
  /** True while forward calls are queued or running. */
  isGenerating: boolean;
  /** True once the model is loaded, until it is disposed. */
  isReady: boolean;
  /** 0..1 while downloading; 1 when ready. */
  downloadProgress: number;
}

export function useImageEmbeddings(options: UseImageEmbeddingsOptions): UseImageEmbeddingsResult;

/** What useTextEmbeddings needs of a loaded model (TextEmbeddings satisfies it). */
export interface TextEmbeddingModel {
  forward(text: string): Promise<Float32Array>;
  forwardBatch(texts: string[]): Promise<Float32Array[]>;
  dispose(): void;
}

export interface UseTextEmbeddingsOptions extends Omit<TextLoadOptions, 'modelSource' | 'tokenizerSource' | 'signal'> {
  /** The model to load (e.g. CLIP_VIT_BASE_PATCH32_TEXT); a change of modelSource reloads. */
  model: { modelSource: ModelSource; tokenizerSource?: TokenizerSource };
  preventLoad?: boolean;
  /** Replaces TextEmbeddings.load. */
  loader?: (options: TextLoadOptions & { signal: AbortSignal; onDownloadProgress: (p: number) => void }) => Promise<TextEmbeddingModel>;
}

export interface UseTextEmbeddingsResult {
  /** Embeds one text or an array of texts; queued like useImageEmbeddings' forward. */
  forward: {
    (text: string): Promise<Float32Array>;
    (texts: string[]): Promise<Float32Array[]>;
  };
  error: ImageEmbeddingsError | Error | null;
  isGenerating: boolean;
  isReady: boolean;
  downloadProgress: number;
}

export function useTextEmbeddings(options: UseTextEmbeddingsOptions): UseTextEmbeddingsResult;
