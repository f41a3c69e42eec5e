// How times and job outcomes read on the page.

const SIGNALS = {1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 6: 'SIGABRT', 9: 'SIGKILL',
  13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM'};

export function signalName(number) {
  return SIGNALS[number] ? `${SIGNALS[number]} (${number})` : `signal ${number}`;
}

// "exit code 0", "killed by SIGTERM (15)", "lost: worker lost: no heartbeat for 15 s".
export function jobOutcome(job) {
  if (job.state === 'queued' || job.state === 'running') return '–';
  if (job.state === 'exited') return `exit code ${job.exit_code}`;
  if (job.signal !== null && job.signal !== undefined) {
    return `${job.state} by ${signalName(job.signal)}`;
  }
  return job.reason ? `${job.state}: ${job.reason}` : job.state;
}

export function outcomeClass(job) {
  if (job.state === 'exited') return job.exit_code === 0 ? 'good' : 'bad';
  return job.state === 'queued' || job.state === 'running' ? '' : 'bad';
}

// A pool's state as the page says it: "running", or once done how it went
// ("done: ok", "done: failed" when a job exited non-zero or could not start,
// "done: lost", "done: killed"), with the class that colours it.
export function poolState(pool) {
  if (pool.state !== 'done') return {text: pool.state, className: `state ${pool.state}`};
  const outcome = pool.outcome || 'ok';
  return {text: `done: ${outcome}`, className: `state outcome-${outcome}`};
}

// "2 exited (1 non-zero), 1 killed": a pool summary's jobs by state.
export function jobCounts(pool) {
  return Object.entries(pool.job_counts || {}).map(([s, n]) => {
    const nonzero = s === 'exited' && pool.nonzero_exits ? ` (${pool.nonzero_exits} non-zero)`
      : '';
    return `${n} ${s}${nonzero}`;
  }).join(', ') || '–';
}

// The contract's times are UTC; one written without a zone is read as UTC too,
// not as the browser's local time.
export function parseTime(iso) {
  if (!iso) return null;
  const zoned = /(Z|[+-]\d\d:?\d\d)$/.test(iso) ? iso : `${iso}Z`;
  return new Date(zoned);
}

export function when(iso) {
  if (!iso) return '–';
  const date = parseTime(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}

export function ago(iso) {
  if (!iso) return 'never';
  const seconds = Math.max(0, (Date.now() - parseTime(iso).getTime()) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

// ["sh", "-c", "echo hi"] -> "sh -c 'echo hi'": the command as a shell would take it.
export function shellJoin(words) {
  return words.map((w) => {
    if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w)) return w;
    if (!w.includes("'")) return `'${w}'`;
    if (!/["$`\\]/.test(w)) return `"${w}"`;
    return `'${w.replace(/'/g, "'\\''")}'`;
  }).join(' ');
}
