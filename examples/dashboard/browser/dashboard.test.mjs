// dashboard.test.mjs BASE_URL OUT_DIR [test|bench] - the catalogue dashboard in headless Chromium.
//
// Drives Debian's /usr/bin/chromium with playwright-core (no browser of its own) against a
// running catalog_dashboard serving its two demo sources ("demo" and "demo-edited", an edited
// copy: some records deleted, some updated, some added). See run.sh, which starts it.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, outDir, mode = 'test'] = process.argv.slice(2);
const TIMEOUT = 60_000;

// Without the background-networking flags Chromium keeps trying to reach Google's services,
// which a closed network turns into stalls and crashes.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function step(text) { console.log(`-- ${text}`); }

// A request from Node, with the headers we choose (a browser would not let a page forge Origin).
function request(method, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(base + path, { method, headers }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: body ? JSON.parse(body) : null }));
    });
    req.on('error', reject);
    req.end();
  });
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const fmt = (v) => v.toFixed(2);

async function waitForOutcome(page, run) {
  await page.waitForFunction((r) => {
    const e = window.dashboard.lastEvent;
    return e && e.run === r && (e.type === 'completed' || e.type === 'failed');
  }, run, { timeout: TIMEOUT });
  return page.evaluate(() => window.dashboard.lastEvent);
}

async function searchNames(page, query) {
  await page.fill('#q', query);
  await page.waitForFunction((q) => document.querySelector('#search-status').textContent.includes(`“${q}”`), query);
  return page.$$eval('#results li', (items) => items.map((li) => `${li.querySelector('.name').textContent} ${li.querySelector('.version').textContent}`));
}

const userDataDir = mkdtempSync(join(tmpdir(), 'dashboard-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ARGS,
  viewport: { width: 1280, height: 900 },
});
let failed = false;
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // A 4xx answer is logged by Chromium as "Failed to load resource"; the page handles those.
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });

  step('the page loads and its event stream connects');
  await page.goto(base + '/');
  assert.equal(await page.title(), 'Catalogue dashboard · smartasync');
  await page.waitForFunction(() => document.querySelector('#stream').textContent === 'live');
  assert.deepEqual(await page.$$eval('#source option', (o) => o.map((x) => x.value)), ['demo', 'demo-edited']);

  if (mode === 'bench') {
    await bench(page);
  } else {
    await test(page, errors);
  }
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

