// Quiver dashboard: a single page over the public REST API (docs/server.md). Plain
// JavaScript, no build step, nothing loaded from elsewhere. Every value from the server is put
// on the page as text (textContent), never as HTML.
'use strict';

/** The built-in text model, as Qdrant's clients name it in a `Document`. */
const MODEL = 'sentence-transformers/all-MiniLM-L6-v2';
/** Session storage: the key lives as long as the tab. */
const KEY_STORE = 'quiver.apiKey';
const SVG_NS = 'http://www.w3.org/2000/svg';

const session = { key: null, access: null, keysRequired: false };
/** Filters typed per collection and page, kept while the tab lives. */
const typed = new Map();

// ---------------------------------------------------------------------------------------------
// DOM helpers

/** An element with attributes (`on*` are listeners; false/null/undefined are left out) and
 * children (strings become text; arrays are flattened; null is skipped). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

function fmtBytes(n) {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

const fmtInt = (n) => Number(n).toLocaleString('en-US');

function fmtValue(v, max = 80) {
  let t;
  if (v === null || v === undefined) t = '';
  else if (typeof v === 'string') t = v;
  else if (Array.isArray(v) && v.every((x) => typeof x !== 'object')) t = v.join(', ');
  else t = JSON.stringify(v);
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** A point id as the API wants it: an unsigned integer or a UUID; `null` if neither. */
function parseId(text) {
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    return Number.isSafeInteger(n) ? n : null;
  }
  return /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(t) ? t : null;
}

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the REST API with the session's key; returns `result` of Qdrant's envelope or
 * throws an `ApiError` with the server's message. */
async function api(method, path, body) {
  const headers = {};
  if (session.key) headers['api-key'] = session.key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, `Cannot reach the server (${e.message}). Is quiver serve still running?`);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const message = (data && data.status && data.status.error) || text || res.statusText;
    throw new ApiError(res.status, `${message} (HTTP ${res.status})`);
  }
  return data === null ? null : data.result;
}

// ---------------------------------------------------------------------------------------------
// Page frame

function errorBox(e, id) {
  const msg = e instanceof Error ? e.message : String(e);
  return h('div', { class: 'error', role: 'alert', id }, msg);
}

const loading = () => h('p', { class: 'note', role: 'status' }, 'Loading…');

/** Replaces the page: a heading (focused, so keyboard and screen reader users land on the new
 * page) and its content. */
function render(title, ...content) {
  document.title = `${title} · Quiver`;
  const heading = h('h1', { tabindex: '-1', id: 'page-title' }, title);
  $('main').replaceChildren(heading, ...content.flat());
  heading.focus({ preventScroll: true });
}

function setNav(page, collection) {
  $('nav').hidden = false;
  for (const [id, what] of [['nav-points', 'points'], ['nav-search', 'search']]) {
    const a = $(id);
    a.hidden = !collection;
    if (collection) a.href = `#/${what}/${enc(collection)}`;
    a.textContent = collection ? `${what === 'points' ? 'Points' : 'Search'} · ${collection}` : '';
  }
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------------------------------------
// Sign in

async function signIn(key) {
  session.key = key || null;
  const access = await api('GET', '/quiver/access');
  session.access = access.access;
  session.keysRequired = access.keys_required;
  if (key) sessionStorage.setItem(KEY_STORE, key);
  const badge = $('access');
  badge.textContent = session.access === 'read-only' ? 'read-only key' : (session.keysRequired ? 'read-write key' : 'no key needed');
  badge.classList.toggle('ro', session.access === 'read-only');
  $('session').hidden = false;
}

function signOut() {
  sessionStorage.removeItem(KEY_STORE);
  Object.assign(session, { key: null, access: null, keysRequired: false });
  $('session').hidden = true;
  $('nav').hidden = true;
  pageLogin();
}

function pageLogin(error) {
  const input = h('input', { type: 'password', id: 'key', name: 'key', autocomplete: 'off', 'aria-describedby': 'key-help' });
  const form = h('form', { class: 'card', id: 'login' },
    h('label', { for: 'key' }, 'API key'),
    input,
    h('p', { class: 'help', id: 'key-help' },
      'The read-write or read-only key quiver serve was started with (--api-key, --read-only-api-key). ',
      'Leave it empty if the server has none. It is kept in this tab only (session storage).'),
    error ? errorBox(error, 'login-error') : null,
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'connect' }, 'Connect')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await signIn(input.value.trim());
      if (!location.hash || location.hash === '#/' || location.hash === '#/login') location.hash = '#/collections';
      else route();
    } catch (e) {
      session.key = null;
      pageLogin(e.status === 401 ? new Error(`The server did not accept this key: ${e.message}`) : e);
    }
  });
  render('Connect to Quiver', form);
  input.focus();
}

