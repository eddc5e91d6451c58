// The demo page: model choice and progress, the image gallery, the
// similarity matrix and the "most similar" ranking. All model work happens
// in worker.js; this module only renders.
//
// For tests and curious users the page state is mirrored in
// window.__imgembedResults (see publish()).

import { similarityMatrix, rankBySimilarity, offDiagonalRange, heatColor, formatBytes, progressText, formatMs } from './sim.js';
import { rankByText, zeroShot, parseLabels, debounce, fixtureReason, textUnavailableReason } from './search.js';

const $ = (sel) => document.querySelector(sel);

const ui = {
  form: $('#model-form'),
  loadBtn: $('#load-btn'),
  kindRadios: document.querySelectorAll('input[name=model-kind]'),
  serverChoice: $('#server-choice'),
  serverModel: $('#server-model'),
  url: $('#model-url'),
  modelFile: $('#model-file'),
  threads: $('#threads'),
  backend: $('#backend'),
  progressBox: $('#progress-box'),
  progress: $('#model-progress'),
  progressText: $('#progress-text'),
  modelError: $('#model-error'),
  info: $('#model-info'),
  imageDrop: $('#image-drop'),
  imageInput: $('#image-input'),
  toolbar: $('#gallery-toolbar'),
  galleryStatus: $('#gallery-status'),
  resetOrder: $('#reset-order'),
  clear: $('#clear-images'),
  hint: $('#similar-hint'),
  gallery: $('#gallery'),
  matrixPanel: $('#matrix-panel'),
  matrix: $('#matrix'),
  matrixRange: $('#matrix-range'),
};

const state = {
  status: 'idle', // idle | loading | ready | error
  config: null,
  backend: null,
  loadMs: 0,
  isolated: globalThis.crossOriginIsolated === true,
  workerIsolated: null,
  items: [], // {id, name, file, url, state, embedding, ms, error, el}
  selected: null, // item id
  nextId: 1,
  droppedModel: null, // File dropped on the model panel
};

// ---------------------------------------------------------------- worker

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
worker.onerror = (ev) => {
  // A module worker that fails to start (a missing or broken script).
  ev.preventDefault?.();
  setModelError(`The embedding worker failed to start: ${ev.message || 'script error'}`);
  state.status = 'error';
  setLoading(false);
  publish();
};
worker.onmessage = (ev) => {
  const msg = ev.data;
  switch (msg.type) {
    case 'hello':
      state.workerIsolated = msg.isolated;
      if (msg.defaultModel) $('#kind-default').nextElementSibling.title = msg.defaultModel;
      break;
    case 'progress':
      showProgress(msg.p, msg.loaded, msg.total);
      break;
    case 'ready':
      onReady(msg);
      break;
    case 'load-error':
      if (msg.code === 'Aborted') {
        // The user pressed Cancel: not an error of the model.
        state.status = 'idle';
        setLoading(false);
        ui.progressBox.hidden = true;
        setModelError('Loading cancelled.');
      } else {
        state.status = 'error';
        setLoading(false);
        ui.progressBox.hidden = true;
        setModelError(`${msg.code}: ${msg.message}`);
      }
      // The worker kept the model loaded before: it still serves.
      if (msg.kept && state.previous) {
        state.status = 'ready';
        state.config = state.previous.config;
        ui.info.hidden = false;
        setLoading(false);
        if (msg.code !== 'Aborted') setModelError(`${msg.code}: ${msg.message} (the model loaded before is still in use)`);
      }
      publish();
      break;
    case 'result':
      onResult(msg);
      break;
    case 'text-result':
      onTextResult(msg);
      break;
    case 'thumb':
      onThumb(msg);
      break;
    default:
      break;
  }
};

// ---------------------------------------------------------------- model

