// Elements are built from text only: nothing that comes from the API is ever parsed as HTML,
// so a body holding `<script>` or `"><img onerror=…>` shows as the characters it is.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A link to a route of the console (`#/…`), its parts percent-encoded. */
export function route(...parts) {
  return '#/' + parts.map((p) => encodeURIComponent(String(p))).join('/');
}

export function show(...nodes) {
  fill(document.getElementById('main'), ...nodes);
}

/** Replaces `parent`'s children by the given nodes, leaving out absent ones. */
export function fill(parent, ...nodes) {
  parent.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
}

export function when(ms) {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—';
}

export function failure(error) {
  return el('p', { class: 'error', role: 'alert' }, error.message || String(error));
}

/** JSON shown as text, indented. */
export function json(value) {
  return el('pre', {}, JSON.stringify(value, null, 2));
}
