// The "Ask your documents" page (/app/) in a real headless Chromium (Debian's `chromium`), one scenario per run.
//
//   node ask_app.mjs --url http://127.0.0.1:PORT/app/ --key KEY --pdf FILE [--pdf FILE ...] --ask "question" \
//     --page N --quote "text" [--expect-badge failover|resumed|local ...] [--no-badge failover|resumed|local ...] \
//     [--notebook NAME] [--phone] [--no-cite] --shots PREFIX
//
// It opens the page, gives the key if the page asks for one, picks the notebook --notebook (creating it through the
// page when it does not exist; without it, whichever the page opens), uploads the PDFs through the file input, waits
// for every document of the notebook to be ready, asks the question and waits for the answer to finish streaming
// (body[data-state=idle]). The answer must cite at least one source; the first citation whose source is on page N
// is clicked, and the viewer must show page N with the quote highlighted in PDF.js's text layer (compared with all
// whitespace removed: the text layer splits lines into separate pieces) or, when the server has no PDF.js, the
// quote in the text fallback. The route line must carry the --expect-badge badges and not the --no-badge ones, and
// there must be no console error, page error or CSP violation (the 401 that makes the page ask for the key is
// expected). Screenshots: PREFIX-answer.png (the page) and PREFIX-viewer.png (the viewer open). Desktop 1280×900,
// or a phone (390×844) with --phone. Chromium: $CHROMIUM or /usr/bin/chromium, with --no-sandbox (CI runs as root).
// Exits 0 when all is well, 1 with every failed check listed, 2 when it could not run.

import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const BADGES = ['failover', 'resumed', 'local'];
let opt;
try {
  ({ values: opt } = parseArgs({
    options: {
      url: { type: 'string' },
      key: { type: 'string' },
      pdf: { type: 'string', multiple: true, default: [] },
      ask: { type: 'string' },
      page: { type: 'string' },
      quote: { type: 'string' },
      'expect-badge': { type: 'string', multiple: true, default: [] },
      'no-badge': { type: 'string', multiple: true, default: [] },
      notebook: { type: 'string' },
      phone: { type: 'boolean', default: false },
      // The answer need not cite (a local model with random weights answers nonsense): no viewer checks.
      'no-cite': { type: 'boolean', default: false },
      shots: { type: 'string' },
      timeout: { type: 'string', default: '240' },
    },
  }));
} catch (e) {
  console.error(`ask_app.mjs: ${e.message}`);
  process.exit(2);
}
for (const k of opt['no-cite'] ? ['url', 'ask', 'shots'] : ['url', 'ask', 'page', 'quote', 'shots']) {
  if (!opt[k]) {
    console.error(`ask_app.mjs: --${k} is required`);
    process.exit(2);
  }
}
for (const b of [...opt['expect-badge'], ...opt['no-badge']]) {
  if (!BADGES.includes(b)) {
    console.error(`ask_app.mjs: unknown badge ${b} (one of ${BADGES.join(', ')})`);
    process.exit(2);
  }
}

const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const squash = (s) => (s || '').replace(/\s+/g, '');
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
  return ok;
};
const seconds = (s) => s * 1000;

// The whole run must end, whatever hangs.
const guard = setTimeout(() => {
  console.error(`ask_app.mjs: gave up after ${opt.timeout} s`);
  process.exit(2);
}, seconds(Number(opt.timeout)));

