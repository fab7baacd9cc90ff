// Accounts: every account of the store with its addresses, WeChat identities and live sessions.
import { el, json, when, every, view } from './console.js';

const POLL_MS = 2000;
const main = view('Accounts', 'Every account of this server, newest first, with the ways it signs in and its live sessions.');
const settings = await json('/_dev/settings');
const source = settings.store === 'dynamodb'
  ? 'Read from the DynamoDB table with a scan.'
  : 'Read from the embedded store.';
const status = el('p', { class: 'status', role: 'status', 'data-ok': `${source} Updated every 2 seconds (the page polls the server).` });
const filter = el('input', { id: 'filter', type: 'search', placeholder: 'a username, name, email, phone, WeChat id, custom-login uid or account id', autocomplete: 'off' });
const count = el('p', { class: 'count', id: 'count' });
const list = el('div', { id: 'accounts' });
main.append(
  el('div', { class: 'toolbar' }, el('label', { for: 'filter', text: 'Filter' }), filter),
  status, count, list,
);

let accounts = [];
let shown = '';

function identifiers(account) {
  return [account.sub, account.username, account.name, account.email, account.phone_number,
    account.phone_number?.replace(/\s+/g, ''), account.custom_uid,
    ...account.providers.flatMap((p) => [p.subject, p.name, p.provider_id])]
    .filter(Boolean).map((s) => String(s).toLowerCase());
}

function field(label, value, className) {
  return el('div', { class: `field ${className || ''}` },
    el('dt', { text: label }),
    el('dd', { text: value ?? '—', class: value ? '' : 'none' }));
}

function card(account) {
  const wechat = account.providers.length
    ? account.providers.map((p) => `${p.provider_id}: ${p.subject}${p.name ? ` (${p.name})` : ''}`).join('\n')
    : null;
  const sessions = account.sessions.length
    ? el('ul', { class: 'sessions' }, account.sessions.map((s) => el('li', {
      text: `signed in ${when(s.created_at)} · last refreshed ${when(s.refreshed_at)} · expires ${when(s.expires_at)}`,
    })))
    : el('p', { class: 'none', text: 'No live sessions.' });
  return el('article', { class: 'account', 'data-sub': account.sub },
    el('h2', { text: account.username || account.email || account.phone_number || account.name || account.custom_uid || account.sub }),
    el('dl', {},
      field('Username', account.username),
      field('Profile name', account.name),
      field('Email', account.email),
      field('Phone', account.phone_number),
      field('Password', account.has_password ? 'set' : null),
      field('WeChat', wechat, 'multiline'),
      field('Custom-login uid', account.custom_uid, 'mono'),
      field('Account id (sub)', account.sub, 'mono'),
      field('Created', when(account.created_at)),
      field('Updated', when(account.updated_at))),
    el('h3', { text: `Live sessions (${account.sessions.length})` }),
    sessions);
}

function render() {
  const wanted = filter.value.trim().toLowerCase();
  const matching = accounts.filter((a) => !wanted || identifiers(a).some((id) => id.includes(wanted)));
  count.textContent = wanted
    ? `${matching.length} of ${accounts.length} accounts match “${filter.value.trim()}”.`
    : `${accounts.length} account${accounts.length === 1 ? '' : 's'}.`;
  list.replaceChildren(...(matching.length
    ? matching.map(card)
    : [el('p', { class: 'empty', text: accounts.length ? 'No account matches.' : 'No accounts yet: sign up through the API, or run the flow on the Try it page.' })]));
}

filter.addEventListener('input', render);
every(POLL_MS, async () => {
  const text = JSON.stringify(await json('/_dev/accounts'));
  if (text === shown) return;
  shown = text;
  accounts = JSON.parse(text);
  render();
}, status);
