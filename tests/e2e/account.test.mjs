// End-to-end: deleting the account and editing the profile (issue 14), as an app calls the SDK.
// One SDK session per process: the tests run one after another, each starting signed out.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  auth, api, signUp, signInWithPassword, signOutQuietly, quietly, latestCode, randomEmail,
  randomUsername,
} from './glue.mjs';

const T = { timeout: 30_000 };

beforeEach(signOutQuietly);

/** Binds `email` to the signed-in user the way the seed documents show. */
async function bindEmail(password, email) {
  const { sudo_token } = await auth.sudo({ password });
  const verification = await auth.getVerification({ email });
  const { verification_token } = await auth.verify({
    verification_id: verification.verification_id,
    verification_code: await latestCode('email', email),
  });
  await auth.bindEmail({ sudo_token, email, verification_token });
}

test('deleteUser ends the account: its session is unauthenticated and another account binds its email', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const email = randomEmail();
  await bindEmail(user.password, email);
  const { access_token } = await auth.getCredentials();

  const { data, error } = await auth.deleteUser({ password: user.password });
  assert.equal(error, null);
  assert.deepEqual(data, {});

  // The SDK kept its credentials; its next call is answered `unauthenticated`, on which the
  // SDK drops its session: the app sees nobody signed in.
  const me = await api('/user/me', { method: 'GET', token: access_token });
  assert.equal(me.status, 401);
  assert.equal(me.body?.error, 'unauthenticated');
  const after = await quietly(() => auth.getUser());
  assert.equal(after.data.user, null);
  assert.equal(await auth.getLoginState(), null);
  const { error: signInError } = await quietly(() => auth.signInWithPassword({ email, password: user.password }));
  assert.equal(signInError?.code, 'invalid_username_or_password');

  // The address is free at once: another account binds it and signs in with it.
  const other = await signUp();
  await signInWithPassword({ username: other.username, password: other.password });
  await bindEmail(other.password, email);
  await signOutQuietly();
  const { data: signedIn } = await signInWithPassword({ email, password: other.password });
  assert.equal(signedIn.user.id, other.sub);
});

test('deleteUser with a wrong password is refused and deletes nothing', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });

  const { error } = await quietly(() => auth.deleteUser({ password: `${user.password}x` }));
  assert.equal(error?.code, 'invalid_password');
  const info = await auth.getUserInfo();
  assert.equal(info.sub, user.sub);
});

test('deleteMe needs the sudo_token string of auth.sudo; without it the v2 call rejects with permission_denied', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const { access_token } = await auth.getCredentials();

  const refused = (err) => err?.error === 'permission_denied';
  await assert.rejects(auth.deleteMe({}), refused);
  // The whole sudo() answer, as the seed documents pass it to bindEmail: `[object Object]`.
  const sudo = await auth.sudo({ password: user.password });
  await assert.rejects(auth.deleteMe({ sudo_token: sudo }), refused);
  assert.equal((await auth.getUserInfo()).sub, user.sub);

  const answer = await auth.deleteMe({ sudo_token: sudo.sudo_token });
  assert.deepEqual(answer, {});
  const me = await api('/user/me', { method: 'GET', token: access_token });
  assert.equal(me.status, 401);
  assert.equal(me.body?.error, 'unauthenticated');
});

test('updateUser sets the nickname, avatar and gender, which the user object and getUserInfo show', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const avatar = 'https://cdn.example.com/avatars/ada.png';

  const { data, error } = await auth.updateUser({ nickname: 'Ada', avatar_url: avatar, gender: 'FEMALE' });
  assert.equal(error, null);
  assert.equal(data.user.id, user.sub);
  assert.equal(data.user.user_metadata.name, 'Ada');
  assert.equal(data.user.user_metadata.picture, avatar);
  assert.equal(data.user.user_metadata.avatarUrl, avatar);
  assert.equal(data.user.user_metadata.gender, 'FEMALE');

  const info = await auth.getUserInfo();
  assert.equal(info.name, 'Ada');
  assert.equal(info.picture, avatar);
  assert.equal(info.gender, 'FEMALE');
});

test('updateUserBasicInfo changes the profile and resolves undefined', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });

  assert.equal(await auth.updateUserBasicInfo({ nickname: 'Grace', gender: 'FEMALE' }), undefined);
  const info = await auth.getUserInfo();
  assert.equal(info.name, 'Grace');
  assert.equal(info.gender, 'FEMALE');
});

test('updateUser({username}) right after signing in renames; the old name signs in no more and no one else takes it', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });
  const renamed = randomUsername();

  const { data, error } = await auth.updateUser({ username: renamed });
  assert.equal(error, null);
  assert.equal(data.user.id, user.sub);
  assert.equal((await auth.getUserInfo()).username, renamed);
  await signOutQuietly();
  const { data: signedIn } = await signInWithPassword({ username: renamed, password: user.password });
  assert.equal(signedIn.user.id, user.sub);
  await signOutQuietly();
  const { error: oldName } = await quietly(() => auth.signInWithPassword({ username: user.username, password: user.password }));
  assert.equal(oldName?.code, 'invalid_username_or_password');
  // Held for its last owner (AUTH_USERNAME_HOLD_SECS): another sign-up with it is refused.
  const taken = await api('/signup', { body: { username: user.username, password: 'another good password' } });
  assert.equal(taken.status, 409);
  assert.equal(taken.body?.error, 'already_exists');
});

test('updateUser refuses an http avatar, and an email this user verified no code for, and changes nothing', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });

  const http = await quietly(() => auth.updateUser({ nickname: 'Mallory', avatar_url: 'http://example.com/a.png' }));
  assert.equal(http.error?.code, 'invalid_argument');

  // basic/edit carries the address with no proof: only a code this account asked for and
  // verified moments before vouches for it (otp.test.mjs shows the accepted way).
  await assert.rejects(auth.updateUserBasicInfo({ email: randomEmail() }), { error: 'permission_denied' });
  const info = await auth.getUserInfo();
  assert.equal(info.name, '');
  assert.equal(info.picture, '');
  assert.equal(info.email, '');
});

test('the user object says whether the account has a password', T, async () => {
  const user = await signUp();
  await signInWithPassword({ username: user.username, password: user.password });

  const { data, error } = await auth.getUser();
  assert.equal(error, null);
  assert.equal(data.user.user_metadata.hasPassword, true);
  const info = await auth.getUserInfo();
  assert.equal(info.password, 'SET');
  assert.equal(JSON.stringify(info).includes('argon2'), false);
});
