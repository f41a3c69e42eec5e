// The browser volunteer's worker: Pyodide, the WebSocket to the coordinator, the item loop.
//
// A module worker (Pyodide 314 refuses classic ones) so that a tab in the background keeps its
// full speed and the page stays responsive while Python computes. The worker owns the socket:
// it answers pings between items, so a worker stuck in a runaway item stops answering and the
// coordinator lends its items elsewhere, which is what a heartbeat is for.
//
// Page -> worker: {kind: "start", socketUrl, secret, capacity, interruptBuffer?}
// Worker -> page: {kind: "state", state, text} | {kind: "progress", done, failed}
//                 | {kind: "problem", text, detail} | {kind: "log", text}
// Protocol with the coordinator: docs/contracts/stream-volunteer.md.

const PYODIDE_URL = new URL("../pyodide/", import.meta.url);
const SHIM_URL = new URL("shoal_browser.py", import.meta.url);
const RECONNECT_DELAYS_MS = [500, 1000, 2000, 5000, 10000];
const REPORT_EVERY_MS = 1000; // shoal.report sums go out at most this often (and at the end)

let pyodide = null;     // the interpreter, loaded once and kept across reconnections
let shim = null;        // the Python module shoal_browser (a PyProxy)
let socket = null;
let settings = null;
let queue = [];         // items received and not yet computed, in arrival order
let draining = false;
let moduleReady = false;
let finished = false;   // stop, error or leave: do not reconnect
let attempts = 0;
let lastReport = 0;
const counts = { done: 0, failed: 0 };

function tell(message) {
  self.postMessage(message);
}

function setState(state, text) {
  tell({ kind: "state", state, text });
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(message));
  }
}

// Sends what shoal.report(...) added up since the last report, if anything.
function flushReport(force) {
  if (!shim || (!force && performance.now() - lastReport < REPORT_EVERY_MS)) return;
  const text = shim.take_report();
  if (text && socket && socket.readyState === WebSocket.OPEN) {
    socket.send(text);
    lastReport = performance.now();
  }
}

async function loadPython() {
  setState("loading", "Loading Python (Pyodide)…");
  const { loadPyodide } = await import(new URL("pyodide.mjs", PYODIDE_URL).href);
  const started = performance.now();
  const py = await loadPyodide({ indexURL: PYODIDE_URL.href });
  const source = await (await fetch(SHIM_URL)).text();
  py.globals.set("_shoal_shim_source", source);
  py.runPython(
    "import sys, types\n" +
    "_shim = types.ModuleType('shoal_browser')\n" +
    "_shim.__file__ = 'shoal_browser.py'\n" +
    "sys.modules['shoal_browser'] = _shim\n" +
    "exec(compile(_shoal_shim_source, 'shoal_browser.py', 'exec'), _shim.__dict__)\n" +
    "del _shim, _shoal_shim_source\n");
  shim = py.pyimport("shoal_browser");
  shim.install_shim();
  if (settings.interruptBuffer) {
    py.setInterruptBuffer(settings.interruptBuffer);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  tell({ kind: "log", text: `Python ${py.version} loaded in ${seconds} s` });
  return py;
}

function connect() {
  setState("connecting", "Connecting to the coordinator…");
  moduleReady = false;
  queue = [];
  socket = new WebSocket(settings.socketUrl);
  socket.addEventListener("open", () => {
    attempts = 0;
    const version = pyodide.runPython("import sys; sys.version.split()[0]");
    send({
      type: "hello",
      kind: "browser",
      name: settings.name,
      capacity: settings.capacity,
      runtime: { python: version, platform: `emscripten (Pyodide ${pyodide.version})` },
      secret: settings.secret,
    });
  });
  socket.addEventListener("message", (event) => onMessage(event.data));
  socket.addEventListener("close", (event) => onClose(event));
}

function onMessage(text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    tell({ kind: "problem", text: "The coordinator sent a message that is not JSON", detail: text });
    return;
  }
  switch (message.type) {
    case "welcome":
      onWelcome(message);
      break;
    case "items":
      for (const item of message.items) queue.push(item);
      drain();
      break;
    case "ping":
      send({ type: "pong" });
      break;
    case "stop":
      finished = true;
      queue = [];
      flushReport(true);
      send({ type: "bye" });
      socket.close(1000, "stopped");
      setState("finished", `Finished: the stream is over (${counts.done} items done here)`);
      break;
    case "error":
      finished = true;
      tell({ kind: "problem", text: `The coordinator refused this volunteer: ${message.message}` });
      setState("refused", `Refused by the coordinator: ${message.message}`);
      break;
    default:
      tell({ kind: "log", text: `ignored a message of type ${message.type}` });
  }
}

function onWelcome(message) {
  const failure = shim.load_module(message.module.name, message.module.source, message.function);
  if (failure) {
    // The module cannot run here (typically it imports numpy): say why on the page, and tell
    // the coordinator in the goodbye, so its items go to volunteers that can run them instead
    // of failing the stream because one browser joined.
    const { error, traceback } = JSON.parse(failure);
    finished = true;
    tell({ kind: "problem", text: `This browser cannot run ${message.module.name}: ${error}`,
           detail: traceback });
    setState("unsupported", `Cannot run ${message.module.name} here: ${error}`);
    send({ type: "bye", reason: error });
    socket.close(1000, "module cannot run in the browser");
    return;
  }
  moduleReady = true;
  setState("running", `Running ${message.module.name}.${message.function}`);
  drain();
}

// Computes queued items one by one; between two items it yields to the event loop so that
// pings, new items and stop are handled.
async function drain() {
  if (draining || !moduleReady) return;
  draining = true;
  try {
    while (queue.length > 0 && !finished) {
      const item = queue.shift();
      let body;
      try {
        body = JSON.parse(await shim.run_item(JSON.stringify(item.value)));
      } catch (error) {
        if (String(error).includes("KeyboardInterrupt")) return; // the page is leaving
        body = { ok: false, error: `PythonError: ${error.message}`, traceback: String(error) };
      }
      send({ type: "result", id: item.id, ...body });
      if (body.ok) {
        counts.done += 1;
      } else {
        counts.failed += 1;
        tell({ kind: "problem", text: `Item ${item.id} failed: ${body.error}`,
               detail: body.traceback });
      }
      tell({ kind: "progress", ...counts });
      flushReport(false);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  } finally {
    draining = false;
  }
}

function onClose(event) {
  moduleReady = false;
  queue = []; // the coordinator lends whatever we held to someone else
  if (finished) return;
  const delay = RECONNECT_DELAYS_MS[Math.min(attempts, RECONNECT_DELAYS_MS.length - 1)];
  attempts += 1;
  const why = event.reason ? `: ${event.reason}` : "";
  setState("disconnected",
           `Disconnected from the coordinator${why}; trying again in ${delay / 1000} s`);
  setTimeout(connect, delay);
}

self.addEventListener("message", async (event) => {
  const message = event.data;
  if (message.kind === "start") {
    settings = message;
    try {
      pyodide = await loadPython();
    } catch (error) {
      finished = true;
      tell({ kind: "problem", text: "Python (Pyodide) could not be loaded", detail: String(error) });
      setState("broken", `Python could not be loaded: ${error.message || error}`);
      return;
    }
    connect();
  } else if (message.kind === "leave") {
    finished = true;
    queue = [];
    flushReport(true);
    send({ type: "bye" });
    if (socket) socket.close(1000, "the volunteer left");
    setState("left", `Stopped volunteering (${counts.done} items done here)`);
  }
});
