// Pools: the list (the master's summaries, kept current by the live feed), the
// run form, one pool in detail with its jobs, and each job's output live.

import {splitCommand} from './api.js';
import {jobCounts, jobOutcome, outcomeClass, poolState, shellJoin, when} from './format.js';
import {$, button, cell, clearError, guarded, may, showError, state} from './state.js';

const POOL_PAGE = 20;
const OUTPUT_LIMIT = 200_000; // characters kept per job on the page

// Answers and events may arrive out of order (a POST's answer after the event of
// its job starting), so a job never goes back: queued < running < an end.
const RANK = {queued: 0, running: 1};
const rank = (job) => RANK[job.state] ?? 2;
const ended = (job) => rank(job) === 2;

export function freshest(job) {
  const known = state.jobs.get(job.id);
  // A lost job whose worker came back runs again: the one step back allowed.
  const revived = known && known.state === 'lost' && job.state === 'running';
  const chosen = known && rank(known) > rank(job) && !revived ? known : job;
  state.jobs.set(job.id, chosen);
  return chosen;
}

// A pool as the list shows it, made from a whole pool where only that is at hand.
function summaryOf(pool) {
  if (typeof pool.jobs === 'number') return pool;
  const counts = {};
  for (const job of pool.jobs) counts[job.state] = (counts[job.state] || 0) + 1;
  const nonzero = pool.jobs.filter((j) => j.state === 'exited' && j.exit_code !== 0).length;
  return {...pool, jobs: pool.jobs.length, job_counts: counts, nonzero_exits: nonzero,
    command_truncated: false};
}

export async function loadPools(fromStart) {
  const filter = $('pool-filter').value;
  const offset = fromStart ? 0 : state.pools.size;
  const query = `?limit=${POOL_PAGE}&offset=${offset}${filter ? `&state=${filter}` : ''}`;
  const page = await state.api.get(`/pools${query}`);
  if (fromStart) state.pools = new Map();
  for (const pool of page.items) state.pools.set(pool.id, pool);
  state.poolTotal = page.total;
  renderPools();
}

export function updatePool(incoming) {
  const pool = summaryOf(incoming);
  const known = state.pools.has(pool.id);
  state.pools.set(pool.id, pool);
  if (!known) {
    // A new pool goes on top, as the list is newest first.
    const rest = [...state.pools.entries()].filter(([id]) => id !== pool.id);
    state.pools = new Map([[pool.id, pool], ...rest]);
    state.poolTotal += 1;
  }
  renderPools();
  if (state.pool && state.pool.id === pool.id) showPoolData(state.pool);
}

export function updateJob(incoming) {
  const job = freshest(incoming);
  if (!state.pool || state.pool.id !== job.pool_id) return;
  state.pool.jobs = state.pool.jobs.map((j) => (j.id === job.id ? job : j));
  showPoolData(state.pool);
}

export function renderPools() {
  const filter = $('pool-filter').value;
  const pools = [...state.pools.values()].filter((p) => !filter || p.state === filter);
  const body = $('pools').querySelector('tbody');
  body.replaceChildren(...pools.map((pool) => {
    const row = document.createElement('tr');
    if (state.pool && state.pool.id === pool.id) row.setAttribute('aria-current', 'true');
    const command = shellJoin(pool.command) + (pool.command_truncated ? ' …' : '');
    const shown = poolState(pool);
    row.append(cell(command, 'command'), cell(shown.text, shown.className),
      cell(jobCounts(pool)), cell(when(pool.created_at)), cell(pool.submitted_by || '–'));
    const actions = document.createElement('td');
    actions.append(button('Open', `Open the pool ${command}`, () => openPool(pool.id)));
    if (pool.state === 'running' && may('submit')) {
      actions.append(button('Kill', `Kill the pool ${command}`,
        () => guarded(() => kill(pool.id, null)), 'danger'));
    }
    row.append(actions);
    return row;
  }));
  $('pools-empty').hidden = pools.length > 0;
  $('pools-more').hidden = state.pools.size >= state.poolTotal;
}

async function kill(poolId, workerIds) {
  const pool = await state.api.post(`/pools/${poolId}/kill`, {workers: workerIds, signal: 15});
  if (!state.pools.has(pool.id)) updatePool(pool);
  if (state.pool && state.pool.id === pool.id) {
    showPoolData({...pool, jobs: pool.jobs.map(freshest)});
  }
}

export async function submit(event) {
  event.preventDefault();
  let command;
  try {
    command = splitCommand($('command').value);
  } catch (error) {
    showError(error);
    return;
  }
  if (command.length === 0) {
    showError('Type the command to run, e.g. hostname.');
    return;
  }
  const all = $('all-workers').checked;
  const online = new Set([...state.workers.values()].filter((w) => w.state === 'online')
    .map((w) => w.id));
  const workers = [...state.chosen].filter((id) => online.has(id));
  if (!all && workers.length === 0) {
    showError('Choose the workers to run it on, or tick "All online workers".');
    return;
  }
  await guarded(async () => {
    const pool = await state.api.post('/pools', {command, workers: all ? null : workers});
    clearError();
    if (!state.pools.has(pool.id)) updatePool(pool); // else the live feed was first
    openPool(pool.id, pool);
  });
}