async function test(page, errors) {
  step('before any sync: no counts box, and the log has room for three-digit line numbers');
  assert.equal(await page.isVisible('#counts'), false, 'no counts before a sync');
  // The numbers of an <ol> are drawn in its left padding, clipped by its overflow: the padding
  // must hold the widest one the log shows ("200. ", it keeps 200 lines) in the log's font.
  const room = await page.evaluate(() => {
    const list = document.querySelector('#log');
    const style = getComputedStyle(list);
    const context = document.createElement('canvas').getContext('2d');
    context.font = `${style.fontSize} ${style.fontFamily}`;
    return { padding: parseFloat(style.paddingLeft), needed: context.measureText('200. ').width };
  });
  assert.ok(room.padding >= room.needed, `log numbers fit: ${JSON.stringify(room)}`);

  step('Sync (from the keyboard): the bar reaches 100 % and the counts show');
  await page.selectOption('#source', 'demo');
  await page.focus('#sync');
  await page.keyboard.press('Enter');
  const first = await waitForOutcome(page, 1);
  assert.equal(first.type, 'completed', JSON.stringify(first));
  assert.equal(first.added, 3000);
  assert.equal(await page.textContent('#percent'), '100%');
  assert.equal(await page.$eval('#bar', (b) => b.value), 100);
  assert.equal(await page.isVisible('#counts'), true);
  assert.equal(await page.textContent('#added'), '3000');
  assert.equal(await page.textContent('#deleted'), '0');
  const pages = await page.$$eval('#log li.page', (l) => l.length);
  assert.equal(pages, first.pages, 'one log line per page');
  console.log(`   ${first.pages} pages, ${first.retries} retries, ${(first.elapsed_ms / 1000).toFixed(1)} s`);
  await page.waitForFunction(() => document.querySelector('#records').dataset.records === '3000');

  step('search as you type ("/" focuses the box): results with name, version, section and highlighted snippet');
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'q');
  await page.keyboard.type('library', { delay: 20 });
  await page.waitForSelector('#results li');
  const hits = await page.$$eval('#results li', (items) => items.map((li) => ({
    name: li.querySelector('.name').textContent,
    version: li.querySelector('.version').textContent,
    section: li.querySelector('.section').textContent,
    marks: [...li.querySelectorAll('.snippet mark')].map((m) => m.textContent.toLowerCase()),
  })));
  assert.ok(hits.every((h) => h.name && h.version && h.section), JSON.stringify(hits[0]));
  assert.ok(hits.some((h) => h.marks.some((m) => m.startsWith('librar'))), `a highlighted match: ${JSON.stringify(hits)}`);
  const before = await searchNames(page, 'library');
  assert.ok(before.length > 0);
  // Catalogue text with its own brackets comes escaped (\[x\]): shown as text, not as a match.
  await page.route('**/search?*', (route) => route.fulfill({
    status: 200, contentType: 'application/json',
    body: JSON.stringify({ query: 'quagga', limit: 20, count: 1, elapsed_ms: 0.1, results: [
      { name: 'brackets', version: '1', section: 'misc', score: -1, snippet: '[Quagga] reads \\[x\\] and C:\\\\temp' }] }),
  }));
  await searchNames(page, 'quagga');
  const shown = await page.$eval('#results li .snippet', (p) => ({ text: p.textContent, marks: [...p.querySelectorAll('mark')].map((m) => m.textContent) }));
  assert.deepEqual(shown, { text: 'Quagga reads [x] and C:\\temp', marks: ['Quagga'] });
  await page.unroute('**/search?*');
  await page.fill('#q', 'name:(');
  await page.waitForFunction(() => document.querySelector('#search-status').classList.contains('bad'));
  console.log(`   ${before.length} results; a broken query says: ${await page.textContent('#search-status')}`);

  step('a second Sync, of the edited source, cancelled mid-way: nothing committed');
  await page.selectOption('#source', 'demo-edited');
  await page.click('#sync');
  const pagesSoFar = await page.evaluate(() => window.dashboard.latencies.length);
  await page.waitForFunction((n) => window.dashboard.latencies.length > n, pagesSoFar);
  const conflict = await request('POST', '/sync?source=demo');
  assert.equal(conflict.status, 409, 'one sync at a time');
  assert.equal(await page.isEnabled('#cancel'), true);
  await page.click('#cancel');
  const second = await waitForOutcome(page, 2);
  assert.equal(second.type, 'failed', JSON.stringify(second));
  assert.equal(second.cancelled, true);
  assert.match(await page.textContent('#error'), /Cancelled: nothing was committed/);
  assert.equal(await page.isVisible('#counts'), false, 'the previous run\'s counts are not shown beside "Cancelled"');
  assert.match(await page.textContent('#progress-text'), /^Cancelled after \d+ of \d+ pages; nothing was committed\.$/);
  const percent = parseInt(await page.textContent('#percent'), 10);
  assert.ok(percent < 100, `cancelled mid-way (at ${percent} %)`);
  assert.equal((await request('GET', '/catalog')).body.records, 3000, 'the catalogue is unchanged');
  await page.waitForFunction(() => document.querySelector('#records').dataset.records === '3000');
  assert.deepEqual(await searchNames(page, 'library'), before, 'the same results as before');
  console.log(`   cancelled at ${percent} %`);

  step('a cross-origin POST is refused: from another origin in the browser, and with a forged Origin');
  const runsBefore = (await request('GET', '/sync')).body.run;
  const evil = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><title>elsewhere</title><script>
      fetch(${JSON.stringify(base + '/sync?source=demo')}, { method: 'POST', mode: 'no-cors' })
        .then(() => { document.title = 'sent'; }, () => { document.title = 'blocked'; });
    </script>`);
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  const other = await page.context().newPage();
  const refused = other.waitForResponse((r) => r.url().startsWith(base + '/sync'));
  await other.goto(`http://127.0.0.1:${evil.address().port}/`);
  assert.equal((await refused).status(), 403);
  await other.close();
  evil.close();
  const forged = await request('POST', '/sync?source=demo', { Origin: 'http://evil.example' });
  assert.equal(forged.status, 403);
  assert.match(forged.body.error, /cross-origin/);
  const rebound = await request('POST', '/sync?source=demo', { Host: `evil.example:${new URL(base).port}` });
  assert.equal(rebound.status, 403, 'a Host that is not ours (DNS rebinding)');
  const notAllowed = await request('GET', '/sync/cancel');
  assert.equal(notAllowed.status, 405, 'state changes are POST only');
  assert.equal((await request('GET', '/sync')).body.run, runsBefore, 'no sync was started');

  step('the edited source synced to the end, the live panel showing the pools at work meanwhile');
  await page.selectOption('#source', 'demo-edited');
  await page.click('#sync');
  await page.waitForFunction(() => window.dashboard.metrics?.run === 3 && window.dashboard.metrics.running);
  const panel = () => page.$$eval('#pools tbody tr', (rows) => rows.map((r) => [...r.children].map((c) => c.textContent)));
  const before1 = await panel();
  const seen = await page.evaluate(() => window.dashboard.metricsEvents);
  await page.waitForFunction((n) => window.dashboard.metricsEvents >= n + 2, seen);
  const before2 = await panel();
  assert.deepEqual(before2.map((r) => r[0]), ['search (SQLite, one connection a thread)',
    "sync 'demo-edited': page requests and database", "sync 'demo-edited': database lane"]);
  assert.ok(Number(before2[1][6]) > Number(before1[1][6]), `the sync pool's done count moves: ${before1[1]} -> ${before2[1]}`);
  assert.match(await page.textContent('#lag'), /^p50 [\d.]+ (ns|µs|ms|s), max [\d.]+ (ns|µs|ms|s) over the last \d+ ticks$/);
  console.log(`   panel: ${before1[1].join(' | ')}  ->  ${before2[1].join(' | ')}; loop lag ${await page.textContent('#lag')}`);
  // The screenshot of the README: mid-sync, a search answered meanwhile, the panel live.
  await page.fill('#q', 'network library');
  await page.waitForFunction(() => document.querySelector('#search-status').textContent.includes('“network library”'));
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(outDir, 'dashboard.png'), fullPage: true });
  console.log(`   screenshot: ${join(outDir, 'dashboard.png')}`);
  const third = await waitForOutcome(page, 3);
  assert.equal(third.type, 'completed', JSON.stringify(third));
  assert.ok(third.added > 0 && third.updated > 0 && third.deleted > 0, JSON.stringify(third));
  const after = 3000 + third.added - third.deleted;
  assert.equal((await request('GET', '/catalog')).body.records, after);
  assert.equal(await page.textContent('#percent'), '100%');
  assert.ok((await searchNames(page, 'network library')).length > 0);
  await page.waitForFunction((n) => document.querySelector('#records').dataset.records === String(n), after);

  const latencies = await page.evaluate(() => window.dashboard.latencies);
  console.log(`   progress events: ${latencies.length}, server -> page latency p50 ${fmt(percentile(latencies, 50))} ms, ` +
    `p99 ${fmt(percentile(latencies, 99))} ms, max ${fmt(Math.max(...latencies))} ms`);
  assert.deepEqual(errors, [], 'no script errors on the page');

  step('SIGTERM right after a sync began: the page says it was cancelled, not "Fetching the first page..."');
  const runs = (await request('GET', '/sync')).body.run;
  await page.click('#sync');
  await page.waitForFunction((r) => window.dashboard.lastEvent?.run === r, runs + 1);
  process.kill(Number(process.env.SERVER_PID), 'SIGTERM');
  const stopped = await waitForOutcome(page, runs + 1);
  assert.equal(stopped.cancelled, true, JSON.stringify(stopped));
  const line = await page.textContent('#progress-text');
  assert.match(line, /^Cancelled (before the first page|after \d+ of \d+ pages); nothing was committed\.$/);
  console.log(`   ${line}`);
  console.log('browser test: OK');
}

