// The dashboard: log in with a token, watch workers and their health, run a
// command on chosen workers, follow its output live, kill it, and see the task
// service. This file wires the page: log in and out, and the master's live feed
// (/api/v1/events), which keeps `state` current; workers.js, pools.js and
// tasks.js render their panels.

import {Api} from './api.js';
import {
  closeStreams, freshest, loadPools, showPoolData, submit, updateJob, updatePool,
} from './pools.js';
import {$, clearError, guarded, may, showError, state} from './state.js';
import {loadTasks} from './tasks.js';
import {
  forgetWorker, loadHealth, renderWorkers, setWorkers, showHealth, updateWorker,
} from './workers.js';

const TOKEN_KEY = 'shoal.token';

function setLive(text, ok) {
  $('live').textContent = text;
  $('live').className = ok ? 'live ok' : 'live down';
}

// -- log in / out --------------------------------------------------------------

// Offer only what the token may do; the master refuses the rest anyway.
function showActions() {
  const runs = may('submit');
  $('run-form').hidden = !runs;
  $('run-denied').hidden = runs;
  $('scope').textContent = `scope ${state.scope}`;
}

async function login(token) {
  const api = new Api(token);
  // Smallest scope: it tells whether the token is good, and what it may do.
  const me = await api.get('/token');
  const workers = await api.get('/workers');
  state.api = api;
  state.scope = me.scope;
  sessionStorage.setItem(TOKEN_KEY, token);
  clearError();
  $('login').hidden = true;
  $('board').hidden = false;
  $('logout').hidden = false;
  showActions();
  setWorkers(workers.items);
  await loadPools(true);
  openEvents();
  state.timers.push(setInterval(renderWorkers, 5000)); // heartbeat ages move on
  state.timers.push(setInterval(() => guarded(loadHealth), 5000));
  state.timers.push(setInterval(() => guarded(loadTasks), 5000));
  guarded(loadTasks);
  const first = [...state.workers.values()].find((w) => w.state === 'online');
  if (first) showHealth(first.id);
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.events) state.events.close();
  closeStreams();
  state.timers.forEach(clearInterval);
  Object.assign(state, {api: null, events: null, timers: [], pool: null, healthWorker: null,
    scope: 'read'});
  state.workers.clear();
  state.pools.clear();
  state.jobs.clear();
  state.chosen.clear();
  $('board').hidden = true;
  $('pool').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('live').textContent = '';
  $('scope').textContent = '';
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
  events.addEventListener('worker', (e) => updateWorker(JSON.parse(e.data)));
  events.addEventListener('worker_removed', (e) => forgetWorker(JSON.parse(e.data).id));
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

// -- wiring --------------------------------------------------------------------

function start() {
  state.onUnauthorized = logout;
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
