// Messages: what the outbox "sent", newest first, with each code ready to copy.
import { el, json, when, every, view } from './console.js';

const POLL_MS = 1000;
const main = view('Messages', 'Every email and SMS this server sent, newest first. Nothing leaves the machine: the outbox keeps them.');
const settings = await json('/_dev/settings');
if (!settings.outbox) {
  main.append(el('p', { class: 'note', id: 'no-outbox', text: 'This server delivers through SES and SNS (AUTH_DELIVERY=aws), so it keeps no outbox to show. Run local-api without AUTH_DELIVERY to see codes here.' }));
} else {
  const status = el('p', { class: 'status', role: 'status', 'data-ok': 'New messages appear within a second: the page polls the outbox every second.' });
  const empty = el('button', { type: 'button', id: 'empty-outbox', text: 'Empty the outbox' });
  const list = el('ol', { id: 'messages', reversed: true });
  main.append(el('div', { class: 'toolbar' }, empty), status, list);

  let shown = '';
  const copy = (code, button) => async () => {
    try {
      await navigator.clipboard.writeText(code);
      button.textContent = 'Copied';
    } catch {
      // No clipboard permission: select the code so that Ctrl+C copies it.
      const range = document.createRange();
      range.selectNodeContents(button.previousSibling);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      button.textContent = 'Selected: press Ctrl+C';
    }
    setTimeout(() => { button.textContent = 'Copy code'; }, 2000);
  };
  const item = (m) => {
    let code = null;
    if (m.code) {
      const button = el('button', { type: 'button', class: 'copy', text: 'Copy code' });
      const digits = el('span', { class: 'code', text: m.code, 'aria-label': `code ${m.code}` });
      button.addEventListener('click', copy(m.code, button));
      code = el('p', { class: 'code-line' }, digits, button);
    }
    return el('li', { class: 'message', 'data-id': m.id, 'data-to': m.to },
      el('p', { class: 'meta' },
        el('span', { class: `channel ${m.channel}`, text: m.channel === 'sms' ? 'SMS' : 'Email' }),
        el('span', { class: 'to', text: m.to }),
        el('time', { text: when(m.sent_at) })),
      code,
      el('p', { class: 'subject', text: m.subject }),
      el('pre', { class: 'body', text: m.body }));
  };
  const refresh = async () => {
    const messages = await json('/_dev/outbox');
    const text = JSON.stringify(messages);
    if (text === shown) return;
    shown = text;
    list.replaceChildren(...(messages.length
      ? messages.slice().reverse().map(item)
      : [el('li', { class: 'empty', text: 'No messages yet: ask the API for a code (POST /auth/v1/verification) or run the Try it flow.' })]));
  };
  empty.addEventListener('click', async () => {
    await json('/_dev/outbox', { method: 'DELETE' });
    await refresh();
  });
  every(POLL_MS, refresh, status);
}
