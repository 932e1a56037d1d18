// The operator console: a hash router over the JSON API. Each view fetches what it shows and
// renders it with `el`, so everything from the API is text.

import { api, token } from './api.js';
import { el, failure, show } from './dom.js';
import { hookPage } from './hook.js';
import { hookForm, hookList } from './hooks.js';

const views = [
  [/^#\/hooks\/new$/, () => hookForm()],
  [/^#\/hooks\/([^/]+)\/edit$/, (id) => hookForm(decodeURIComponent(id))],
  [/^#\/hooks\/([^/]+)$/, (id) => hookPage(decodeURIComponent(id))],
  [/^#\/hooks\/?$/, () => hookList()],
];

async function render() {
  renderNav();
  if (!token.get()) return login();
  const hash = location.hash || '#/hooks';
  for (const [pattern, view] of views) {
    const match = hash.match(pattern);
    if (match) {
      try {
        await view(...match.slice(1));
      } catch (error) {
        if (!token.get()) return login();
        show(failure(error));
      }
      return;
    }
  }
  location.hash = '#/hooks';
}

function renderNav() {
  const nav = document.getElementById('nav');
  nav.replaceChildren(
    ...(token.get()
      ? [
          el('a', { href: '#/hooks' }, 'Hooks'),
          el('a', { href: '#/hooks/new' }, 'New hook'),
          el('button', { type: 'button', onclick: () => { token.clear(); render(); } }, 'Sign out'),
        ]
      : []),
  );
}

function login(message) {
  const input = el('input', { type: 'password', name: 'token', autocomplete: 'off', required: true });
  const form = el(
    'form',
    {
      onsubmit: async (event) => {
        event.preventDefault();
        token.set(input.value.trim());
        try {
          await api('GET', '/api/hooks?page_size=1');
          render();
        } catch (error) {
          token.clear();
          login(error.status === 401 || error.status === 403 ? 'That is not an admin token.' : error.message);
        }
      },
    },
    el('label', {}, 'Admin token', input),
    el('button', { class: 'primary', type: 'submit' }, 'Open the console'),
    message && el('p', { class: 'error', role: 'alert' }, message),
  );
  show(el('h1', {}, 'Sign in'), el('p', { class: 'muted' }, 'The token stays in this tab only.'), form);
  input.focus();
}

window.addEventListener('hashchange', render);
render();
