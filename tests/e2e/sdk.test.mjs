// End-to-end: the unmodified @cloudbase/js-sdk against our auth v1 server.
//   AUTH_API_ORIGIN=http://127.0.0.1:3000 E2E_CODE_SOURCE=outbox node --test
// The tests share one SDK instance (the Node build keeps one session per process), so they run
// one after another, each starting signed out.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  auth, api, signUp, signInWithPassword, signOutQuietly, quietly, latestCode,
  randomEmail, randomPhone, randomToken,
} from './glue.mjs';

const T = { timeout: 30_000 };

beforeEach(signOutQuietly);

test('a user signs in with username and password and reads their own profile', T, async () => {
  const user = await signUp();

  const { error, data } = await auth.signInWithPassword({ username: user.username, password: user.password });
  assert.equal(error, null);
  assert.equal(data.user.id, user.sub);

  const info = await auth.getUserInfo();
  assert.equal(info.sub, user.sub);
  assert.equal(info.username, user.username);
});

test('a wrong password is refused with invalid_username_or_password', T, async () => {
  const user = await signUp();

  const { error } = await quietly(() => auth.signInWithPassword({ username: user.username, password: `${user.password}x` }));
  assert.equal(error?.code, 'invalid_username_or_password');
  assert.equal(await auth.getUserInfo(), null);
});

test('signing out revokes the access token the SDK held', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const { access_token } = await auth.getCredentials();

  const { error } = await auth.signOut();
  assert.equal(error, null);

  const me = await api('/user/me', { method: 'GET', token: access_token });
  assert.equal(me.status, 401);
  assert.equal(me.body?.error, 'unauthenticated');
});

test('binding an email as the seed documents show lets the user sign in with email and password', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });

  // --- as written in the seed documents ---
  const password = user.password;
  const sudo_token = await auth.sudo({
    password: password,
  });
  const email = randomEmail();
  const verification = await auth.getVerification({
    email: email,
  });
  const verificationCode = await latestCode('email', email);
  const verificationTokenRes = await auth.verify({
    verification_id: verification.verification_id,
    verification_code: verificationCode,
  });
  const verification_token = verificationTokenRes.verification_token;
  await auth.bindEmail({
    sudo_token: sudo_token,
    email: email,
    verification_token: verification_token,
  });
  // ----------------------------------------

  await signOutQuietly();
  const { data } = await signInWithPassword({ email, password: user.password });
  assert.equal(data.user.id, user.sub);
  const info = await auth.getUserInfo();
  assert.equal(info.sub, user.sub);
  assert.equal(info.email, email);
});

test('binding a phone number as the seed documents show lets the user sign in with it', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });

  // --- as written in the seed documents ---
  const password = user.password;
  const sudo_token = await auth.sudo({
    password: password,
  });
  const phoneNumber = randomPhone(); // "+86 139xxxxxxxx"
  const verification = await auth.getVerification({
    phone_number: phoneNumber,
  });
  const verificationCode = await latestCode('sms', phoneNumber);
  const verificationTokenRes = await auth.verify({
    verification_id: verification.verification_id,
    verification_code: verificationCode,
  });
  const verification_token = verificationTokenRes.verification_token;
  await auth.bindPhoneNumber({
    sudo_token: sudo_token,
    phone_number: phoneNumber,
    verification_token: verification_token,
  });
  // ----------------------------------------

  await signOutQuietly();
  const { data } = await signInWithPassword({ username: phoneNumber, password: user.password });
  assert.equal(data.user.id, user.sub);
  const info = await auth.getUserInfo();
  assert.equal(info.sub, user.sub);
  assert.equal(info.phone_number, phoneNumber);
});

test('a phone number typed without country code is bound as +86 and signs in', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const sudo = await auth.sudo({ password: user.password });
  const typed = randomPhone().replace('+86 ', ''); // "139xxxxxxxx"

  // getVerification sends "+86 139xxxxxxxx"; bindPhoneNumber sends "139xxxxxxxx" as typed.
  const verification = await auth.getVerification({ phone_number: typed });
  const { verification_token } = await auth.verify({
    verification_id: verification.verification_id,
    verification_code: await latestCode('sms', `+86${typed}`),
  });
  await auth.bindPhoneNumber({ sudo_token: sudo.sudo_token, phone_number: typed, verification_token });

  await signOutQuietly();
  const { data } = await signInWithPassword({ phone: typed, password: user.password });
  assert.equal(data.user.id, user.sub);
  assert.equal((await auth.getUserInfo()).phone_number, `+86 ${typed}`);
});

