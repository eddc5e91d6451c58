// Text search and zero-shot labels for the demo: pure functions over unit
// embeddings (the page and worker do the I/O), tested in Node
// (www/test/search.test.mjs).

/** Dot product (= cosine for unit vectors). */
export function dot(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Indices of images sorted by cosine to the query, best first: [{index, score}]. */
export function rankByText(images, query) {
  return images.map((v, index) => ({ index, score: dot(v, query) })).sort((x, y) => y.score - x.score);
}

/**
 * CLIP zero-shot classification of one image: softmax over the labels of
 * logitScale x cosine (logitScale is exp(logit_scale), 100 for OpenAI CLIP).
 * Returns probabilities in label order.
 */
export function zeroShot(image, labels, logitScale = 100) {
  const logits = labels.map((l) => logitScale * dot(image, l));
  const m = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

/** The labels typed in a box: split on commas and newlines, trimmed, unique, non-empty. */
export function parseLabels(s) {
  const seen = new Set();
  const out = [];
  for (const part of String(s).split(/[,\n]/)) {
    const t = part.trim();
    if (t && !seen.has(t)) {
      seen.add(t);
      out.push(t);
    }
  }
  return out;
}

/** Calls fn(...args) once ms after the last call. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// The checkpoints of the project's testdata/models: seeded random weights in
// CLIP's layout, not a trained model.
const FIXTURE_NAME = /(^|\/)(tiny-f32|tiny-f16|tiny-fullclip-f32|b32l2-f16)\.safetensors$/;

/**
 * Whether the loaded weights are the random test fixtures (or another
 * checkpoint no trained CLIP looks like). Every published CLIP has at least
 * 12 layers of width >= 768 in its vision tower and 512 in its text tower;
 * the fixtures are 2-layer towers of width 128/64 or a 2-layer B/32.
 * Returns a reason string, or '' when the weights look like a real CLIP.
 */
export function fixtureReason(sourceName, config) {
  if (sourceName && FIXTURE_NAME.test(sourceName)) {
    return `${sourceName.split('/').pop()} is one of the project's test fixtures: seeded random numbers in CLIP's layout, not a trained model`;
  }
  if (config && (config.layers < 12 || config.hiddenSize < 768)) {
    return `a ${config.layers}-layer vision tower of width ${config.hiddenSize} is smaller than any published CLIP (test-size weights)`;
  }
  if (config?.text && (config.text.layers < 12 || config.text.hiddenSize < 512)) {
    return `a ${config.text.layers}-layer text tower of width ${config.text.hiddenSize} is smaller than any published CLIP (test-size weights)`;
  }
  return '';
}

/**
 * Why a model loaded without its text tower, in plain words, from the
 * error of the attempt with it.
 */
export function textUnavailableReason(message, source) {
  const m = String(message ?? '');
  if (source?.file) return 'a local file has no tokenizer.json beside it, so only its image tower was loaded';
  if (/text tower|token_embedding|text_model/.test(m)) return 'this checkpoint has only the image (vision) tower';
  if (/tokenizer/i.test(m)) return 'no usable tokenizer.json was found beside the checkpoint';
  return m ? `the text tower could not be loaded (${m.split(':')[0]})` : 'the text tower was not loaded';
}