// ---------------------------------------------------------------------------------------------
// Collections

function vectorSummary(d) {
  const dense = Object.entries(d.vectors).map(([name, v]) =>
    `${name ? `${name}: ` : ''}${v.size}-d ${v.distance}, ${v.index}${v.index === 'hnsw' ? ` (${v.quantization})` : ''}${v.embedded_from ? `, text of “${v.embedded_from}”` : ''}`);
  const sparse = Object.entries(d.sparse_vectors).map(([name, m]) => `${name}: sparse${m === 'idf' ? ' (idf)' : ''}`);
  return [...dense, ...sparse].join('; ');
}

function maintenanceText(m) {
  if (m.failed) return `stopped: ${m.failed}`;
  const parts = [m.working ? 'sealing or merging now' : 'idle'];
  if (m.frozen) parts.push(`${m.frozen} segment${m.frozen === 1 ? '' : 's'} waiting to be sealed`);
  return parts.join(', ');
}

async function pageCollections() {
  setNav('collections');
  render('Collections', loading());
  let names;
  try {
    names = (await api('GET', '/collections')).collections.map((c) => c.name).sort();
  } catch (e) {
    render('Collections', errorBox(e));
    return;
  }
  if (!names.length) {
    render('Collections', h('p', { class: 'empty', id: 'empty' },
      'No collections yet. Create one with `quiver import` or PUT /collections/{name} (docs/server.md).'));
    return;
  }
  const details = await Promise.all(names.map((n) =>
    api('GET', `/quiver/collections/${enc(n)}`).catch((e) => ({ name: n, error: e }))));
  const rows = details.map((d) => d.error
    ? h('tr', {}, h('th', { scope: 'row' }, d.name), h('td', { colspan: 6, class: 'cell' }, errorBox(d.error)))
    : h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: `#/collections/${enc(d.name)}` }, d.name)),
      h('td', { class: 'num' }, fmtInt(d.points)),
      h('td', { class: 'cell' }, vectorSummary(d)),
      h('td', { class: 'num' }, d.segments.length),
      h('td', { class: 'num' }, fmtBytes(d.disk_bytes)),
      h('td', { class: 'num' }, fmtBytes(d.memory_bytes)),
      h('td', {}, maintenanceText(d.maintenance))));
  render('Collections',
    h('div', { class: 'scroll-x card' }, h('table', { id: 'collections' },
      h('caption', { class: 'help' }, `${names.length} collection${names.length === 1 ? '' : 's'}. Open one for its segments, indexes and maintenance.`),
      h('thead', {}, h('tr', {}, ['Name', 'Points', 'Vectors', 'Segments', 'Disk', 'Memory', 'Maintenance'].map((t, i) =>
        h('th', { scope: 'col', class: i && i !== 2 && i !== 6 ? 'num' : null }, t)))),
      h('tbody', {}, rows))));
}

/** Segment sizes as horizontal bars: live rows dark, deleted rows light. */
function segmentPlot(segments) {
  const rowH = 22, left = 128, width = 480;
  const most = Math.max(1, ...segments.map((x) => x.rows));
  const scale = (n) => ((width - left - 70) * n) / most;
  const svg = s('svg', {
    class: 'plot', id: 'segment-plot', viewBox: `0 0 ${width} ${segments.length * rowH + 8}`, role: 'img',
    'aria-label': `Rows per segment: ${segments.map((x) => `segment ${x.id} ${x.rows - x.deleted} live, ${x.deleted} deleted`).join('; ')}`,
  });
  segments.forEach((x, i) => {
    const y = i * rowH + 4, live = x.rows - x.deleted;
    svg.append(
      s('text', { x: 0, y: y + 14 }, `segment ${x.id} (${x.sealed ? 'sealed' : 'mutable'})`),
      s('rect', { class: 'bar', x: left, y, width: scale(live), height: rowH - 6 }, s('title', {}, `${live} live rows`)),
      s('rect', { class: 'bar2', x: left + scale(live), y, width: scale(x.deleted), height: rowH - 6 }, s('title', {}, `${x.deleted} deleted rows`)),
      s('text', { x: left + scale(x.rows) + 6, y: y + 14 }, fmtInt(x.rows)));
  });
  return h('figure', {}, svg, h('figcaption', { class: 'legend' },
    h('span', { class: 'swatch' }), 'live rows', h('span', { class: 'swatch light' }), 'deleted rows'));
}

