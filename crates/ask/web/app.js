// "Ask your documents": the page's script. An ES module with no build step and no dependencies; PDF.js is imported
// on demand from /app/pdfjs/ when the server has it. The HTTP contract is docs/app.md.
//
// Document text, file names and answers are untrusted: they reach the DOM only as text (textContent, text nodes
// made by h() below), never through innerHTML.

const API = '/app/api';
const PDFJS = '/app/pdfjs/';
const KEY_STORE = 'nines-app-key';
const NOTEBOOK_STORE = 'nines-app-notebook';
const CONVERSATION_STORE = 'nines-app-conversation:'; // + the notebook's id
const POLL_MS = 300;
const ZOOMS = [1, 1.5, 2, 3]; // times the width that fits the viewer

const $ = (selector) => document.querySelector(selector);

const state = {
  info: { pdfjs: false, ocr: false, max_upload_bytes: 0, max_documents: 0 },
  notebook: null, // the selected notebook's id
  conversation: null, // the conversation follow-ups continue
  asking: null, // the AbortController of the answer being streamed
  turns: new WeakMap(), // .turn element -> its data (sources by number, text, route…)
  pdfjs: null, // promise of the PDF.js module
  pdfs: new Map(), // document id -> promise of its PDFDocumentProxy
  view: null, // {source, opener} in the viewer
  viewToken: 0, // bumped at every opening, so that a slow render does not land in a newer view
  zoom: 0, // index in ZOOMS
};

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

/** An element with attributes and children; string children become text nodes (never parsed as HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...children.filter((c) => c != null && c !== false && c !== ''));
  return el;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const settled = (status) => status === 'ready' || status === 'failed';
const path = (...parts) => parts.map((p) => encodeURIComponent(p)).join('/');

const formatBytes = (n) =>
  n == null ? '' : n < 1024 ? `${n} B` : n < 1048576 ? `${Math.round(n / 1024)} KB` : `${(n / 1048576).toFixed(1)} MB`;

function tryJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Runs fn; a failure becomes a message "Could not <what>: …". */
const attempt = (what, fn) => fn().catch((e) => showMessage(`Could not ${what}: ${e.message}`, 'error'));

let messageTimer;
function showMessage(text, kind = 'info') {
  const el = $('#message');
  el.textContent = text;
  el.className = kind;
  el.hidden = false;
  clearTimeout(messageTimer);
  if (kind === 'info') messageTimer = setTimeout(() => (el.hidden = true), 6000);
}

