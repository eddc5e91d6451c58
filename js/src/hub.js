// Hugging Face ids as model sources: "org/name" or "org/name@revision"
// name the repository's files (model.safetensors, tokenizer.json). The rule
// is weights/hub.go's; testdata/hub-ids.json holds the cases both test.

export const HUB_HOST = 'https://huggingface.co';

// HF_ENDPOINT (as huggingface_hub reads it) names a mirror, or a local
// server in tests; only where there is a process environment.
function endpoint() {
  const e = globalThis.process?.env?.HF_ENDPOINT;
  return typeof e === 'string' && e !== '' ? e.replace(/\/+$/, '') : HUB_HOST;
}

const HUB_ID = /^([A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@([A-Za-z0-9][A-Za-z0-9_./-]*))?$/;

/**
 * The URL of `file` in the Hugging Face repository `id`, or null when `id`
 * is not of the form org/name[@revision] (a name ending in .safetensors is a
 * file, not an id).
 * @param {string} id
 * @param {string} [file]
 * @returns {string | null}
 */
export function hubFile(id, file = 'model.safetensors') {
  const m = HUB_ID.exec(id);
  if (m == null || m[1].endsWith('.safetensors') || id.includes('..')) return null;
  return `${endpoint()}/${m[1]}/resolve/${encodeURIComponent(m[2] ?? 'main')}/${file}`;
}
