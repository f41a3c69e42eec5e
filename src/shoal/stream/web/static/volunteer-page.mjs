// The volunteer page: starts the worker and shows what it does. No Python runs here.
//
// URL options: ?capacity=N (items this tab may hold, default 2), ?secret=S, ?name=N.

const MAX_LISTED = 50; // problems and log lines kept on the page; a failing stream can be long
const LEAVE_GRACE_MS = 2000; // a leaving worker that does not answer by then is terminated

const config = JSON.parse(document.getElementById("shoal-config").textContent);
const status = document.getElementById("status");
const leaveButton = document.getElementById("leave");

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
  document.title = `shoal volunteer: ${text}`;
}

function append(listId, text, detail) {
  const list = document.getElementById(listId);
  const entry = document.createElement("li");
  entry.textContent = text;
  if (detail) {
    const pre = document.createElement("pre");
    pre.textContent = detail;
    entry.append(pre);
  }
  list.append(entry);
  while (list.children.length > MAX_LISTED) list.firstElementChild.remove();
}

function socketUrl() {
  const url = new URL("volunteer", window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  url.hash = "";
  return url.href;
}

function start() {
  if (!config.pyodideReady) {
    setStatus("missing", "Python for the browser (Pyodide) is not installed on the coordinator");
    document.getElementById("install-command").textContent = config.installCommand;
    document.getElementById("install").hidden = false;
    append("problems", `Pyodide ${config.pyodideVersion} is missing on the coordinator: run ` +
      `${config.installCommand} there, then reload this page`);
    return;
  }
  const options = new URLSearchParams(window.location.search);
  const capacity = Math.max(1, Number.parseInt(options.get("capacity") || "2", 10) || 2);
  // With COOP/COEP (served by shoal) the page is cross-origin isolated and can share memory
  // with the worker: Pyodide then turns a write here into a KeyboardInterrupt in running Python.
  const interruptBuffer = self.crossOriginIsolated ? new Uint8Array(new SharedArrayBuffer(1)) : null;
  const worker = new Worker(new URL("volunteer-worker.mjs", import.meta.url), { type: "module" });
  worker.addEventListener("message", (event) => show(event.data));
  worker.addEventListener("error", (event) => {
    setStatus("broken", `The volunteer worker failed: ${event.message}`);
    append("problems", "The volunteer worker failed", event.message);
  });
  worker.postMessage({
    kind: "start",
    socketUrl: socketUrl(),
    secret: options.get("secret"),
    capacity,
    name: options.get("name") || `browser (${navigator.platform || "unknown platform"})`,
    interruptBuffer,
  });
  leaveButton.disabled = false;
  leaveButton.addEventListener("click", () => {
    leaveButton.disabled = true;
    if (interruptBuffer) interruptBuffer[0] = 2; // SIGINT: stop the item now
    worker.postMessage({ kind: "leave" });
    setTimeout(() => {
      if (status.dataset.state !== "left") {
        worker.terminate(); // the socket dies with it; the coordinator re-lends our items
        setStatus("left", "Stopped volunteering");
      }
    }, LEAVE_GRACE_MS);
  });
}

function show(message) {
  switch (message.kind) {
    case "state":
      setStatus(message.state, message.text);
      if (["finished", "left", "unsupported", "broken", "refused"].includes(message.state)) {
        leaveButton.disabled = true;
      }
      break;
    case "progress":
      document.getElementById("done").textContent = String(message.done);
      document.getElementById("failed").textContent = String(message.failed);
      break;
    case "problem":
      append("problems", message.text, message.detail);
      break;
    case "log":
      append("log", message.text);
      break;
  }
}

start();
