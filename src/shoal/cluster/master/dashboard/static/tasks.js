// The Tasks panel: the task service's state from GET /api/v1/tasks
// (docs/contracts/cluster-rest.md, last section), refreshed every 5 s. A master
// without that route (404) says "no task service".

import {ApiError} from './api.js';
import {$, cell, state} from './state.js';

function table(label, columns, rows) {
  const t = document.createElement('table');
  t.setAttribute('aria-label', label);
  const head = document.createElement('tr');
  for (const name of columns) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = name;
    head.append(th);
  }
  const thead = document.createElement('thead');
  thead.append(head);
  const body = document.createElement('tbody');
  body.append(...rows.map((values) => {
    const row = document.createElement('tr');
    row.append(...values.map((v) => cell(String(v))));
    return row;
  }));
  t.append(thead, body);
  return t;
}

function render(data) {
  const summary = document.createElement('p');
  summary.className = 'tasks-summary';
  summary.textContent = `Scheduler ${data.scheduler}: ${data.queued} queued, `
    + `${data.running} running, ${data.done} done, ${data.failed} failed; `
    + `${Number(data.throughput).toFixed(1)} tasks/s over the last minute.`;
  const parts = [summary];
  const workers = data.workers || [];
  parts.push(workers.length
    ? table('Task workers', ['Worker', 'Slots', 'Running', 'Done', 'Failed'],
      workers.map((w) => [w.name, w.slots, w.running, w.done, w.failed]))
    : Object.assign(document.createElement('p'), {textContent: 'No task agent is linked.'}));
  const systems = data.systems || [];
  if (systems.length) {
    parts.push(table('Task systems', ['System', 'Queued', 'Running', 'Done', 'Failed'],
      systems.map((s) => [s.name, s.queued, s.running, s.done, s.failed])));
  }
  $('tasks-body').replaceChildren(...parts);
}

function say(text) {
  $('tasks-body').replaceChildren(Object.assign(document.createElement('p'),
    {className: 'hint', textContent: text}));
}

export async function loadTasks() {
  if (!state.api) return;
  try {
    render(await state.api.get('/tasks'));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      say('no task service: this master does not serve GET /api/v1/tasks.');
    } else if (error instanceof ApiError && error.status === 401) {
      throw error; // the page logs out
    } else {
      say(`The task service's state is unavailable: ${error.message}`);
    }
  }
}