// -- one pool: its jobs and their output -----------------------------------------

export function closeStreams() {
  for (const source of state.streams.values()) source.close();
  state.streams.clear();
}

export function openPool(poolId, known) {
  guarded(async () => {
    // Job events keep it current from here on; an answer older than an event already
    // applied (a job shown queued after it started) cannot take a job back (freshest).
    const fetched = known || await state.api.get(`/pools/${poolId}`);
    const pool = {...fetched, jobs: fetched.jobs.map(freshest)};
    closeStreams();
    state.pool = pool;
    $('outputs').replaceChildren();
    $('pool').hidden = false;
    showPoolData(pool);
    renderPools();
    for (const job of pool.jobs) followJob(job);
    $('pool').scrollIntoView({block: 'nearest'});
  });
}

export function showPoolData(pool) {
  state.pool = pool;
  const listed = state.pools.get(pool.id);
  const done = pool.jobs.every(ended);
  const shown = poolState({...pool, state: done ? 'done' : 'running',
    outcome: (listed && listed.outcome) || pool.outcome});
  const command = shellJoin(pool.command);
  $('pool-title').textContent = `Pool: ${command}`;
  $('pool-summary').textContent = `${shown.text}, created ${when(pool.created_at)}`
    + (pool.ended_at ? `, ended ${when(pool.ended_at)}` : '')
    + (pool.submitted_by ? ` by ${pool.submitted_by}` : '') + ` (id ${pool.id})`;
  const body = $('jobs').querySelector('tbody');
  body.replaceChildren(...pool.jobs.map((job) => {
    const row = document.createElement('tr');
    row.append(cell(job.worker_name), cell(job.state, `state ${job.state}`),
      cell(jobOutcome(job), outcomeClass(job)), cell(job.pid ? String(job.pid) : '–'),
      cell(when(job.started_at)), cell(when(job.ended_at)));
    const actions = document.createElement('td');
    if (!ended(job) && may('submit')) {
      actions.append(button('Kill', `Kill the job on ${job.worker_name}`,
        () => guarded(() => kill(pool.id, [job.worker_id])), 'danger'));
    }
    row.append(actions);
    return row;
  }));
  for (const job of pool.jobs) if (ended(job)) markEnded(job);
}

function outputBox(job) {
  let box = document.getElementById(`output-${job.id}`);
  if (!box) {
    const figure = document.createElement('figure');
    figure.className = 'output';
    const caption = document.createElement('figcaption');
    caption.textContent = `Output of ${job.worker_name}`;
    box = document.createElement('pre');
    box.id = `output-${job.id}`;
    box.setAttribute('role', 'log');
    box.setAttribute('aria-label', `Output of ${job.worker_name}`);
    box.tabIndex = 0;
    const empty = document.createElement('p');
    empty.id = `no-output-${job.id}`;
    empty.className = 'no-output';
    empty.textContent = 'no output yet';
    figure.append(caption, box, empty);
    $('outputs').append(figure);
  }
  return box;
}

// The note under an empty output box: "no output yet" while the job runs, "no output"
// once it has ended (killed, exited or lost without printing anything).
function showEmpty(job, box) {
  const empty = document.getElementById(`no-output-${job.id}`);
  if (!empty) return;
  empty.hidden = box.textContent.length > 0;
  empty.textContent = ended(state.jobs.get(job.id) || job) ? 'no output' : 'no output yet';
}

function markEnded(job) {
  const box = document.getElementById(`output-${job.id}`);
  if (box) showEmpty(job, box);
}

function followJob(job) {
  const box = outputBox(job);
  showEmpty(job, box);
  const source = state.api.events(`/jobs/${job.id}/stream`);
  state.streams.set(job.id, source);
  // The stream starts with all output so far, so a reconnected one replaces it.
  source.addEventListener('open', () => {
    box.textContent = '';
    showEmpty(job, box);
  });
  source.addEventListener('output', (e) => {
    const chunk = JSON.parse(e.data);
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    const span = document.createElement('span');
    if (chunk.stream === 'stderr') span.className = 'stderr';
    span.textContent = chunk.data;
    box.append(span);
    while (box.textContent.length > OUTPUT_LIMIT && box.firstChild) box.firstChild.remove();
    if (atBottom) box.scrollTop = box.scrollHeight;
    showEmpty(job, box);
  });
  source.addEventListener('end', (e) => {
    source.close();
    state.streams.delete(job.id);
    updateJob(JSON.parse(e.data));
    showEmpty(job, box);
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      state.streams.delete(job.id);
      showError(`The output of ${job.worker_name} stopped; open the pool again to resume.`);
    }
  });
}
