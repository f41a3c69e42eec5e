"""The live monitoring page at ``/monitor``: plain HTML and JavaScript, nothing fetched
from elsewhere, polling ``/monitor.json`` once a second."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shoal stream monitor</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-top:1em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
#stream span{margin-right:1.2em}.dim{color:#888}
</style></head><body>
<h1>shoal stream</h1>
<div id="stream" class="dim">waiting for the first figures...</div>
<table id="volunteers"><thead><tr>
<th class="l">volunteer</th><th class="l">kind</th><th>done</th><th>holding</th>
<th>items/s avg</th><th>std</th><th>min</th><th>max</th>
<th>cpu avg</th><th>std</th><th>min</th><th>max</th>
<th>transfer avg</th><th>std</th><th>min</th><th>max</th></tr></thead><tbody></tbody></table>
<p class="dim">Averages, standard deviations, minima and maxima over the reporting intervals
seen; CPU usage and transfer load in seconds per second.</p>
<script>
"use strict";
function cell(text, left) {
  const td = document.createElement("td");
  td.textContent = text;
  if (left) td.className = "l";
  return td;
}
function fmt(x) { return typeof x === "number" ? x.toFixed(x >= 100 ? 0 : 2) : String(x); }
function four(s) { return [s.avg, s.std, s.min, s.max].map(fmt); }
async function refresh() {
  try {
    const data = await (await fetch("monitor.json", {cache: "no-store"})).json();
    const top = document.getElementById("stream");
    top.className = "";
    top.replaceChildren();
    const s = data.stream;
    const facts = s === null
      ? {"state": "no stream yet", "waiting volunteers": data.waiting_volunteers}
      : {"module": s.module, "read": s.read, "printed": s.released, "lent": s.outstanding,
         "buffered": s.buffered, "window": s.window, "re-lent": s.relent,
         "failures": s.failures, "elapsed s": fmt(s.elapsed),
         "state": s.status === null ? "running" : "ended (" + s.status + ")"};
    for (const [k, v] of Object.entries(facts)) {
      const span = document.createElement("span");
      span.textContent = k + ": " + v;
      top.appendChild(span);
    }
    const body = document.querySelector("#volunteers tbody");
    body.replaceChildren();
    for (const v of data.volunteers) {
      const tr = document.createElement("tr");
      tr.appendChild(cell(v.id + " " + v.name, true));
      tr.appendChild(cell(v.kind, true));
      tr.appendChild(cell(v.items_done));
      tr.appendChild(cell(v.holding));
      for (const key of ["throughput", "cpu_usage", "transfer_load"])
        for (const x of four(v[key])) tr.appendChild(cell(x));
      body.appendChild(tr);
    }
  } catch (e) {
    document.getElementById("stream").textContent = "no answer from the coordinator (" + e + ")";
  }
}
refresh();
setInterval(refresh, 1000);
</script></body></html>
"""