async function listServerModels() {
  try {
    const r = await fetch('/models/');
    if (!r.ok) return;
    const list = await r.json();
    if (!Array.isArray(list) || list.length === 0) return;
    for (const m of list) {
      const opt = document.createElement('option');
      opt.value = m.url;
      opt.textContent = `${m.name} (${formatBytes(m.size)})`;
      opt.dataset.size = String(m.size);
      ui.serverModel.append(opt);
    }
    ui.serverChoice.hidden = false;
  } catch {
    // Not served by the demo server (e.g. a static host): no local list.
  }
}

function selectedKind() {
  return [...ui.kindRadios].find((r) => r.checked)?.value ?? 'default';
}

// Focusing or changing an option's own control selects its radio.
ui.serverModel.addEventListener('change', () => { $('#kind-server').checked = true; });
ui.url.addEventListener('input', () => { $('#kind-url').checked = true; });
ui.modelFile.addEventListener('change', () => {
  $('#kind-file').checked = true;
  state.droppedModel = null;
});

function modelSource() {
  switch (selectedKind()) {
    case 'server': {
      const opt = ui.serverModel.selectedOptions[0];
      if (!opt) throw new Error('No checkpoint on this server.');
      return { url: new URL(opt.value, location.href).href, size: Number(opt.dataset.size) || 0 };
    }
    case 'url': {
      const u = ui.url.value.trim();
      if (!u) throw new Error('Enter the URL of a .safetensors file.');
      return { url: new URL(u, location.href).href };
    }
    case 'file': {
      const f = state.droppedModel ?? ui.modelFile.files[0];
      if (!f) throw new Error('Choose or drop a .safetensors file.');
      return { file: f };
    }
    default:
      return { preset: true };
  }
}

ui.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (state.status === 'loading') {
    worker.postMessage({ type: 'abort' });
    return;
  }
  let source;
  try {
    source = modelSource();
  } catch (e) {
    setModelError(e.message);
    return;
  }
  setModelError('');
  state.previous = state.status === 'ready' ? { config: state.config } : null;
  state.status = 'loading';
  state.config = null;
  ui.info.hidden = true;
  setLoading(true);
  lastProgress = -1;
  ui.progressBox.hidden = false;
  ui.progress.value = 0;
  ui.progress.dataset.percent = '0';
  ui.progressText.textContent = 'Starting the WebAssembly module…';
  const threads = Number(ui.threads.value) || 0;
  state.loadingSource = source;
  worker.postMessage({ type: 'load', source, threads, backend: ui.backend.value });
  publish();
});

// Drop a checkpoint anywhere on the model panel.
const modelPanel = $('#model-panel');
modelPanel.addEventListener('dragover', (ev) => {
  if (!ev.dataTransfer?.types.includes('Files')) return;
  ev.preventDefault();
  ui.form.classList.add('dragover');
});
modelPanel.addEventListener('dragleave', () => ui.form.classList.remove('dragover'));
modelPanel.addEventListener('drop', (ev) => {
  ev.preventDefault();
  ui.form.classList.remove('dragover');
  const f = ev.dataTransfer?.files?.[0];
  if (!f) return;
  state.droppedModel = f;
  $('#kind-file').checked = true;
  ui.modelFile.value = '';
  setModelError('');
  ui.modelFile.title = f.name;
  ui.form.requestSubmit();
});

function setLoading(on) {
  ui.loadBtn.textContent = on ? 'Cancel' : state.status === 'ready' ? 'Load another model' : 'Load model';
  ui.form.querySelector('fieldset').disabled = on;
  ui.threads.disabled = on;
  ui.backend.disabled = on;
}

function setModelError(text) {
  ui.modelError.textContent = text;
  ui.modelError.hidden = !text;
}

