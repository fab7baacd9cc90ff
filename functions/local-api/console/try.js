// Try it: the seed documents' flow, run by the browser build of the unmodified
// @cloudbase/js-sdk against this server (or the one `?api=` names), each call and its answer
// shown as it happens.
import * as sdk from './cloudbase-sdk.js';
import { el, json, view } from './console.js';

const api = new URL(new URLSearchParams(location.search).get('api') || location.origin).origin;
const main = view('Try it', 'The seed documents’ code, run by the unmodified CloudBase JavaScript SDK (3.7.0, browser build) against this server: sign up and sign in, sudo, send a code, take it from the outbox, verify, bind an email and a phone number, then sign in again by each bound address and compare the account id.');

const settings = await json(`${api}/_dev/settings`);
if (!sdk.default) {
  main.append(el('p', { class: 'note problem', id: 'sdk-missing', text: sdk.unavailable }));
} else if (!settings.outbox) {
  main.append(el('p', { class: 'note', id: 'no-outbox', text: `Try it reads the codes it sends from the outbox, and ${api} delivers through SES and SNS (AUTH_DELIVERY=aws), so it keeps none. Run local-api without AUTH_DELIVERY to try the flow.` }));
} else {
  const random = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => 'abcdefghijkmnpqrstuvwxyz23456789'[b % 32]).join('');
  const digits = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b % 10).join('');
  const input = (id, label, value) => el('p', { class: 'input' },
    el('label', { for: id, text: label }), el('input', { id, value, autocomplete: 'off', spellcheck: 'false' }));
  const form = el('form', { id: 'seed-flow' },
    input('username', 'Username', `try_${random(8)}`),
    input('password', 'Password', `pw-${random(12)}`),
    input('email', 'Email to bind', `try-${random(8)}@example.com`),
    input('phone', 'Phone number to bind', `+86 139${digits(8)}`),
    el('button', { type: 'submit', id: 'run', text: 'Run the seed flow' }));
  const steps = el('ol', { id: 'steps' });
  const outcome = el('p', { id: 'outcome', role: 'status' });
  main.append(el('p', { class: 'explain', text: `API: ${api}/auth/v1` }), form, outcome, steps);

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run(Object.fromEntries(['username', 'password', 'email', 'phone'].map((id) => [id, document.getElementById(id).value.trim()])));
  });

  /** A value as JSON; the SDK's answers may hold functions, DOM objects and cycles, which
   *  a reader has no use for. */
  function shown(value) {
    const seen = new WeakSet();
    return JSON.stringify(value ?? null, (key, v) => {
      if (typeof v === 'function') return undefined;
      if (v && typeof v === 'object') {
        const plain = Array.isArray(v) || [Object.prototype, null].includes(Object.getPrototypeOf(v));
        if (!plain || seen.has(v)) return undefined;
        seen.add(v);
      }
      return v;
    }, 2);
  }

  /** One call: shown before it runs, its JSON answer (or failure) once it settles. */
  async function step(call, action) {
    const answer = el('pre', { class: 'answer', text: '…' });
    const item = el('li', { class: 'step running' }, el('code', { class: 'call', text: call }), answer);
    steps.append(item);
    try {
      const value = await action();
      answer.textContent = shown(value);
      item.className = 'step done';
      return value;
    } catch (err) {
      answer.textContent = err.answer ? shown(err.answer) : String(err.message || err);
      item.className = 'step failed';
      throw err;
    }
  }

  /** A v3 SDK call resolves {data, error}; a failure becomes a throw carrying the answer. */
  function settled(result) {
    if (result?.error) throw Object.assign(new Error(result.error.message || result.error.code), { answer: result });
    return result;
  }

  /** The code the outbox holds for `to`, sent after the message numbered `after`. */
  async function codeFor(to, after) {
    const wanted = to.replace(/\s+/g, '').toLowerCase();
    for (let tries = 0; tries < 50; tries += 1) {
      const messages = await json(`${api}/_dev/outbox`);
      const found = messages.filter((m) => m.id > after && m.to.toLowerCase() === wanted && m.code).at(-1);
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no code to ${to} reached the outbox`);
  }

  async function lastOutboxId() {
    return (await json(`${api}/_dev/outbox`)).at(-1)?.id ?? 0;
  }

  async function run({ username, password, email, phone }) {
    const button = document.getElementById('run');
    button.disabled = true;
    steps.replaceChildren();
    outcome.textContent = 'Running…';
    outcome.className = '';
    delete outcome.dataset.outcome;
    try {
      const { host, protocol } = new URL(api);
      const app = sdk.default.init({ env: 'local-console' });
      app.registerEndPointWithKey({ key: 'GATEWAY', url: `//${host}/v1`, protocol: protocol.replace(':', '') });
      const auth = app.auth();
      const account = await step(`POST /auth/v1/signup {username: "${username}", password} (plain HTTP: the SDK signs up by code only)`, async () => {
        const response = await fetch(`${api}/auth/v1/signup?client_id=local-console`, {
          method: 'POST', body: JSON.stringify({ username, password }),
        });
        const body = await response.json();
        if (body.error) throw Object.assign(new Error(body.error_description), { answer: body });
        return { sub: body.sub, token_type: body.token_type, expires_in: body.expires_in };
      });
      await step(`auth.signInWithPassword({username: "${username}", password})`, async () => settled(await auth.signInWithPassword({ username, password })).data.user);
      const sudo_token = await step('auth.sudo({password})', () => auth.sudo({ password }));

      async function bind(kind, address) {
        const field = kind === 'email' ? 'email' : 'phone_number';
        const after = await lastOutboxId();
        const verification = await step(`auth.getVerification({${field}: "${address}"})`, () => auth.getVerification({ [field]: address }));
        const message = await step(`GET /_dev/outbox (the ${kind === 'email' ? 'email' : 'SMS'} to ${address})`, () => codeFor(address, after));
        const verified = await step(`auth.verify({verification_id, verification_code: "${message.code}"})`, () => auth.verify({
          verification_id: verification.verification_id, verification_code: message.code,
        }));
        const bindCall = kind === 'email' ? 'bindEmail' : 'bindPhoneNumber';
        await step(`auth.${bindCall}({sudo_token, ${field}: "${address}", verification_token})`, () => auth[bindCall]({
          sudo_token, [field]: address, verification_token: verified.verification_token,
        }));
      }
      await bind('email', email);
      await bind('phone', phone);

      const subs = [];
      for (const [key, address] of [['email', email], ['phone', phone]]) {
        await step('auth.signOut()', async () => settled(await auth.signOut()).data);
        await step(`auth.signInWithPassword({${key}: "${address}", password})`, async () => settled(await auth.signInWithPassword({ [key]: address, password })).data.user);
        const me = await step('auth.getUserInfo()', () => auth.getUserInfo());
        subs.push(me.sub);
      }
      const same = subs.every((sub) => sub === account.sub);
      outcome.textContent = same
        ? `Same account: signed in by username, email and phone, the sub is ${account.sub} every time.`
        : `Different accounts: sign-up gave ${account.sub}, the bound addresses gave ${subs.join(' and ')}.`;
      outcome.className = same ? 'success' : 'problem';
      outcome.dataset.outcome = same ? 'same-sub' : 'different-sub';
      outcome.dataset.sub = account.sub;
    } catch (err) {
      outcome.textContent = `The flow stopped: ${err.message}`;
      outcome.className = 'problem';
      outcome.dataset.outcome = 'failed';
    } finally {
      button.disabled = false;
    }
  }
}
