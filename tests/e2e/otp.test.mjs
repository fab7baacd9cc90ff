// End-to-end: sign-in by code, reauthentication, anonymous accounts and their upgrade, and the
// identities list, through the unmodified @cloudbase/js-sdk as an app calls it
// (../shared/LIFECYCLE.md rows 5-10 and 14-18). Run with the rest: `node --test`.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  auth, signUp, signInWithPassword, signOutQuietly, quietly, latestCode,
  randomEmail, randomPhone, randomToken,
} from './glue.mjs';

const T = { timeout: 30_000 };

beforeEach(signOutQuietly);

/** A password account with `email` or `phone` bound the seed way; signed out again. */
async function accountWith({ email, phone }) {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const { sudo_token } = await auth.sudo({ password: user.password });
  const verification = await auth.getVerification(email ? { email } : { phone_number: phone });
  const { verification_token } = await auth.verify({
    verification_id: verification.verification_id,
    verification_code: await latestCode(email ? 'email' : 'sms', email ?? phone),
  });
  if (email) await auth.bindEmail({ sudo_token, email, verification_token });
  else await auth.bindPhoneNumber({ sudo_token, phone_number: phone, verification_token });
  await signOutQuietly();
  return user;
}

test('signInWithOtp and verifyOtp sign a known email in to its account', T, async () => {
  const email = randomEmail();
  const user = await accountWith({ email });

  const { data, error } = await auth.signInWithOtp({ email });
  assert.equal(error, null);
  const signedIn = await data.verifyOtp({ token: await latestCode('email', email) });
  assert.equal(signedIn.error, null);
  assert.equal(signedIn.data.user.id, user.sub);
  assert.equal((await auth.getUserInfo()).email, email);
});

test('signInWithOtp and verifyOtp sign a known phone number in to its account', T, async () => {
  const phone = randomPhone();
  const user = await accountWith({ phone });

  const { data, error } = await auth.signInWithOtp({ phone });
  assert.equal(error, null);
  const signedIn = await data.verifyOtp({ token: await latestCode('sms', phone) });
  assert.equal(signedIn.error, null);
  assert.equal(signedIn.data.user.id, user.sub);
});

test('signInWithOtp for an unknown email signs up a new account that signs in by code', T, async () => {
  const email = randomEmail();
  const { data } = await auth.signInWithOtp({ email });
  const signedUp = await data.verifyOtp({ token: await latestCode('email', email) });
  assert.equal(signedUp.error, null);
  const sub = signedUp.data.user.id;
  assert.equal(typeof sub, 'string');
  assert.equal((await auth.getUserInfo()).email, email);

  await signOutQuietly();
  const again = await auth.signInWithOtp({ email });
  const signedIn = await again.data.verifyOtp({ token: await latestCode('email', email) });
  assert.equal(signedIn.data.user.id, sub);
});

test('signInWithOtp with shouldCreateUser false refuses an unknown email and signs in a known one', T, async () => {
  const unknown = await quietly(() => auth.signInWithOtp({ email: randomEmail(), options: { shouldCreateUser: false } }));
  assert.equal(unknown.error?.code, 'not_found');
  assert.equal(unknown.data.verifyOtp, undefined);

  const email = randomEmail();
  const user = await accountWith({ email });
  const { data, error } = await auth.signInWithOtp({ email, options: { shouldCreateUser: false } });
  assert.equal(error, null);
  const signedIn = await data.verifyOtp({ token: await latestCode('email', email) });
  assert.equal(signedIn.data.user.id, user.sub);

  // auth.verifyOtp with the message id of a code asked for separately does the same.
  await signOutQuietly();
  const { verification_id } = await auth.getVerification({ email });
  const direct = await auth.verifyOtp({ email, token: await latestCode('email', email), messageId: verification_id });
  assert.equal(direct.error, null);
  assert.equal(direct.data.user.id, user.sub);
});

