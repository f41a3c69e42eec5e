// The volunteer page: shows what the volunteer does; the link and the worker do the work.
//
// URL options: ?capacity=N (most items this tab may hold, default 64: the coordinator lends
// at most its --batch anyway), #secret=S (or ?secret=S), ?name=N.

import { FINAL_STATES, VolunteerLink } from "./volunteer-link.mjs";

const MAX_LISTED = 50; // problems and log lines kept on the page; a failing stream can be long

const config = JSON.parse(document.getElementById("shoal-config").textContent);
const status = document.getElementById("status");
const leaveButton = document.getElementById("leave");

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

const view = {
  state(state, text) {
    status.dataset.state = state;
    status.textContent = text;
    document.title = `shoal volunteer: ${text}`;
    leaveButton.disabled = FINAL_STATES.includes(state) || state === "missing";
  },
  progress(done, failed) {
    document.getElementById("done").textContent = String(done);
    document.getElementById("failed").textContent = String(failed);
  },
  problem(text, detail) {
    append("problems", text, detail);
  },
  log(text) {
    append("log", text);
  },
};

function socketUrl() {
  const url = new URL("volunteer", window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  url.hash = "";
  return url.href;
}

function start() {
  if (!config.pyodideReady) {
    view.state("missing", "Python for the browser (Pyodide) is not installed on the coordinator");
    document.getElementById("install-command").textContent = config.installCommand;
    document.getElementById("install").hidden = false;
    view.problem(`Pyodide ${config.pyodideVersion} is missing on the coordinator: run ` +
                 `${config.installCommand} there, then reload this page`);
    return;
  }
  const options = new URLSearchParams(window.location.search);
  const capacity = Math.max(1, Number.parseInt(options.get("capacity") || "64", 10) || 64);
  const worker = new Worker(new URL("volunteer-worker.mjs", import.meta.url), { type: "module" });
  const link = new VolunteerLink({
    worker,
    socketUrl: socketUrl(),
    name: options.get("name") || `browser (${navigator.platform || "unknown platform"})`,
    capacity,
    // A fragment never leaves the browser (no request, no Referer): the place for a secret.
    secret: new URLSearchParams(window.location.hash.slice(1)).get("secret") ||
      options.get("secret"),
    view,
  });
  leaveButton.addEventListener("click", () => link.leave());
  link.start();
}

start();
