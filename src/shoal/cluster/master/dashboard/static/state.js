// What the page holds, shared by its parts (workers.js, pools.js, tasks.js, app.js),
// and the small helpers they all use. All text from the master goes in through
// textContent, never as HTML.

import {ApiError} from './api.js';

export const state = {
  api: null,
  scope: 'read', // the token's: the page offers only what it may do
  workers: new Map(), // id -> Worker
  pools: new Map(), // id -> PoolSummary, newest first as loaded
  jobs: new Map(), // id -> the most advanced Job seen, from answers and events alike
  poolTotal: 0,
  chosen: new Set(), // worker ids ticked in the run form
  healthWorker: null,
  pool: null, // the pool shown in detail (a whole Pool)
  streams: new Map(), // job id -> EventSource of its output
  events: null,
  timers: [],
  onUnauthorized: null, // app.js: log out with the master's message
};

export const $ = (id) => document.getElementById(id);

const SCOPES = ['read', 'submit', 'admin'];

// Whether the token's scope allows what needs `scope` (scopes nest).
export const may = (scope) => SCOPES.indexOf(state.scope) >= SCOPES.indexOf(scope);

export function showError(error) {
  const text = error instanceof Error ? error.message : String(error);
  $('error-text').textContent = text;
  $('error').hidden = false;
}

export function clearError() {
  $('error').hidden = true;
  $('error-text').textContent = '';
}

export async function guarded(action) {
  try {
    await action();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && state.onUnauthorized) {
      state.onUnauthorized(error.message);
    } else {
      showError(error);
    }
  }
}

export function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

export function button(text, label, onClick, className = '') {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  if (label) b.setAttribute('aria-label', label);
  if (className) b.className = className;
  b.addEventListener('click', onClick);
  return b;
}
