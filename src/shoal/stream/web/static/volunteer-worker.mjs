// The browser volunteer's worker: Pyodide and the item loop, nothing else.
//
// A module worker (Pyodide 314 refuses classic ones), so that Python never blocks the page and
// a tab in the background computes at full speed. The page owns the WebSocket (see
// volunteer-link.mjs): like the reader thread of a Python volunteer, it answers the
// coordinator's pings while an item runs here, so a long item never looks like a dead tab.
//
// Page -> worker:  {kind: "load"}
//                  {kind: "module", epoch, name, source, function}   a new connection's job
//                  {kind: "items", epoch, items: [{id, value}]}
// Worker -> page:  {kind: "ready", python, pyodide, seconds} | {kind: "load-failed", error}
//                  {kind: "module", epoch, ok, error?, traceback?}
//                  {kind: "results", epoch, frames, done, failures}  "result" messages as
//                     JSON text, ready to send; how many succeeded; the failed ones' details
//                  {kind: "report", epoch, message}   a protocol "report" message
//                  {kind: "fatal", error}             Pyodide broke: this tab is done
// The epoch numbers connections: what belongs to a closed one is dropped, since the
// coordinator has lent those items to someone else already.

const PYODIDE_URL = new URL("../pyodide/", import.meta.url);
const SHIM_URL = new URL("shoal_browser.py", import.meta.url);
const REPORT_EVERY_MS = 1000; // shoal.report sums go out at most this often
// Results of quick items go to the page together (one postMessage, one wakeup of the page
// for several), but never wait longer than this behind other quick items, nor at all once
// the queue is empty.
const RESULTS_AT_ONCE = 16;
const RESULTS_WAIT_MS = 20;

let shim = null;       // the Python module shoal_browser (a PyProxy), once loaded
let epoch = -1;        // the connection whose module is loaded
let moduleReady = false;
let queue = [];        // items of this epoch not yet computed, in arrival order
let draining = false;
let lastReport = 0;

async function loadPython() {
  const started = performance.now();
  const { loadPyodide } = await import(new URL("pyodide.mjs", PYODIDE_URL).href);
  const pyodide = await loadPyodide({ indexURL: PYODIDE_URL.href });
  const source = await (await fetch(SHIM_URL)).text();
  pyodide.globals.set("_shoal_shim_source", source);
  pyodide.runPython(
    "import sys, types\n" +
    "_shim = types.ModuleType('shoal_browser')\n" +
    "_shim.__file__ = 'shoal_browser.py'\n" +
    "sys.modules['shoal_browser'] = _shim\n" +
    "exec(compile(_shoal_shim_source, 'shoal_browser.py', 'exec'), _shim.__dict__)\n" +
    "del _shim, _shoal_shim_source\n");
  shim = pyodide.pyimport("shoal_browser");
  shim.install_shim();
  setInterval(flushReport, REPORT_EVERY_MS);
  self.postMessage({
    kind: "ready",
    python: pyodide.runPython("import sys; sys.version.split()[0]"),
    pyodide: pyodide.version,
    seconds: (performance.now() - started) / 1000,
  });
}

function loadModule(message) {
  epoch = message.epoch;
  queue = [];
  moduleReady = false;
  const failure = shim.load_module(message.name, message.source, message.function);
  if (failure) {
    self.postMessage({ kind: "module", epoch, ok: false, ...JSON.parse(failure) });
    return;
  }
  moduleReady = true;
  self.postMessage({ kind: "module", epoch, ok: true });
}

// Sends what shoal.report(...) added up since the last report, at most every REPORT_EVERY_MS
// (after an item, and from a timer so the sums of the last items are not left behind).
function flushReport() {
  if (!shim || performance.now() - lastReport < REPORT_EVERY_MS) return;
  const text = shim.take_report();
  if (text) {
    self.postMessage({ kind: "report", epoch, message: JSON.parse(text) });
    lastReport = performance.now();
  }
}

// Computes queued items one by one. An ordinary processor runs synchronously, item after item:
// messages that arrive meanwhile (more items, a new connection's module) wait in the event
// queue until the queue here is empty, which costs nothing, since the page answers pings.
// Yielding between items (setTimeout) would cost 4 ms an item once browsers clamp timers.
async function drain() {
  if (draining) return;
  draining = true;
  let frames = [];
  let done = 0;
  let failures = [];
  let firstResultAt = 0;
  let resultsEpoch = epoch;
  const post = () => {
    if (frames.length === 0) return;
    self.postMessage({ kind: "results", epoch: resultsEpoch, frames, done, failures });
    frames = [];
    done = 0;
    failures = [];
  };
  try {
    while (moduleReady && queue.length > 0) {
      const item = queue.shift();
      if (epoch !== resultsEpoch) {
        post();
        resultsEpoch = epoch;
      }
      let text;
      try {
        text = shim.run_item(JSON.stringify(item.value));
        if (text === "") text = await shim.finish_pending(); // an async def processor
      } catch (error) {
        // run_item turns everything the user's code raises into a result, so this is Pyodide
        // itself failing (out of memory, a fatal error): this tab can compute nothing more.
        // No result for the item: the coordinator lends it elsewhere (and counts the loss).
        post();
        moduleReady = false;
        queue = [];
        self.postMessage({ kind: "fatal", error: String(error.message || error) });
        return;
      }
      // The body is a JSON object from Python: the message is the same object with two more
      // keys in front, built as text to spare a parse and a stringify per item.
      frames.push(`{"type":"result","id":${item.id},${text.slice(1)}`);
      if (text.startsWith('{"ok":true')) {
        done += 1;
      } else {
        failures.push({ id: item.id, ...JSON.parse(text) });
      }
      if (frames.length === 1) firstResultAt = performance.now();
      if (queue.length === 0 || frames.length >= RESULTS_AT_ONCE ||
          performance.now() - firstResultAt > RESULTS_WAIT_MS) {
        post();
      }
      flushReport();
    }
  } finally {
    post();
    draining = false;
  }
}

self.addEventListener("message", async (event) => {
  const message = event.data;
  switch (message.kind) {
    case "load":
      try {
        await loadPython();
      } catch (error) {
        self.postMessage({ kind: "load-failed", error: String(error.message || error) });
      }
      break;
    case "module":
      loadModule(message);
      drain();
      break;
    case "items":
      if (message.epoch !== epoch) break; // for a connection that is gone
      queue.push(...message.items);
      drain();
      break;
  }
});
