// Trains one run of the PosGen tab off the page's main thread. It loads the page's own wasm
// module, whose start-up sees no window and installs `self.resonanceLabWorker` instead of the UI.
// Messages in (JSON strings): {type: "start", job}, {type: "pause"}, {type: "resume"}.
// Messages out: one JSON update per slice of about 50 ms of training (see src/app/posgen_run.rs).
import init from "../resonance-lab.js";

const SLICE_S = 0.05;
const ready = init();
let running = false;
let scheduled = false;
// a zero-delay task queue (setTimeout clamps nested delays to 4 ms)
const tick = new MessageChannel();
tick.port1.onmessage = pump;
const schedule = () => {
  if (!scheduled) {
    scheduled = true;
    tick.port2.postMessage(null);
  }
};
const failed = (error) => self.postMessage(JSON.stringify({ error: String(error) }));

function pump() {
  scheduled = false;
  if (!running) return;
  const api = self.resonanceLabWorker;
  self.postMessage(api.slice(SLICE_S));
  if (api.finished()) running = false;
  else schedule();
}

self.onmessage = async (e) => {
  const m = JSON.parse(e.data);
  try {
    await ready;
  } catch (err) {
    failed(`WebAssembly failed to load in the training worker: ${err}`);
    return;
  }
  if (m.type === "start") {
    const err = self.resonanceLabWorker.start(JSON.stringify(m.job));
    if (err) return failed(err);
    running = true;
    schedule();
  } else if (m.type === "pause") {
    running = false;
  } else if (m.type === "resume") {
    running = true;
    schedule();
  }
};
