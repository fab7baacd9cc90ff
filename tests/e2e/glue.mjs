// Test glue: run the unmodified @cloudbase/js-sdk (Node build) against our auth v1 server.
// See SDK_NOTES.md for why each piece is needed.
import { randomBytes, randomInt } from 'node:crypto';

export const ORIGIN = (process.env.AUTH_API_ORIGIN || 'http://127.0.0.1:3000').replace(/\/+$/, '');
export const ENV_ID = process.env.E2E_ENV_ID || 'e2e-env';
export const CODE_SOURCE = process.env.E2E_CODE_SOURCE || 'outbox';
export const MOTO_URL = (process.env.MOTO_URL || 'http://127.0.0.1:5000').replace(/\/+$/, '');

// 1. Never let the SDK (or anything else in the test process) leave the machine. The Node build
//    looks up http://metadata.tencentyun.com before every request; refusing it costs nothing.
const LOOPBACK = /^(127(\.\d{1,3}){3}|localhost|\[::1\])$/;
const realFetch = globalThis.fetch;
globalThis.fetch = function loopbackOnlyFetch(input, init) {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  if (!LOOPBACK.test(url.hostname)) {
    return Promise.reject(new TypeError(`e2e: refused non-loopback request to ${url.origin}`));
  }
  return realFetch(input, init);
};
for (const [name, value] of [['AUTH_API_ORIGIN', ORIGIN], ['MOTO_URL', MOTO_URL]]) {
  if (!LOOPBACK.test(new URL(value).hostname)) throw new Error(`${name} must be a loopback URL, got ${value}`);
}

// 2. Load the SDK, hiding the one line it prints on import about the optional `ws` package.
const quietError = console.error;
console.error = (...args) => { if (!String(args[0]).includes(' ws')) quietError(...args); };
const { default: cloudbase } = await import('@cloudbase/js-sdk');
console.error = quietError;

// 3. The Node build's request class has get/post/put but no patch/delete, which bindEmail,
//    bindPhoneNumber (PATCH /user/contact) and unbindProvider (DELETE) need. Go through
//    `fetch` with an upper-case method: `request()` lower-cases it, and undici sends a literal
//    `patch`, which servers answer with 400/405 and an empty body that the SDK reports as success.
const RequestClass = cloudbase.platform.adapter.reqClass;
RequestClass.prototype.patch ??= function patch(options) { return this.fetch({ ...options, method: 'PATCH' }); };
RequestClass.prototype.delete ??= function del(options) { return this.fetch({ ...options, method: 'DELETE' }); };

// 4. Point the SDK at our server. Only the origin of `url` is used: the SDK then calls
//    <origin>/auth/v1/... . The Node build keeps its session in one process-wide in-memory
//    store, so a test process has one signed-in user at a time.
const { host } = new URL(ORIGIN);
export const app = cloudbase.init({ env: ENV_ID });
app.registerEndPointWithKey({ key: 'GATEWAY', url: `//${host}/v1`, protocol: new URL(ORIGIN).protocol.replace(':', '') });
export const auth = app.auth();

// ---------------------------------------------------------------------------------------------
// Fresh identities, so that runs never collide.

const alnum = 'abcdefghijklmnopqrstuvwxyz0123456789';
export const randomToken = (n = 10) => Array.from(randomBytes(n), (b) => alnum[b % alnum.length]).join('');
export const randomUsername = () => `e2e_${randomToken(12)}`;
export const randomPassword = () => `pw-${randomToken(12)}`;
export const randomEmail = () => `e2e-${randomToken(12)}@example.com`;
/** A mainland mobile number as a person types it with the SDK's format: `+86 139xxxxxxxx`. */
export const randomPhone = () => `+86 139${String(randomInt(0, 1e8)).padStart(8, '0')}`;

// ---------------------------------------------------------------------------------------------
// Plain HTTP, for what the SDK does not do (sign-up with a username) or hides (raw answers).

export async function api(path, { method = 'POST', token, body } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const url = `${ORIGIN}/auth/v1${path}${token ? '' : `${path.includes('?') ? '&' : '?'}client_id=${ENV_ID}`}`;
  let res;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new Error(`${method} ${url} failed (${err.cause?.code ?? err.message}): is the server running at AUTH_API_ORIGIN=${ORIGIN}?`);
  }
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, body: json, text };
}

/** Creates a user by POST /auth/v1/signup {username, password}; returns its credentials. */
export async function signUp(username = randomUsername(), password = randomPassword()) {
  const { status, body, text } = await api('/signup', { body: { username, password } });
  if (status !== 200 || !body?.sub || !body?.access_token) {
    throw new Error(`sign-up of ${username} failed: HTTP ${status} ${text}`);
  }
  return { username, password, sub: body.sub, credentials: body };
}