function table(id, head, rows, numeric = []) {
  return h('div', { class: 'scroll-x' }, h('table', { id },
    h('thead', {}, h('tr', {}, head.map((t, i) => h('th', { scope: 'col', class: numeric.includes(i) ? 'num' : null }, t)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => h('td', { class: numeric.includes(i) ? 'num' : 'cell' }, c)))))));
}

async function pageCollection(name) {
  setNav('collections', name);
  render(name, loading());
  let d, info;
  try {
    [d, info] = await Promise.all([
      api('GET', `/quiver/collections/${enc(name)}`),
      api('GET', `/collections/${enc(name)}`),
    ]);
  } catch (e) {
    render(name, errorBox(e));
    return;
  }
  const m = d.maintenance;
  const indexes = Object.entries(d.payload_indexes);
  const sparse = Object.entries(d.sparse_vectors);
  render(`Collection ${name}`,
    h('div', { class: 'actions' },
      h('a', { href: `#/points/${enc(name)}` }, 'Browse points'),
      h('a', { href: `#/search/${enc(name)}` }, 'Search')),
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'h-size' }, h('h2', { id: 'h-size' }, 'Size'),
        h('dl', { class: 'facts', id: 'facts' },
          h('dt', {}, 'Points'), h('dd', { id: 'points-count' }, fmtInt(d.points)),
          h('dt', {}, 'Segments'), h('dd', {}, `${d.segments.length} (${d.segments.filter((x) => x.sealed).length} sealed)`),
          h('dt', {}, 'Disk'), h('dd', {}, fmtBytes(d.disk_bytes)),
          h('dt', {}, 'Log'), h('dd', {}, fmtBytes(d.wal_bytes)),
          h('dt', {}, 'Memory'), h('dd', {}, `${fmtBytes(d.memory_bytes)} unsealed rows`),
          h('dt', {}, 'Mapped'), h('dd', {}, `${fmtBytes(d.mapped_bytes)} sealed vectors`),
          h('dt', {}, 'Last write'), h('dd', {}, `#${fmtInt(d.last_seq)}`))),
      h('section', { class: 'card', 'aria-labelledby': 'h-maint' }, h('h2', { id: 'h-maint' }, 'Background maintenance'),
        h('p', { id: 'maintenance', class: m.failed ? 'error' : null }, maintenanceText(m)),
        h('p', { class: 'help' }, 'A maintenance thread seals full in-memory segments (building their graphs) and merges segments by the merge policy. ',
          `Status reported by the Qdrant API: ${info.status}, optimizer ${info.optimizer_status}.`))),
    h('section', { class: 'card', 'aria-labelledby': 'h-vec' }, h('h2', { id: 'h-vec' }, 'Vectors'),
      table('vectors', ['Name', 'Size', 'Distance', 'Index', 'Traversal codes', 'Embedded from'],
        Object.entries(d.vectors).map(([n, v]) => [n || '(unnamed)', v.size, v.distance,
          v.index === 'hnsw' ? `HNSW m=${v.m}, ef_construct=${v.ef_construct}` : 'flat (exact)',
          v.index === 'hnsw' ? v.quantization : '–', v.embedded_from ? `payload “${v.embedded_from}” by ${v.model}` : '–']), [1]),
      sparse.length ? [h('h3', {}, 'Sparse vectors'), table('sparse', ['Name', 'Modifier'], sparse)] : null),
    h('section', { class: 'card', 'aria-labelledby': 'h-idx' }, h('h2', { id: 'h-idx' }, 'Payload field indexes'),
      indexes.length
        ? table('field-indexes', ['Field', 'Type', 'Points with the field'], indexes.map(([k, t]) =>
          [k, t, info.payload_schema && info.payload_schema[k] ? fmtInt(info.payload_schema[k].points) : '–']), [2])
        : h('p', { class: 'empty' }, 'No field indexes: filters check every candidate point. Add one with PUT /collections/{name}/index.')),
    h('section', { class: 'card', 'aria-labelledby': 'h-seg' }, h('h2', { id: 'h-seg' }, 'Segments'),
      d.segments.length ? [segmentPlot(d.segments),
        table('segments', ['Segment', 'State', 'Rows', 'Deleted', 'Bytes', 'Graphs'],
          d.segments.map((x) => [x.id, x.sealed ? 'sealed' : 'mutable (in memory)', fmtInt(x.rows), fmtInt(x.deleted), fmtBytes(x.bytes),
            x.sealed ? `${x.graphs} of ${Object.keys(d.vectors).length}` : '–']), [2, 3, 4]),
        h('p', { class: 'help' }, `The mutable segment takes new writes and is searched exactly; sealed segments have a graph per vector once they hold ${fmtInt(d.min_graph_rows)} rows (smaller ones are searched exactly).`)]
        : h('p', { class: 'empty' }, 'No segments: the collection is empty.')));
}

