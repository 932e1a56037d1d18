// One hook: its settings, signing key (revealed on request), the test button, the receiver
// check, health charts,
// recovery with live progress, and its delivery log with filters, details and re-send.

import { api, nextCursor } from './api.js';
import { lines, stackedBars } from './charts.js';
import { el, failure, fill, json, route, show, when } from './dom.js';

const HOUR = 3_600_000;
const KINDS = ['status4xx', 'status5xx', 'statusOther', 'timeout', 'connect', 'tls', 'blocked'];

export async function hookPage(id) {
  const path = `/api/hooks/${encodeURIComponent(id)}`;
  const { json: hook } = await api('GET', path);
  const log = el('div');
  show(
    el('h1', {}, hook.name || hook.id),
    el('p', { class: 'row' }, el('a', { href: route('hooks', hook.id, 'edit') }, 'Edit')),
    el(
      'table',
      { id: 'hook' },
      el('tbody', {},
        row('Id', hook.id),
        row('URL', hook.config.url),
        row('Events', hook.events.join(', ')),
        row('State', hook.enabled ? 'enabled' : `disabled${hook.disabledReason ? ` — ${hook.disabledReason}` : ''}`),
        row('Mode', hook.config.mode === 'sync' ? `sync (${hook.config.timeoutMs || 3000} ms)` : 'async'),
        row('Rate limit', hook.config.rateLimit ? `${hook.config.rateLimit}/s` : 'none'),
        row('Custom headers', Object.keys(hook.config.headers || {}).join(', ') || 'none'),
      ),
    ),
    keyPanel(path),
    testPanel(path, hook),
    checkPanel(path),
    el('h2', {}, 'Health'),
    healthPanel(path),
    recoverPanel(path),
    el('h2', {}, 'Delivery log'),
    logFilters(hook, log),
    log,
  );
  await deliveryLog(hook.id, log, {});
}

function row(label, value) {
  return el('tr', {}, el('th', {}, label), el('td', {}, value));
}

/** The signing key stays out of the page until the operator reveals it. */
function keyPanel(path) {
  const shown = el('code', { class: 'secret', id: 'signing-key' }, '••••••••');
  const grace = el('input', { name: 'grace', type: 'number', min: 0, max: 604800, value: 86400 });
  const status = el('span', { class: 'muted' });
  const reveal = async () => {
    const { json: hook } = await api('GET', path);
    fill(shown, hook.signingKey);
  };
  return el(
    'section',
    { class: 'panel', id: 'key' },
    el('h2', {}, 'Signing key'),
    el('p', { class: 'row' }, shown,
      el('button', { class: 'link', type: 'button', onclick: reveal }, 'Reveal'),
      el('button', { class: 'link', type: 'button', onclick: async () => {
        const { json: hook } = await api('GET', path);
        await navigator.clipboard.writeText(hook.signingKey).then(() => fill(status, 'copied'), () => fill(status, 'copy refused by the browser'));
      } }, 'Copy')),
    el('p', { class: 'row' }, el('label', {}, 'Old key keeps signing for (s)', grace),
      el('button', { class: 'primary', type: 'button', onclick: async () => {
        try {
          const { json: hook } = await api('PATCH', `${path}/signing-key`, { expireAfterSeconds: Number(grace.value) });
          fill(shown, hook.signingKey);
          fill(status, 'rotated');
        } catch (error) {
          fill(status, failure(error));
        }
      } }, 'Rotate'), status),
  );
}

function testPanel(path, hook) {
  const event = el('select', { name: 'testEvent' }, hook.events.map((e) => el('option', { value: e }, e)));
  const url = el('input', { name: 'testUrl', type: 'url', placeholder: 'the hook\'s URL' });
  const answer = el('div', { id: 'test-answer' });
  return el(
    'section',
    { class: 'panel' },
    el('h2', {}, 'Send a test event'),
    el('p', { class: 'row' }, event, url,
      el('button', { class: 'primary', type: 'button', onclick: async () => {
        const body = { events: [event.value] };
        if (url.value.trim()) body.config = { url: url.value.trim() };
        fill(answer, el('span', { class: 'muted' }, 'sending…'));
        try {
          await api('POST', `${path}/test`, body);
          fill(answer, el('p', { class: 'ok' }, 'The endpoint answered with a 2xx.'));
        } catch (error) {
          const data = (error.body && error.body.data) || {};
          fill(answer,
            el('p', { class: 'bad' }, error.message),
            data.responseStatus !== undefined && el('p', {}, `Status ${data.responseStatus}`),
            data.responseBody !== undefined && el('pre', {}, data.responseBody));
        }
      } }, 'Send')),
    answer,
  );
}

