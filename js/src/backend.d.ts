/** ImageEmbeddings.load's `backend` option. */
export type BackendName = 'auto' | 'webgpu' | 'wasm';

/** What ImageEmbeddings.load chose: WasmBackendInfo or WebGPUBackendInfo. */
export type BackendInfo = WasmBackendInfo | WebGPUBackendInfo;

/** Set when the backend was chosen by 'auto'. */
export interface AutoChoice {
  readonly requested?: 'auto';
  /** Why 'auto' did not choose WebGPU (wasm only). */
  readonly reason?: string;
}

/** The WebGPU adapter in use (GPUAdapterInfo). */
export interface WebGPUAdapterInfo {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** A software (CPU-emulated) adapter, e.g. SwiftShader. */
  readonly isFallbackAdapter: boolean;
}

export interface WebGPUBackendInfo extends AutoChoice {
  readonly name: 'webgpu';
  readonly adapter: WebGPUAdapterInfo;
  /** Same as adapter.isFallbackAdapter: timings mean little. */
  readonly software: boolean;
}

/** What TensorFlow.js actually uses after initBackend. */
export interface WasmBackendInfo extends AutoChoice {
  readonly name: 'wasm';
  /** tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'): the SIMD build was loaded. */
  readonly simd: boolean;
  /** tfwasm.getThreadsCount(): XNNPACK's thread pool size (1 = no threads). */
  readonly threads: number;
}

export interface InitBackendOptions {
  /**
   * XNNPACK threads. Default: min(logical cores, 4) where wasm threads work
   * (Node; browsers only when `crossOriginIsolated`), else 1. At most 8.
   */
  threads?: number;
  /**
   * Where the tfjs-backend-wasm binaries are: a directory prefix ending in '/'
   * or a map from binary name to URL, as `setWasmPaths` of
   * @tensorflow/tfjs-backend-wasm takes. Default: the installed package's dist/.
   */
  wasmPaths?: string | Record<string, string>;
  /**
   * Compiled modules of the binaries, for runtimes that cannot compile wasm
   * from bytes (Cloudflare Workers): the SIMD build's module, or a map from
   * 'tfjs-backend-wasm-simd.wasm' / 'tfjs-backend-wasm.wasm' to modules.
   * Runs single-threaded.
   */
  wasmModules?: WebAssembly.Module | Record<string, WebAssembly.Module>;
}

/** Thrown when the backend cannot start; `code` is 'InvalidInput' for a bad
 * option, else 'InvalidModel' (ErrorCodes of the package). */
export class BackendInitError extends Error {
  readonly code: 'InvalidInput' | 'InvalidModel';
}

/**
 * Makes @tensorflow/tfjs-backend-wasm tf's backend. Idempotent: the first
 * call decides, later calls resolve to the same (frozen) info object.
 */
export function initBackend(options?: InitBackendOptions): Promise<WasmBackendInfo>;

/** The values of the `backend` option. */
export const BACKENDS: readonly BackendName[];

/** The WebGPU device in use and whether it was lost. */
export interface WebGPUSession {
  readonly info: WebGPUBackendInfo;
  readonly device: unknown;
  readonly lost: boolean;
  readonly lostInfo: { readonly reason: string; readonly message: string } | null;
  /** Settles when the device is lost. */
  readonly onLost: Promise<{ reason: string; message: string }>;
}

/**
 * Makes @tensorflow/tfjs-backend-webgpu tf's backend on a device of its own
 * (browsers with WebGPU only); after a device loss the next call sets up a
 * new device.
 */
export function initWebGPU(): Promise<WebGPUSession>;

/** Sets up and activates the backend ImageEmbeddings.load's option names. */
export function selectBackend(options?: InitBackendOptions & { backend?: BackendName }): Promise<{
  info: BackendInfo;
  session: WebGPUSession | null;
  activate: () => void;
  asyncRead: boolean;
  upload: ((t: unknown) => void) | null;
  copies: boolean;
}>;
