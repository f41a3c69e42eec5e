// Small line charts drawn as inline SVG: no chart library, because the master
// may sit on a network with no internet and the page loads nothing from elsewhere.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 270;
const HEIGHT = 120;
const PAD = {left: 40, right: 8, top: 10, bottom: 20};

function node(name, attributes = {}, text = null) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== null) element.textContent = text;
  return element;
}

function clock(date) {
  return date.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
}

// points: [{t: Date, v: number}] in time order; fixedMax: e.g. 100 for percentages.
// Returns a <figure> holding the chart, named for screen readers (and tests) by
// its title and latest value.
export function lineChart({title, unit, points, fixedMax = null, digits = 0}) {
  const figure = document.createElement('figure');
  figure.className = 'chart';
  const values = points.map((p) => p.v);
  const latest = values.length ? values[values.length - 1] : null;
  const latestText = latest === null ? 'no samples' : `${latest.toFixed(digits)}${unit}`;
  const svg = node('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img',
    'aria-label': `${title}: ${latestText}`, width: WIDTH, height: HEIGHT,
  });
  svg.append(node('title', {}, `${title}, latest ${latestText}`));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  svg.append(node('rect', {
    x: PAD.left, y: PAD.top, width: plotW, height: plotH, class: 'plot',
  }));
  if (points.length === 0) {
    svg.append(node('text', {x: PAD.left + plotW / 2, y: PAD.top + plotH / 2, class: 'empty',
      'text-anchor': 'middle'}, title.includes('Temperature') ? 'no sensor' : 'no samples yet'));
  } else {
    const top = fixedMax ?? (Math.max(...values) * 1.1 || 1);
    const t0 = points[0].t.getTime();
    const span = Math.max(points[points.length - 1].t.getTime() - t0, 1);
    const x = (t) => PAD.left + ((t.getTime() - t0) / span) * plotW;
    const y = (v) => PAD.top + plotH - (Math.min(Math.max(v, 0), top) / top) * plotH;
    for (const [value, label] of [[top, top.toFixed(digits)], [0, '0']]) {
      svg.append(node('line', {x1: PAD.left, x2: PAD.left + plotW, y1: y(value), y2: y(value),
        class: 'grid'}));
      svg.append(node('text', {x: PAD.left - 4, y: y(value) + 4, 'text-anchor': 'end',
        class: 'axis'}, label + unit));
    }
    svg.append(node('text', {x: PAD.left, y: HEIGHT - 4, class: 'axis'}, clock(points[0].t)));
    svg.append(node('text', {x: PAD.left + plotW, y: HEIGHT - 4, class: 'axis',
      'text-anchor': 'end'}, clock(points[points.length - 1].t)));
    const line = points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
    svg.append(node('polyline', {points: line, class: 'series'}));
    const last = points[points.length - 1];
    svg.append(node('circle', {cx: x(last.t), cy: y(last.v), r: 2.5, class: 'dot'}));
  }
  const caption = document.createElement('figcaption');
  caption.textContent = `${title}: ${latestText}`;
  figure.append(caption, svg);
  return figure;
}