let lastProgress = -1;
function showProgress(p, loaded, total) {
  ui.progressBox.hidden = false;
  const frac = Math.max(0, Math.min(1, Number.isFinite(p) ? p : total ? loaded / total : 0));
  if (frac < lastProgress && state.status === 'loading' && frac !== 0) return; // monotonic display
  lastProgress = frac;
  ui.progress.value = frac;
  const pct = Math.floor(frac * 100);
  ui.progress.dataset.percent = String(pct);
  ui.progressText.textContent = total > 0 ? progressText(loaded || frac * total, total) : `${pct} %`;
}

function onReady(msg) {
  state.status = 'ready';
  state.config = msg.config;
  state.backend = msg.backend;
  state.loadMs = msg.loadMs;
  state.workerIsolated = msg.isolated;
  setLoading(false);
  const total = msg.config.weightBytes;
  showProgress(1, total, total);
  lastProgress = -1;
  const c = msg.config;
  const b = msg.backend;
  // [shown text, raw value for data-value (tests, scripts)]
  const fields = {
    embeddingSize: [c.embeddingSize, c.embeddingSize],
    imageSize: [`${c.imageSize} × ${c.imageSize} (patch ${c.patchSize})`, c.imageSize],
    layers: [c.layers, c.layers],
    width: [`${c.hiddenSize} / ${c.heads}`, `${c.hiddenSize}/${c.heads}`],
    dtype: [c.dtype, c.dtype],
    weightBytes: [`${formatBytes(c.weightBytes)} (${Number(c.weightBytes).toLocaleString('en')} B)`, c.weightBytes],
    backend: [`${b.name} (TensorFlow.js${b.reason ? `; auto: ${b.reason}` : ''})`, b.name],
    adapter: b.adapter
      ? [`${[b.adapter.vendor, b.adapter.architecture, b.adapter.description].filter(Boolean).join(' ')}${b.software ? ' (software: slow)' : ''}`, b.adapter.architecture]
      : ['–', ''],
    simd: b.name === 'wasm' ? [b.simd ? 'yes' : 'no', b.simd] : ['–', ''],
    threads: b.name === 'wasm' ? [b.threads, b.threads] : ['–', ''],
    isolated: [msg.isolated ? 'yes' : 'no', msg.isolated],
    loadMs: [formatMs(msg.loadMs), msg.loadMs],
  };
  for (const [k, [shown, raw]] of Object.entries(fields)) {
    const dd = ui.info.querySelector(`[data-field=${k}]`);
    dd.textContent = String(shown);
    dd.dataset.value = String(raw);
  }
  ui.info.hidden = false;
  onTextReady(msg);
  // A new model makes old embeddings meaningless: embed everything again.
  for (const it of state.items) {
    if (it.state !== 'pending') {
      it.state = 'pending';
      it.embedding = null;
      it.error = null;
      sendToWorker(it);
    }
    renderItem(it);
  }
  refresh();
}

// ---------------------------------------------------------------- images

async function sendToWorker(it) {
  const bytes = await it.file.arrayBuffer();
  worker.postMessage({ type: 'embed', id: it.id, bytes }, [bytes]);
}

function addFiles(files) {
  for (const file of files) {
    const it = {
      id: state.nextId++,
      name: file.name || `image ${state.nextId}`,
      file,
      url: URL.createObjectURL(file),
      state: 'pending',
      embedding: null,
      ms: null,
      error: null,
      el: null,
    };
    state.items.push(it);
    it.el = createItemElement(it);
    ui.gallery.append(it.el);
    renderItem(it);
    sendToWorker(it);
  }
  refresh();
}

