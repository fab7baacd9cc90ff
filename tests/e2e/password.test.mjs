// End-to-end: changing, resetting and revoking with the unmodified @cloudbase/js-sdk, as an app
// developer calls it. Another device of the same user is a raw sign-in through `api()`: the
// Node build keeps one session per process.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  auth, api, signUp, signInWithPassword, signOutQuietly, quietly, latestCode,
  randomEmail, randomPhone, randomPassword,
} from './glue.mjs';

const T = { timeout: 30_000 };

beforeEach(signOutQuietly);

/** Another device of the user: a sign-in the SDK knows nothing of. */
async function anotherDevice(username, password) {
  const { status, body, text } = await api('/signin', { body: { username, password } });
  assert.equal(status, 200, text);
  return body;
}

/** The device's session is over: its access token and its refresh token are refused. */
async function assertEnded(device) {
  const me = await api('/user/me', { method: 'GET', token: device.access_token });
  assert.equal(me.status, 401, me.text);
  assert.equal(me.body?.error, 'unauthenticated');
  const refreshed = await api('/token', { body: { grant_type: 'refresh_token', refresh_token: device.refresh_token } });
  assert.equal(refreshed.body?.error, 'invalid_grant', refreshed.text);
}

async function assertPasswordWorks(username, password, sub) {
  const { status, body, text } = await api('/signin', { body: { username, password } });
  assert.equal(status, 200, text);
  assert.equal(body.sub, sub);
}

async function assertPasswordRefused(username, password) {
  const { body } = await api('/signin', { body: { username, password } });
  assert.equal(body?.error, 'invalid_username_or_password');
}

/** A user signed in with the SDK who bound `address` ('email' or 'sms') the seed way. */
async function signedInWith(channel, address) {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const sudo = await auth.sudo({ password: user.password });
  const field = channel === 'email' ? 'email' : 'phone_number';
  const verification = await auth.getVerification({ [field]: address });
  const { verification_token } = await auth.verify({
    verification_id: verification.verification_id,
    verification_code: await latestCode(channel, address),
  });
  if (channel === 'email') {
    await auth.bindEmail({ sudo_token: sudo, email: address, verification_token });
  } else {
    await auth.bindPhoneNumber({ sudo_token: sudo, phone_number: address, verification_token });
  }
  return user;
}

test('resetPasswordForOld keeps this session, ends the other device, and swaps the passwords', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const other = await anotherDevice(user.username, user.password);

  const wrong = await quietly(() => auth.resetPasswordForOld({ old_password: 'not the password', new_password: randomPassword() }));
  assert.equal(wrong.error?.code, 'invalid_password');
  await assertPasswordWorks(user.username, user.password, user.sub);

  const newPassword = randomPassword();
  const { data, error } = await auth.resetPasswordForOld({ old_password: user.password, new_password: newPassword });
  assert.equal(error, null);
  assert.equal(data.user.id, user.sub);

  assert.equal((await auth.getUserInfo()).sub, user.sub);
  await assertEnded(other);
  await assertPasswordRefused(user.username, user.password);
  await assertPasswordWorks(user.username, newPassword, user.sub);
});

test('setPassword (v2) needs a sudo token and a password the policy allows', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const other = await anotherDevice(user.username, user.password);
  const { sudo_token } = await auth.sudo({ password: user.password });

  await assert.rejects(auth.setPassword({ sudo_token, new_password: 'short' }), (err) => err.error === 'invalid_password');
  await assert.rejects(auth.setPassword({ sudo_token: 'made-up', new_password: randomPassword() }), (err) => err.error === 'permission_denied');

  const newPassword = randomPassword();
  await auth.setPassword({ sudo_token, new_password: newPassword });
  await assertEnded(other);
  await assertPasswordRefused(user.username, user.password);
  await assertPasswordWorks(user.username, newPassword, user.sub);
  // The sudo token ended with the old password.
  await assert.rejects(auth.setPassword({ sudo_token, new_password: randomPassword() }), (err) => err.error === 'permission_denied');
});

test('resetPasswordForEmail with an email code resets the password and signs in with it', T, async () => {
  const email = randomEmail();
  const user = await signedInWith('email', email);
  const other = await anotherDevice(email, user.password);
  await signOutQuietly();

  const { data, error } = await auth.resetPasswordForEmail(email);
  assert.equal(error, null);
  const newPassword = randomPassword();
  const reset = await data.updateUser({ nonce: await latestCode('email', email), password: newPassword });
  assert.equal(reset.error, null);
  assert.equal(reset.data.user.id, user.sub);
  assert.equal((await auth.getUserInfo()).sub, user.sub);

  await assertEnded(other);
  await assertPasswordRefused(email, user.password);
  await assertPasswordWorks(email, newPassword, user.sub);
});

test('resetPasswordForEmail with a phone number as typed resets the password', T, async () => {
  const phone = randomPhone(); // "+86 139xxxxxxxx"
  const user = await signedInWith('sms', phone);
  const other = await anotherDevice(phone, user.password);
  await signOutQuietly();

  const typed = phone.replace('+86 ', '');
  const { data, error } = await auth.resetPasswordForEmail(typed);
  assert.equal(error, null);
  const newPassword = randomPassword();
  const reset = await data.updateUser({ nonce: await latestCode('sms', phone), password: newPassword });
  assert.equal(reset.error, null);
  assert.equal(reset.data.user.id, user.sub);

  await assertEnded(other);
  await assertPasswordRefused(phone, user.password);
  await assertPasswordWorks(phone, newPassword, user.sub);
});

test('resetPasswordForEmail for an address without an account is refused with not_found', T, async () => {
  const { data, error } = await quietly(() => auth.resetPasswordForEmail(randomEmail()));
  assert.equal(data.updateUser, null);
  assert.equal(error?.code, 'not_found');
});

test('reauthenticate then updateUser({nonce, password}) changes the password and keeps this session', T, async () => {
  const email = randomEmail();
  const user = await signedInWith('email', email);
  // reauthenticate() reads the user the SDK cached at sign-in, which predates the bind.
  await signOutQuietly();
  await signInWithPassword({ email, password: user.password });
  const other = await anotherDevice(user.username, user.password);

  const { data, error } = await auth.reauthenticate();
  assert.equal(error, null);
  const newPassword = randomPassword();
  const changed = await data.updateUser({ nonce: await latestCode('email', email), password: newPassword });
  assert.equal(changed.error, null);
  assert.equal(changed.data.user.id, user.sub);

  assert.equal((await auth.getUserInfo()).sub, user.sub);
  await assertEnded(other);
  await assertPasswordRefused(user.username, user.password);
  await assertPasswordWorks(email, newPassword, user.sub);
});

test('revokeAllDevices ends every session of the user, the SDK\'s own included', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const other = await anotherDevice(user.username, user.password);
  const mine = await auth.getCredentials();

  await auth.oauthInstance.authApi.revokeAllDevices();

  await assertEnded(other);
  await assertEnded(mine);
  await assertPasswordWorks(user.username, user.password, user.sub);
});