/** The receiver check: runs it on request and shows the report (the last kept one at first). */
function checkPanel(path) {
  const report = el('div', { id: 'check-report' });
  api('GET', `${path}/checks?page_size=1`).then(({ json: kept }) => {
    if (kept.length && !report.childElementCount) fill(report, checkReport(kept[0]));
  }, () => {});
  return el(
    'section',
    { class: 'panel', id: 'check' },
    el('h2', {}, 'Receiver check'),
    el('p', { class: 'row' },
      el('span', { class: 'muted' }, 'Signed, forged, stale, repeated and large requests to the hook\'s URL; never counted as deliveries.'),
      el('button', { class: 'primary', type: 'button', id: 'check-endpoint', onclick: async () => {
        fill(report, el('span', { class: 'muted' }, 'checking…'));
        try {
          const { json: done } = await api('POST', `${path}/check`);
          fill(report, checkReport(done));
        } catch (error) {
          fill(report, failure(error));
        }
      } }, 'Check endpoint')),
    report,
  );
}

const OUTCOME_CLASS = { pass: 'ok', warn: 'warn', fail: 'bad' };

function checkReport(r) {
  const detail = el('div');
  return el('div', {},
    el('p', { class: 'row' },
      el('strong', { class: OUTCOME_CLASS[r.outcome], id: 'check-outcome' }, r.outcome.toUpperCase()),
      el('span', { class: 'muted' }, `${when(r.createdAt)} · ${r.url} · ${r.timeoutMs} ms a request`)),
    el('table', { class: 'checks' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Check'), el('th', {}, 'Outcome'), el('th', {}, 'Detail'), el('th', {}, ''))),
      el('tbody', {}, r.checks.map((c) => el('tr', { 'data-check': c.name },
        el('td', {}, c.name),
        el('td', { class: OUTCOME_CLASS[c.outcome] }, c.outcome),
        el('td', {}, c.detail),
        el('td', {}, c.request.method && el('button', { class: 'link', type: 'button',
          onclick: () => fill(detail, el('h3', {}, c.name), json({ request: c.request, response: c.response })) }, 'request'))))),
    ),
    detail,
  );
}

function healthPanel(path) {
  const panel = el('section', { class: 'panel', id: 'health' }, el('span', { class: 'muted' }, 'loading…'));
  const now = Date.now();
  Promise.all([
    api('GET', `${path}/stats`),
    api('GET', `${path}/stats?since=${now - 14 * 24 * HOUR}&until=${now}`),
  ]).then(([{ json: day }, { json: fortnight }]) => {
    const hours = [];
    const first = Math.floor((now - 23 * HOUR) / HOUR) * HOUR;
    for (let t = first; t <= now; t += HOUR) hours.push(t);
    const byHour = new Map(day.buckets.map((b) => [b.hour, b]));
    const columns = hours.map((t) => column(new Date(t).toISOString().slice(11, 13) + 'h', byHour.get(t)));
    const days = [];
    for (let d = 13; d >= 0; d -= 1) days.push(new Date(now - d * 24 * HOUR).toISOString().slice(0, 10));
    const byDay = new Map();
    for (const b of fortnight.buckets) {
      const key = new Date(b.hour).toISOString().slice(0, 10);
      byDay.set(key, merge(byDay.get(key), b));
    }
    fill(panel,
      el('p', { class: 'legend' }, el('span', {}, `24 h: ${day.attempts} attempts, ${day.successes} successes`),
        day.failingSince ? el('span', { class: 'bad' }, `failing since ${when(day.failingSince)}`) : null,
        el('span', {}, `p50 ${day.durationMs.p50 ?? '—'} ms, p95 ${day.durationMs.p95 ?? '—'} ms, p99 ${day.durationMs.p99 ?? '—'} ms`)),
      stackedBars('Attempts per hour, last 24 h (green: success)', columns),
      lines('Attempt duration per hour: p50, p95, p99', columns.map((c) => c.label),
        ['p50', 'p95', 'p99'].map((p) => ({ kind: p, points: hours.map((t) => (byHour.get(t) ? byHour.get(t).durationMs[p] : null)) }))),
      stackedBars('Attempts per day, last 14 days', days.map((d) => column(d.slice(5), byDay.get(d)))),
      el('p', { class: 'legend' }, ['success', ...KINDS].map((k) => el('span', { class: `key-${k}` }, k))),
    );
  }).catch((error) => fill(panel, failure(error)));
  return panel;
}

function column(label, bucket) {
  const parts = [{ kind: 'success', value: bucket ? bucket.successes : 0 }];
  for (const kind of KINDS) parts.push({ kind, value: bucket ? bucket.failures[kind] : 0 });
  return { label, parts };
}

function merge(into, bucket) {
  if (!into) return { successes: bucket.successes, failures: { ...bucket.failures } };
  into.successes += bucket.successes;
  for (const kind of KINDS) into.failures[kind] += bucket.failures[kind];
  return into;
}

function recoverPanel(path) {
  const local = new Date(Date.now() - 24 * HOUR - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const since = el('input', { name: 'since', type: 'datetime-local', value: local });
  const progress = el('p', { id: 'recovery', class: 'muted' });
  return el(
    'section',
    { class: 'panel' },
    el('h2', {}, 'Recover'),
    el('p', { class: 'muted' }, 'Re-send every delivery that failed or was dropped since then.'),
    el('p', { class: 'row' }, since,
      el('button', { class: 'primary', type: 'button', onclick: async () => {
        try {
          const { json: recovery } = await api('POST', `${path}/recover`, { since: new Date(since.value).getTime() });
          follow(path, recovery.id, progress);
        } catch (error) {
          fill(progress, failure(error));
        }
      } }, 'Recover')),
    progress,
  );
}

async function follow(path, id, into) {
  for (;;) {
    const { json: r } = await api('GET', `${path}/recoveries/${encodeURIComponent(id)}`);
    fill(into, `${r.status}: ${r.resent} re-sent in ${r.steps} steps`);
    if (r.status !== 'running') return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function logFilters(hook, into) {
  const result = el('select', { name: 'result' }, ['', 'Success', 'Error', 'Pending'].map((r) => el('option', { value: r }, r || 'any result')));
  const event = el('select', { name: 'event' }, el('option', { value: '' }, 'any event'), hook.events.map((e) => el('option', { value: e }, e)));
  // Empty: the API's default window, the last 24 hours.
  const from = el('input', { name: 'startTime', type: 'datetime-local', title: 'from' });
  const to = el('input', { name: 'endTime', type: 'datetime-local', title: 'until' });
  const ms = (input) => (input.value ? String(new Date(input.value).getTime()) : '');
  const apply = () => deliveryLog(hook.id, into, { result: result.value, event: event.value, startTime: ms(from), endTime: ms(to) });
  for (const input of [result, event, from, to]) input.addEventListener('change', apply);
  return el('p', { class: 'row' }, result, event, el('label', { class: 'row' }, 'from', from), el('label', { class: 'row' }, 'until', to));
}

async function deliveryLog(id, into, filters, cursor) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v) query.set(k, v);
  if (cursor) query.set('cursor', cursor);
  const { json: entries, headers } = await api('GET', `/api/hooks/${encodeURIComponent(id)}/recent-logs?${query}`);
  const detail = el('div', { id: 'delivery' });
  const rows = entries.map((entry) =>
    el(
      'tr',
      {},
      el('td', {}, when(entry.createdAt)),
      el('td', {}, entry.event),
      el('td', { class: entry.result === 'Success' ? 'ok' : entry.result === 'Error' ? 'bad' : 'muted' }, entry.result),
      el('td', {}, String(entry.attemptCount)),
      el('td', {}, el('button', { class: 'link', type: 'button', onclick: () => delivery(id, entry, detail) }, 'details')),
    ),
  );
  const next = nextCursor(headers);
  fill(
    into,
    el(
      'table',
      { id: 'log' },
      el('thead', {}, el('tr', {}, ['Created', 'Event', 'Result', 'Attempts', ''].map((h) => el('th', {}, h)))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'No deliveries in this window (the last 24 hours unless set).'))),
    ),
    next && el('p', {}, el('button', { class: 'link', type: 'button', onclick: () => deliveryLog(id, into, filters, next) }, 'Older →')),
    detail,
  );
}

