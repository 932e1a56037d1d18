// The JSON API, called with the admin token the operator pasted. The token lives in
// sessionStorage only: never in a URL, a cookie or the page.

const KEY = 'webhooks.adminToken';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? `${body.message} (${body.code})` : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token.get() || ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { message: text };
  }
  if (response.status === 401) token.clear();
  if (!response.ok) throw new ApiError(response.status, parsed);
  return { json: parsed, headers: response.headers };
}

/** The `cursor` of a `Link: <…>; rel="next"` header, if any. */
export function nextCursor(headers) {
  const link = headers.get('link');
  const match = link && link.match(/<([^>]+)>;\s*rel="next"/);
  return match ? new URL(match[1], location.href).searchParams.get('cursor') : null;
}
