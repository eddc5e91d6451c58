// React binding of imgembed: useImageEmbeddings loads a model for the life
// of a component and exposes a queued forward with loading/generating state,
// in the shape of React Native ExecuTorch's model hooks.

import { useCallback, useEffect, useRef, useState } from 'react';
import { ImageEmbeddings, ImageEmbeddingsError, ErrorCodes, TextEmbeddings } from './index.js';

function notLoaded() {
  return new ImageEmbeddingsError(ErrorCodes.ModelNotLoaded, 'the model is not loaded (yet, or any more)');
}

/**
 * Loads an image-embedding model and keeps it while the component is
 * mounted.
 *
 * - The model loads when the component mounts (unless preventLoad) and again
 *   whenever model.modelSource changes; the previous model is disposed.
 * - Setting preventLoad to true, changing modelSource or unmounting aborts a
 *   running download (AbortController) and disposes the loaded model, after
 *   the forward call in progress (if any) has finished.
 * - forward(src) embeds one image (or, given an array, several) and resolves
 *   to a Float32Array (an array of them). Calls are queued: one runs at a
 *   time, in call order, and each resolves with its own result. Before the
 *   model is ready, or once it is gone, calls reject with an
 *   ImageEmbeddingsError of code ModelNotLoaded.
 * - isGenerating is true while any forward call is queued or running;
 *   downloadProgress goes 0..1 (1 once ready); error is the last error (load
 *   or forward), cleared when a new load starts or a forward call succeeds.
 *
 * Other options (threads, cache, wasmPaths, fetch, ...) are passed to
 * ImageEmbeddings.load as they are when a load starts; changing them does not
 * reload. `loader` replaces ImageEmbeddings.load (for tests, or to share one
 * model between components): it receives the load options, including
 * `signal` and `onDownloadProgress`, and must resolve to an object with
 * forward, forwardBatch and dispose.
 *
 * @param {import('./react.js').UseImageEmbeddingsOptions} options
 * @returns {import('./react.js').UseImageEmbeddingsResult}
 */
export function useImageEmbeddings({ model, preventLoad = false, loader, ...loadOptions } = {}) {
  const modelSource = model?.modelSource;

  const [isReady, setIsReady] = useState(false);
  const [isGenerating, setIsGenerating] = useState(false);
  const [downloadProgress, setDownloadProgress] = useState(0);
  const [error, setError] = useState(null);

  const modelRef = useRef(null); // the loaded model, null when not ready
  const queueRef = useRef(Promise.resolve()); // tail of the forward queue
  const pendingRef = useRef(0); // forward calls queued or running
  const mountedRef = useRef(true);
  const optionsRef = useRef(loadOptions);
  optionsRef.current = loadOptions;
  const loaderRef = useRef(loader);
  loaderRef.current = loader;

  useEffect(() => {
    mountedRef.current = true;
    return () => {
      mountedRef.current = false;
    };
  }, []);

  useEffect(() => {
    if (preventLoad || modelSource == null) return undefined;
    const controller = new AbortController();
    let current = true; // this effect's load is still wanted
    let loaded = null;

    setIsReady(false);
    setDownloadProgress(0);
    setError(null);

    const load = loaderRef.current ?? ((o) => ImageEmbeddings.load(o));
    const { onDownloadProgress: userProgress, ...rest } = optionsRef.current;
    Promise.resolve()
      .then(() => load({
        ...rest,
        modelSource,
        signal: controller.signal,
        onDownloadProgress: (p) => {
          if (!current) return;
          setDownloadProgress(p);
          userProgress?.(p);
        },
      }))
      .then(
        (m) => {
          if (!current) {
            m?.dispose?.();
            return;
          }
          loaded = m;
          modelRef.current = m;
          setDownloadProgress(1);
          setIsReady(true);
        },
        (e) => {
          if (!current) return; // aborted by us: not an error of the hook
          setError(e instanceof Error ? e : new Error(String(e)));
        },
      );

    return () => {
      current = false;
      controller.abort();
      if (modelRef.current === loaded) modelRef.current = null;
      if (loaded) {
        const m = loaded;
        // Let the forward that is running finish on it; later ones see no
        // model and reject with ModelNotLoaded.
        queueRef.current.then(() => m.dispose?.());
      }
      if (mountedRef.current) setIsReady(false);
    };
  }, [modelSource, preventLoad]);

  const forward = useCallback((src) => {
    if (modelRef.current == null) {
      const e = notLoaded();
      if (mountedRef.current) setError(e);
      return Promise.reject(e);
    }
    pendingRef.current += 1;
    setIsGenerating(true);
    const run = async () => {
      const m = modelRef.current;
      if (m == null) throw notLoaded();
      return Array.isArray(src) ? m.forwardBatch(src) : m.forward(src);
    };
    const result = queueRef.current.then(run, run);
    const done = () => {
      pendingRef.current -= 1;
      if (pendingRef.current === 0 && mountedRef.current) setIsGenerating(false);
    };
    queueRef.current = result.then(() => {
      done();
      // error is the last outcome's: a success clears an earlier failure.
      if (mountedRef.current) setError(null);
    }, (e) => {
      done();
      if (mountedRef.current) setError(e);
    });
    return result;
  }, []);

  return { forward, error, isGenerating, isReady, downloadProgress };
}

/**
 * Loads a text-embedding model (TextEmbeddings) and keeps it while the
 * component is mounted: the same fields and transitions as
 * useImageEmbeddings (it is that hook with TextEmbeddings.load as the
 * loader), forward taking a string or an array of strings. model is
 * { modelSource, tokenizerSource? } (CLIP_VIT_BASE_PATCH32_TEXT works); a
 * change of modelSource reloads.
 *
 * @param {import('./react.js').UseTextEmbeddingsOptions} options
 * @returns {import('./react.js').UseTextEmbeddingsResult}
 */
export function useTextEmbeddings({ model, loader, ...rest } = {}) {
  return useImageEmbeddings({
    ...rest,
    model,
    tokenizerSource: model?.tokenizerSource,
    loader: loader ?? ((o) => TextEmbeddings.load(o)),
  });
}