// ---------------------------------------------------------------------------------------------
// JSON filter editor

/** Where a JSON text goes wrong: `null` if it parses, else `{pos, message}`. Browsers' own
 * messages do not always give the position, so the text is checked here. */
function jsonError(text) {
  let i = 0;
  const fail = (message) => { const e = new Error(message); e.pos = i; throw e; };
  const found = () => (i >= text.length ? 'the end of the text' : `“${text[i]}”`);
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  function string() {
    i++;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') { i++; return; }
      if (c === '\\') { i += 2; continue; }
      if (c < ' ') fail('a line break or control character inside a string (write \\n)');
      i++;
    }
    fail('the string is not closed with "');
  }
  function value() {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a key in double quotes, found ${found()}`);
        string(); ws();
        if (text[i] !== ':') fail(`expected “:” after the key, found ${found()}`);
        i++; value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        fail(`expected “,” or “}”, found ${found()}`);
      }
    }
    if (c === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        fail(`expected “,” or “]”, found ${found()}`);
      }
    }
    if (c === '"') { string(); return; }
    const num = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (num && num[0] !== '-') { i += num[0].length; return; }
    for (const lit of ['true', 'false', 'null']) if (text.startsWith(lit, i)) { i += lit.length; return; }
    fail(`expected a value, found ${found()}`);
  }
  try {
    value(); ws();
    if (i < text.length) fail(`unexpected ${found()} after the end of the filter`);
    return null;
  } catch (e) {
    if (e.pos === undefined) throw e;
    return { pos: e.pos, message: e.message };
  }
}

/** A textarea for a filter in Qdrant's JSON language, with the error shown under it: where
 * the JSON is wrong (line, column and a caret), or what the server refused. */
function filterEditor(id, key) {
  const errorId = `${id}-error`;
  const area = h('textarea', { id, rows: 5, spellcheck: 'false', autocapitalize: 'off', 'aria-describedby': `${id}-help ${errorId}` });
  area.value = typed.get(key) || '';
  const error = h('div', { id: errorId, class: 'field-error', role: 'alert', hidden: true });
  const show = (...content) => {
    error.replaceChildren(...content);
    error.hidden = false;
    area.setAttribute('aria-invalid', 'true');
  };
  const clear = () => {
    error.hidden = true;
    error.replaceChildren();
    area.removeAttribute('aria-invalid');
  };
  /** The filter as an object, `undefined` for none, or `null` (error shown) if it is wrong. */
  const check = () => {
    const text = area.value;
    typed.set(key, text);
    if (!text.trim()) { clear(); return undefined; }
    const bad = jsonError(text);
    if (bad) {
      const before = text.slice(0, bad.pos).split('\n');
      const line = before.length, column = before[before.length - 1].length + 1;
      const lineText = text.split('\n')[line - 1];
      const jump = h('button', { type: 'button', class: 'link', id: `${id}-jump` }, 'Go to the error');
      jump.addEventListener('click', () => { area.focus(); area.setSelectionRange(bad.pos, bad.pos + 1); });
      show(h('strong', {}, `Line ${line}, column ${column}: `), bad.message, ' ', jump,
        h('pre', { 'aria-hidden': 'true' }, `${lineText}\n${' '.repeat(column - 1)}^`));
      return null;
    }
    let v;
    try { v = JSON.parse(text); } catch (e) { show(`Not valid JSON: ${e.message}`); return null; }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      show('A filter is a JSON object, for example {"must": [{"key": "pos", "match": {"value": "n"}}]}.');
      return null;
    }
    clear();
    return v;
  };
  let timer;
  area.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(check, 400); });
  const node = h('div', {},
    h('label', { for: id }, 'Filter (JSON, optional)'),
    area,
    h('p', { class: 'help', id: `${id}-help` },
      'Qdrant\'s filter language: must, should, must_not with match, range, is_empty, has_id… ',
      'Ctrl+Enter runs it.'),
    error);
  return { node, area, check, serverError: (msg) => show(h('strong', {}, 'The server refused the filter: '), msg) };
}

// ---------------------------------------------------------------------------------------------
// Points

async function pageBrowse(name) {
  setNav('points', name);
  const editor = filterEditor('filter', `points:${name}`);
  const limit = h('select', { id: 'limit' }, [10, 20, 50, 100].map((n) => h('option', { value: n, selected: n === 20 }, n)));
  const results = h('div', { id: 'results', 'aria-live': 'polite' });
  let next = null;
  let filter;
  /** The payload keys the table shows (chosen from the first page). */
  let shownKeys = [];
  const form = h('form', { class: 'card', id: 'scroll-form' },
    editor.node,
    h('div', { class: 'row' },
      h('div', {}, h('label', { for: 'limit' }, 'Points per page'), limit),
      h('div', {}, h('button', { type: 'submit', id: 'scroll' }, 'Show points'))));
  const more = h('button', { type: 'button', id: 'next-page', class: 'secondary', hidden: true }, 'Next page');

  async function load(offset) {
    const body = { limit: Number(limit.value), with_payload: true, with_vector: false };
    if (filter) body.filter = filter;
    if (offset !== null && offset !== undefined) body.offset = offset;
    if (offset === null) results.replaceChildren(loading());
    let page, count;
    try {
      [page, count] = await Promise.all([
        api('POST', `/collections/${enc(name)}/points/scroll`, body),
        offset === null ? api('POST', `/collections/${enc(name)}/points/count`, { filter, exact: true }) : null,
      ]);
    } catch (e) {
      if (e.status === 400 && /filter/i.test(e.message)) { editor.serverError(e.message); results.replaceChildren(); }
      else results.replaceChildren(errorBox(e));
      return;
    }
    next = page.next_page_offset;
    more.hidden = next === null || next === undefined;
    if (offset === null) {
      if (!page.points.length) {
        results.replaceChildren(h('p', { class: 'empty', id: 'empty' }, filter ? 'No point matches this filter.' : 'This collection has no points.'));
        return;
      }
      results.replaceChildren(h('p', { id: 'count', class: 'note' }, `${fmtInt(count.count)} point${count.count === 1 ? '' : 's'}${filter ? ' match' : ''}.`),
        pointTable(name, page.points), more);
    } else {
      results.querySelector('tbody').append(...pointRows(name, page.points, shownKeys));
    }
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    filter = editor.check();
    if (filter === null) return;
    load(null);
  });
  editor.area.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' && ev.ctrlKey) { ev.preventDefault(); form.requestSubmit(); } });
  more.addEventListener('click', () => load(next));
  render(`Points · ${name}`, form, results);
  filter = editor.check();
  if (filter !== null) load(null);

  function pointTable(collection, points) {
    // Up to eight payload keys of the first page; a text-like key first, since it says most.
    const seen = [];
    for (const p of points) for (const k of Object.keys(p.payload || {})) if (!seen.includes(k)) seen.push(k);
    const first = seen.filter((k) => ['text', 'title', 'name'].includes(k));
    const keys = [...first, ...seen.filter((k) => !first.includes(k))].slice(0, 8);
    shownKeys = keys;
    return h('div', { class: 'scroll-x card' }, h('table', { id: 'points' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Id'), keys.map((k) => h('th', { scope: 'col' }, k)))),
      h('tbody', {}, pointRows(collection, points, keys))));
  }
}

function pointRows(collection, points, keys) {
  return points.map((p) => h('tr', {},
    h('th', { scope: 'row' }, h('a', { href: `#/point/${enc(collection)}/${enc(String(p.id))}` }, String(p.id))),
    keys.map((k) => {
      const v = (p.payload || {})[k];
      return h('td', { class: 'cell', title: typeof v === 'string' && v.length > 80 ? v : null }, fmtValue(v));
    })));
}

