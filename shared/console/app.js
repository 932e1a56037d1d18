// The operator console: a hash router over the JSON API. Each view fetches what it shows
// and renders it with `el`, so everything from the API is text.

import { api, nextCursor, token } from './api.js';
import { el, failure, fill, json, route, show, when } from './dom.js';

const views = [
  [/^#\/hooks\/new$/, newHook],
  [/^#\/hooks\/([^/]+)$/, (id) => hookPage(decodeURIComponent(id))],
  [/^#\/hooks\/?$/, hookList],
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

async function hookList(cursor) {
  const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
  const { json: hooks, headers } = await api('GET', `/api/hooks?page_size=50&includeExecutionStats=true${query}`);
  const rows = hooks.map((hook) => {
    const stats = hook.executionStats || { requestCount: 0, successCount: 0 };
    const rate = stats.requestCount ? `${Math.round((100 * stats.successCount) / stats.requestCount)}%` : '—';
    const failing = el('td', { class: 'muted' }, '…');
    api('GET', `/api/hooks/${encodeURIComponent(hook.id)}/stats`)
      .then(({ json: s }) => failing.replaceChildren(s.failingSince ? el('span', { class: 'bad' }, when(s.failingSince)) : '—'))
      .catch(() => failing.replaceChildren('?'));
    return el(
      'tr',
      {},
      el('td', {}, el('a', { href: route('hooks', hook.id) }, hook.name || hook.id)),
      el('td', {}, hook.enabled ? el('span', { class: 'ok' }, 'enabled') : el('span', { class: 'bad' }, 'disabled', hook.disabledReason ? ` — ${hook.disabledReason}` : '')),
      el('td', {}, hook.config.mode === 'sync' ? 'sync' : 'async'),
      el('td', {}, rate, el('span', { class: 'muted' }, ` (${stats.requestCount})`)),
      failing,
      el('td', {}, hook.config.url),
    );
  });
  const next = nextCursor(headers);
  show(
    el('h1', {}, 'Hooks'),
    el(
      'table',
      {},
      el('thead', {}, el('tr', {}, ['Name', 'State', 'Mode', 'Success (24 h)', 'Failing since', 'URL'].map((h) => el('th', {}, h)))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No hooks yet.'))),
    ),
    next && el('p', {}, el('button', { class: 'link', type: 'button', onclick: () => hookList(next) }, 'Next page →')),
  );
}

async function newHook() {
  const { json: catalog } = await api('GET', '/api/hook-events');
  const name = el('input', { name: 'name', required: true });
  const url = el('input', { name: 'url', type: 'url', required: true, placeholder: 'https://…' });
  const mode = el('select', { name: 'mode' }, el('option', { value: 'async' }, 'async (queued, retried)'), el('option', { value: 'sync' }, 'sync (the caller waits)'));
  const boxes = catalog.map((entry) => el('input', { type: 'checkbox', name: 'events', value: entry.event }));
  const events = el(
    'fieldset',
    {},
    el('legend', {}, 'Events'),
    catalog.map((entry, i) => el('label', { class: 'row' }, boxes[i], `${entry.event}`, el('span', { class: 'muted' }, entry.group))),
  );
  const status = el('div');
  const form = el(
    'form',
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const config = { url: url.value.trim() };
        if (mode.value === 'sync') config.mode = 'sync';
        const body = { name: name.value, events: boxes.filter((b) => b.checked).map((b) => b.value), config };
        try {
          const { json: hook } = await api('POST', '/api/hooks', body);
          location.hash = route('hooks', hook.id);
        } catch (error) {
          status.replaceChildren(failure(error));
        }
      },
    },
    el('label', {}, 'Name', name),
    el('label', {}, 'Endpoint URL', url),
    el('label', {}, 'Mode', mode),
    events,
    el('button', { class: 'primary', type: 'submit' }, 'Create hook'),
    status,
  );
  show(el('h1', {}, 'New hook'), form);
}

async function hookPage(id) {
  const { json: hook } = await api('GET', `/api/hooks/${encodeURIComponent(id)}`);
  const log = el('div');
  show(
    el('h1', {}, hook.name || hook.id),
    el(
      'table',
      {},
      el('tbody', {},
        el('tr', {}, el('th', {}, 'Id'), el('td', {}, hook.id)),
        el('tr', {}, el('th', {}, 'URL'), el('td', {}, hook.config.url)),
        el('tr', {}, el('th', {}, 'Events'), el('td', {}, hook.events.join(', '))),
        el('tr', {}, el('th', {}, 'State'), el('td', {}, hook.enabled ? 'enabled' : `disabled${hook.disabledReason ? ` — ${hook.disabledReason}` : ''}`)),
        el('tr', {}, el('th', {}, 'Mode'), el('td', {}, hook.config.mode || 'async')),
      ),
    ),
    el('h2', {}, 'Delivery log'),
    log,
  );
  await deliveryLog(hook.id, log);
}

async function deliveryLog(id, into, cursor) {
  const query = cursor ? `?cursor=${encodeURIComponent(cursor)}` : '';
  const { json: entries, headers } = await api('GET', `/api/hooks/${encodeURIComponent(id)}/recent-logs${query}`);
  const detail = el('div');
  const rows = entries.map((entry) =>
    el(
      'tr',
      {},
      el('td', {}, when(entry.createdAt)),
      el('td', {}, entry.event),
      el('td', { class: entry.result === 'Success' ? 'ok' : entry.result === 'Error' ? 'bad' : 'muted' }, entry.result),
      el('td', {}, String(entry.attemptCount)),
      el('td', {}, el('button', { class: 'link', type: 'button', onclick: () => detail.replaceChildren(
        el('h2', {}, `Delivery ${entry.id}`),
        el('h3', {}, 'Delivered body'),
        json(entry.payload.hookRequest.body),
        el('h3', {}, 'Attempts'),
        json(entry.attempts),
      ) }, 'details')),
    ),
  );
  const next = nextCursor(headers);
  fill(
    into,
    el(
      'table',
      { id: 'log' },
      el('thead', {}, el('tr', {}, ['Created', 'Event', 'Result', 'Attempts', ''].map((h) => el('th', {}, h)))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'No deliveries in the last 24 hours.'))),
    ),
    next && el('p', {}, el('button', { class: 'link', type: 'button', onclick: () => deliveryLog(id, into, next) }, 'Older →')),
    detail,
  );
}

window.addEventListener('hashchange', render);
render();
