// Trains one run of the PosGen tab off the page's main thread. It loads the page's own wasm
// module, whose start-up sees no window and installs `self.resonanceLabWorker` instead of the UI.
// This script only pumps messages: the protocol is typed in Rust (src/app/posgen_run.rs,
// `ToWorker` in, `FromWorker` out, as JSON strings), and the run, its state and the slice length
// (sent by the app in the start message) live in the wasm module.
import init from "../resonance-lab.js";

const ready = init();
let scheduled = false;
// a zero-delay task queue (setTimeout clamps nested delays to 4 ms)
const tick = new MessageChannel();
tick.port1.onmessage = pump;
const schedule = () => {
  if (!scheduled && self.resonanceLabWorker.wantsSlice()) {
    scheduled = true;
    tick.port2.postMessage(null);
  }
};

function pump() {
  scheduled = false;
  const api = self.resonanceLabWorker;
  if (!api.wantsSlice()) return;
  self.postMessage(api.slice());
  schedule();
}

self.onmessage = async (e) => {
  try {
    await ready;
  } catch (err) {
    // FromWorker::Failed
    self.postMessage(JSON.stringify({ type: "failed", error: `WebAssembly failed to load in the training worker: ${err}` }));
    return;
  }
  const reply = self.resonanceLabWorker.command(e.data);
  if (reply) self.postMessage(reply);
  schedule();
};
