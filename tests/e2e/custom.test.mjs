// End-to-end: custom-login tickets (issue 25). The app's backend mints them with the real
// @cloudbase/node-sdk (`app.auth().createTicket(uid)`), the page signs in with the real
// js-sdk (`auth.signInWithCustomTicket(getTicket)`). The key pair and the credentials file
// come from the Rust side (tests/sdk_e2e.rs), made by the README's openssl commands; the
// server holds the public half in AUTH_CUSTOM_LOGIN_KEYS.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import {
  auth, api, ENV_ID, randomToken, randomEmail, latestCode, signOutQuietly, quietly,
} from './glue.mjs';

const T = { timeout: 30_000 };
const require = createRequire(import.meta.url);

if (!process.env.E2E_CUSTOM_CREDENTIALS) throw new Error('E2E_CUSTOM_CREDENTIALS (the credentials file node-sdk reads) is not set');
const credentials = JSON.parse(process.env.E2E_CUSTOM_CREDENTIALS);

// Minting must not need the network: every socket opened while node-sdk loads, initialises
// and mints is recorded, and the tests check there was none.
const opened = [];
const realConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function recordingConnect(...args) {
  opened.push(args[0]?.host ?? args[1] ?? String(args[0]));
  return realConnect.apply(this, args);
};
const tcb = require('@cloudbase/node-sdk');
const backend = tcb.init({ env: ENV_ID, credentials });
/** The app's backend: a ticket for its own user id, as `createTicket` mints it. */
const mint = (uid, options) => backend.auth().createTicket(uid, options);
/** Another backend's credentials: the same key id, another private key. */
const forger = tcb.init({
  env: ENV_ID,
  credentials: {
    ...credentials,
    private_key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
  },
});
const firstTicket = mint('probe-no-network');
net.Socket.prototype.connect = realConnect;

const uid = () => `emp_${randomToken(12)}`;

/** Signs in with the SDK by a ticket the backend mints on demand; answers the user's sub. */
async function signInWithTicket(ticket) {
  const res = await auth.signInWithCustomTicket(async () => ticket);
  if (res?.error) throw Object.assign(new Error(`signInWithCustomTicket failed: ${res.error.code ?? res.error.error}`), { cause: res.error });
  const { data } = await auth.getUser();
  return data.user.id;
}

async function refused(ticket) {
  return api('/signin/custom', { body: { provider_id: 'custom', ticket } });
}

beforeEach(signOutQuietly);

test('node-sdk mints tickets in the documented format without touching the network', T, async () => {
  assert.deepEqual(opened, []);
  const [keyId, jwt] = firstTicket.split('/@@/');
  assert.equal(keyId, credentials.private_key_id);
  const [header, payload] = jwt.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url')));
  assert.deepEqual(header, { alg: 'RS256', typ: 'JWT' });
  assert.equal(payload.env, ENV_ID);
  assert.equal(payload.uid, 'probe-no-network');
  assert.equal(payload.exp - payload.iat, 10 * 60 * 1000, 'milliseconds');
});

test('signInWithCustomTicket: the same uid lands in the same account, another uid in another', T, async () => {
  const alice = uid();
  const sub = await signInWithTicket(mint(alice));
  const me = await api('/user/me', { method: 'GET', token: (await auth.getCredentials()).access_token });
  assert.deepEqual(me.body.providers, [{ id: 'custom', provider_user_id: alice, name: '' }]);
  await signOutQuietly();
  // A millisecond later: another ticket (two minted in the same millisecond are one ticket).
  await new Promise((resolve) => setTimeout(resolve, 2));
  assert.equal(await signInWithTicket(mint(alice)), sub);
  await signOutQuietly();
  const other = await signInWithTicket(mint(uid()));
  assert.notEqual(other, sub);
});

test('a ticket signs in once: presented again it is refused', T, async () => {
  const ticket = mint(uid());
  await signInWithTicket(ticket);
  await signOutQuietly();
  const again = await refused(ticket);
  assert.equal(again.status, 400);
  assert.equal(again.body.error, 'invalid_grant');
  const viaSdk = await quietly(() => auth.signInWithCustomTicket(async () => ticket));
  assert.ok(viaSdk?.error, 'the SDK reports the refusal');
  assert.equal(await auth.getLoginState(), null);
});

test('forged, foreign, expired and malformed tickets are refused', T, async () => {
  const victim = uid();
  const genuine = mint(victim);
  const [keyId, jwt] = genuine.split('/@@/');
  const [header, payload, signature] = jwt.split('.');
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const claims = JSON.parse(Buffer.from(payload, 'base64url'));
  const foreignEnv = tcb.init({ env: 'another-env', credentials: { ...credentials, env_id: 'another-env' } });
  const cases = [
    ['signed by another private key', forger.auth().createTicket(victim)],
    ['an unknown private_key_id', `unknown-key/@@/${jwt}`],
    ['another environment', foreignEnv.auth().createTicket(victim)],
    ['its login already expired', mint(victim, { expire: Date.now() - 1000 })],
    ['expired', `${keyId}/@@/${header}.${b64({ ...claims, iat: claims.iat - 3_600_000, exp: claims.iat - 1 })}.${signature}`],
    ['alg none', `${keyId}/@@/${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`],
    ['alg none, with the signature', `${keyId}/@@/${b64({ alg: 'none', typ: 'JWT' })}.${payload}.${signature}`],
    ['alg HS256', `${keyId}/@@/${b64({ alg: 'HS256', typ: 'JWT' })}.${payload}.${signature}`],
    ['no /@@/', jwt],
    ['not a JWT', `${keyId}/@@/hello`],
    ['huge', `${keyId}/@@/${header}.${'A'.repeat(20_000)}.${signature}`],
  ];
  for (const [what, ticket] of cases) {
    const answer = await refused(ticket);
    assert.ok([400, 413].includes(answer.status), `${what}: ${answer.status} ${answer.text}`);
    assert.ok(['invalid_grant', 'invalid_argument'].includes(answer.body?.error), `${what}: ${answer.text}`);
  }
  // None of them made the account: the genuine ticket is its first.
  const sub = await signInWithTicket(genuine);
  const me = await api('/user/me', { method: 'GET', token: (await auth.getCredentials()).access_token });
  assert.equal(me.body.sub, sub);
  assert.equal(new Date(me.body.created_at) > new Date(Date.now() - 60_000), true);
});

test('a custom-login account binds an email like any other and signs in by it', T, async () => {
  const sub = await signInWithTicket(mint(uid(), { refresh: 10 * 60 * 1000 }));
  // The ticket's `refresh` (ten minutes) is the access token's life.
  const access = (await auth.getCredentials()).access_token;
  const { iat, exp } = JSON.parse(Buffer.from(access.split('.')[1], 'base64url'));
  assert.equal(exp - iat, 600);
  const email = randomEmail();
  const { data, error } = await auth.updateUser({ email });
  assert.equal(error, null);
  const updated = await data.verifyOtp({ email, token: await latestCode('email', email) });
  assert.equal(updated.error, null);
  assert.equal(updated.data.user.id, sub);
  assert.equal(updated.data.user.email, email);
  await signOutQuietly();
  const again = await auth.signInWithOtp({ email });
  const signedIn = await again.data.verifyOtp({ token: await latestCode('email', email) });
  assert.equal(signedIn.data.user.id, sub);
});