// Search latency as the page sees it (fetch to parsed JSON), `n` requests one after another.
async function searchLatencies(page, n, whileRunning) {
  return page.evaluate(async ([count, untilIdle]) => {
    const words = ['library', 'network', 'data', 'tool', 'python', 'server', 'lib*', 'graph', 'audio', 'font'];
    const out = [];
    for (let i = 0; i < count; ++i) {
      if (untilIdle && !document.querySelector('#sync').disabled) break;
      const t0 = performance.now();
      const r = await fetch(`/search?limit=20&q=${encodeURIComponent(words[i % words.length])}`);
      await r.json();
      out.push(performance.now() - t0);
    }
    return out;
  }, [n, whileRunning]);
}

async function bench(page) {
  const runs = 3;
  let latencies = [];
  step(`warm-up sync, then ${runs} syncs of 50000 records (500 pages, 8 in flight)`);
  await page.click('#sync');
  await waitForOutcome(page, 1);
  const idle = await searchLatencies(page, 1000, false);
  const during = [];
  for (let run = 2; run < 2 + runs; ++run) {
    await page.selectOption('#source', run % 2 ? 'demo' : 'demo-edited');
    await page.evaluate(() => { window.dashboard.latencies = []; });
    await page.click('#sync');
    await page.waitForFunction((r) => window.dashboard.lastEvent?.run === r, run);
    during.push(...await searchLatencies(page, 100000, true));
    const e = await waitForOutcome(page, run);
    assert.equal(e.type, 'completed');
    latencies = latencies.concat(await page.evaluate(() => window.dashboard.latencies));
    console.log(`   run ${run}: ${e.pages} pages in ${(e.elapsed_ms / 1000).toFixed(2)} s; searches during it: ${during.length} so far`);
  }
  const lat = latencies;
  console.log(`progress event, server page done -> page received: n=${lat.length} p50 ${fmt(percentile(lat, 50))} ms ` +
    `p99 ${fmt(percentile(lat, 99))} ms max ${fmt(Math.max(...lat))} ms`);
  console.log(`search, idle:        n=${idle.length} p50 ${fmt(percentile(idle, 50))} ms p99 ${fmt(percentile(idle, 99))} ms`);
  console.log(`search, during sync: n=${during.length} p50 ${fmt(percentile(during, 50))} ms p99 ${fmt(percentile(during, 99))} ms`);
  console.log(`p99 ratio during/idle: ${fmt(percentile(during, 99) / percentile(idle, 99))}`);

  // The same from Node, the page closed: the server alone, without the browser's own thread.
  step(`the server alone (a Node client, no page): ${runs} more syncs`);
  await page.goto('about:blank');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const nodeSearch = async () => {
    const words = ['library', 'network', 'data', 'tool', 'python', 'server', 'lib*', 'graph', 'audio', 'font'];
    const t0 = performance.now();
    await new Promise((resolve, reject) => {
      http.get(`${base}/search?limit=20&q=${encodeURIComponent(words[nodeSearch.i++ % words.length])}`, { agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject);
    });
    return performance.now() - t0;
  };
  nodeSearch.i = 0;
  const nodeIdle = [];
  for (let i = 0; i < 1000; ++i) nodeIdle.push(await nodeSearch());
  const nodeLatencies = [];
  let outcome = null;
  const stream = http.get(`${base}/sync/events`, (res) => {
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      const now = performance.timeOrigin + performance.now();
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!block.startsWith('data: ')) continue;
        const e = JSON.parse(block.slice(6));
        if (e.type === 'page') nodeLatencies.push(now - e.t_ms);
        if (e.type === 'completed' || e.type === 'failed') outcome = e;
      }
    });
  });
  const nodeDuring = [];
  for (let run = 2 + runs; run < 2 + 2 * runs; ++run) {
    outcome = null;
    const r = await request('POST', `/sync?source=${run % 2 ? 'demo' : 'demo-edited'}`);
    assert.equal(r.status, 202);
    while (!outcome) nodeDuring.push(await nodeSearch());
    assert.equal(outcome.type, 'completed');
  }
  stream.destroy();
  agent.destroy();
  console.log(`node: progress event, server page done -> received: n=${nodeLatencies.length} p50 ${fmt(percentile(nodeLatencies, 50))} ms ` +
    `p99 ${fmt(percentile(nodeLatencies, 99))} ms max ${fmt(Math.max(...nodeLatencies))} ms`);
  console.log(`node: search, idle:        n=${nodeIdle.length} p50 ${fmt(percentile(nodeIdle, 50))} ms p99 ${fmt(percentile(nodeIdle, 99))} ms`);
  console.log(`node: search, during sync: n=${nodeDuring.length} p50 ${fmt(percentile(nodeDuring, 50))} ms p99 ${fmt(percentile(nodeDuring, 99))} ms`);
  console.log(`node: p99 ratio during/idle: ${fmt(percentile(nodeDuring, 99) / percentile(nodeIdle, 99))}`);
}