function delivery(hookId, entry, into) {
  const status = el('span', { class: 'muted' });
  const attempts = entry.attempts.map((a) =>
    el('tr', {},
      el('td', {}, String(a.number)),
      el('td', {}, when(a.startedAt)),
      el('td', {}, a.responseStatus ?? '—'),
      el('td', {}, `${a.durationMs} ms`),
      el('td', {}, a.errorKind || '—'),
      el('td', {}, a.responseBody ? el('pre', {}, a.responseBody) : '—')));
  fill(
    into,
    el('h2', {}, `Delivery ${entry.id}`),
    el('p', { class: 'row' }, `${entry.result} (${entry.mode || 'async'})`, entry.reason ? el('span', { class: 'bad' }, entry.reason) : null,
      entry.mode !== 'sync' && entry.result !== 'Pending' && el('button', { class: 'primary', type: 'button', onclick: async () => {
        try {
          await api('POST', `/api/hooks/${encodeURIComponent(hookId)}/deliveries/${encodeURIComponent(entry.id)}/retry`);
          fill(status, 'Re-sent: a new attempt is queued.');
        } catch (error) {
          fill(status, failure(error));
        }
      } }, 'Re-send'), status),
    el('h3', {}, 'Delivered body'),
    json(entry.payload.hookRequest.body),
    el('h3', {}, 'Attempts'),
    el('table', { id: 'attempts' },
      el('thead', {}, el('tr', {}, ['#', 'Started', 'Status', 'Duration', 'Error', 'Response'].map((h) => el('th', {}, h)))),
      el('tbody', {}, attempts)),
  );
}
