// A minimal webhook receiver in Node, with nothing but node:crypto and node:http.
//
// It verifies the Standard Webhooks signature (webhook-id, webhook-timestamp,
// webhook-signature; a timestamp at most 5 minutes away) and, when the request carries it,
// Logto's logto-signature-sha-256 as Logto's documentation shows; it answers a repeated
// webhook-id 200 without doing the work again, and answers at once (work is done after).
//
//   WEBHOOK_SECRET=whsec_... PORT=8080 node receiver.js
//
// PORT=0 picks a free port; the bound port is printed as `listening on PORT`.
// SCHEME=logto or SCHEME=standard verifies one scheme only (the check then warns).
// BROKEN=<behaviour> breaks it on purpose, for the receiver check's own tests:
//   no-verify, no-timestamp, first-signature-only, dup-error, slow, small-body,
//   strict-fields, redirect.
'use strict';

const http = require('node:http');
const { createHmac, timingSafeEqual } = require('node:crypto');

const SECRET = process.env.WEBHOOK_SECRET || '';
const SCHEME = process.env.SCHEME || 'both';
const BROKEN = process.env.BROKEN || '';
const TOLERANCE_SECS = 5 * 60;
const MAX_BODY = BROKEN === 'small-body' ? 16 * 1024 : 1024 * 1024;
const KNOWN_FIELDS = new Set([
  'hookId', 'event', 'createdAt', 'userAgent', 'sessionId', 'userIp', 'userId', 'user',
  'application', 'interactionEvent', 'data', 'path', 'method', 'status', 'params',
  'matchedRoute', 'check',
]);

if (!SECRET) {
  console.error('WEBHOOK_SECRET is required');
  process.exit(2);
}

function equal(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

// Logto's snippet: hex HMAC-SHA256 of the raw body, keyed with the signing key as shown.
function verifyLogto(signingKey, rawBody, expectedSignature) {
  const hmac = createHmac('sha256', signingKey);
  hmac.update(rawBody);
  return equal(hmac.digest('hex'), String(expectedSignature).toLowerCase());
}

// Standard Webhooks: base64 HMAC-SHA256 of "{id}.{timestamp}.{body}", keyed with the
// base64-decoded secret after `whsec_`; any `v1,` entry of the header may match.
function verifyStandard(secret, headers, rawBody) {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (!id || !timestamp || !signatures) return false;
  const ts = Number(timestamp);
  if (!Number.isInteger(ts)) return false;
  if (BROKEN !== 'no-timestamp' && Math.abs(Date.now() / 1000 - ts) > TOLERANCE_SECS) {
    return false;
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key)
    .update(`${id}.${timestamp}.`)
    .update(rawBody)
    .digest('base64');
  let entries = signatures.split(' ').filter((s) => s.startsWith('v1,'));
  if (BROKEN === 'first-signature-only') entries = entries.slice(0, 1);
  return entries.some((s) => equal(s.slice(3), expected));
}

function verified(headers, rawBody) {
  if (BROKEN === 'no-verify') return true;
  const logto = headers['logto-signature-sha-256'];
  if (SCHEME === 'logto') return Boolean(logto) && verifyLogto(SECRET, rawBody, logto);
  if (!verifyStandard(SECRET, headers, rawBody)) return false;
  // A Logto signature, when sent, must be valid too.
  return SCHEME === 'standard' || logto === undefined || verifyLogto(SECRET, rawBody, logto);
}

const seen = new Set();

function remember(id) {
  seen.add(id);
  if (seen.size > 10000) seen.delete(seen.values().next().value);
}

function answer(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  if (BROKEN === 'redirect') {
    answer(res, 307, {}, { location: '/elsewhere' });
    req.resume();
    return;
  }
  const chunks = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) tooLarge = true;
    else chunks.push(chunk);
  });
  req.on('end', () => {
    if (tooLarge) return answer(res, 413, { error: 'body too large' });
    const rawBody = Buffer.concat(chunks);
    if (!verified(req.headers, rawBody)) return answer(res, 401, { error: 'invalid signature' });
    let event;
    try {
      event = JSON.parse(rawBody.toString('utf8'));
    } catch {
      return answer(res, 400, { error: 'not JSON' });
    }
    if (BROKEN === 'strict-fields' && Object.keys(event).some((k) => !KNOWN_FIELDS.has(k))) {
      return answer(res, 400, { error: 'unknown field' });
    }
    const id = req.headers['webhook-id'] || '';
    if (seen.has(id)) {
      if (BROKEN === 'dup-error') return answer(res, 409, { error: 'already received' });
      return answer(res, 200, { duplicate: true });
    }
    remember(id);
    const reply = () => answer(res, 200, { received: true });
    if (BROKEN === 'slow') setTimeout(reply, 1500);
    else reply();
    // The work (event.event, event.hookId, ...) happens here, after answering.
    void event;
  });
});

server.listen(Number(process.env.PORT || 8080), '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});
