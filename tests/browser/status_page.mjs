// The status page in a real headless Chromium (the system's: Debian's `chromium`), during an outage.
//
//   node status_page.mjs --url http://127.0.0.1:PORT/status --provider first --target first/m1 \
//     --kind overload --status 529 --saved 10 --shots target/artifacts/status-page [--handshake]
//
// On a phone (390×844, 2× pixels, touch) and on a desktop it checks that the provider in trouble and its target
// show their breaker open (or down), that an open incident names the target with its failure kind and status, that
// `#saved` is the expected count, that the phone scrolls only vertically and nothing sticks out of its card, that
// the page's own script ran (times in the reader's zone) with no console error, page error or CSP violation, and
// that the page refreshes itself. The page's clock is Playwright's and stands still unless moved: the test moves it
// 14 s (no fetch yet), then 1 s more, and sees one fetch of the page and the fresh content put in place. With
// --handshake it prints `loaded` after the first look and reads a line from stdin before the refresh: the `#saved`
// count the refreshed page must show (the test sends more requests meanwhile), proving the refresh brings new data.
// Then the page cannot reach the gateway any more: it must keep what it showed and say that it could not refresh.
// Full-page screenshots: <shots>-phone.png and <shots>-desktop.png. Chromium: $CHROMIUM or /usr/bin/chromium, with
// --no-sandbox (CI runs as root). Exits 0 when all is well, 1 with every failed check listed, 2 when it could not run.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    provider: { type: 'string' },
    target: { type: 'string' },
    kind: { type: 'string', default: 'overload' },
    status: { type: 'string', default: '529' },
    saved: { type: 'string' },
    shots: { type: 'string' },
    handshake: { type: 'boolean', default: false },
  },
});
for (const k of ['url', 'provider', 'target', 'saved', 'shots']) {
  if (!opt[k]) {
    console.error(`status_page.mjs: --${k} is required`);
    process.exit(2);
  }
}

const REFRESH_MS = 15_000; // what the page says it does ("refreshes every 15 s")
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
  return ok;
};

// The whole run must fit well inside the test's budget, whatever hangs.
const guard = setTimeout(() => {
  console.error('status_page.mjs: gave up after 45 s');
  process.exit(2);
}, 45_000);

/** A page that records console errors, page errors and CSP violations. */
async function open(browser, name, contextOptions) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${name}: console error: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`),
    );
  });
  // The page's time moves only when the test moves it.
  const t0 = Date.now();
  await page.clock.install({ time: t0 });
  await page.clock.pauseAt(t0 + 1000);
  const resp = await page.goto(opt.url, { waitUntil: 'load' });
  check(resp && resp.status() === 200, `${name}: GET ${opt.url} answered ${resp && resp.status()}`);
  check(
    (resp?.headers()['content-security-policy'] || '').includes("default-src 'none'"),
    `${name}: the page came without its content-security policy`,
  );
  return { context, page, problems };
}

/** What every viewport must show. */
async function look(page, name) {
  const seen = await page.evaluate(
    ({ provider, target }) => {
      const q = (s) => document.querySelector(s);
      const pill = (el) => el && el.querySelector('.pill');
      const p = [...document.querySelectorAll('[data-provider]')].find((e) => e.dataset.provider === provider);
      const t = [...document.querySelectorAll('[data-target]')].find((e) => e.dataset.target === target);
      const incidents = [...document.querySelectorAll('[data-incident]')].map((e) => ({
        name: e.querySelector('.name')?.textContent,
        open: !!e.querySelector('.pill.open'),
        kinds: [...e.querySelectorAll('tr')].map((r) => r.textContent),
      }));
      return {
        providerPill: p && { classes: [...pill(p).classList], text: pill(p).textContent },
        targetPill: t && { classes: [...pill(t).classList], text: pill(t).textContent },
        incidents,
        saved: q('#saved')?.textContent.trim(),
        headline: q('#headline')?.textContent.trim(),
        utcTimes: [...document.querySelectorAll('time[data-ms]')].filter((e) => e.textContent.endsWith('UTC')).length,
        times: document.querySelectorAll('time[data-ms]').length,
      };
    },
    { provider: opt.provider, target: opt.target },
  );
  const trouble = (pill) => pill && (pill.classes.includes('breaker_open') || pill.classes.includes('down'));
  check(trouble(seen.providerPill), `${name}: provider ${opt.provider} is not shown down: ${JSON.stringify(seen.providerPill)}`);
  check(trouble(seen.targetPill), `${name}: target ${opt.target} is not shown down: ${JSON.stringify(seen.targetPill)}`);
  const open = seen.incidents.filter((i) => i.open && i.name === opt.target);
  check(open.length === 1, `${name}: no single open incident for ${opt.target}: ${JSON.stringify(seen.incidents)}`);
  check(
    open.some((i) => i.kinds.some((row) => row.includes(opt.kind) && row.includes(opt.status))),
    `${name}: the open incident does not show ${opt.kind} ${opt.status}: ${JSON.stringify(open)}`,
  );
  check(seen.saved === opt.saved, `${name}: #saved shows ${JSON.stringify(seen.saved)}, expected ${opt.saved}`);
  check(!!seen.headline, `${name}: no #headline`);
  check(seen.times > 0 && seen.utcTimes === 0, `${name}: the page's script did not show times in local time`);
  return seen;
}