/** Each vector of a point: its kind, size and Euclidean norm. */
function vectorRows(vector) {
  if (vector === null || vector === undefined) return [];
  const named = Array.isArray(vector) || (vector.indices && vector.values) ? { '': vector } : vector;
  return Object.entries(named).map(([n, v]) => {
    const values = Array.isArray(v) ? v : v.values || [];
    const norm = Math.sqrt(values.reduce((acc, x) => acc + x * x, 0));
    const kind = Array.isArray(v) ? `dense, ${v.length} dimensions` : `sparse, ${values.length} non-zero`;
    return [n || '(unnamed)', kind, norm.toFixed(6), values.slice(0, 4).map((x) => x.toFixed(4)).join(', ') + (values.length > 4 ? ', …' : '')];
  });
}

async function pagePoint(name, idText) {
  setNav('points', name);
  const id = parseId(idText);
  const back = h('p', {}, h('a', { href: `#/points/${enc(name)}` }, '← Back to the points'));
  if (id === null) {
    render(`Point ${idText}`, back, errorBox(new Error(`“${idText}” is not a point id (an unsigned integer or a UUID).`)));
    return;
  }
  render(`Point ${id}`, back, loading());
  let found;
  try {
    found = await api('POST', `/collections/${enc(name)}/points`, { ids: [id], with_payload: true, with_vector: true });
  } catch (e) {
    render(`Point ${id}`, back, errorBox(e));
    return;
  }
  if (!found.length) {
    render(`Point ${id}`, back, h('p', { class: 'empty', id: 'empty' }, `Collection ${name} has no point ${id} (it may have been deleted).`));
    return;
  }
  const p = found[0];
  const status = h('div', { id: 'delete-status', 'aria-live': 'polite' });
  let remove;
  if (session.access === 'read-write') {
    const ask = h('button', { type: 'button', class: 'danger', id: 'delete' }, 'Delete this point…');
    const confirmBox = h('div', { id: 'confirm', hidden: true },
      h('p', {}, `Delete point ${id} from ${name}? This cannot be undone.`),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'danger', id: 'confirm-delete' }, 'Delete'),
        h('button', { type: 'button', class: 'secondary', id: 'cancel-delete' }, 'Cancel')));
    ask.addEventListener('click', () => { confirmBox.hidden = false; ask.hidden = true; $('confirm-delete').focus(); });
    confirmBox.querySelector('#cancel-delete').addEventListener('click', () => { confirmBox.hidden = true; ask.hidden = false; ask.focus(); });
    confirmBox.querySelector('#confirm-delete').addEventListener('click', async () => {
      try {
        await api('POST', `/collections/${enc(name)}/points/delete?wait=true`, { points: [id] });
        confirmBox.hidden = true;
        status.replaceChildren(h('p', { class: 'ok', role: 'status' }, `Point ${id} was deleted. `, h('a', { href: `#/points/${enc(name)}` }, 'Back to the points')));
      } catch (e) {
        status.replaceChildren(errorBox(e));
      }
    });
    remove = [ask, confirmBox];
  } else {
    remove = h('p', { class: 'note', id: 'read-only-note' }, 'This key is read-only: it can see every point but cannot delete one.');
  }
  render(`Point ${id}`, back,
    h('section', { class: 'card', 'aria-labelledby': 'h-vectors' }, h('h2', { id: 'h-vectors' }, 'Vectors'),
      table('point-vectors', ['Vector', 'Kind', 'Norm', 'First values'], vectorRows(p.vector), [2])),
    h('section', { class: 'card', 'aria-labelledby': 'h-payload' }, h('h2', { id: 'h-payload' }, 'Payload'),
      h('pre', { id: 'payload' }, JSON.stringify(p.payload || {}, null, 2))),
    h('section', { class: 'card', 'aria-labelledby': 'h-delete' }, h('h2', { id: 'h-delete' }, 'Delete'), remove, status));
}

