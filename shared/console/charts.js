// Health charts as inline SVG, drawn from the stats endpoint's hourly buckets. Built with
// DOM calls like everything else; colours come from the stylesheet.

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) if (child) node.append(child);
  return node;
}

function text(x, y, value, attrs = {}) {
  const node = svg('text', { x, y, ...attrs });
  node.textContent = value;
  return node;
}

/**
 * Stacked bars: `columns` is a list of `{label, parts: [{value, kind}]}`; each part is drawn
 * in the colour of its kind (`.chart .kind-<kind>`).
 */
export function stackedBars(title, columns, { width = 720, height = 160 } = {}) {
  const top = 20;
  const bottom = 20;
  const inner = height - top - bottom;
  const max = Math.max(1, ...columns.map((c) => c.parts.reduce((s, p) => s + p.value, 0)));
  const step = width / Math.max(1, columns.length);
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title });
  chart.append(text(0, 14, `${title} (max ${max})`, { class: 'chart-title' }));
  columns.forEach((column, i) => {
    let y = top + inner;
    for (const part of column.parts) {
      if (!part.value) continue;
      const h = (part.value / max) * inner;
      y -= h;
      const bar = svg('rect', { x: i * step + 1, y, width: Math.max(1, step - 2), height: h, class: `kind-${part.kind}` });
      const tip = svg('title');
      tip.textContent = `${column.label}: ${part.value} ${part.kind}`;
      bar.append(tip);
      chart.append(bar);
    }
    if (columns.length <= 24 ? i % 3 === 0 : i % 2 === 0) {
      chart.append(text(i * step + 1, height - 4, column.label, { class: 'chart-axis' }));
    }
  });
  return chart;
}

/** Lines of `series` (`{kind, points: [number|null]}`) over the same columns. */
export function lines(title, labels, series, { width = 720, height = 160 } = {}) {
  const top = 20;
  const bottom = 20;
  const inner = height - top - bottom;
  const values = series.flatMap((s) => s.points.filter((p) => p !== null));
  const max = Math.max(1, ...values);
  const step = width / Math.max(1, labels.length);
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title });
  chart.append(text(0, 14, `${title} (max ${max} ms)`, { class: 'chart-title' }));
  for (const s of series) {
    const points = s.points
      .map((p, i) => (p === null ? null : `${i * step + step / 2},${top + inner - (p / max) * inner}`))
      .filter(Boolean)
      .join(' ');
    if (points) chart.append(svg('polyline', { points, class: `line-${s.kind}` }));
    s.points.forEach((p, i) => {
      if (p === null) return;
      const dot = svg('circle', { cx: i * step + step / 2, cy: top + inner - (p / max) * inner, r: 3, class: `dot-${s.kind}` });
      const tip = svg('title');
      tip.textContent = `${labels[i]}: ${s.kind} ${p} ms`;
      dot.append(tip);
      chart.append(dot);
    });
  }
  labels.forEach((label, i) => {
    if (labels.length <= 24 ? i % 3 === 0 : i % 2 === 0) chart.append(text(i * step + 1, height - 4, label, { class: 'chart-axis' }));
  });
  return chart;
}
