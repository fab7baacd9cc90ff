// local-api's console in a real browser: Debian's chromium, headless, driven by playwright-core
// (no browser download). Run by tests/console.rs against a local-api it started:
//   CONSOLE_ORIGIN=http://127.0.0.1:PORT CHROMIUM=/usr/bin/chromium [SCREENSHOTS=dir] node --test
// Every page is watched: a console error, an uncaught exception, a dialog, a request that
// fails or answers 4xx/5xx, or a request off this machine fails the test that caused it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const ORIGIN = (process.env.CONSOLE_ORIGIN || '').replace(/\/+$/, '');
const SCREENSHOTS = process.env.SCREENSHOTS || '';
const LOOPBACK = /^http:\/\/(127(\.\d{1,3}){3}|localhost)(:\d+)?\//;
const T = { timeout: 90_000 };

let browser;
before(async () => {
  assert.match(ORIGIN, /^http:\/\/127\.0\.0\.1:\d+$/, 'CONSOLE_ORIGIN must be local-api on loopback');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // As root in a sandbox without a network: no setuid sandbox, and none of the background
    // connections a closed network refuses.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  if (SCREENSHOTS) mkdirSync(SCREENSHOTS, { recursive: true });
});
after(() => browser?.close());

const unique = (prefix) => `${prefix}${randomBytes(5).toString('hex')}`;

/** A new page in a fresh context, and the list of everything that went wrong on it. */
async function watchedPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('dialog', (d) => { problems.push(`a dialog opened: ${d.message()}`); d.dismiss(); });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
  page.on('request', (r) => { if (!LOOPBACK.test(r.url()) && !r.url().startsWith('data:')) problems.push(`left the machine: ${r.url()}`); });
  return { page, problems, close: () => context.close() };
}