// ---------------------------------------------------------------------------------------------
// Search

/** The results' scores by rank, as bars. */
function scorePlot(points) {
  const width = 480, height = 170, left = 44, bottom = 22, top = 8;
  const scores = points.map((p) => p.score);
  let lo = Math.min(0, ...scores), hi = Math.max(0, ...scores);
  if (hi === lo) hi = lo + 1;
  const y = (v) => top + ((hi - v) * (height - top - bottom)) / (hi - lo);
  const step = (width - left - 8) / points.length;
  const svg = s('svg', {
    class: 'plot', id: 'score-plot', viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `Scores of the ${points.length} results, from ${scores[0].toFixed(4)} (first) to ${scores[scores.length - 1].toFixed(4)} (last)`,
  });
  svg.append(s('line', { class: 'axis', x1: left, x2: width, y1: y(0), y2: y(0) }));
  for (const v of [hi, lo]) svg.append(s('text', { x: left - 4, y: y(v) + 4, 'text-anchor': 'end' }, v.toFixed(2)));
  points.forEach((p, i) => {
    const x = left + i * step + step * 0.1;
    svg.append(s('rect', { class: 'bar', x, y: Math.min(y(p.score), y(0)), width: step * 0.8, height: Math.max(1, Math.abs(y(0) - y(p.score))) },
      s('title', {}, `#${i + 1}: point ${p.id}, score ${p.score.toFixed(4)}`)));
  });
  svg.append(s('text', { x: left + step / 2, y: height - 6, 'text-anchor': 'middle' }, '1'),
    s('text', { x: left + (points.length - 0.5) * step, y: height - 6, 'text-anchor': 'middle' }, String(points.length)),
    s('text', { x: (left + width) / 2, y: height - 6, 'text-anchor': 'middle' }, 'rank'));
  return h('figure', {}, svg, h('figcaption', { class: 'legend' }, 'Score by rank'));
}

