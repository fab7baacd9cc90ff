// What the console's views share. Every value the server sends comes from users and is
// untrusted: it only ever becomes text (textContent), never markup.

/** An element with text or child nodes; `attrs` are set as attributes, never as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') node.textContent = String(value);
    else if (name === 'onClick') node.addEventListener('click', value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** GET (or another method) a JSON answer of this server; throws with the server's words. */
export async function json(url, options = {}) {
  const response = await fetch(url, { cache: 'no-store', ...options });
  const body = await response.json();
  if (!response.ok || body?.error) {
    throw new Error(body?.error_description || `${options.method || 'GET'} ${url}: HTTP ${response.status}`);
  }
  return body;
}

/** `2026-11-30T20:03:12Z` as `2026-11-30 20:03:12 UTC`; missing times as "unknown". */
export function when(iso) {
  return iso ? `${iso.replace('T', ' ').replace('Z', '')} UTC` : 'unknown';
}

/** Runs `task` now and then every `ms`, one run at a time; shows failures in `status`. */
export function every(ms, task, status) {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      await task();
      status.textContent = status.dataset.ok || '';
      status.classList.remove('problem');
    } catch (err) {
      status.textContent = `Could not refresh: ${err.message}`;
      status.classList.add('problem');
    } finally {
      running = false;
    }
  };
  tick();
  return setInterval(tick, ms);
}

/** The view's <main>, emptied, with a heading and a line of explanation. */
export function view(title, explanation) {
  const main = document.getElementById('view');
  main.replaceChildren(el('h1', { text: title }), el('p', { class: 'explain', text: explanation }));
  return main;
}
