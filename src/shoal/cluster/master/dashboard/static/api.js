// The master's REST API (docs/contracts/cluster-rest.md) as seen from the page.
// Every error becomes an ApiError carrying the master's own message, which says
// what to do; the page shows that message as it is.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const BASE = '/api/v1';

export class Api {
  constructor(token) {
    this.token = token;
  }

  async request(method, path, body) {
    const headers = {Authorization: `Bearer ${this.token}`, Accept: 'application/json'};
    const init = {method, headers, cache: 'no-store'};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(BASE + path, init);
    } catch (error) {
      throw new ApiError(0, 'unreachable',
        `Cannot reach the master (${error.message}). Is it still running?`);
    }
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch (_) {
        data = null;
      }
    }
    if (!response.ok) {
      throw errorFrom(response.status, data);
    }
    return data;
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body); }
  delete(path) { return this.request('DELETE', path); }

  // EventSource cannot send headers, so the token travels as ?token= (the
  // contract allows it for the SSE endpoints only).
  events(path) {
    const sep = path.includes('?') ? '&' : '?';
    return new EventSource(`${BASE}${path}${sep}token=${encodeURIComponent(this.token)}`);
  }
}

export function errorFrom(status, data) {
  const error = data && typeof data === 'object' ? data.error : null;
  let message = error && error.message;
  if (!message && data && typeof data.detail === 'string') message = data.detail;
  if (!message) message = `The master answered HTTP ${status}.`;
  if (status === 401) message = `The master refused the token: ${message}`;
  if (status === 403) message = `This token may not do that: ${message}`;
  return new ApiError(status, (error && error.code) || `http_${status}`, message);
}

// "python3 -c 'print(1)'" -> ["python3", "-c", "print(1)"]: the words a POSIX
// shell would make of it (quotes and backslashes), without running a shell.
export function splitCommand(text) {
  const words = [];
  let word = '';
  let inWord = false;
  let quote = null;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = null; else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) {
        i += 1;
        word += text[i];
      } else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      i += 1;
      word += text[i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`The command has an unclosed ${quote} quote.`);
  if (inWord) words.push(word);
  return words;
}