/** One `explain` line per segment, split into its parts, the strategy emphasized. */
function explainList(lines) {
  return h('ol', { class: 'explain', id: 'explain' }, lines.map((line) => {
    const colon = line.indexOf(': ');
    const head = colon < 0 ? line : line.slice(0, colon);
    const parts = colon < 0 ? [] : line.slice(colon + 2).split('; ');
    return h('li', {}, h('strong', {}, head),
      h('ul', {}, parts.map((part) => h('li', { class: part.startsWith('strategy') ? 'strategy' : null }, part))));
  }));
}

function resultText(payload) {
  const p = payload || {};
  const text = typeof p.text === 'string' ? p.text : Object.values(p).find((v) => typeof v === 'string');
  return fmtValue(text === undefined ? p : text, 110);
}

async function pageSearch(name) {
  setNav('search', name);
  render(`Search · ${name}`, loading());
  let d;
  try {
    d = await api('GET', `/quiver/collections/${enc(name)}`);
  } catch (e) {
    render(`Search · ${name}`, errorBox(e));
    return;
  }
  const dense = Object.entries(d.vectors);
  const textVector = dense.find(([, v]) => v.model);
  const editor = filterEditor('search-filter', `search:${name}`);
  const modeText = h('input', { type: 'radio', name: 'mode', id: 'mode-text', value: 'text', checked: true });
  const modeId = h('input', { type: 'radio', name: 'mode', id: 'mode-id', value: 'id' });
  const query = h('input', { type: 'text', id: 'query', autocomplete: 'off', 'aria-describedby': 'query-help' });
  const using = dense.length > 1
    ? h('select', { id: 'using' }, dense.map(([n, v]) => h('option', { value: n, selected: textVector && textVector[0] === n }, `${n} (${v.size}-d${v.model ? ', text' : ''})`)))
    : null;
  const limit = h('input', { type: 'number', id: 'search-limit', min: 1, max: 1000, value: 10 });
  const exact = h('input', { type: 'checkbox', id: 'exact' });
  const help = h('p', { class: 'help', id: 'query-help' });
  const setHelp = () => {
    help.textContent = modeText.checked
      ? `Embedded by the server's built-in model (all-MiniLM-L6-v2, 384 dimensions).${textVector ? '' : ' This collection has no vector embedded from text: a text query works only if a vector has 384 dimensions and was made by the same model.'}`
      : 'The vector of this point is the query; the point itself is among the results.';
    query.placeholder = modeText.checked ? 'e.g. a large body of water' : 'e.g. 234';
  };
  modeText.addEventListener('change', setHelp);
  modeId.addEventListener('change', setHelp);
  setHelp();
  const formError = h('div', { id: 'search-error' });
  const out = h('div', { id: 'search-results', 'aria-live': 'polite' });
  const form = h('form', { class: 'card', id: 'search-form' },
    h('fieldset', {}, h('legend', {}, 'Query by'),
      h('label', { class: 'inline', for: 'mode-text' }, modeText, 'Text'),
      h('label', { class: 'inline', for: 'mode-id' }, modeId, 'Point id')),
    h('label', { for: 'query' }, 'Query'), query, help,
    editor.node,
    h('div', { class: 'row' },
      using ? h('div', {}, h('label', { for: 'using' }, 'Vector'), using) : null,
      h('div', {}, h('label', { for: 'search-limit' }, 'Results'), limit),
      h('div', {}, h('label', { class: 'inline', for: 'exact' }, exact, 'Exact (no graph)')),
      h('div', {}, h('button', { type: 'submit', id: 'search' }, 'Search'))),
    formError);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    formError.replaceChildren();
    const filter = editor.check();
    if (filter === null) { editor.area.focus(); return; }
    let q;
    if (modeText.checked) {
      if (!query.value.trim()) { formError.replaceChildren(errorBox(new Error('Type a text to search for.'))); query.focus(); return; }
      q = { text: query.value.trim(), model: MODEL };
    } else {
      q = parseId(query.value);
      if (q === null) { formError.replaceChildren(errorBox(new Error(`“${query.value}” is not a point id (an unsigned integer or a UUID).`))); query.focus(); return; }
    }
    const n = Number(limit.value);
    if (!Number.isInteger(n) || n < 1 || n > 1000) { formError.replaceChildren(errorBox(new Error('Results: give a whole number from 1 to 1000.'))); limit.focus(); return; }
    const body = { query: q, limit: n, with_payload: true };
    if (using) body.using = using.value;
    else if (dense.length === 1 && dense[0][0]) body.using = dense[0][0];
    if (filter) body.filter = filter;
    if (exact.checked) body.params = { exact: true };
    out.replaceChildren(loading());
    let result, explained;
    try {
      [result, explained] = await Promise.all([
        api('POST', `/collections/${enc(name)}/points/query`, body),
        filter ? api('POST', `/quiver/collections/${enc(name)}/explain`, { filter }) : null,
      ]);
    } catch (e) {
      out.replaceChildren();
      if (e.status === 400 && /filter/i.test(e.message)) editor.serverError(e.message);
      else formError.replaceChildren(errorBox(e));
      return;
    }
    const points = result.points;
    const what = modeText.checked ? `“${q.text}”` : `point ${q}`;
    if (!points.length) {
      out.replaceChildren(h('p', { class: 'empty', id: 'empty' }, filter ? `No point matches the filter, so nothing is near ${what}.` : `No results for ${what}: the collection is empty.`),
        explained ? [h('h2', {}, 'How the filter was answered'), explainList(explained.segments)] : null);
      return;
    }
    out.replaceChildren(
      h('section', { class: 'card', 'aria-labelledby': 'h-results' },
        h('h2', { id: 'h-results' }, `${points.length} result${points.length === 1 ? '' : 's'} for ${what}${filter ? ' with the filter' : ''}`),
        h('div', { class: 'scroll-x' }, h('table', { id: 'results-table' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'num' }, '#'), h('th', { scope: 'col' }, 'Id'), h('th', { scope: 'col', class: 'num' }, 'Score'), h('th', { scope: 'col' }, 'Payload'))),
          h('tbody', {}, points.map((p, i) => h('tr', {},
            h('td', { class: 'num' }, i + 1),
            h('th', { scope: 'row' }, h('a', { href: `#/point/${enc(name)}/${enc(String(p.id))}` }, String(p.id))),
            h('td', { class: 'num score' }, p.score.toFixed(4)),
            h('td', { class: 'cell' }, resultText(p.payload))))))),
        scorePlot(points)),
      explained ? h('section', { class: 'card', 'aria-labelledby': 'h-explain' },
        h('h2', { id: 'h-explain' }, 'How the filter was answered, per segment'),
        explainList(explained.segments)) : null);
  });
  editor.area.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' && ev.ctrlKey) { ev.preventDefault(); form.requestSubmit(); } });
  render(`Search · ${name}`, form, out);
}

// ---------------------------------------------------------------------------------------------
// Routes: #/collections, #/collections/{name}, #/points/{name}, #/point/{name}/{id},
// #/search/{name}

function route() {
  if (session.access === null) { pageLogin(); return; }
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [page, name, id] = parts;
  if (page === 'collections' && name) pageCollection(name);
  else if (page === 'points' && name) pageBrowse(name);
  else if (page === 'point' && name && id !== undefined) pagePoint(name, id);
  else if (page === 'search' && name) pageSearch(name);
  else pageCollections();
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', async () => {
  $('sign-out').addEventListener('click', signOut);
  const key = sessionStorage.getItem(KEY_STORE);
  try {
    await signIn(key || '');
    route();
  } catch (e) {
    session.key = null;
    pageLogin(key || e.status !== 401 ? e : null);
  }
});
