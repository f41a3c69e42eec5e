// The dashboard: log in with a token, watch workers and their health, run a
// command on chosen workers, follow its output live, kill it.
//
// State lives in `state`; the master's SSE feed (/api/v1/events) keeps it
// current and each change re-renders the part of the page it touches. All text
// from the master goes in through textContent, never as HTML.

import {Api, ApiError, splitCommand} from './api.js';
import {lineChart} from './charts.js';
import {ago, jobOutcome, outcomeClass, parseTime, shellJoin, when} from './format.js';

const TOKEN_KEY = 'shoal.token';
const POOL_PAGE = 20;
const OUTPUT_LIMIT = 200_000; // characters kept per job on the page

const $ = (id) => document.getElementById(id);

const state = {
  api: null,
  workers: new Map(), // id -> Worker
  pools: new Map(), // id -> Pool, newest first as loaded
  jobs: new Map(), // id -> the most advanced Job seen, from answers and events alike
  poolTotal: 0,
  chosen: new Set(), // worker ids ticked in the run form
  healthWorker: null,
  pool: null, // the pool shown in detail
  streams: new Map(), // job id -> EventSource of its output
  events: null,
  timers: [],
};

// -- errors and status ---------------------------------------------------------

function showError(error) {
  const text = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  $('error-text').textContent = text;
  $('error').hidden = false;
}

function clearError() {
  $('error').hidden = true;
  $('error-text').textContent = '';
}

function setLive(text, ok) {
  $('live').textContent = text;
  $('live').className = ok ? 'live ok' : 'live down';
}

async function guarded(action) {
  try {
    await action();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      logout(error.message);
    } else {
      showError(error);
    }
  }
}

// -- log in / out --------------------------------------------------------------

async function login(token) {
  const api = new Api(token);
  // The worker list needs the smallest scope, so it tells whether the token is good.
  const workers = await api.get('/workers');
  state.api = api;
  sessionStorage.setItem(TOKEN_KEY, token);
  clearError();
  $('login').hidden = true;
  $('board').hidden = false;
  $('logout').hidden = false;
  setWorkers(workers.items);
  await loadPools(true);
  openEvents();
  state.timers.push(setInterval(renderWorkers, 5000)); // heartbeat ages move on
  state.timers.push(setInterval(() => guarded(loadHealth), 5000));
  const first = [...state.workers.values()].find((w) => w.state === 'online');
  if (first) showHealth(first.id);
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.events) state.events.close();
  closeStreams();
  state.timers.forEach(clearInterval);
  Object.assign(state, {api: null, events: null, timers: [], pool: null, healthWorker: null});
  state.workers.clear();
  state.pools.clear();
  state.jobs.clear();
  state.chosen.clear();
  $('board').hidden = true;
  $('pool').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('live').textContent = '';
  $('token').value = '';
  if (message) showError(message);
  $('token').focus();
}

// -- live updates --------------------------------------------------------------

function openEvents() {
  const events = state.api.events('/events');
  state.events = events;
  let interrupted = false;
  events.addEventListener('open', () => {
    setLive('Live', true);
    // Changes made while the feed was down (a master restart) were not sent: reload.
    if (interrupted) guarded(refresh);
    interrupted = false;
  });
  events.addEventListener('worker', (e) => {
    const worker = JSON.parse(e.data);
    state.workers.set(worker.id, worker);
    renderWorkers();
  });
  events.addEventListener('pool', (e) => updatePool(JSON.parse(e.data)));
  events.addEventListener('job', (e) => updateJob(JSON.parse(e.data)));
  events.addEventListener('error', () => {
    if (events.readyState === EventSource.CLOSED) {
      // Closed for good (a refused token, or the master said no): check why,
      // then open a new feed, so a restarted master is picked up again.
      setLive('Live updates stopped', false);
      setTimeout(() => guarded(async () => {
        if (state.events !== events) return;
        await refresh();
        openEvents();
      }), 3000);
    } else {
      interrupted = true;
      setLive('Reconnecting…', false);
    }
  });
}

async function refresh() {
  setWorkers((await state.api.get('/workers')).items);
  await loadPools(true);
  if (state.pool) {
    const fetched = await state.api.get(`/pools/${state.pool.id}`);
    showPoolData({...fetched, jobs: fetched.jobs.map(freshest)});
  }
}

// Answers and events may arrive out of order (a POST's answer after the event of
// its job starting), so a job never goes back: queued < running < an end.
const RANK = {queued: 0, running: 1};
const rank = (job) => RANK[job.state] ?? 2;

function freshest(job) {
  const known = state.jobs.get(job.id);
  // A lost job whose worker came back runs again: the one step back allowed.
  const revived = known && known.state === 'lost' && job.state === 'running';
  const chosen = known && rank(known) > rank(job) && !revived ? known : job;
  state.jobs.set(job.id, chosen);
  return chosen;
}

// A pool as the list shows it (the master's summaries, from GET /pools and the
// live feed's pool events), made from a whole pool where only that is at hand.
function summaryOf(pool) {
  if (typeof pool.jobs === 'number') return pool;
  const jobCounts = {};
  for (const job of pool.jobs) jobCounts[job.state] = (jobCounts[job.state] || 0) + 1;
  const nonzero = pool.jobs.filter((j) => j.state === 'exited' && j.exit_code !== 0).length;
  return {...pool, jobs: pool.jobs.length, job_counts: jobCounts, nonzero_exits: nonzero,
    command_truncated: false};
}

function updatePool(incoming) {
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
}

function updateJob(incoming) {
  const job = freshest(incoming);
  if (!state.pool || state.pool.id !== job.pool_id) return;
  state.pool.jobs = state.pool.jobs.map((j) => (j.id === job.id ? job : j));
  showPoolData(state.pool);
}

