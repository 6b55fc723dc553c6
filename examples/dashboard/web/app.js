// The catalogue dashboard's page: search as you type, and a sync followed through Server-Sent
// Events. Plain DOM, no framework, no build step. Text from the server is only ever set with
// textContent, never parsed as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const retries = (n) => `${n} ${n === 1 ? 'retry' : 'retries'}`;
// For the browser test and the benchmark: when each progress event arrived, relative to when
// the server had the page (both clocks are this machine's).
// `metrics` events (the live panel) are counted apart and never become lastEvent.
window.dashboard = { latencies: [], events: 0, lastEvent: null, metrics: null, metricsEvents: 0 };

// ---------------------------------------------------------------------------------------------
// Search

const SEARCH_DEBOUNCE_MS = 150;
let searchTimer = 0;
let searchAbort = null;

function setSearchStatus(text, bad) {
  $('search-status').textContent = text;
  $('search-status').classList.toggle('bad', !!bad);
}

// "a [net]work [library] \[x\]" -> text and <mark> nodes: the catalogue marks matches with
// [ ] and escapes the text's own [, ] and \ with a \, so that data reading "[x]" stays text.
function snippetNodes(snippet) {
  const out = document.createDocumentFragment();
  let text = '';
  let mark = null;
  const flush = () => { if (text) (mark || out).append(text); text = ''; };
  for (let i = 0; i < snippet.length; ++i) {
    const c = snippet[i];
    if (c === '\\' && i + 1 < snippet.length) { text += snippet[++i]; continue; }
    if (c === '[' && !mark) { flush(); mark = document.createElement('mark'); continue; }
    if (c === ']' && mark) { flush(); out.append(mark); mark = null; continue; }
    text += c;
  }
  flush();
  if (mark) out.append(mark); // unterminated: still shown
  return out;
}

function showResults(data) {
  const list = $('results');
  list.replaceChildren();
  for (const hit of data.results) {
    const li = document.createElement('li');
    const name = document.createElement('span'); name.className = 'name'; name.textContent = hit.name;
    const version = document.createElement('span'); version.className = 'version'; version.textContent = hit.version;
    const section = document.createElement('span'); section.className = 'section'; section.textContent = hit.section || '—';
    const snippet = document.createElement('p'); snippet.className = 'snippet'; snippet.append(snippetNodes(hit.snippet));
    li.append(section, name, version, snippet);
    list.append(li);
  }
  const n = data.results.length;
  setSearchStatus(`${n === 0 ? 'No' : n} result${n === 1 ? '' : 's'} for “${data.query}” · ${data.elapsed_ms.toFixed(1)} ms on the server`);
}

async function search(now) {
  clearTimeout(searchTimer);
  const q = $('q').value.trim();
  if (searchAbort) searchAbort.abort();
  if (!q) { $('results').replaceChildren(); setSearchStatus(''); return; }
  const run = async () => {
    searchAbort = new AbortController();
    const signal = searchAbort.signal;
    try {
      const response = await fetch(`/search?limit=20&q=${encodeURIComponent(q)}`, { signal });
      const data = await response.json();
      if (signal.aborted) return;
      if (response.ok) showResults(data);
      else { $('results').replaceChildren(); setSearchStatus(response.status === 400 ? `Not a valid query: ${data.error}` : `Search failed (${response.status}): ${data.error}`, true); }
    } catch (e) {
      if (e.name !== 'AbortError') setSearchStatus('Search failed: the server is unreachable.', true);
    }
  };
  if (now) run(); else searchTimer = setTimeout(run, SEARCH_DEBOUNCE_MS);
}

$('q').addEventListener('input', () => search(false));
$('search-form').addEventListener('submit', (e) => { e.preventDefault(); search(true); });
$('q').addEventListener('keydown', (e) => { if (e.key === 'Escape') { $('q').value = ''; search(true); } });
document.addEventListener('keydown', (e) => {
  const typing = ['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement?.tagName);
  if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); $('q').focus(); }
});

// ---------------------------------------------------------------------------------------------
// The catalogue's size

async function refreshRecords() {
  try {
    const response = await fetch('/catalog');
    const data = await response.json();
    $('records').textContent = response.ok ? `catalogue: ${data.records} records` : `catalogue: ${data.error}`;
    $('records').dataset.records = response.ok ? String(data.records) : '';
  } catch {
    $('records').textContent = 'catalogue: server unreachable';
  }
}

// ---------------------------------------------------------------------------------------------
// Sync: the buttons, and the events

let running = false;
const LOG_LIMIT = 200;