function createItemElement(it) {
  const li = document.createElement('li');
  li.className = 'item';
  li.dataset.id = String(it.id);
  li.dataset.name = it.name;
  const btn = document.createElement('button');
  btn.type = 'button';
  btn.className = 'thumb';
  const img = document.createElement('img');
  img.alt = it.name;
  img.decoding = 'async';
  img.src = it.url;
  const ph = document.createElement('span');
  ph.className = 'placeholder';
  ph.textContent = (it.name.split('.').pop() || '?').toUpperCase().slice(0, 5);
  ph.setAttribute('aria-hidden', 'true');
  ph.hidden = true;
  img.addEventListener('error', () => {
    // The browser cannot display it (corrupt, or a format only the module
    // decodes, like TIFF): show the extension and ask the worker to draw a
    // thumbnail with the module's decoder.
    img.hidden = true;
    ph.hidden = false;
    it.thumbFailed = true;
    if (!it.thumbRequested) {
      it.thumbRequested = true;
      it.file.arrayBuffer().then((bytes) => worker.postMessage({ type: 'thumb', id: it.id, bytes, size: 192 }, [bytes]));
    }
    renderMatrix();
  });
  img.addEventListener('load', () => {
    img.hidden = false;
    ph.hidden = true;
  });
  const score = document.createElement('span');
  score.className = 'score';
  score.hidden = true;
  btn.append(img, ph, score);
  btn.addEventListener('click', () => select(it.id));
  const meta = document.createElement('div');
  meta.className = 'meta';
  const name = document.createElement('div');
  name.className = 'name';
  name.textContent = it.name;
  name.title = it.name;
  const status = document.createElement('div');
  status.className = 'status';
  meta.append(name, status);
  li.append(btn, meta);
  return li;
}

function renderItem(it) {
  const li = it.el;
  li.dataset.state = it.state;
  const status = li.querySelector('.status');
  const btn = li.querySelector('.thumb');
  if (it.state === 'done') {
    status.textContent = formatMs(it.ms);
    li.dataset.ms = it.ms.toFixed(3);
    btn.disabled = false;
    btn.setAttribute('aria-label', `${it.name}: rank the other images by similarity to this one`);
  } else if (it.state === 'error') {
    status.textContent = `${it.error.code}: ${it.error.message}`;
    status.title = status.textContent;
    li.dataset.error = it.error.code;
    btn.disabled = true;
    btn.setAttribute('aria-label', `${it.name}: ${it.error.code}`);
  } else {
    status.textContent = state.status === 'ready' ? 'embedding…' : 'waiting for the model…';
    btn.disabled = true;
    btn.setAttribute('aria-label', `${it.name}: pending`);
  }
}

function onResult(msg) {
  const it = state.items.find((x) => x.id === msg.id);
  if (!it) return; // cleared meanwhile
  it.ms = msg.ms;
  if (msg.error) {
    it.state = 'error';
    it.error = msg.error;
  } else {
    it.state = 'done';
    it.embedding = msg.embedding;
  }
  renderItem(it);
  refresh();
}

function onThumb(msg) {
  const it = state.items.find((x) => x.id === msg.id);
  if (!it || !msg.blob) return;
  it.thumbURL = URL.createObjectURL(msg.blob);
  it.thumbFailed = false;
  it.el.dataset.thumb = 'module';
  it.el.querySelector('.thumb img').src = it.thumbURL;
  renderMatrix();
}

ui.imageInput.addEventListener('change', () => {
  addFiles([...ui.imageInput.files]);
  ui.imageInput.value = '';
});
ui.imageDrop.addEventListener('dragover', (ev) => {
  if (!ev.dataTransfer?.types.includes('Files')) return;
  ev.preventDefault();
  ui.imageDrop.classList.add('dragover');
});
ui.imageDrop.addEventListener('dragleave', () => ui.imageDrop.classList.remove('dragover'));
ui.imageDrop.addEventListener('drop', (ev) => {
  ev.preventDefault();
  ui.imageDrop.classList.remove('dragover');
  addFiles([...(ev.dataTransfer?.files ?? [])]);
});
ui.resetOrder.addEventListener('click', () => select(null));
ui.clear.addEventListener('click', () => {
  worker.postMessage({ type: 'clear' });
  for (const it of state.items) {
    URL.revokeObjectURL(it.url);
    if (it.thumbURL) URL.revokeObjectURL(it.thumbURL);
  }
  state.items = [];
  state.selected = null;
  ui.gallery.replaceChildren();
  refresh();
});

