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

export function when(iso) {
  if (!iso) return '–';
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}

export function ago(iso) {
  if (!iso) return 'never';
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}