test('a wrong verification code is surfaced as invalid_verification_code and the right one still works', T, async () => {
  const email = randomEmail();
  const verification = await auth.getVerification({ email });
  const code = await latestCode('email', email);
  const wrong = String((Number(code) + 1) % 1e6).padStart(6, '0');

  // The SDK rejects with the server's body: {error, error_description, requestId}.
  await assert.rejects(
    auth.verify({ verification_id: verification.verification_id, verification_code: wrong }),
    (err) => {
      assert.equal(err.error, 'invalid_verification_code');
      assert.equal(typeof err.error_description, 'string');
      return true;
    },
  );

  const res = await auth.verify({ verification_id: verification.verification_id, verification_code: code });
  assert.equal(typeof res.verification_token, 'string');
});

test('a bound WeChat identity signs in to the same account, and no second account can bind it', T, async () => {
  const wechat = { provider_id: 'wx_open', provider_code: `ok:${randomToken(12)}` };
  const owner = await signUp();
  await signInWithPassword({ username: owner.username, password: owner.password });

  const granted = await auth.grantProviderToken(wechat);
  assert.equal(typeof granted.provider_token, 'string');
  await auth.bindWithProvider({ provider_token: granted.provider_token });
  const { data: providers } = await auth.getProviders();
  assert.ok(providers.some((p) => p.id === 'wx_open' && p.bind), JSON.stringify(providers));

  await signOutQuietly();
  const again = await auth.grantProviderToken(wechat);
  await auth.signInWithProvider({ provider_token: again.provider_token });
  assert.equal((await auth.getUserInfo()).sub, owner.sub);

  await signOutQuietly();
  const other = await signUp();
  await signInWithPassword({ username: other.username, password: other.password });
  const third = await auth.grantProviderToken(wechat);
  await assert.rejects(auth.bindWithProvider({ provider_token: third.provider_token }), { error: 'already_exists' });
});

test('an invalid WeChat code is refused when granting a provider token', T, async () => {
  await assert.rejects(
    auth.grantProviderToken({ provider_id: 'wx_open', provider_code: `bad:${randomToken()}` }),
    { error: 'invalid_argument' },
  );
});

test('after unbinding WeChat, signing in with it finds no account', T, async () => {
  const wechat = { provider_id: 'wx_open', provider_code: `ok:${randomToken(12)}` };
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  await auth.bindWithProvider({ provider_token: (await auth.grantProviderToken(wechat)).provider_token });

  await auth.unbindProvider({ provider_id: 'wx_open' });
  const { data: providers } = await auth.getProviders();
  assert.ok(!providers.some((p) => p.id === 'wx_open' && p.bind), JSON.stringify(providers));

  await signOutQuietly();
  const { provider_token } = await auth.grantProviderToken(wechat);
  await assert.rejects(auth.signInWithProvider({ provider_token }), { error: 'not_found' });
});

test('the SDK refreshes an expired session; the old token gets the same successor within the grace, then is refused', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const before = await auth.getCredentials();

  // Make the stored access token look expired; the SDK then calls POST /auth/v1/token.
  await auth.setCredentials({ ...before, expires_at: new Date(Date.now() - 1000) });
  const after = await auth.getCredentials();
  assert.notEqual(after.access_token, before.access_token);
  assert.notEqual(after.refresh_token, before.refresh_token);
  assert.ok(after.expires_at > new Date(), 'new credentials are not expired');

  const sudo = await auth.sudo({ password: user.password }); // a signed-in call with the new token
  assert.equal(typeof sudo.sudo_token, 'string');

  // Another tab still holding the old token, moments later, gets the same successor...
  const retry = { grant_type: 'refresh_token', refresh_token: before.refresh_token };
  const sibling = await api('/token', { body: retry });
  assert.equal(sibling.status, 200, JSON.stringify(sibling.body));
  assert.equal(sibling.body.refresh_token, after.refresh_token);

  // ...but after the grace the old token is a replay, and is refused.
  const graceSecs = Number(process.env.E2E_REFRESH_GRACE_SECS);
  assert.ok(graceSecs > 0, 'E2E_REFRESH_GRACE_SECS is set');
  await new Promise((resolve) => setTimeout(resolve, graceSecs * 1000 + 1200));
  const reuse = await api('/token', { body: retry });
  assert.equal(reuse.body?.error, 'invalid_grant');
  assert.equal(reuse.status, 400);
});