// -- workers and health --------------------------------------------------------

function setWorkers(items) {
  state.workers = new Map(items.map((w) => [w.id, w]));
  renderWorkers();
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function button(text, label, onClick, className = '') {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  if (label) b.setAttribute('aria-label', label);
  if (className) b.className = className;
  b.addEventListener('click', onClick);
  return b;
}

const pct = (v) => (v === null || v === undefined ? '–' : `${Math.round(v)}%`);

function renderWorkers() {
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
  if (shown === online.map((w) => w.id).join(',')) return; // keep focus and ticks
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

function showHealth(workerId) {
  state.healthWorker = workerId;
  renderWorkers();
  guarded(loadHealth);
}

async function loadHealth() {
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

// -- pools ---------------------------------------------------------------------

async function loadPools(fromStart) {
  const filter = $('pool-filter').value;
  const offset = fromStart ? 0 : state.pools.size;
  const query = `?limit=${POOL_PAGE}&offset=${offset}${filter ? `&state=${filter}` : ''}`;
  const page = await state.api.get(`/pools${query}`);
  if (fromStart) state.pools = new Map();
  for (const pool of page.items) state.pools.set(pool.id, pool);
  state.poolTotal = page.total;
  renderPools();
}

function jobCounts(pool) {
  return Object.entries(pool.job_counts).map(([s, n]) => `${n} ${s}`).join(', ') || '–';
}

function renderPools() {
  const filter = $('pool-filter').value;
  const pools = [...state.pools.values()].filter((p) => !filter || p.state === filter);
  const body = $('pools').querySelector('tbody');
  body.replaceChildren(...pools.map((pool) => {
    const row = document.createElement('tr');
    if (state.pool && state.pool.id === pool.id) row.setAttribute('aria-current', 'true');
    const command = shellJoin(pool.command) + (pool.command_truncated ? ' …' : '');
    row.append(cell(command, 'command'), cell(pool.state, `state ${pool.state}`),
      cell(jobCounts(pool)), cell(when(pool.created_at)), cell(pool.submitted_by || '–'));
    const actions = document.createElement('td');
    actions.append(button('Open', `Open the pool ${command}`, () => openPool(pool.id)));
    if (pool.state === 'running') {
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

async function submit(event) {
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

// -- one pool: its jobs and their output ---------------------------------------

function closeStreams() {
  for (const source of state.streams.values()) source.close();
  state.streams.clear();
}

function openPool(poolId, known) {
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

function showPoolData(pool) {
  state.pool = pool;
  const command = shellJoin(pool.command);
  $('pool-title').textContent = `Pool: ${command}`;
  $('pool-summary').textContent = `${pool.state}, created ${when(pool.created_at)}`
    + (pool.ended_at ? `, ended ${when(pool.ended_at)}` : '')
    + (pool.submitted_by ? ` by ${pool.submitted_by}` : '') + ` (id ${pool.id})`;
  const body = $('jobs').querySelector('tbody');
  body.replaceChildren(...pool.jobs.map((job) => {
    const row = document.createElement('tr');
    row.append(cell(job.worker_name), cell(job.state, `state ${job.state}`),
      cell(jobOutcome(job), outcomeClass(job)), cell(job.pid ? String(job.pid) : '–'),
      cell(when(job.started_at)), cell(when(job.ended_at)));
    const actions = document.createElement('td');
    if (job.state === 'running' || job.state === 'queued') {
      actions.append(button('Kill', `Kill the job on ${job.worker_name}`,
        () => guarded(() => kill(pool.id, [job.worker_id])), 'danger'));
    }
    row.append(actions);
    return row;
  }));
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
    figure.append(caption, box);
    $('outputs').append(figure);
  }
  return box;
}

function followJob(job) {
  const box = outputBox(job);
  const source = state.api.events(`/jobs/${job.id}/stream`);
  state.streams.set(job.id, source);
  // The stream starts with all output so far, so a reconnected one replaces it.
  source.addEventListener('open', () => { box.textContent = ''; });
  source.addEventListener('output', (e) => {
    const chunk = JSON.parse(e.data);
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    const span = document.createElement('span');
    if (chunk.stream === 'stderr') span.className = 'stderr';
    span.textContent = chunk.data;
    box.append(span);
    while (box.textContent.length > OUTPUT_LIMIT && box.firstChild) box.firstChild.remove();
    if (atBottom) box.scrollTop = box.scrollHeight;
  });
  source.addEventListener('end', (e) => {
    source.close();
    state.streams.delete(job.id);
    updateJob(JSON.parse(e.data));
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      state.streams.delete(job.id);
      showError(`The output of ${job.worker_name} stopped; open the pool again to resume.`);
    }
  });
}

// -- wiring --------------------------------------------------------------------

function start() {
  $('error-close').addEventListener('click', clearError);
  $('logout').addEventListener('click', () => logout(null));
  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('token').value.trim();
    login(token).catch((error) => {
      showError(error);
      $('token').select();
    });
  });
  $('run-form').addEventListener('submit', submit);
  $('all-workers').addEventListener('change', () => {
    $('worker-choices').classList.toggle('disabled', $('all-workers').checked);
  });
  $('pool-filter').addEventListener('change', () => guarded(() => loadPools(true)));
  $('pools-more').addEventListener('click', () => guarded(() => loadPools(false)));
  $('health-period').addEventListener('change', () => guarded(loadHealth));
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    login(saved).catch((error) => logout(error.message));
  } else {
    $('login').hidden = false;
    $('token').focus();
  }
}

start();