test('reauthenticate then updateUser with the nonce signs in again by code', T, async () => {
  const email = randomEmail();
  const user = await accountWith({ email });
  await signInWithPassword({ username: user.username, password: user.password });
  const before = await auth.getCredentials();

  const { data, error } = await auth.reauthenticate();
  assert.equal(error, null);
  const res = await data.updateUser({ nonce: await latestCode('email', email) });
  assert.equal(res.error ?? null, null);
  assert.equal(res.data.user.id, user.sub);
  assert.notEqual((await auth.getCredentials()).refresh_token, before.refresh_token, 'a new session');
});

test('a code to the user\'s own address buys a sudo token, and one to another address does not', T, async () => {
  const email = randomEmail();
  const user = await accountWith({ email });
  await signInWithPassword({ username: user.username, password: user.password });

  const verification = await auth.getVerification({ email });
  const { verification_token } = await auth.verify({
    verification_id: verification.verification_id,
    verification_code: await latestCode('email', email),
  });
  const sudo = await auth.sudo({ verification_token });
  assert.equal(typeof sudo.sudo_token, 'string');

  const other = randomEmail();
  const elsewhere = await auth.getVerification({ email: other });
  const foreign = await auth.verify({
    verification_id: elsewhere.verification_id,
    verification_code: await latestCode('email', other),
  });
  await assert.rejects(auth.sudo({ verification_token: foreign.verification_token }), { error: 'permission_denied' });
});

test('an anonymous user upgraded by updateUser({email}) keeps its sub and then signs in by email code', T, async () => {
  const anonymous = await auth.signInAnonymously();
  assert.equal(anonymous.error, null);
  assert.equal(anonymous.data.user.is_anonymous, true);
  const sub = anonymous.data.user.id;

  const email = randomEmail();
  const { data, error } = await auth.updateUser({ email });
  assert.equal(error, null);
  const updated = await data.verifyOtp({ email, token: await latestCode('email', email) });
  assert.equal(updated.error, null);
  assert.equal(updated.data.user.id, sub);
  assert.equal(updated.data.user.email, email);
  assert.equal(updated.data.user.is_anonymous, false);

  await signOutQuietly();
  const otp = await auth.signInWithOtp({ email });
  const signedIn = await otp.data.verifyOtp({ token: await latestCode('email', email) });
  assert.equal(signedIn.error, null);
  assert.equal(signedIn.data.user.id, sub);
});

test('an anonymous user upgraded by updateUser({phone}) keeps its sub', T, async () => {
  const { data: { user } } = await auth.signInAnonymously();
  const phone = randomPhone();
  const { data } = await auth.updateUser({ phone });
  const updated = await data.verifyOtp({ phone, token: await latestCode('sms', phone) });
  assert.equal(updated.error, null);
  assert.equal(updated.data.user.id, user.id);
  assert.equal((await auth.getUserInfo()).phone_number, phone);
});

test('updateUser({email}) refuses an email another account holds', T, async () => {
  const email = randomEmail();
  await accountWith({ email });
  await auth.signInAnonymously();

  const { data } = await auth.updateUser({ email });
  const code = await latestCode('email', email);
  const refused = await quietly(() => data.verifyOtp({ email, token: code }));
  assert.equal(refused.error?.code, 'already_exists');
  assert.equal((await auth.getUserInfo()).email, '');
});

test('getUserIdentities lists a bound WeChat identity, unlinkIdentity removes it, linkIdentity answers in Node', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const granted = await auth.grantProviderToken({ provider_id: 'wx_open', provider_code: `ok:${randomToken(12)}` });
  await auth.bindWithProvider({ provider_token: granted.provider_token });

  const listed = await auth.getUserIdentities();
  assert.equal(listed.error, null);
  assert.deepEqual(listed.data.identities.map((i) => i.id), ['wx_open']);

  const unlinked = await auth.unlinkIdentity({ provider: 'wx_open' });
  assert.deepEqual(unlinked, { data: {}, error: null });
  assert.deepEqual((await auth.getUserIdentities()).data.identities, []);

  // In Node, linkIdentity sends no request (a browser would be redirected to WeChat).
  const linked = await auth.linkIdentity({ provider: 'wx_open' });
  assert.deepEqual(linked, { data: { provider: 'wx_open' }, error: null });
});