function showError(text, kind) {
  const box = $('error');
  box.hidden = !text;
  box.textContent = text || '';
  box.classList.toggle('warn', kind === 'warn');
}

function setRunning(on, cancelling) {
  running = on;
  $('sync').disabled = on;
  $('cancel').disabled = !on || !!cancelling;
  $('sync-panel').setAttribute('aria-busy', on ? 'true' : 'false');
}

// The last progress drawn, for the line that tells how a run ended.
let progress = { pages_done: 0, total_pages: null };

function setProgress(e) {
  progress = { pages_done: e.pages_done, total_pages: e.total_pages };
  const bar = $('bar');
  if (e.total_pages) {
    const pct = Math.min(100, Math.floor((100 * e.pages_done) / e.total_pages));
    bar.value = pct;
    $('percent').textContent = `${pct}%`;
  } else if (running) {
    bar.removeAttribute('value'); // indeterminate: the API does not say how many pages
    $('percent').textContent = '…';
  }
  const total = (n) => (n == null ? '?' : n);
  $('progress-text').textContent =
    `pages ${e.pages_done}/${total(e.total_pages)} · items ${e.items_done}/${total(e.total_items)} · ` +
    `${Math.round(e.rate || 0)} items/s · ${retries(e.retries || 0)}`;
}

function showCounts(e) {
  for (const k of ['added', 'updated', 'deleted', 'unchanged']) $(k).textContent = e[k];
  $('counts').hidden = false;
}

function describe(e) {
  switch (e.type) {
    case 'begin': return `sync ${e.run} of “${e.source}” (${e.url})`;
    case 'started': return `${e.total_items ?? '?'} items in ${e.total_pages ?? '?'} pages of ${e.page_size}, ${e.concurrency} in flight (${e.style})`;
    case 'page': return `page ${e.page + 1}: ${e.items} items${e.attempts > 1 ? ` after ${e.attempts} attempts` : ''} (${e.pages_done}/${e.total_pages ?? '?'})`;
    case 'retry': return `page ${e.page + 1}, attempt ${e.attempt} failed: ${e.reason}; retrying in ${e.delay_ms} ms`;
    case 'cancelling': return e.reason ? `cancelling: ${e.reason}` : 'cancelling…';
    case 'completed': return `committed: ${e.added} added, ${e.updated} updated, ${e.deleted} deleted, ${e.unchanged} unchanged (${e.items} items, ${e.pages} pages, ${retries(e.retries)}, ${(e.elapsed_ms / 1000).toFixed(1)} s)`;
    case 'failed': return e.message;
    default: return JSON.stringify(e);
  }
}

function log(e) {
  const list = $('log');
  const li = document.createElement('li');
  li.className = e.type;
  li.textContent = describe(e);
  list.append(li);
  while (list.children.length > LOG_LIMIT) list.firstElementChild.remove();
}

function showOutcome(e) {
  if (e.type === 'completed') {
    const bar = $('bar'); bar.value = 100; $('percent').textContent = '100%';
    $('progress-text').textContent = `Done: ${e.items} items in ${e.pages} pages, ${(e.elapsed_ms / 1000).toFixed(1)} s, ` +
      `${Math.round(e.rate)} items/s, ${retries(e.retries)}.`;
    showCounts(e);
    showError('');
  } else {
    // The progress line tells where the run ended; left alone it would still say "Fetching
    // the first page..." after a run stopped before its first page.
    const where = progress.pages_done === 0 ? 'before the first page'
      : `after ${progress.pages_done} of ${progress.total_pages ?? '?'} pages`;
    $('progress-text').textContent = `${e.cancelled ? 'Cancelled' : 'Failed'} ${where}; nothing was committed.`;
    if (e.cancelled) showError('Cancelled: nothing was committed; the catalogue is unchanged.', 'warn');
    else showError(`Sync failed: ${e.message}`);
  }
}

// Events are drawn in batches, at most ten times a second, however fast they come: a sync of
// 500 pages sends hundreds a second. A layout per event kept the page's thread so busy that
// events waited seconds to be read and searches as long to be answered; a frame per batch at
// 60 Hz still repainted the page all through a sync, which without a GPU is CPU the searches
// need. Ten updates a second is as smooth as a progress bar needs to be.
const pending = [];
let scheduled = false;
let lastDraw = 0;
const DRAW_INTERVAL_MS = 100;

function receive(message) {
  const e = JSON.parse(message.data);
  if (e.type === 'page') window.dashboard.latencies.push(performance.timeOrigin + performance.now() - e.t_ms);
  pending.push(e);
  if (scheduled) return;
  scheduled = true;
  // A hidden tab gets no frames; it still catches up four times a second.
  if (document.hidden) { setTimeout(draw, 250); return; }
  const wait = lastDraw + DRAW_INTERVAL_MS - performance.now();
  if (wait > 0) setTimeout(() => requestAnimationFrame(draw), wait); else requestAnimationFrame(draw);
}