// ---------------------------------------------------------------- similarity

function doneItems() {
  return state.items.filter((it) => it.state === 'done');
}

function select(id) {
  state.selected = state.selected === id ? null : id;
  const focused = document.activeElement;
  applyOrder();
  if (focused && focused.isConnected) focused.focus({ preventScroll: true });
  publish();
}

// Selected image first, then the others by similarity (with the score),
// then those without an embedding; no selection: the order they were added.
function applyOrder() {
  const done = doneItems();
  const sel = done.find((it) => it.id === state.selected);
  if (!sel) state.selected = null;
  for (const it of state.items) {
    it.el.classList.toggle('selected', it === sel);
    const badge = it.el.querySelector('.score');
    badge.hidden = true;
    delete it.el.dataset.score;
    delete it.el.dataset.rank;
  }
  let order = state.items;
  if (sel) {
    const vecs = done.map((it) => it.embedding);
    const ranked = rankBySimilarity(vecs, done.indexOf(sel)).map((r) => ({ it: done[r.index], score: r.score }));
    order = [sel, ...ranked.map((r) => r.it), ...state.items.filter((it) => it.state !== 'done')];
    const selBadge = sel.el.querySelector('.score');
    selBadge.textContent = 'query';
    selBadge.hidden = false;
    ranked.forEach((r, k) => {
      const badge = r.it.el.querySelector('.score');
      badge.textContent = r.score.toFixed(3);
      badge.hidden = false;
      r.it.el.dataset.score = String(r.score);
      r.it.el.dataset.rank = String(k + 1);
    });
  }
  // Re-append in order (also the order screen readers get).
  for (const it of order) ui.gallery.append(it.el);
  for (const it of state.items) {
    const btn = it.el.querySelector('.thumb');
    if (it.state === 'done') btn.setAttribute('aria-pressed', String(it === sel));
    else btn.removeAttribute('aria-pressed');
  }
}

function thumbCell(it, tag) {
  const th = document.createElement('th');
  th.scope = tag;
  th.title = it.name;
  if (it.thumbFailed) {
    const span = document.createElement('span');
    span.className = 'mini';
    span.textContent = it.name.slice(0, 6);
    th.append(span);
  } else {
    const img = document.createElement('img');
    img.src = it.thumbURL ?? it.url;
    img.alt = it.name;
    th.append(img);
  }
  return th;
}

function renderMatrix() {
  const done = doneItems();
  ui.matrixPanel.hidden = done.length < 2;
  if (done.length < 2) {
    ui.matrix.replaceChildren();
    return;
  }
  const m = similarityMatrix(done.map((it) => it.embedding));
  const [lo, hi] = offDiagonalRange(m);
  ui.matrix.dataset.size = String(done.length);
  const caption = document.createElement('caption');
  caption.className = 'sr-only';
  caption.textContent = 'Cosine similarity between every pair of images';
  const head = document.createElement('tr');
  head.append(document.createElement('td'));
  for (const it of done) head.append(thumbCell(it, 'col'));
  const rows = done.map((a, i) => {
    const tr = document.createElement('tr');
    tr.append(thumbCell(a, 'row'));
    done.forEach((b, j) => {
      const td = document.createElement('td');
      const v = m[i][j];
      const { background, color } = heatColor(v, lo, hi);
      td.style.background = background;
      td.style.color = color;
      td.textContent = v.toFixed(3);
      td.title = `${a.name} · ${b.name}: ${v.toFixed(4)}`;
      td.dataset.sim = String(v);
      td.dataset.row = String(i);
      td.dataset.col = String(j);
      if (i === j) td.className = 'diag';
      tr.append(td);
    });
    return tr;
  });
  ui.matrix.replaceChildren(caption, head, ...rows);
  const l = heatColor(lo, lo, hi).background;
  const h = heatColor(hi, lo, hi).background;
  ui.matrixRange.replaceChildren('Scale: ', lo.toFixed(3));
  const legend = document.createElement('span');
  legend.className = 'legend';
  legend.style.background = `linear-gradient(90deg, ${l}, ${h})`;
  legend.setAttribute('aria-hidden', 'true');
  ui.matrixRange.append(legend, hi.toFixed(3));
}

