// Compiled (never run) by test/types.test.mjs: the public API as a
// TypeScript user sees it through the package's "exports" map.
import {
  ImageEmbeddings, ImageEmbeddingsError, CLIP_VIT_BASE_PATCH32_IMAGE, ErrorCodes, preprocess, nodeCache,
  type ImageSource, type ModelConfig, type ErrorCode,
} from 'imgembed';
import { useImageEmbeddings, useTextEmbeddings } from 'imgembed/react';
import { TextEmbeddings, CLIP_VIT_BASE_PATCH32_TEXT, type TextModelConfig } from 'imgembed';

export async function main(signal: AbortSignal): Promise<number> {
  const m = await ImageEmbeddings.load({
    ...CLIP_VIT_BASE_PATCH32_IMAGE,
    onDownloadProgress: (p: number) => void p,
    cache: nodeCache('/tmp/x'),
    threads: 2,
    backend: 'auto',
    signal,
    maxPixels: 1e6,
  });
  const one: Float32Array = await m.forward('x.png');
  const srcs: ImageSource[] = [new Uint8Array(3), { data: new Uint8ClampedArray(4), width: 1, height: 1 }, new Blob([]), { pixels: one }];
  const many: Float32Array[] = await m.forwardBatch(srcs);
  const settled = await m.forwardBatchSettled(srcs);
  let failures = 0;
  for (const r of settled) {
    if (r instanceof ImageEmbeddingsError) {
      const c: ErrorCode = r.code;
      failures += c === ErrorCodes.Aborted ? 0 : 1;
    }
  }
  const cfg: ModelConfig = m.config;
  const px: Float32Array = await preprocess('x.png', { size: cfg.imageSize });
  const both = await ImageEmbeddings.load({ modelSource: 'm.safetensors', text: { tokenizerSource: 't.json' } });
  const tv: Float32Array | undefined = await both.text?.forward('a cat');
  const mixedOut: Float32Array[] = await both.forwardBatch(['x.png', { text: 'a cat' }]);
  const t = await TextEmbeddings.load({ ...CLIP_VIT_BASE_PATCH32_TEXT, signal, maxBatch: 16 });
  const tcfg: TextModelConfig = t.config;
  const texts: Float32Array[] = await t.forwardBatch(['a', 'b']);
  const ts = await t.forwardBatchSettled(['a']);
  t.dispose();
  const hookOK = typeof useTextEmbeddings === 'function' && tcfg.contextLength + texts.length + ts.length + (tv?.length ?? 0) + mixedOut.length > 0;
  m.dispose();
  const b = m.backend;
  const gpu: string = b.name === 'webgpu' ? b.adapter.description + b.adapter.architecture : b.name !== 'native' ? b.reason ?? '' : '';
  const n = await ImageEmbeddings.load({ backend: 'native', nativeBinary: '/opt/imgembed', modelSource: 'model.safetensors' });
  const pid: number = n.backend.name === 'native' ? n.backend.pid : 0;
  n.dispose();
  return pid + (hookOK ? 1 : 0) + many.length + px.length + failures + (b.name === 'wasm' ? b.threads : 0) + gpu.length + (typeof useImageEmbeddings === 'function' ? 1 : 0);
}