async function api(path, body, token) {
  const headers = { 'content-type': 'text/plain;charset=UTF-8' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${ORIGIN}/auth/v1${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  return res.json();
}

async function screenshot(page, name) {
  if (SCREENSHOTS) await page.screenshot({ path: `${SCREENSHOTS}/${name}.png` });
}

test('each view is one labelled click from / and no page logs an error', T, async () => {
  const { page, problems, close } = await watchedPage();
  await page.goto(`${ORIGIN}/`);
  await page.getByRole('heading', { level: 1, name: 'Accounts' }).waitFor();
  for (const [link, heading] of [['Messages', 'Messages'], ['Try it', 'Try it'], ['Accounts', 'Accounts']]) {
    await page.getByRole('navigation').getByRole('link', { name: link, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor();
    assert.equal(await page.locator('nav a[aria-current="page"]').innerText(), link);
    await page.waitForTimeout(1200); // a poll or two
  }
  await close();
  assert.deepEqual(problems, []);
});

test('an account created through the API appears in the list with its addresses, WeChat and sessions', T, async () => {
  const username = unique('console_');
  const name = `Ada ${unique('')}`;
  const signup = await api('/signup', { username, password: 'correct horse battery', name });
  assert.ok(signup.sub, JSON.stringify(signup));
  await api('/signin', { username, password: 'correct horse battery' });
  // The WeChat fake vouches for `unionid-<name>` when given the code `ok:<name>`.
  const wechat = unique('wx');
  const grant = await api('/provider/token', { provider_id: 'wx_open', provider_code: `ok:${wechat}` });
  assert.ok(grant.provider_token, JSON.stringify(grant));
  assert.deepEqual(await api('/user/provider/bind', { provider_token: grant.provider_token }, signup.access_token), {});

  const { page, problems, close } = await watchedPage();
  await page.goto(`${ORIGIN}/`);
  const card = page.locator(`article[data-sub="${signup.sub}"]`);
  await card.waitFor({ timeout: 5000 });
  const text = await card.innerText();
  for (const expected of [username, name, signup.sub, `wx_open: unionid-${wechat} (${wechat})`, 'Live sessions (2)', 'signed in', 'expires']) {
    assert.ok(text.includes(expected), `the card lacks ${expected}:\n${text}`);
  }
  // Filtering by an identifier keeps the account and drops the others.
  await page.fill('#filter', signup.sub.slice(4, 20));
  await page.waitForFunction(() => document.querySelectorAll('article.account').length === 1);
  assert.equal(await page.locator('article.account').getAttribute('data-sub'), signup.sub);
  await page.fill('#filter', '');
  await page.waitForTimeout(300);
  await screenshot(page, 'accounts');
  await close();
  assert.deepEqual(problems, []);
});

test('a code sent appears in Messages within two seconds, without a reload, as six digits', T, async () => {
  const { page, problems, close } = await watchedPage();
  await page.goto(`${ORIGIN}/_dev/messages`);
  await page.locator('.status', { hasText: 'polls the outbox every second' }).waitFor();
  let loads = 0;
  page.on('load', () => { loads += 1; });

  const email = `${unique('console-')}@example.com`;
  const answer = await api('/verification', { email });
  assert.ok(answer.verification_id, JSON.stringify(answer));
  const sent = Date.now();
  const message = page.locator(`li.message[data-to="${email}"]`);
  await message.waitFor({ timeout: 2000 });
  const seenAfter = Date.now() - sent;
  assert.ok(seenAfter <= 2000, `the message took ${seenAfter} ms`);
  assert.equal(loads, 0, 'the page reloaded');

  const code = (await message.locator('.code').innerText()).trim();
  assert.match(code, /^\d{6}$/);
  const outbox = await (await fetch(`${ORIGIN}/_dev/outbox`)).json();
  assert.equal(outbox.filter((m) => m.to === email).at(-1).code, code);
  // Newest first.
  assert.equal(await page.locator('li.message').first().getAttribute('data-to'), email);
  await screenshot(page, 'messages');

  await page.getByRole('button', { name: 'Empty the outbox' }).click();
  await page.locator('li.empty').waitFor({ timeout: 2000 });
  assert.deepEqual(await (await fetch(`${ORIGIN}/_dev/outbox`)).json(), []);
  await close();
  assert.deepEqual(problems, []);
});

/** Runs the Try it flow on an open Try it page; answers the sub it reports. */
async function runSeedFlow(page) {
  await page.getByRole('button', { name: 'Run the seed flow' }).click();
  await page.locator('#outcome[data-outcome]').waitFor({ timeout: 60_000 });
  const outcome = await page.getAttribute('#outcome', 'data-outcome');
  const steps = await page.locator('#steps').innerText();
  assert.equal(outcome, 'same-sub', `${await page.innerText('#outcome')}\n${steps}`);
  for (const call of ['auth.sudo', 'auth.getVerification', 'auth.verify', 'auth.bindEmail', 'auth.bindPhoneNumber', 'auth.signInWithPassword', 'auth.getUserInfo']) {
    assert.ok(steps.includes(call), `no ${call} step shown:\n${steps}`);
  }
  assert.equal(await page.locator('li.step.failed').count(), 0);
  return page.getAttribute('#outcome', 'data-sub');
}

async function assertBoundAccount(sub) {
  const accounts = await (await fetch(`${ORIGIN}/_dev/accounts`)).json();
  const account = accounts.find((a) => a.sub === sub);
  assert.ok(account?.email && account?.phone_number, `account ${sub} is not bound: ${JSON.stringify(account)}`);
}

test('Try it completes the seed flow with the same sub, as served', T, async () => {
  const { page, problems, close } = await watchedPage();
  await page.goto(`${ORIGIN}/_dev/try`);
  const sub = await runSeedFlow(page);
  await assertBoundAccount(sub);
  await screenshot(page, 'try-it');
  await close();
  assert.deepEqual(problems, []);
});

test('Try it completes the seed flow from a second loopback origin, through CORS', T, async () => {
  // An app's origin: the page and its scripts served from another port, calling local-api.
  const copies = new Map();
  for (const path of ['/_dev/try', '/_dev/try.js', '/_dev/console.js', '/_dev/console.css', '/_dev/cloudbase-sdk.js']) {
    const res = await fetch(`${ORIGIN}${path}`);
    assert.equal(res.status, 200, path);
    copies.set(path, { type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) });
  }
  const app = http.createServer((req, res) => {
    const copy = copies.get(new URL(req.url, 'http://x').pathname);
    res.writeHead(copy ? 200 : 404, { 'content-type': copy?.type || 'text/plain' });
    res.end(copy?.body || 'not found');
  });
  await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));
  const appOrigin = `http://127.0.0.1:${app.address().port}`;
  try {
    const { page, problems, close } = await watchedPage();
    const crossOrigin = [];
    page.on('request', (r) => { if (r.url().startsWith(`${ORIGIN}/auth/v1/`)) crossOrigin.push(r.method()); });
    await page.goto(`${appOrigin}/_dev/try?api=${encodeURIComponent(ORIGIN)}`);
    assert.ok((await page.innerText('main')).includes(`API: ${ORIGIN}/auth/v1`));
    const sub = await runSeedFlow(page);
    await assertBoundAccount(sub);
    assert.ok(crossOrigin.length >= 8, `too few calls from ${appOrigin} to the API: ${crossOrigin}`);
    await screenshot(page, 'try-it-second-origin');
    await close();
    assert.deepEqual(problems, []);
  } finally {
    app.close();
  }
});

test('a hostile profile name and address show as their characters and run nothing', T, async () => {
  const hostile = '<img src=x onerror=alert(1)>';
  const username = unique('hostile_');
  const signup = await api('/signup', { username, password: 'correct horse battery', name: hostile });
  assert.ok(signup.sub, JSON.stringify(signup));

  const { page, problems, close } = await watchedPage();
  const offsite = [];
  page.on('request', (r) => { if (/\/x$/.test(r.url())) offsite.push(r.url()); });
  await page.goto(`${ORIGIN}/`);
  const card = page.locator(`article[data-sub="${signup.sub}"]`);
  await card.waitFor({ timeout: 5000 });
  assert.ok((await card.innerText()).includes(hostile), await card.innerText());
  assert.equal(await page.locator('main img').count(), 0);
  await page.fill('#filter', '<img src=x');
  await page.waitForFunction((sub) => document.querySelectorAll('article.account').length >= 1
    && document.querySelector(`article[data-sub="${sub}"]`), signup.sub);
  assert.equal(await page.locator('main img').count(), 0);
  await page.waitForTimeout(500);
  await screenshot(page, 'hostile-name');

  // An address with every markup-ish character an email may carry shows as typed in Messages.
  const address = `o'brien&{x}=1/${unique('')}@example.com`;
  assert.ok((await api('/verification', { email: address })).verification_id);
  await page.goto(`${ORIGIN}/_dev/messages`);
  const message = page.locator('li.message').filter({ hasText: address });
  await message.waitFor({ timeout: 3000 });
  assert.equal(await message.locator('.to').innerText(), address);
  assert.equal(await message.getAttribute('data-to'), address);
  await close();
  assert.deepEqual(offsite, [], 'the name was parsed as markup');
  assert.deepEqual(problems, []);
});
