// The Workers panel (state, health figures, heartbeat; Remove for a stale worker
// with an admin token), the health charts of one worker, and the run form's
// choice of workers.

import {lineChart} from './charts.js';
import {ago, parseTime} from './format.js';
import {$, button, cell, guarded, may, state} from './state.js';

const pct = (v) => (v === null || v === undefined ? '–' : `${Math.round(v)}%`);

export function setWorkers(items) {
  state.workers = new Map(items.map((w) => [w.id, w]));
  renderWorkers();
}

export function updateWorker(worker) {
  state.workers.set(worker.id, worker);
  renderWorkers();
}

export function forgetWorker(id) {
  state.workers.delete(id);
  state.chosen.delete(id);
  if (state.healthWorker === id) state.healthWorker = null;
  renderWorkers();
}

async function remove(worker) {
  await state.api.delete(`/workers/${encodeURIComponent(worker.id)}`);
  forgetWorker(worker.id);
}

export function renderWorkers() {
  const body = $('workers').querySelector('tbody');
  const workers = [...state.workers.values()].sort((a, b) => a.name.localeCompare(b.name));
  $('workers-empty').hidden = workers.length > 0;
  body.replaceChildren(...workers.map((w) => {
    const h = w.health || {};
    const row = document.createElement('tr');
    if (w.id === state.healthWorker) row.setAttribute('aria-current', 'true');
    row.append(
      cell(w.name), cell(w.state, `state ${w.state}`), cell(String(w.cores ?? '–')),
      cell(pct(h.cpu_percent)), cell(pct(h.memory_percent)),
      cell(h.load1 === undefined || h.load1 === null ? '–' : h.load1.toFixed(2)),
      cell(h.temperature_c === undefined || h.temperature_c === null
        ? '–' : `${Math.round(h.temperature_c)} °C`),
      cell(String(w.running_jobs ?? 0)), cell(ago(w.last_heartbeat)));
    const actions = document.createElement('td');
    actions.append(button('Health', `Show the health of ${w.name}`, () => showHealth(w.id)));
    if (w.state !== 'online' && may('admin')) {
      actions.append(button('Remove', `Remove the worker ${w.name}`,
        () => guarded(() => remove(w)), 'danger'));
    }
    row.append(actions);
    return row;
  }));
  renderWorkerChoices();
}

function renderWorkerChoices() {
  const online = [...state.workers.values()].filter((w) => w.state === 'online')
    .sort((a, b) => a.name.localeCompare(b.name));
  const box = $('worker-choices');
  const shown = [...box.querySelectorAll('input')].map((i) => i.value).join(',');
  if (shown === online.map((w) => w.id).join(',') && online.length) return; // keep focus
  box.replaceChildren(...online.map((w) => {
    const label = document.createElement('label');
    label.className = 'choice';
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.value = w.id;
    input.checked = state.chosen.has(w.id);
    input.addEventListener('change', () => {
      if (input.checked) state.chosen.add(w.id); else state.chosen.delete(w.id);
    });
    label.append(input, ` ${w.name}`);
    return label;
  }));
  if (online.length === 0) box.textContent = 'No worker is online.';
}

export function showHealth(workerId) {
  state.healthWorker = workerId;
  renderWorkers();
  guarded(loadHealth);
}

export async function loadHealth() {
  const id = state.healthWorker;
  if (!id || !state.api) return;
  // "<window in ms>/<resolution>": longer windows use the master's downsampled series.
  const [windowMs, resolution] = $('health-period').value.split('/');
  const since = new Date(Date.now() - Number(windowMs)).toISOString();
  const data = await state.api.get(`/workers/${encodeURIComponent(id)}/health`
    + `?since=${encodeURIComponent(since)}&resolution=${resolution}`);
  if (state.healthWorker !== id) return;
  const samples = data.items.filter((s) => s.sampled_at)
    .map((s) => ({...s, t: parseTime(s.sampled_at)}))
    .sort((a, b) => a.t - b.t);
  const series = (key) => samples.filter((s) => typeof s[key] === 'number')
    .map((s) => ({t: s.t, v: s[key]}));
  const worker = state.workers.get(id);
  const name = worker ? worker.name : id;
  $('health-title').textContent = `Health of ${name}`;
  $('health-hint').hidden = true;
  $('charts').replaceChildren(
    lineChart({title: `CPU of ${name}`, unit: '%', points: series('cpu_percent'), fixedMax: 100}),
    lineChart({title: `Memory of ${name}`, unit: '%', points: series('memory_percent'),
      fixedMax: 100}),
    lineChart({title: `Load of ${name}`, unit: '', points: series('load1'), digits: 2}),
    lineChart({title: `Temperature of ${name}`, unit: ' °C', points: series('temperature_c')}),
  );
}
