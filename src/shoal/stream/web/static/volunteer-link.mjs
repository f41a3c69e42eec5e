// The browser volunteer's link to the coordinator: the WebSocket, the protocol and reconnecting.
//
// It lives on the page, not in the worker, for the reason a Python volunteer answers pings
// from a reader thread: Python may compute one item for minutes, and the heartbeat must say
// whether the *tab* is alive, not whether the item is short. Items go to the worker as they
// arrive and results come back from it; everything here is non-blocking.
// Protocol: docs/contracts/stream-volunteer.md.

const RECONNECT_DELAYS_MS = [500, 1000, 2000, 5000, 10000];

// States after which the tab neither computes nor reconnects.
export const FINAL_STATES = ["finished", "left", "unsupported", "refused", "broken"];

export class VolunteerLink {
  // view: {state(state, text), progress(done, failed), problem(text, detail), log(text)}
  constructor({ worker, socketUrl, name, capacity, secret, view }) {
    this.worker = worker;
    this.socketUrl = socketUrl;
    this.name = name;
    this.capacity = capacity;
    this.secret = secret;
    this.view = view;
    this.runtime = null;     // {python, platform}, once Pyodide is loaded
    this.socket = null;
    this.epoch = 0;          // numbers connections; the worker drops older epochs' items
    this.attempts = 0;
    this.final = false;
    this.module = "";        // the stream's module and function, from the welcome
    this.function = "";
    this.counts = { done: 0, failed: 0 };
    worker.addEventListener("message", (event) => this.fromWorker(event.data));
    worker.addEventListener("error", (event) => {
      this.end("broken", `The volunteer worker failed: ${event.message}`);
      this.view.problem("The volunteer worker failed", event.message);
    });
  }

  start() {
    this.view.state("loading", "Loading Python (Pyodide)…");
    this.worker.postMessage({ kind: "load" });
  }

  // The user leaves: say goodbye and stop computing now (the coordinator re-lends our items).
  leave() {
    this.send({ type: "bye" });
    this.end("left", `Stopped volunteering (${this.counts.done} items done here)`);
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  end(state, text) {
    this.final = true;
    this.view.state(state, text);
    this.worker.terminate(); // stops a running item too: nothing it computes matters now
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000, state);
  }

  connect() {
    if (this.final) return;
    this.view.state("connecting", "Connecting to the coordinator…");
    this.epoch += 1;
    const socket = new WebSocket(this.socketUrl);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.send({ type: "hello", kind: "browser", name: this.name, capacity: this.capacity,
                  runtime: this.runtime, secret: this.secret });
    });
    socket.addEventListener("message", (event) => this.fromCoordinator(event.data));
    socket.addEventListener("close", (event) => this.closed(socket, event));
  }

  closed(socket, event) {
    if (socket !== this.socket || this.final) return;
    const delay = RECONNECT_DELAYS_MS[Math.min(this.attempts, RECONNECT_DELAYS_MS.length - 1)];
    this.attempts += 1;
    const why = event.reason ? ` (${event.reason})` : "";
    this.view.state("disconnected", `Disconnected from the coordinator${why}; ` +
                                    `trying again in ${delay / 1000} s`);
    setTimeout(() => this.connect(), delay);
  }

  fromCoordinator(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      this.view.problem("The coordinator sent a message that is not JSON", text);
      return;
    }
    switch (message.type) {
      case "welcome":
        this.attempts = 0;
        this.module = message.module.name;
        this.function = message.function;
        this.view.log(`joined as ${message.volunteer_id}, holding at most ${message.batch} items`);
        this.worker.postMessage({ kind: "module", epoch: this.epoch, name: message.module.name,
                                  source: message.module.source, function: message.function });
        break;
      case "waiting":
        this.attempts = 0;
        this.view.state("waiting", "Connected: waiting for a stream to start");
        break;
      case "items":
        this.worker.postMessage({ kind: "items", epoch: this.epoch, items: message.items });
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "stop":
        this.send({ type: "bye" });
        this.end("finished",
                 `Finished: the stream is over (${this.counts.done} items done here)`);
        break;
      case "error":
        this.view.problem(`The coordinator refused this volunteer: ${message.message}`);
        this.end("refused", `Refused by the coordinator: ${message.message}`);
        break;
      default:
        this.view.log(`ignored a message of type ${message.type}`);
    }
  }

  fromWorker(message) {
    switch (message.kind) {
      case "ready":
        this.runtime = { python: message.python, platform: `emscripten (Pyodide ${message.pyodide})` };
        this.view.log(`Python ${message.python} (Pyodide ${message.pyodide}) loaded in ` +
                      `${message.seconds.toFixed(1)} s`);
        this.connect();
        break;
      case "load-failed":
        this.view.problem("Python (Pyodide) could not be loaded", message.error);
        this.end("broken", `Python could not be loaded: ${message.error}`);
        break;
      case "module":
        if (message.epoch !== this.epoch) break;
        if (message.ok) {
          this.view.state("running", `Running ${this.function} from ${this.module}`);
        } else {
          this.unsupported(message);
        }
        break;
      case "results":
        if (message.epoch !== this.epoch) break; // lent again after we lost the connection
        if (this.socket && this.socket.readyState === WebSocket.OPEN) {
          for (const frame of message.frames) this.socket.send(frame);
        }
        this.counted(message.done, message.failures);
        break;
      case "report":
        if (message.epoch === this.epoch) this.send(message.message);
        break;
      case "fatal":
        this.view.problem("Python (Pyodide) failed in this tab", message.error);
        this.send({ type: "bye", reason: `Pyodide failed in the browser: ${message.error}` });
        this.end("broken", `Python failed in this tab: ${message.error}`);
        break;
    }
  }

  // The module cannot run here (typically it imports numpy): the page says why, and the
  // goodbye tells the coordinator, which lends our items to volunteers that can run them
  // rather than failing the stream because one browser joined.
  unsupported({ error, traceback }) {
    const module = this.module;
    this.view.problem(`This browser cannot run ${module}: ${error}`, traceback);
    this.send({ type: "bye", reason: `browser volunteer cannot run ${module}: ${error}` });
    this.end("unsupported", `Cannot run ${module} here: ${error}`);
  }

  counted(done, failures) {
    this.counts.done += done;
    this.counts.failed += failures.length;
    for (const failure of failures) {
      this.view.problem(`Item ${failure.id} failed: ${failure.error}`, failure.traceback);
    }
    this.view.progress(this.counts.done, this.counts.failed);
  }
}
