"""The live monitoring page at ``/monitor``: plain HTML, SVG and JavaScript, nothing fetched
from elsewhere, polling ``/monitor.json`` once a second.

It shows the stream's counts, a chart of every volunteer's throughput over time (one line
per volunteer, one point per reporting interval, from the samples the coordinator keeps),
and a table of each volunteer's figures.  When the stream ends it says so (the coordinator
waits for a watching page to see its last answer before it goes) and stops polling; a
stream-server's page goes on, showing the last stream's end until the next one starts.
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shoal stream monitor</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;max-width:80em}
table{border-collapse:collapse;margin-top:1em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
#stream span{margin-right:1.2em}.dim{color:#888}
#state{font-weight:bold;margin:.5em 0}
#state[data-state=ended]{color:#1a6e2e}#state[data-state=unreachable]{color:#a33}
#chart{width:100%;max-width:760px;height:auto;border:1px solid #ddd;background:#fcfcfc}
#chart text{font:11px system-ui,sans-serif;fill:#555}
#chart .grid{stroke:#e4e4e4}#chart .axis{stroke:#999}
#chart polyline{fill:none;stroke-width:2}
#legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3em 1.2em}
#legend i{display:inline-block;width:1.6em;height:.35em;margin-right:.4em;
  vertical-align:middle}
</style></head><body>
<h1>shoal stream</h1>
<p id="state" role="status" data-state="starting">waiting for the first figures...</p>
<div id="stream" class="dim"></div>
<h2>Throughput over time</h2>
<svg id="chart" viewBox="0 0 760 260" role="img"
  aria-label="items per second of each volunteer over time"></svg>
<ul id="legend" aria-label="volunteers"></ul>
<table id="volunteers"><thead><tr>
<th class="l">volunteer</th><th class="l">kind</th><th>done</th><th>holding</th>
<th>items/s avg</th><th>std</th><th>min</th><th>max</th>
<th>cpu avg</th><th>std</th><th>min</th><th>max</th>
<th>transfer avg</th><th>std</th><th>min</th><th>max</th>
<th>units/s avg</th><th class="l">unit</th></tr></thead><tbody></tbody></table>
<p class="dim">Averages, standard deviations, minima and maxima over the reporting intervals
seen; CPU usage and transfer load in seconds per second; units as the processor reports them
(shoal.report).</p>
<script>
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
const colorOf = new Map();
let lastAnswer = null;
let drawn = false;   // a chart of some volunteers is on the page
let timer = null;

function cell(text, left) {
  const td = document.createElement("td");
  td.textContent = text;
  if (left) td.className = "l";
  return td;
}
function fmt(x) { return typeof x === "number" ? x.toFixed(x >= 100 ? 0 : 2) : String(x); }
function four(s) { return [s.avg, s.std, s.min, s.max].map(fmt); }
function color(id) {
  if (!colorOf.has(id)) colorOf.set(id, COLORS[colorOf.size % COLORS.length]);
  return colorOf.get(id);
}
function svg(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}
function niceCeiling(x) {
  if (!(x > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(x)));
  for (const step of [1, 2, 2.5, 5, 10]) if (x <= step * power) return step * power;
  return 10 * power;
}

// One line per volunteer: its throughput samples, the last one at "now" (every volunteer's
// interval closes at the same time), one reporting interval apart.
function drawChart(volunteers, interval) {
  const chart = document.getElementById("chart");
  const W = 760, H = 260, L = 52, R = 14, T = 12, B = 30;
  const series = volunteers.filter(v => v.series && v.series.length > 0);
  let points = 2, top = 0;
  for (const v of series) {
    points = Math.max(points, v.series.length);
    for (const y of v.series) top = Math.max(top, y);
  }
  top = niceCeiling(top);
  const span = (points - 1) * interval;
  const x = age => L + (W - L - R) * (1 - age / span);
  const y = value => T + (H - T - B) * (1 - value / top);
  const nodes = [];
  for (let k = 0; k <= 4; k++) {
    const value = top * k / 4;
    nodes.push(svg("line", {class: "grid", x1: L, x2: W - R, y1: y(value), y2: y(value)}));
    nodes.push(svg("text", {x: L - 6, y: y(value) + 4, "text-anchor": "end"}, fmt(value)));
  }
  for (let k = 0; k <= 4; k++) {
    const age = span * (4 - k) / 4;
    nodes.push(svg("text", {x: x(age), y: H - B + 16, "text-anchor": "middle"},
                   age === 0 ? "now" : "-" + fmt(age) + " s"));
  }
  nodes.push(svg("line", {class: "axis", x1: L, x2: L, y1: T, y2: H - B}));
  nodes.push(svg("line", {class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B}));
  nodes.push(svg("text", {x: 12, y: T + 2, transform: `rotate(90 12 ${T + 2})`},
                 "items/s"));
  for (const v of series) {
    const n = v.series.length;
    const coordinates = v.series.map((value, i) =>
      `${x((n - 1 - i) * interval).toFixed(1)},${y(value).toFixed(1)}`);
    if (n === 1) coordinates.push(`${x(0).toFixed(1)},${y(v.series[0]).toFixed(1)}`);
    const line = svg("polyline", {points: coordinates.join(" "), stroke: color(v.id),
                                  "data-volunteer": v.id});
    line.appendChild(svg("title", {}, `${v.id} ${v.name}`));
    nodes.push(line);
  }
  if (series.length === 0) {
    nodes.push(svg("text", {x: (W + L) / 2, y: H / 2, "text-anchor": "middle"},
                   "no samples yet: one comes every reporting interval"));
  }
  chart.replaceChildren(...nodes);
  const legend = document.getElementById("legend");
  legend.replaceChildren(...series.map(v => {
    const li = document.createElement("li");
    const swatch = document.createElement("i");
    swatch.style.background = color(v.id);
    li.append(swatch, `${v.id} ${v.name}`);
    return li;
  }));
}

function setState(state, text) {
  const element = document.getElementById("state");
  element.dataset.state = state;
  element.textContent = text;
}

function showFacts(s, data) {
  const top = document.getElementById("stream");
  top.className = "";
  top.replaceChildren();
  const facts = s === null
    ? {"waiting volunteers": data.waiting_volunteers}
    : {"module": s.module, "read": s.read, "printed": s.released, "lent": s.outstanding,
       "buffered": s.buffered, "window": s.window, "re-lent": s.relent,
       "failures": s.failures, "elapsed s": fmt(s.elapsed)};
  for (const [k, v] of Object.entries(facts)) {
    const span = document.createElement("span");
    span.textContent = k + ": " + v;
    top.appendChild(span);
  }
}

function showTable(volunteers) {
  const body = document.querySelector("#volunteers tbody");
  body.replaceChildren();
  for (const v of volunteers) {
    const tr = document.createElement("tr");
    tr.appendChild(cell(v.id + " " + v.name, true));
    tr.appendChild(cell(v.kind, true));
    tr.appendChild(cell(v.items_done));
    tr.appendChild(cell(v.holding));
    for (const key of ["throughput", "cpu_usage", "transfer_load"])
      for (const x of four(v[key])) tr.appendChild(cell(x));
    tr.appendChild(cell(fmt(v.units_per_s.avg)));
    tr.appendChild(cell(v.unit || "", true));
    body.appendChild(tr);
  }
}

async function refresh() {
  let data;
  try {
    data = await (await fetch("monitor.json", {cache: "no-store"})).json();
  } catch (e) {
    const since = lastAnswer ? " since " + lastAnswer.toLocaleTimeString() : "";
    setState("unreachable", "no answer from the coordinator" + since +
             ": it stopped, or the network is down; trying again");
    return;
  }
  lastAnswer = new Date();
  const s = data.stream;
  if (s !== null && s.status !== null) {
    setState("ended", `stream ended (exit status ${s.status}): ${s.released} results`);
    if (!data.lasting) clearInterval(timer);   // the coordinator goes away with its stream
  } else if (s !== null) {
    setState("running", `running ${s.function} from ${s.module}`);
  } else if (data.last_stream) {
    setState("ended", `stream ended (exit status ${data.last_stream.status}): ` +
             `${data.last_stream.released} results; waiting for the next stream`);
  } else {
    setState("idle", "no stream yet");
  }
  showFacts(s, data);
  // At the end the volunteers have left: keep the chart and table of the last figures.
  const ended = s === null || s.status !== null;
  if (!(ended && data.volunteers.length === 0 && drawn)) {
    drawChart(data.volunteers, data.interval || 3);
    showTable(data.volunteers);
    drawn = data.volunteers.length > 0;
  }
}
refresh();
timer = setInterval(refresh, 1000);
</script></body></html>
"""
