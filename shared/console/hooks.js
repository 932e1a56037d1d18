// The hooks list and the hook form (create and edit). A custom header's value is never put in
// the page: the form keeps the stored values in memory and sends them back unchanged unless
// the operator types a new one.

import { api, nextCursor } from './api.js';
import { el, failure, fill, route, show, when } from './dom.js';

export async function hookList(cursor) {
  const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
  const { json: hooks, headers } = await api('GET', `/api/hooks?page_size=50&includeExecutionStats=true${query}`);
  const rows = hooks.map((hook) => {
    const stats = hook.executionStats || { requestCount: 0, successCount: 0 };
    const rate = stats.requestCount ? `${Math.round((100 * stats.successCount) / stats.requestCount)}%` : '—';
    const failing = el('td', { class: 'muted' }, '…');
    api('GET', `/api/hooks/${encodeURIComponent(hook.id)}/stats`)
      .then(({ json: s }) => fill(failing, s.failingSince ? el('span', { class: 'bad' }, when(s.failingSince)) : '—'))
      .catch(() => fill(failing, '?'));
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
      { id: 'hooks' },
      el('thead', {}, el('tr', {}, ['Name', 'State', 'Mode', 'Success (24 h)', 'Failing since', 'URL'].map((h) => el('th', {}, h)))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No hooks yet.'))),
    ),
    next && el('p', {}, el('button', { class: 'link', type: 'button', onclick: () => hookList(next) }, 'Next page →')),
  );
}

/** The form for a new hook, or for editing `id`. */
export async function hookForm(id) {
  const [{ json: catalog }, current] = await Promise.all([
    api('GET', '/api/hook-events'),
    id ? api('GET', `/api/hooks/${encodeURIComponent(id)}`).then((r) => r.json) : Promise.resolve(null),
  ]);
  const config = current ? current.config : {};
  const name = el('input', { name: 'name', value: current ? current.name : '' });
  const url = el('input', { name: 'url', type: 'url', required: true, placeholder: 'https://…', value: config.url || '' });
  const mode = el(
    'select',
    { name: 'mode' },
    el('option', { value: 'async', selected: config.mode !== 'sync' }, 'async (queued, retried)'),
    el('option', { value: 'sync', selected: config.mode === 'sync' }, 'sync (the caller waits)'),
  );
  const timeout = el('input', { name: 'timeoutMs', type: 'number', min: 1, max: 10000, placeholder: '3000', value: config.timeoutMs || '' });
  const rateLimit = el('input', { name: 'rateLimit', type: 'number', min: 1, max: 1000, placeholder: 'no limit', value: config.rateLimit || '' });
  const enabled = el('input', { name: 'enabled', type: 'checkbox', checked: !current || current.enabled });
  const subscribed = new Set(current ? current.events : []);
  const boxes = catalog.map((entry) => el('input', { type: 'checkbox', name: 'events', value: entry.event, checked: subscribed.has(entry.event) }));
  // Stored header values stay in this closure, out of the page.
  const stored = config.headers || {};
  const headerRows = el('div', { class: 'headers' });
  const addHeader = (headerName = '', known = false) => {
    const n = el('input', { name: 'headerName', value: headerName, placeholder: 'x-api-key' });
    const v = el('input', { name: 'headerValue', type: 'password', autocomplete: 'off', placeholder: known ? '(unchanged)' : 'value' });
    n.dataset.known = known ? headerName : '';
    headerRows.append(el('div', { class: 'row' }, n, v));
  };
  Object.keys(stored).forEach((h) => addHeader(h, true));
  const status = el('div');
  const form = el(
    'form',
    {
      id: 'hook-form',
      onsubmit: async (event) => {
        event.preventDefault();
        const headers = {};
        for (const row of headerRows.children) {
          const [n, v] = row.querySelectorAll('input');
          const key = n.value.trim();
          if (!key) continue;
          headers[key] = v.value !== '' ? v.value : n.dataset.known === key ? stored[key] : '';
        }
        const body = {
          name: name.value,
          events: boxes.filter((b) => b.checked).map((b) => b.value),
          config: { ...(config.disableAfter ? { disableAfter: config.disableAfter } : {}), ...(config.retries !== undefined ? { retries: config.retries } : {}), url: url.value.trim(), headers },
          enabled: enabled.checked,
        };
        if (mode.value === 'sync') body.config.mode = 'sync';
        if (timeout.value) body.config.timeoutMs = Number(timeout.value);
        if (rateLimit.value) body.config.rateLimit = Number(rateLimit.value);
        try {
          const { json: hook } = id
            ? await api('PATCH', `/api/hooks/${encodeURIComponent(id)}`, body)
            : await api('POST', '/api/hooks', body);
          location.hash = route('hooks', hook.id);
        } catch (error) {
          fill(status, failure(error));
        }
      },
    },
    el('label', {}, 'Name', name),
    el('label', {}, 'Endpoint URL', url),
    el('label', {}, 'Mode', mode),
    el('label', {}, 'Timeout of a synchronous call (ms)', timeout),
    el('label', {}, 'Rate limit (deliveries per second)', rateLimit),
    el('label', { class: 'row' }, enabled, 'Enabled'),
    el('fieldset', {}, el('legend', {}, 'Custom headers'), headerRows, el('button', { class: 'link', type: 'button', onclick: () => addHeader() }, '+ header')),
    el('fieldset', {}, el('legend', {}, 'Events'), catalog.map((entry, i) => el('label', { class: 'row' }, boxes[i], entry.event, el('span', { class: 'muted' }, entry.group)))),
    el('button', { class: 'primary', type: 'submit' }, id ? 'Save' : 'Create hook'),
    status,
  );
  show(el('h1', {}, id ? `Edit ${current.name || current.id}` : 'New hook'), form);
}