function draw() {
  scheduled = false;
  lastDraw = performance.now();
  for (const e of pending.splice(0)) onEvent(e);
  $('log').scrollTop = $('log').scrollHeight;
}

function onEvent(e) {
  if (e.type === 'metrics') { showMetrics(e); return; }
  window.dashboard.events++;
  window.dashboard.lastEvent = e;
  switch (e.type) {
    case 'state': {
      // The whole picture, on every (re)connection: a page opened in the middle of a sync, or
      // after the connection dropped, catches up here.
      const select = $('source');
      if (select.options.length !== e.sources.length) {
        select.replaceChildren(...e.sources.map((s) => new Option(`${s.name} (${s.url})`, s.name)));
        select.disabled = e.sources.length < 2;
      }
      $('log').replaceChildren();
      for (const old of e.log) log(old);
      setRunning(e.running, e.cancelling);
      if (e.run === 0) break;
      setProgress(e);
      $('counts').hidden = true;
      showError('');
      if (!e.running && e.outcome) showOutcome(e.outcome);
      break;
    }
    case 'begin':
      setRunning(true, false);
      showError('');
      $('counts').hidden = true;
      $('bar').value = 0; $('percent').textContent = '0%';
      progress = { pages_done: 0, total_pages: null };
      $('progress-text').textContent = `Fetching the first page of ${e.url}…`;
      log(e);
      break;
    case 'started':
      log(e);
      break;
    case 'page':
      setProgress(e);
      log(e);
      break;
    case 'retry':
      log(e);
      break;
    case 'cancelling':
      setRunning(true, true);
      log(e);
      break;
    case 'completed':
    case 'failed':
      setRunning(false, false);
      log(e);
      showOutcome(e);
      refreshRecords();
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// The live panel: the pools and the lane behind the page, and the loop's heartbeat lag

// 1234.5 us -> "1.23 ms": about three significant digits, in the unit that reads best.
const digits3 = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
function duration(us) {
  if (us == null) return '—';
  if (us < 1) return `${Math.round(us * 1000)} ns`;
  if (us < 1000) return `${digits3(us)} µs`;
  if (us < 1e6) return `${digits3(us / 1000)} ms`;
  return `${digits3(us / 1e6)} s`;
}

function showMetrics(e) {
  window.dashboard.metrics = e;
  window.dashboard.metricsEvents++;
  const loop = e.loop;
  $('lag').textContent = loop.samples ? `p50 ${duration(loop.lag_p50_us)}, max ${duration(loop.lag_max_us)} ` +
    `over the last ${loop.samples} ticks` : '…';
  const rows = e.pools.map((p) => {
    const tr = document.createElement('tr');
    const cells = [p.name, p.threads ?? (p.kind === 'lane' ? 'its pool\'s' : '—'), p.running, p.queued,
      `${duration(p.queue_wait_p50_us)} / ${duration(p.queue_wait_p99_us)}`,
      p.run_time_p50_us == null ? '—' : `${duration(p.run_time_p50_us)} / ${duration(p.run_time_p99_us)}`,
      p.done, p.rejected, p.expired ?? '—'];
    cells.forEach((text, i) => {
      const td = document.createElement(i === 0 ? 'th' : 'td');
      if (i === 0) td.scope = 'row';
      td.textContent = String(text);
      if (i === 2 && p.running > 0) td.className = 'busy';
      tr.append(td);
    });
    return tr;
  });
  $('pools').tBodies[0].replaceChildren(...rows);
}

async function post(path) {
  try {
    const response = await fetch(path, { method: 'POST' });
    const data = await response.json();
    if (!response.ok) showError(response.status === 409 && path.startsWith('/sync?') ? `Not started: ${data.error}.` : data.error);
    return response.status;
  } catch {
    showError('The server is unreachable.');
    return 0;
  }
}

$('sync').addEventListener('click', () => post(`/sync?source=${encodeURIComponent($('source').value)}`));
$('cancel').addEventListener('click', () => post('/sync/cancel'));

function connect() {
  const events = new EventSource('/sync/events?metrics=1');
  const pill = $('stream');
  events.onopen = () => { pill.textContent = 'live'; pill.className = 'pill live'; };
  events.onerror = () => { pill.textContent = 'reconnecting…'; pill.className = 'pill down'; };
  events.onmessage = receive;
}

connect();
refreshRecords();