let browser;
try {
  mkdirSync(dirname(resolve(opt.shots)), { recursive: true });
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext(
    opt.phone
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1280, height: 900 } },
  );
  const page = await context.newPage();

  // Console errors, page errors and CSP violations; whether a progress bar ever showed.
  const problems = [];
  const unauthorized = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const where = m.location().url || '';
    // Chromium logs every 4xx as "Failed to load resource"; a 401 from the API is how the page learns it needs a key.
    if (/status of 401/.test(m.text()) && where.includes('/app/api/')) unauthorized.push(where);
    else problems.push(`console error: ${m.text()} (${where})`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.addInitScript(() => {
    window.__csp = [];
    window.__sawProgress = false;
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`),
    );
    new MutationObserver(() => {
      if (document.querySelector('.doc progress')) window.__sawProgress = true;
    }).observe(document, { childList: true, subtree: true });
  });

  // The page, and the key if it asks for one.
  const resp = await page.goto(opt.url, { waitUntil: 'load' });
  check(resp && resp.status() === 200, `GET ${opt.url} answered ${resp && resp.status()}`);
  check(
    (resp?.headers()['content-security-policy'] || '').includes("script-src 'self'"),
    'the page came without its content-security policy',
  );
  await page.waitForSelector('#key-dialog[open], body[data-ready]', { timeout: seconds(20) });
  let askedKey = false;
  if (await page.locator('#key-dialog[open]').count()) {
    askedKey = true;
    if (!opt.key) throw new Error('the page asks for a key and no --key was given');
    await page.fill('#key-input', opt.key);
    await page.click('#key-save');
    await page
      .waitForSelector('body[data-ready]', { timeout: seconds(20) })
      .catch(() => {
        throw new Error('the page did not open a notebook after the key was given (key refused?)');
      });
  }
  check(!unauthorized.length || askedKey, `401 from ${unauthorized.join(', ')} without a key prompt`);

  // The notebook.
  if (opt.notebook) {
    const labels = await page.locator('#notebook option').allTextContents();
    if (labels.includes(opt.notebook)) {
      await page.selectOption('#notebook', { label: opt.notebook });
    } else {
      await page.click('#new-notebook');
      await page.fill('#notebook-name', opt.notebook);
      await page.click('#notebook-create');
    }
    await page.waitForFunction(
      (name) => {
        const sel = document.querySelector('#notebook');
        return sel.selectedOptions[0]?.textContent === name && document.body.dataset.ready;
      },
      opt.notebook,
      { timeout: seconds(20) },
    );
  }

  // The uploads, then every document ready.
  const before = await page.locator('.doc').count();
  if (opt.pdf.length) await page.setInputFiles('#file-input', opt.pdf.map((p) => resolve(p)));
  const expected = before + opt.pdf.length;
  const settled = await page
    .waitForFunction(
      (n) => {
        const docs = [...document.querySelectorAll('.doc')];
        return docs.length >= n && docs.every((d) => d.dataset.status === 'ready' || d.dataset.status === 'failed');
      },
      expected,
      { timeout: seconds(120), polling: 200 },
    )
    .then(() => true, () => false);
  const docs = await page.$$eval('.doc', (els) =>
    els.map((d) => ({
      id: d.dataset.id,
      status: d.dataset.status,
      name: d.querySelector('.doc-name')?.textContent,
      error: d.querySelector('.doc-error')?.textContent,
    })),
  );
  check(settled, `the documents did not all finish indexing: ${JSON.stringify(docs)}`);
  check(docs.length >= expected, `${docs.length} documents listed, expected at least ${expected}`);
  for (const d of docs) check(d.status === 'ready' && d.id, `document ${d.name} is ${d.status}: ${d.error || ''}`);
  if (opt.pdf.length) check(await page.evaluate(() => window.__sawProgress), 'no progress bar showed during the upload');

  // The question, and the streamed answer.
  const turns = await page.locator('.turn').count();
  await page.fill('#question', opt.ask);
  await page.click('#ask');
  await page.waitForFunction(
    (n) => document.querySelectorAll('.turn').length === n && document.body.dataset.state === 'idle',
    turns + 1,
    { timeout: seconds(180), polling: 100 },
  );
  const turn = page.locator('.turn').last();
  const seen = await turn.evaluate((t, badges) => ({
    answer: t.querySelector('.answer')?.textContent || '',
    error: t.querySelector('.turn-error:not([hidden])')?.textContent || '',
    cites: [...t.querySelectorAll('.answer .cite[data-n]')].map((c) => ({ n: c.dataset.n, page: c.dataset.page })),
    route: t.querySelector('.route:not([hidden])')?.innerText || '',
    badges: badges.filter((b) => t.querySelector(`.route .badge.${b}`)),
  }), BADGES);
  check(!seen.error, `the answer failed: ${seen.error}`);
  check(seen.answer.trim().length > 0, 'the answer is empty');
  if (!opt['no-cite']) check(seen.cites.length > 0, `the answer has no citation: ${JSON.stringify(seen.answer.slice(0, 300))}`);
  check(/answered by/.test(seen.route), `no route line under the answer: ${JSON.stringify(seen.route)}`);
  for (const b of opt['expect-badge']) check(seen.badges.includes(b), `badge ${b} missing (route line: ${seen.route})`);
  for (const b of opt['no-badge']) check(!seen.badges.includes(b), `badge ${b} shown but not expected (route line: ${seen.route})`);
  await page.screenshot({ path: `${opt.shots}-answer.png`, fullPage: true });

  // The citation of page N, and the viewer.
  const cite = turn.locator(`.answer .cite[data-page="${opt.page}"]`).first();
  if (!opt['no-cite'] && check((await cite.count()) === 1, `no citation of page ${opt.page}: ${JSON.stringify(seen.cites)}`)) {
    await cite.click();
    await page.waitForSelector('#viewer[data-page][data-state="ready"]', { timeout: seconds(30) });
    const info = await page.evaluate(async () => {
      const key = localStorage.getItem('nines-app-key');
      const r = await fetch('/app/api/info', { headers: key ? { Authorization: `Bearer ${key}` } : {} });
      return r.json();
    });
    const view = await page.evaluate(() => {
      const v = document.querySelector('#viewer');
      const canvas = v.querySelector('canvas');
      let inked = 0;
      if (canvas) {
        // Some non-white pixels: the page was drawn.
        const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
        for (let i = 0; i < data.length; i += 16) if (data[i] < 200) inked++;
      }
      const c = canvas?.getBoundingClientRect();
      const marks = [...v.querySelectorAll('.textLayer .highlight')];
      return {
        page: v.dataset.page,
        hidden: v.hidden,
        canvas: !!canvas,
        inked,
        highlight: marks.map((m) => m.textContent).join(' '),
        // Every highlighted piece must sit on the drawn page.
        outside: marks.filter((m) => {
          const r = m.getBoundingClientRect();
          return !c || r.width === 0 || r.height === 0 || r.left < c.left - 2 || r.right > c.right + 2 || r.top < c.top - 2 || r.bottom > c.bottom + 2;
        }).length,
        fallback: v.querySelector('.fallback')?.textContent ?? null,
      };
    });
    check(!view.hidden, 'the viewer is hidden');
    check(view.page === opt.page, `the viewer shows page ${view.page}, expected ${opt.page}`);
    if (info.pdfjs) {
      check(view.canvas && view.inked > 0, `the viewer drew no page (canvas: ${view.canvas}, inked samples: ${view.inked})`);
      check(view.fallback === null, 'PDF.js is installed but the viewer shows the text fallback');
      check(
        squash(view.highlight).includes(squash(opt.quote)),
        `the highlight ${JSON.stringify(view.highlight)} does not contain the quote ${JSON.stringify(opt.quote)}`,
      );
      check(view.outside === 0, `${view.outside} highlighted piece(s) are empty or off the drawn page`);
    } else {
      check(view.fallback !== null, 'PDF.js is not installed and the viewer shows no text fallback');
      check(
        squash(view.fallback).includes(squash(opt.quote)),
        `the text fallback ${JSON.stringify(view.fallback)} does not contain the quote ${JSON.stringify(opt.quote)}`,
      );
    }
    await page.screenshot({ path: `${opt.shots}-viewer.png` });
  }

  // Nothing went wrong on the way.
  if (opt.phone) {
    const width = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    check(width[0] <= width[1], `phone: the page is wider than the screen (${width[0]} px in ${width[1]})`);
  }
  for (const v of await page.evaluate(() => window.__csp)) problems.push(`CSP violation: ${v}`);
  for (const p of problems) check(false, p);
} catch (e) {
  console.error(`ask_app.mjs: could not run: ${e.stack || e}`);
  await browser?.close().catch(() => {});
  process.exit(2);
}
await browser.close();
clearTimeout(guard);
if (failures.length) {
  console.error(`ask app: ${failures.length} check(s) failed:\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log(`ask app: all checks passed; screenshots ${opt.shots}-answer.png, ${opt.shots}-viewer.png`);