async function finish(name, { page, problems }) {
  const csp = await page.evaluate(() => window.__csp);
  for (const v of csp) problems.push(`${name}: CSP violation: ${v}`);
  for (const p of problems) check(false, p);
}

let browser;
try {
  mkdirSync(dirname(opt.shots), { recursive: true });
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });

  // The phone.
  const phone = await open(browser, 'phone', {
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  await look(phone.page, 'phone');
  const layout = await phone.page.evaluate(() => {
    const w = window.innerWidth;
    const where = (e) => `${e.tagName.toLowerCase()}${e.className ? '.' + e.className : ''}`;
    // Nothing wider than the screen, nor sticking out of its card (into the padding counts).
    const wide = [...document.querySelectorAll('main *')]
      .filter((e) => {
        const right = e.getBoundingClientRect().right;
        if (right > w + 0.5) return true;
        const card = e.parentElement.closest('.card');
        if (!card) return false;
        const cs = getComputedStyle(card);
        const inner = card.getBoundingClientRect().right - parseFloat(cs.borderRightWidth) - parseFloat(cs.paddingRight);
        return right > inner + 0.5;
      })
      .slice(0, 5)
      .map(where);
    return {
      innerWidth: w,
      scrollWidth: document.documentElement.scrollWidth,
      wide,
      fontSize: parseFloat(getComputedStyle(document.body).fontSize),
    };
  });
  check(
    layout.scrollWidth <= layout.innerWidth && layout.wide.length === 0,
    `phone: the page is wider than the screen or its cards (${layout.scrollWidth} px in ${layout.innerWidth}): ${layout.wide.join(', ')}`,
  );
  check(layout.fontSize >= 14, `phone: body text is ${layout.fontSize}px`);
  await phone.page.screenshot({ path: `${opt.shots}-phone.png`, fullPage: true });

  // The desktop.
  const desktop = await open(browser, 'desktop', { viewport: { width: 1280, height: 900 } });
  await look(desktop.page, 'desktop');
  await desktop.page.screenshot({ path: `${opt.shots}-desktop.png`, fullPage: true });
  await finish('desktop', desktop);

  // The refresh, on the phone: nothing before 15 s, then one fetch of the page and fresh content in place.
  let expected = opt.saved;
  if (opt.handshake) {
    console.log('loaded');
    const line = await new Promise((resolve) => {
      const rl = createInterface({ input: process.stdin });
      rl.once('line', (l) => {
        resolve(l.trim());
        rl.close();
      });
      rl.once('close', () => resolve(''));
    });
    if (line) expected = line;
  }
  const page = phone.page;
  const fetched = [];
  page.on('request', (r) => {
    if (r.url() === page.url()) fetched.push(r);
  });
  const before = await page.evaluate(() => {
    document.querySelector('main').dataset.old = '1';
    return document.querySelector('time[data-ms]').dataset.ms;
  });
  await page.clock.runFor(REFRESH_MS - 1000);
  await page.waitForTimeout(300);
  check(fetched.length === 0, `phone: the page fetched itself before ${REFRESH_MS / 1000} s`);
  const response = page.waitForResponse((r) => r.url() === page.url(), { timeout: 10_000 });
  await page.clock.runFor(1000);
  const r = await response.catch(() => null);
  if (check(r && r.status() === 200, `phone: no refresh of the page after ${REFRESH_MS / 1000} s`)) {
    await page
      .waitForFunction(() => !document.querySelector('main').dataset.old, null, { timeout: 5000 })
      .catch(() => check(false, 'phone: the refreshed content was not put in place'));
    const after = await page.evaluate(() => ({
      ms: document.querySelector('time[data-ms]').dataset.ms,
      saved: document.querySelector('#saved')?.textContent.trim(),
      utc: [...document.querySelectorAll('time[data-ms]')].filter((e) => e.textContent.endsWith('UTC')).length,
    }));
    check(+after.ms > +before, `phone: the refreshed page is not newer (${after.ms} <= ${before})`);
    check(after.saved === expected, `phone: after the refresh #saved shows ${after.saved}, expected ${expected}`);
    check(after.utc === 0, 'phone: the refreshed page shows UTC times, not local ones');
    check(fetched.length === 1, `phone: ${fetched.length} fetches of the page in one interval`);
  }
  await finish('phone', phone);

  // The gateway unreachable: the page keeps what it showed and says it could not refresh.
  await page.route((u) => u.href === page.url(), (route) => route.abort('connectionrefused'));
  await page.clock.runFor(REFRESH_MS);
  const stale = await page
    .waitForFunction(() => {
      const s = document.getElementById('stale');
      return s && !s.hidden && s.textContent;
    }, null, { timeout: 5000 })
    .then((h) => h.jsonValue())
    .catch(() => null);
  check(stale && stale.includes('Could not refresh'), `phone: a failed refresh is not shown: ${stale}`);
  check(
    (await page.locator('#saved').textContent()) === expected,
    'phone: after a failed refresh the last status is gone',
  );
} catch (e) {
  console.error(`status_page.mjs: could not run: ${e.stack || e}`);
  await browser?.close().catch(() => {});
  process.exit(2);
}
await browser.close();
clearTimeout(guard);
if (failures.length) {
  console.error(`status page: ${failures.length} check(s) failed:\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log(`status page: all checks passed; screenshots ${opt.shots}-phone.png, ${opt.shots}-desktop.png`);
