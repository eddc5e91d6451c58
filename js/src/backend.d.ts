/** What TensorFlow.js actually uses after initBackend. */
export interface BackendInfo {
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
export function initBackend(options?: InitBackendOptions): Promise<BackendInfo>;