/** auth.signInWithPassword resolves to {data, error} and never rejects: turn an error into a throw. */
export async function signInWithPassword(params) {
  const res = await auth.signInWithPassword(params);
  if (res.error) throw Object.assign(new Error(`signInWithPassword failed: ${res.error.code} ${res.error.message ?? ''}`), { cause: res.error });
  return res; // {data: {user, session}, error: null}
}

/** Runs fn with the SDK's console chatter (help texts printed on every failed sign-in) muted. */
export async function quietly(fn) {
  const saved = { warn: console.warn, info: console.info, error: console.error, log: console.log };
  Object.assign(console, { warn() {}, info() {}, error() {}, log() {} });
  try { return await fn(); } finally { Object.assign(console, saved); }
}

export async function signOutQuietly() {
  await auth.signOut(); // resolves {data, error}; an error just means nobody was signed in
}

// ---------------------------------------------------------------------------------------------
// Reading the verification codes our server sent.

const normaliseEmail = (s) => String(s).trim().toLowerCase();
function normalisePhone(s) {
  const compact = String(s).replace(/[\s()-]/g, '');
  return compact.startsWith('+') ? compact : `+86${compact}`;
}
const normaliseAddress = (channel, s) => (channel === 'email' ? normaliseEmail(s) : normalisePhone(s));

const stripHtml = (s) => String(s ?? '').replace(/<[^>]*>/g, ' ').replace(/&nbsp;/g, ' ');
function findCode(text) {
  const match = /(?<![#\d])(\d{6})(?!\d)/.exec(stripHtml(text));
  return match ? match[1] : undefined;
}
/** A raw MIME message: decode each part (base64, quoted-printable or plain) and search it. */
function findCodeInMime(raw) {
  const parts = String(raw).split(/^--[^\r\n]*$/m); // the whole message, then each multipart part
  for (const part of parts.length > 1 ? parts.slice(1) : parts) {
    const [head, ...rest] = part.replace(/^\r?\n/, '').split(/\r?\n\r?\n/);
    let body = rest.join('\n\n');
    const encoding = /content-transfer-encoding:\s*([\w-]+)/i.exec(head)?.[1]?.toLowerCase();
    if (encoding === 'base64') body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    if (encoding === 'quoted-printable') {
      body = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16)));
    }
    const code = findCode(body);
    if (code) return code;
  }
  return undefined;
}

async function getJson(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res.json();
}

/** Messages sent to `to` on `channel` ('email' | 'sms'), oldest first, as {code, text}. */
async function sentMessages(channel, to) {
  const want = normaliseAddress(channel, to);
  if (CODE_SOURCE === 'outbox') {
    const outbox = await getJson(`${ORIGIN}/_dev/outbox`);
    return outbox
      .filter((m) => m.channel === channel && normaliseAddress(channel, m.to) === want)
      .map((m) => ({ code: m.code ?? findCode(m.body), text: `${m.subject ?? ''}\n${m.body ?? ''}` }));
  }
  if (CODE_SOURCE === 'moto') {
    const data = await getJson(`${MOTO_URL}/moto-api/data.json`);
    if (channel === 'sms') {
      return (data.sns?.SMS ?? [])
        .filter((m) => normalisePhone(m.phone_number) === want)
        .map((m) => ({ code: findCode(m.message), text: m.message }));
    }
    // SES v1 and v2 SendEmail both land in `ses`: simple content in Message, raw MIME in RawMessage.
    const simple = (data.ses?.Message ?? [])
      .filter((m) => ['ToAddresses', 'CcAddresses', 'BccAddresses']
        .some((k) => (m.destinations?.[k] ?? []).some((a) => normaliseEmail(a) === want)))
      .map((m) => ({ code: findCode(`${m.subject ?? ''}\n${m.body ?? ''}`), text: `${m.subject}\n${m.body}` }));
    const raw = (data.ses?.RawMessage ?? [])
      .filter((m) => (m.destinations ?? []).some((a) => normaliseEmail(a) === want))
      .map((m) => ({ code: findCodeInMime(m.raw_data), text: m.raw_data }));
    return [...simple, ...raw];
  }
  throw new Error(`E2E_CODE_SOURCE must be "outbox" or "moto", got "${CODE_SOURCE}"`);
}

/**
 * The 6-digit code most recently sent to `to` ('email': an address; 'sms': a phone number in
 * any usual form). Waits up to `timeoutMs` for one to appear. Each test uses fresh addresses,
 * so "most recent" is the one the test asked for.
 */
export async function latestCode(channel, to, { timeoutMs = 5000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const messages = await sentMessages(channel, to);
    const last = messages.at(-1);
    if (last?.code) return last.code;
    if (last) throw new Error(`no 6-digit code in the ${channel} sent to ${to}: ${last.text}`);
    if (Date.now() > deadline) throw new Error(`no ${channel} was sent to ${to} (source: ${CODE_SOURCE})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