function refresh() {
  const n = state.items.length;
  const done = doneItems();
  const failed = state.items.filter((it) => it.state === 'error').length;
  ui.toolbar.hidden = n === 0;
  ui.hint.hidden = done.length < 2;
  const times = done.map((it) => it.ms).sort((a, b) => a - b);
  const median = times.length ? times[Math.floor((times.length - 1) / 2)] : NaN;
  const pending = n - done.length - failed;
  ui.galleryStatus.textContent = n === 0 ? '' :
    `${done.length} embedded${failed ? `, ${failed} failed` : ''}${pending ? `, ${pending} pending` : ''}` +
    (times.length ? ` · median ${formatMs(median)} per image` : '');
  applyOrder();
  renderMatrix();
  renderSearch();
  publish();
}

// ---------------------------------------------------------------- test hook

function publish() {
  const done = doneItems();
  window.__imgembedResults = {
    status: state.status,
    pageIsolated: state.isolated,
    workerIsolated: state.workerIsolated,
    config: state.config,
    backend: state.backend,
    loadMs: state.loadMs,
    images: state.items.map((it) => ({
      name: it.name,
      state: it.state,
      ms: it.ms,
      error: it.error,
      embedding: it.embedding ? Array.from(it.embedding) : null,
    })),
    matrix: {
      names: done.map((it) => it.name),
      values: similarityMatrix(done.map((it) => it.embedding)),
    },
    selected: state.items.find((it) => it.id === state.selected)?.name ?? null,
    search: searchSnapshot(),
  };
  document.body.dataset.status = state.status;
}

// ---------------------------------------------------------------- search

// Text embeddings come from the worker (the model's text tower); they are
// cached by text, so retyping a query or editing one label costs only the
// new texts. A result for a text that is no longer wanted is still cached.
const search = {
  available: false,
  logitScale: 100,
  notice: '',
  cache: new Map(), // text -> Float32Array
  waiting: new Map(), // request id -> texts
  nextId: 1,
  query: '',
  labels: [],
  error: null,
};
const sui = {
  panel: $('#search-panel'),
  notice: $('#search-notice'),
  modelNotice: $('#weights-notice'),
  unavailable: $('#text-unavailable'),
  tools: $('#search-tools'),
  query: $('#query'),
  results: $('#search-results'),
  labels: $('#labels'),
  zeroshot: $('#zeroshot'),
};

function onTextReady(msg) {
  search.cache.clear();
  search.waiting.clear();
  search.available = !!msg.config.text;
  search.logitScale = msg.config.text?.logitScale ?? 100;
  const src = state.loadingSource;
  const name = src?.preset ? '' : src?.url ?? src?.file?.name ?? '';
  const reason = fixtureReason(name, msg.config);
  search.notice = reason
    ? `These are random test weights: ${reason}. The page runs the real pipeline, but its similarities, rankings and labels mean nothing. Load CLIP ViT-B/32 for meaningful results.`
    : '';
  for (const el of [sui.notice, sui.modelNotice]) {
    el.textContent = search.notice;
    el.hidden = !search.notice;
  }
  sui.panel.hidden = false;
  sui.tools.hidden = !search.available;
  sui.unavailable.hidden = search.available;
  sui.unavailable.textContent = search.available ? '' : `Search with words is not available: ${textUnavailableReason(msg.textError, src)}.`;
  requestTexts();
}