// ---------------------------------------------------------------------------------------------------------------
// The API and the key

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function authHeaders() {
  const key = localStorage.getItem(KEY_STORE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

const errorMessage = async (resp) => tryJson(await resp.text())?.error?.message || `HTTP ${resp.status}`;

/** A JSON call (or the raw response with {raw: true}); a 401 asks for the key and tries again. */
async function api(method, url, body, { raw = false, signal } = {}) {
  for (;;) {
    const headers = authHeaders();
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const init = { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) };
    const resp = await fetch(`${API}/${url}`, init);
    if (resp.status === 401) {
      await askKey(await errorMessage(resp));
      continue;
    }
    if (!resp.ok) throw new ApiError(resp.status, await errorMessage(resp));
    if (raw) return resp;
    return resp.status === 204 ? null : resp.json();
  }
}

let keyPrompt = null; // one prompt, shared by every call that got a 401 meanwhile
function askKey(why) {
  keyPrompt ??= new Promise((resolve, reject) => {
    const dialog = $('#key-dialog');
    $('#key-why').textContent =
      why && localStorage.getItem(KEY_STORE)
        ? `The gateway refused this key (${why}). Enter another one.`
        : 'This gateway needs your nines key. It is kept in this browser only.';
    $('#key-input').value = '';
    dialog.returnValue = '';
    dialog.onclose = () => {
      keyPrompt = null;
      const key = $('#key-input').value.trim();
      if (dialog.returnValue === 'ok' && key) {
        localStorage.setItem(KEY_STORE, key);
        resolve();
      } else reject(new ApiError(401, 'a key is needed ("Change key" at the top)'));
    };
    dialog.showModal();
  });
  return keyPrompt;
}

// ---------------------------------------------------------------------------------------------------------------
// Notebooks

async function loadNotebooks(selectId) {
  let { notebooks } = await api('GET', 'notebooks');
  if (!notebooks.length) notebooks = [await api('POST', 'notebooks', { name: 'My documents' })];
  const wanted = selectId || localStorage.getItem(NOTEBOOK_STORE);
  const chosen = notebooks.find((n) => n.id === wanted) || notebooks[0];
  $('#notebook').replaceChildren(...notebooks.map((n) => h('option', { value: n.id }, n.name)));
  $('#notebook').value = chosen.id;
  await selectNotebook(chosen.id);
}

async function selectNotebook(id) {
  delete document.body.dataset.ready; // set again once the notebook is on screen (tests wait for it)
  document.body.dataset.notebook = state.notebook = id;
  localStorage.setItem(NOTEBOOK_STORE, id);
  state.asking?.abort();
  state.conversation = null;
  closeViewer();
  $('#docs').replaceChildren(); // their pollers stop when their rows are gone
  $('#turns').replaceChildren();
  try {
    const { documents } = await api('GET', path('notebooks', id, 'documents'));
    if (state.notebook !== id) return;
    for (const doc of documents) {
      const li = addDocRow(doc);
      if (!settled(doc.status)) pollDocument(li, doc.id);
    }
    await restoreConversation(id);
  } catch (e) {
    showMessage(`Could not open the notebook: ${e.message}`, 'error');
  }
  if (state.notebook === id) document.body.dataset.ready = '1';
  updateEmptyHint();
}

function openNotebookDialog() {
  $('#notebook-name').value = '';
  $('#notebook-dialog').returnValue = '';
  $('#notebook-dialog').showModal();
}

function createNotebook() {
  const name = $('#notebook-name').value.trim();
  if ($('#notebook-dialog').returnValue !== 'ok' || !name) return;
  attempt('create the notebook', async () => loadNotebooks((await api('POST', 'notebooks', { name })).id));
}

function deleteNotebook() {
  const name = $('#notebook').selectedOptions[0]?.textContent;
  if (!state.notebook || !confirm(`Delete the notebook “${name}”, its documents and its conversations?`)) return;
  attempt('delete the notebook', async () => {
    await api('DELETE', path('notebooks', state.notebook));
    localStorage.removeItem(CONVERSATION_STORE + state.notebook);
    localStorage.removeItem(NOTEBOOK_STORE);
    await loadNotebooks();
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Documents: the upload (XMLHttpRequest, for its upload progress), then polling the indexing until ready or failed

const STATUS_TEXT = { uploading: 'Uploading', extracting: 'Reading the text', indexing: 'Indexing', ready: 'Ready', failed: 'Failed' };

function addDocRow(doc) {
  const del = h('button', { type: 'button', class: 'quiet danger doc-delete' }, 'Delete');
  const li = h(
    'li',
    { class: 'doc' },
    h('div', { class: 'doc-line' }, h('span', { class: 'doc-name' }), del),
    h('span', { class: 'doc-meta' }),
    h('progress', { max: '1', value: '0' }),
    h('p', { class: 'doc-notice', hidden: true }),
    h('p', { class: 'doc-error', role: 'alert', hidden: true }),
  );
  del.addEventListener('click', () => deleteDocument(li));
  $('#docs').append(li);
  setDocRow(li, doc);
  return li;
}

/** Fills a row from a Document (or the upload's stand-in: status "uploading" and the fraction sent). */
function setDocRow(li, doc) {
  if (doc.id) li.dataset.id = doc.id;
  li.dataset.status = doc.status;
  li.querySelector('.doc-name').textContent = doc.name;
  const del = li.querySelector('.doc-delete'); // a failed upload (no id) can only be dismissed
  del.textContent = doc.id ? 'Delete' : 'Dismiss';
  del.setAttribute('aria-label', `${del.textContent} ${doc.name}`);
  del.hidden = !doc.id && doc.status !== 'failed';

  let meta = STATUS_TEXT[doc.status] || doc.status;
  let fraction = 0.5; // the upload is the first half of the bar, the indexing the second
  if (doc.status === 'uploading') {
    fraction = 0.5 * doc.upload;
    meta += ` ${Math.round(100 * doc.upload)}%`;
  } else if (doc.status === 'indexing' && doc.pages) {
    fraction = 0.5 + (0.5 * doc.pages_done) / doc.pages;
    meta += ` page ${doc.pages_done} of ${doc.pages}`;
  } else if (doc.status === 'ready') {
    const pages = doc.pages && `${doc.pages} page${doc.pages === 1 ? '' : 's'}`;
    meta = [pages, doc.chunks && `${doc.chunks} passages`, formatBytes(doc.bytes)].filter(Boolean).join(' · ');
  }
  li.querySelector('.doc-meta').textContent = meta;
  const bar = li.querySelector('progress');
  if (settled(doc.status)) bar?.remove();
  else if (bar) {
    bar.value = fraction;
    bar.setAttribute('aria-label', `${doc.name}: ${meta}`);
  }
  for (const [cls, text] of [['.doc-notice', doc.notice], ['.doc-error', doc.error]]) {
    const p = li.querySelector(cls);
    p.textContent = text || '';
    p.hidden = !text;
  }
}

async function uploadFiles(files) {
  const notebook = state.notebook;
  // One upload at a time; the indexing of the ones before goes on meanwhile.
  for (const file of files) if (notebook && state.notebook === notebook) await uploadFile(notebook, file);
}

async function uploadFile(notebook, file) {
  const row = { name: file.name, bytes: file.size, status: 'uploading', upload: 0 };
  const li = addDocRow(row);
  const fail = (error) => setDocRow(li, { ...row, status: 'failed', error });
  const max = state.info.max_upload_bytes;
  if (max && file.size > max) return fail(`Too large: ${formatBytes(file.size)}; the limit is ${formatBytes(max)}.`);
  if ((await file.slice(0, 5).text()) !== '%PDF-') return fail('This is not a PDF file.');
  for (;;) {
    let resp;
    try {
      resp = await sendPdf(notebook, file, (upload) => setDocRow(li, { ...row, upload }));
      if (resp.status === 401) {
        await askKey(resp.body?.error?.message || 'unauthorized');
        continue;
      }
    } catch (e) {
      return fail(e.status ? e.message : `The upload failed: ${e.message}`);
    }
    const doc = resp.body?.document;
    if (resp.status < 200 || resp.status > 299 || !doc) {
      return fail(resp.body?.error?.message || `The server answered ${resp.status}.`);
    }
    setDocRow(li, doc);
    return pollDocument(li, doc.id);
  }
}

/** POSTs the raw PDF; resolves to {status, body} whatever the status. */
function sendPdf(notebook, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${API}/${path('notebooks', notebook, 'documents')}`);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader('Content-Type', 'application/pdf');
    xhr.setRequestHeader('X-Filename', encodeURIComponent(file.name));
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => resolve({ status: xhr.status, body: tryJson(xhr.responseText) });
    xhr.onerror = () => reject(new Error('network error'));
    xhr.send(file);
  });
}

async function pollDocument(li, id) {
  for (let errors = 0; li.isConnected; ) {
    await sleep(POLL_MS);
    if (!li.isConnected) return;
    let doc;
    try {
      doc = await api('GET', path('documents', id));
      errors = 0;
    } catch (e) {
      if (e.status === 404) return li.remove();
      const name = li.querySelector('.doc-name').textContent;
      if (e.status === 401 || ++errors >= 10) return setDocRow(li, { id, name, status: 'failed', error: e.message });
      continue;
    }
    setDocRow(li, doc);
    if (settled(doc.status)) return;
  }
}

function deleteDocument(li) {
  if (!li.dataset.id) return li.remove();
  if (!confirm(`Delete “${li.querySelector('.doc-name').textContent}”?`)) return;
  attempt('delete the document', async () => {
    await api('DELETE', path('documents', li.dataset.id));
    state.pdfs.delete(li.dataset.id);
    li.remove();
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Asking: POST …/ask answers with server-sent events, read from the fetch response's body (EventSource cannot POST)

/** Yields {event, data} for every event of a text/event-stream body. */
async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = 'message';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    for (let nl; (nl = buffer.indexOf('\n')) >= 0; ) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      if (line === '') {
        if (data.length) yield { event, data: data.join('\n') };
        event = 'message';
        data = [];
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const v = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = v;
        else if (field === 'data') data.push(v);
      }
    }
  }
  if (data.length) yield { event, data: data.join('\n') };
}

function setAsking(controller) {
  state.asking = controller;
  document.body.dataset.state = controller ? 'asking' : 'idle';
  $('#ask').textContent = controller ? 'Stop' : 'Ask';
  $('#ask').classList.toggle('stop', !!controller);
}

async function ask(question) {
  const notebook = state.notebook;
  const turn = addTurn(question);
  const controller = new AbortController();
  setAsking(controller);
  turn.answerEl.setAttribute('aria-busy', 'true');
  try {
    const body = { question, conversation: state.conversation };
    const resp = await api('POST', path('notebooks', notebook, 'ask'), body, { raw: true, signal: controller.signal });
    for await (const { event, data } of readEvents(resp.body)) {
      const msg = tryJson(data);
      if (msg) onAnswerEvent(turn, event, msg, notebook);
      if (event === 'error') break;
    }
    if (!turn.done && !turn.error) setTurnError(turn, 'The answer was cut off.');
  } catch (e) {
    setTurnError(turn, controller.signal.aborted ? 'Stopped.' : `Could not answer: ${e.message}`);
  } finally {
    turn.answerEl.removeAttribute('aria-busy');
    controller.abort(); // lets the connection go if the stream ended early
    if (state.asking === controller) setAsking(null);
  }
}

function onAnswerEvent(turn, event, msg, notebook) {
  if (event === 'sources') {
    if (msg.conversation && state.notebook === notebook) {
      state.conversation = msg.conversation;
      localStorage.setItem(CONVERSATION_STORE + notebook, msg.conversation);
    }
    turn.sources = new Map((msg.sources || []).map((s) => [s.n, s]));
  } else if (event === 'delta') {
    turn.text += msg.text || '';
    renderAnswer(turn);
  } else if (event === 'route') {
    turn.route = msg;
    renderRoute(turn);
  } else if (event === 'resumed') {
    turn.resumed.push(msg);
    renderRoute(turn);
  } else if (event === 'done') {
    turn.done = true;
    if (typeof msg.answer === 'string') turn.text = msg.answer;
    turn.cited = msg.cited;
    turn.el.classList.toggle('unsupported', !!msg.unsupported);
    renderAnswer(turn);
    renderSources(turn);
  } else if (event === 'error') {
    setTurnError(turn, msg.message || 'The answer failed.');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The conversation on screen

function addTurn(question) {
  const el = h(
    'li',
    { class: 'turn' },
    h('p', { class: 'question' }, question),
    h('div', { class: 'answer', 'aria-live': 'polite' }),
    h('p', { class: 'turn-error', role: 'alert', hidden: true }),
    h('ol', { class: 'sources', 'aria-label': 'Sources', hidden: true }),
    h('p', { class: 'route', hidden: true }),
  );
  const turn = { el, answerEl: el.querySelector('.answer'), text: '', sources: new Map(), route: null, resumed: [] };
  state.turns.set(el, turn);
  $('#turns').append(el);
  updateEmptyHint();
  el.scrollIntoView({ block: 'nearest' });
  return turn;
}

function setTurnError(turn, message) {
  turn.error = message;
  turn.el.classList.add('failed');
  const p = turn.el.querySelector('.turn-error');
  p.textContent = message;
  p.hidden = false;
}

/** The answer's text, with every [n] that names one of its sources made a link to it. */
function renderAnswer(turn) {
  const parts = [];
  const re = /\[(\d+)\]/g;
  let last = 0;
  for (let m; (m = re.exec(turn.text)); last = re.lastIndex) {
    const source = turn.sources.get(Number(m[1]));
    parts.push(turn.text.slice(last, m.index), source ? citeLink(source, 'cite', String(source.n)) : m[0]);
  }
  parts.push(turn.text.slice(last));
  turn.answerEl.replaceChildren(...parts.filter((p) => p !== ''));
}

function citeLink(source, cls, text) {
  const label = `Source ${source.n}: ${source.name}, page ${source.page}`;
  const attrs = { class: cls, href: '#viewer', title: label, 'aria-label': label, 'data-n': source.n };
  return h('a', { ...attrs, 'data-page': source.page, 'data-document': source.document }, text);
}

/** The sources the answer cites, under it (name and page). */
function renderSources(turn) {
  const cited = turn.cited?.length ? turn.cited : [...turn.text.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1]));
  const list = [...new Set(cited)].map((n) => turn.sources.get(n)).filter(Boolean);
  const ol = turn.el.querySelector('.sources');
  const item = (s) => h('li', {}, citeLink(s, 'source-link', `[${s.n}] ${s.name}`), h('span', { class: 'page' }, ` page ${s.page}`));
  ol.replaceChildren(...list.map(item));
  ol.hidden = !list.length;
}

/** "answered by provider/model", and badges for a failover, a resumed stream and a local model. */
function renderRoute(turn) {
  const p = turn.el.querySelector('.route');
  const r = turn.route;
  const badge = (cls, text, title) => h('span', { class: `badge ${cls}`, title }, text);
  const parts = [];
  if (r?.target) parts.push('answered by ', h('code', {}, r.target));
  if (r && (r.failed_over || r.attempts > 1)) parts.push(badge('failover', 'failed over', `${r.attempts} attempts`));
  if (turn.resumed.length) {
    const how = turn.resumed.map((x) => `${x.from} → ${x.to}`).join(', ');
    parts.push(badge('resumed', 'stream resumed', `the stream was cut and resumed: ${how}`));
  }
  if (r?.local) parts.push(badge('local', 'local model', 'answered by a model on this machine'));
  p.replaceChildren(...parts);
  p.hidden = !parts.length;
}

/** The notebook's last conversation, shown again after a reload. */
async function restoreConversation(notebook) {
  const id = localStorage.getItem(CONVERSATION_STORE + notebook);
  if (!id) return;
  let conv;
  try {
    conv = await api('GET', path('conversations', id));
  } catch (e) {
    if (e.status === 404) localStorage.removeItem(CONVERSATION_STORE + notebook);
    return;
  }
  if (state.notebook !== notebook) return;
  state.conversation = conv.id;
  for (const t of conv.turns || []) {
    const turn = addTurn(t.question);
    Object.assign(turn, { text: t.answer || '', route: t.route || null, done: true });
    turn.sources = new Map((t.sources || []).map((s) => [s.n, s]));
    renderAnswer(turn);
    renderSources(turn);
    renderRoute(turn);
  }
}

function newConversation() {
  state.asking?.abort();
  state.conversation = null;
  if (state.notebook) localStorage.removeItem(CONVERSATION_STORE + state.notebook);
  $('#turns').replaceChildren();
  closeViewer();
  updateEmptyHint();
  $('#question').focus();
}

function updateEmptyHint() {
  $('#chat-empty').hidden = $('#turns').children.length > 0;
}

// ---------------------------------------------------------------------------------------------------------------
// The viewer: the cited page drawn by PDF.js with the quote highlighted in its text layer, or the passage as text

function loadPdfjs() {
  state.pdfjs ??= import(`${PDFJS}build/pdf.min.mjs`).then((lib) => {
    lib.GlobalWorkerOptions.workerSrc = `${PDFJS}build/pdf.worker.min.mjs`;
    return lib;
  });
  return state.pdfjs;
}

/** The document's PDF, fetched once (with the key) and kept open. */
function pdfDocument(lib, id) {
  if (!state.pdfs.has(id)) {
    const dir = (name) => new URL(`${PDFJS}${name}/`, location.href).href;
    const pdf = api('GET', path('documents', id, 'pdf'), undefined, { raw: true })
      .then((resp) => resp.arrayBuffer())
      .then((bytes) => {
        const options = { cMapUrl: dir('cmaps'), cMapPacked: true, standardFontDataUrl: dir('standard_fonts'), wasmUrl: dir('wasm') };
        return lib.getDocument({ data: new Uint8Array(bytes), ...options, isEvalSupported: false }).promise;
      });
    pdf.catch(() => state.pdfs.delete(id));
    state.pdfs.set(id, pdf);
  }
  return state.pdfs.get(id);
}

async function openSource(source, opener, { focus = true } = {}) {
  const viewer = $('#viewer');
  const token = ++state.viewToken;
  state.view = { source, opener };
  viewer.hidden = false;
  document.body.classList.add('viewing');
  delete viewer.dataset.page; // set once the page is on screen (tests wait for it)
  viewer.dataset.state = 'loading';
  viewer.dataset.n = source.n;
  $('#viewer-title').textContent = source.name;
  $('#viewer-where').textContent = `Page ${source.page} · source [${source.n}]`;
  $('#viewer-zoom').hidden = !state.info.pdfjs;
  const body = $('#viewer-body');
  if (focus) {
    body.replaceChildren(h('p', { class: 'hint' }, 'Loading the page…'));
    $('#viewer-title').focus();
  }
  let why = 'The PDF viewer is not installed on this server, so here is the passage as text.';
  if (state.info.pdfjs) {
    try {
      await renderPdfPage(source, body, token);
      why = null;
    } catch (e) {
      console.warn('PDF.js could not show the page:', e);
      why = `The page could not be drawn (${e.message}), so here is the passage as text.`;
    }
  }
  if (token !== state.viewToken) return;
  if (why) body.replaceChildren(fallback(source, why));
  viewer.dataset.page = source.page;
  viewer.dataset.state = 'ready';
}

async function renderPdfPage(source, body, token) {
  const lib = await loadPdfjs();
  const pdf = await pdfDocument(lib, source.document);
  const page = await pdf.getPage(Math.min(Math.max(1, source.page), pdf.numPages));
  if (token !== state.viewToken) return;

  // The page at the panel's width (times the zoom), one canvas pixel per device pixel.
  const style = getComputedStyle(body);
  const room = body.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 2;
  const scale = (Math.max(240, room) / page.getViewport({ scale: 1 }).width) * ZOOMS[state.zoom];
  const viewport = page.getViewport({ scale });
  const ratio = window.devicePixelRatio || 1;
  const canvas = h('canvas', { 'aria-hidden': 'true' });
  canvas.width = Math.floor(viewport.width * ratio);
  canvas.height = Math.floor(viewport.height * ratio);
  const textLayerDiv = h('div', { class: 'textLayer' });
  const container = h('div', { class: 'pdf-page' }, canvas, textLayerDiv);
  // CSSOM properties, not style attributes: the page's CSP allows them.
  for (const el of [canvas, container]) Object.assign(el.style, { width: `${viewport.width}px`, height: `${viewport.height}px` });
  container.style.setProperty('--total-scale-factor', String(scale)); // PDF.js 6 sizes its text layer from this

  await page.render({ canvas, viewport, transform: ratio === 1 ? null : [ratio, 0, 0, ratio, 0, 0] }).promise;
  if (token !== state.viewToken) return;
  body.replaceChildren(container);
  const textLayer = new lib.TextLayer({ textContentSource: page.streamTextContent(), container: textLayerDiv, viewport });
  await textLayer.render();
  if (token !== state.viewToken) return;

  const quote = source.quote || source.text || '';
  const marks = highlight(textLayer.textDivs, textLayer.textContentItemsStr, quote);
  if (quote) {
    const lead = marks.length ? 'Highlighted: ' : 'The passage (not found in the page’s text): ';
    body.append(h('p', { class: 'viewer-caption' }, lead, h('q', {}, quote)));
  }
  if (marks.length) {
    const box = body.getBoundingClientRect();
    const left = Math.min(...marks.map((m) => m.getBoundingClientRect().left));
    body.scrollTop += marks[0].getBoundingClientRect().top - box.top - body.clientHeight / 3;
    body.scrollLeft += left - box.left - 24;
  }
}

/** Letters and digits only, case-folded: spacing, punctuation and ligatures differ between text extractors. */
const fold = (ch) => ch.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]/gu, '');
const isPunct = (ch) => /[^\s\p{L}\p{N}]/u.test(ch);

/**
 * Wraps the quote in <span class="highlight appended"> pieces inside the text layer's divs and returns them. The
 * quote may span several divs: it is found in their concatenated text (compared as fold() leaves it), then every
 * div it touches gets its piece (begin / middle / end, as PDF.js's own find highlighter does). When the whole quote
 * is not there, its longest beginning of at least 24 characters that is.
 */
function highlight(divs, strs, quote) {
  const where = []; // where[i] = [div, offset] of the i-th character of the folded page text
  let text = '';
  strs.forEach((s, d) => {
    for (let o = 0; o < s.length; o++) {
      const f = fold(s[o]);
      for (let k = 0; k < f.length; k++) where.push([d, o]);
      text += f;
    }
  });
  const needle = quote.split('').map(fold).join('');
  if (!needle) return [];
  let at = text.indexOf(needle);
  let len = needle.length;
  if (at < 0) {
    let lo = 0; // binary search: the longest prefix found
    for (let hi = needle.length; lo < hi; ) {
      const mid = (lo + hi + 1) >> 1;
      if (text.includes(needle.slice(0, mid))) lo = mid;
      else hi = mid - 1;
    }
    if (lo < Math.min(24, needle.length)) return [];
    [at, len] = [text.indexOf(needle.slice(0, lo)), lo];
  }
  let [d0, o0] = where[at];
  let [d1, o1] = where[at + len - 1];
  o1++; // exclusive
  while (o0 > 0 && isPunct(strs[d0][o0 - 1])) o0--; // an opening quotation mark
  while (o1 < strs[d1].length && isPunct(strs[d1][o1])) o1++; // the closing full stop

  const marks = [];
  for (let d = d0; d <= d1; d++) {
    const s = strs[d];
    const [from, to] = [d === d0 ? o0 : 0, d === d1 ? o1 : s.length];
    if (from >= to || divs[d].nodeType !== Node.ELEMENT_NODE) continue;
    const piece = d0 === d1 ? '' : d === d0 ? ' begin' : d === d1 ? ' end' : ' middle';
    const mark = h('span', { class: `highlight${piece} appended` }, s.slice(from, to));
    divs[d].replaceChildren(...[s.slice(0, from), mark, s.slice(to)].filter((x) => x !== ''));
    marks.push(mark);
  }
  return marks;
}

/** The passage as text with the quote marked, for when the page cannot be drawn. */
function fallback(source, why) {
  const text = source.text || source.quote || '';
  const span = findLoose(text, source.quote || '');
  const passage = span
    ? h('blockquote', {}, text.slice(0, span[0]), h('mark', {}, text.slice(span[0], span[1])), text.slice(span[1]))
    : h('blockquote', {}, text);
  const quoted = !span && source.quote && source.quote !== text && h('p', {}, 'Quoted: ', h('mark', {}, source.quote));
  const where = h('p', { class: 'fallback-where' }, `${source.name}, page ${source.page}`);
  return h('div', { class: 'fallback' }, h('p', { class: 'hint' }, why), where, passage, quoted);
}

/** [start, end) of needle in text, ignoring case and differences in whitespace; null when it is not there. */
function findLoose(text, needle) {
  const words = needle.trim().split(/\s+/).filter(Boolean);
  if (!words.length) return null;
  const re = new RegExp(words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('\\s+'), 'iu');
  const m = re.exec(text);
  return m ? [m.index, m.index + m[0].length] : null;
}

function zoom(step) {
  const next = Math.min(ZOOMS.length - 1, Math.max(0, state.zoom + step));
  if (next === state.zoom || !state.view) return;
  state.zoom = next;
  $('#zoom-level').textContent = `${Math.round(ZOOMS[next] * 100)}%`;
  openSource(state.view.source, state.view.opener, { focus: false });
}

function closeViewer() {
  const viewer = $('#viewer');
  if (viewer.hidden) return;
  state.viewToken++;
  viewer.hidden = true;
  document.body.classList.remove('viewing');
  const opener = state.view?.opener;
  state.view = null;
  if (opener?.isConnected) opener.focus();
}

// ---------------------------------------------------------------------------------------------------------------
// Wiring, and the start

function wire() {
  $('#notebook').addEventListener('change', (e) => selectNotebook(e.target.value));
  $('#new-notebook').addEventListener('click', openNotebookDialog);
  $('#notebook-dialog').addEventListener('close', createNotebook);
  $('#delete-notebook').addEventListener('click', deleteNotebook);
  $('#key-button').addEventListener('click', () => askKey(null).then(() => loadNotebooks(state.notebook), () => {}));

  // Files: chosen with the input (the drop zone is its label) or dropped on the zone.
  const drop = $('#drop');
  $('#file-input').addEventListener('change', (e) => {
    uploadFiles([...e.target.files]);
    e.target.value = '';
  });
  const over = (on) => (e) => {
    e.preventDefault();
    drop.classList.toggle('over', on);
  };
  drop.addEventListener('dragenter', over(true));
  drop.addEventListener('dragover', over(true));
  drop.addEventListener('dragleave', (e) => !drop.contains(e.relatedTarget) && drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    over(false)(e);
    uploadFiles([...(e.dataTransfer?.files || [])]);
  });
  // A file dropped beside the zone must not replace the page with the PDF.
  for (const type of ['dragover', 'drop']) window.addEventListener(type, (e) => e.preventDefault());

  // Questions: Enter sends, Shift+Enter is a new line; while an answer streams the button stops it.
  $('#ask-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (state.asking) return state.asking.abort();
    const question = $('#question').value.trim();
    if (!question || !state.notebook) return;
    $('#question').value = '';
    ask(question);
  });
  $('#question').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('#ask-form').requestSubmit();
    }
  });
  $('#new-conversation').addEventListener('click', newConversation);

  // Citations and sources open the viewer.
  $('#turns').addEventListener('click', (e) => {
    const link = e.target.closest('a.cite, a.source-link');
    if (!link) return;
    e.preventDefault();
    const source = state.turns.get(link.closest('.turn'))?.sources.get(Number(link.dataset.n));
    if (source) openSource(source, link);
  });
  $('#viewer-close').addEventListener('click', closeViewer);
  $('#zoom-in').addEventListener('click', () => zoom(1));
  $('#zoom-out').addEventListener('click', () => zoom(-1));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('#viewer').hidden && !document.querySelector('dialog[open]')) closeViewer();
  });
}

function boot() {
  wire();
  attempt('start', async () => {
    state.info = { ...state.info, ...(await api('GET', 'info')) };
    if (state.info.pdfjs) document.head.append(h('link', { rel: 'stylesheet', href: `${PDFJS}web/pdf_viewer.css` }));
    const { max_upload_bytes: bytes, max_documents: docs } = state.info;
    const limits = [bytes && `up to ${formatBytes(bytes)} each`, docs && `${docs} per notebook`].filter(Boolean);
    $('#limits').textContent = limits.length ? `PDF files, ${limits.join(', ')}.` : '';
    $('#limits').hidden = !limits.length;
    await loadNotebooks();
  });
}

boot();
