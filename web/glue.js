// Page glue for resonance-lab: loading indicator, readable error page, downloads, and the small
// JS API the tests use (window.resonanceLab).
(function () {
  "use strict";
  window.resonanceLabTimes = { start: performance.now() };
  window.resonanceLabFail = function (message) {
    document.getElementById("loading").hidden = true;
    const box = document.getElementById("error");
    document.getElementById("error-message").textContent = String(message);
    box.hidden = false;
  };
  // `backend` is the renderer (WebGPU / WebGL2), `compute` what computes the plots
  window.resonanceLabReady = function (backend, compute) {
    window.resonanceLabTimes.firstFrame = performance.now();
    document.getElementById("loading").hidden = true;
    // one short line on top; the app's status bar has the details (hover or tap it)
    const strip = document.getElementById("backend");
    strip.textContent = `running on ${backend}`;
    strip.title = `compute: ${compute}`;
    document.body.dataset.backend = backend;
  };
  window.resonanceLabDownload = function (name, mime, bytes) {
    const url = URL.createObjectURL(new Blob([bytes], { type: mime }));
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  const parse = (s) => (s == null ? null : JSON.parse(s));
  window.resonanceLab = {
    state: () => parse(window.resonanceLabNative && window.resonanceLabNative.stateJson()),
    selfCheck: () => parse(window.resonanceLabNative && window.resonanceLabNative.selfCheckJson()),
    times: () => window.resonanceLabTimes,
    // queued for the next frame (the page repaints by itself); returns null or the error
    setState: (st) => window.resonanceLabNative && window.resonanceLabNative.setStateJson(JSON.stringify(st)),
    // imports a Hugging Face config.json text: A becomes the model, B its Resonance twin, at
    // the next frame; returns {ok, error} at once (error names the field)
    loadConfig: (text, layerType) =>
      window.resonanceLabNative
        ? JSON.parse(window.resonanceLabNative.loadConfigJson(String(text), layerType == null ? undefined : String(layerType)))
        : { ok: false, error: "the app has not started" },
    // saves a PNG of the whole view (a download on the page) after the next frames
    exportPng: () => window.resonanceLabNative && window.resonanceLabNative.exportPng(),
    benchPosgen: (steps) => parse(window.resonanceLabNative && window.resonanceLabNative.benchPosgenJson(steps)),
    // the PosGen tab: start its selected runs on a task ({task, steps}; null or the error) and
    // read their status
    posgenTrain: (args) => window.resonanceLabNative && window.resonanceLabNative.posgenTrainJson(JSON.stringify(args)),
    posgen: () => parse(window.resonanceLabNative && (window.resonanceLabNative.posgenJson() || null)),
    // the Language model tab: score a text ({text?, length?}; null or the error) with the
    // shipped model; the result is in state().lm.live
    lmScore: (args) => window.resonanceLabNative && window.resonanceLabNative.lmScoreJson(JSON.stringify(args || {})),
    // seconds from a cold start until the tiny preset's validation ID accuracy reaches `target`
    benchPosgenConverge: (task, target) =>
      parse(window.resonanceLabNative && window.resonanceLabNative.benchPosgenConvergeJson(task, target)),
  };
  window.addEventListener("error", (e) => {
    if (!window.resonanceLabTimes.firstFrame) window.resonanceLabFail(e.message || String(e));
  });
  if (typeof WebAssembly !== "object") {
    window.resonanceLabFail("This browser has no WebAssembly.");
  }
})();