// Asks the worker for the embeddings of the query and labels not cached yet.
function requestTexts() {
  if (!search.available) return;
  const pending = new Set([...search.waiting.values()].flat());
  const want = [search.query, ...search.labels].filter((t) => t && !search.cache.has(t) && !pending.has(t));
  if (want.length) {
    const id = search.nextId++;
    search.waiting.set(id, want);
    worker.postMessage({ type: 'text', id, texts: want });
  }
  renderSearch();
  publish();
}

function onTextResult(msg) {
  const texts = search.waiting.get(msg.id);
  search.waiting.delete(msg.id);
  if (!texts) return; // from before a model change
  if (msg.error) search.error = msg.error;
  else texts.forEach((t, i) => search.cache.set(t, msg.embeddings[i]));
  renderSearch();
  publish();
}

const onQuery = debounce(() => {
  search.query = sui.query.value.trim();
  requestTexts();
}, 200);
const onLabels = debounce(() => {
  search.labels = parseLabels(sui.labels.value);
  requestTexts();
}, 300);
sui.query.addEventListener('input', onQuery);
sui.labels.addEventListener('input', onLabels);

function miniThumb(it) {
  const img = document.createElement('img');
  img.src = it.thumbURL ?? it.url;
  img.alt = it.name;
  img.className = 'mini-thumb';
  return img;
}

function searchResults() {
  const done = doneItems();
  const q = search.cache.get(search.query);
  if (!q || done.length === 0) return [];
  return rankByText(done.map((it) => it.embedding), q).map((r) => ({ it: done[r.index], score: r.score }));
}

function zeroShotResults() {
  const labels = search.labels.filter((l) => search.cache.has(l));
  if (labels.length < 2 || labels.length !== search.labels.length) return [];
  const embs = labels.map((l) => search.cache.get(l));
  return doneItems().map((it) => {
    const probs = zeroShot(it.embedding, embs, search.logitScale);
    const best = probs.indexOf(Math.max(...probs));
    return { it, label: labels[best], p: probs[best], probs: Object.fromEntries(labels.map((l, i) => [l, probs[i]])) };
  });
}

function renderSearch() {
  if (!search.available) return;
  const ranked = searchResults();
  sui.results.replaceChildren(...ranked.map(({ it, score }, k) => {
    const li = document.createElement('li');
    li.dataset.name = it.name;
    li.dataset.score = String(score);
    li.dataset.rank = String(k + 1);
    const s = document.createElement('span');
    s.className = 'score';
    s.textContent = score.toFixed(3);
    li.append(miniThumb(it), ` ${it.name} `, s);
    return li;
  }));
  const zs = zeroShotResults();
  const rows = zs.map(({ it, label, p, probs }) => {
    const tr = document.createElement('tr');
    tr.dataset.name = it.name;
    tr.dataset.label = label;
    tr.dataset.p = String(p);
    const th = document.createElement('th');
    th.scope = 'row';
    th.append(miniThumb(it), ` ${it.name}`);
    const td = document.createElement('td');
    td.textContent = `${label} · ${(100 * p).toFixed(1)} %`;
    td.title = Object.entries(probs).map(([l, q]) => `${l}: ${(100 * q).toFixed(1)} %`).join('\n');
    tr.append(th, td);
    return tr;
  });
  sui.zeroshot.replaceChildren(...rows);
}

function searchSnapshot() {
  return {
    available: search.available,
    notice: search.notice,
    logitScale: search.logitScale,
    query: search.query,
    queryEmbedding: search.cache.has(search.query) ? Array.from(search.cache.get(search.query)) : null,
    results: search.available ? searchResults().map(({ it, score }) => ({ name: it.name, score })) : [],
    labels: search.labels,
    zeroShot: search.available ? zeroShotResults().map(({ it, label, p, probs }) => ({ name: it.name, label, p, probs })) : [],
    error: search.error,
    requests: search.nextId - 1,
  };
}

listServerModels();
publish();
