// End-to-end tests of the web bundle in real headless Chromium (playwright-core, system browser).
// Needs dist/ (scripts/web-build.sh) served at E2E_URL (default http://127.0.0.1:8765/).
// Screenshots go to target/e2e/.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { inflateSync } from "node:zlib";
import { chromium } from "playwright-core";

const URL = process.env.E2E_URL || "http://127.0.0.1:8765/";
const OUT = "target/e2e";
// E2E_BENCH=1 adds the slow half of the benchmarks (the gap on SwiftShader's software GPU)
const FULL_BENCH = process.env.E2E_BENCH === "1";
mkdirSync(OUT, { recursive: true });
const FLAGS = [
  "--no-sandbox", "--enable-unsafe-webgpu", "--use-webgpu-adapter=opengles", "--use-angle=swiftshader",
  "--enable-unsafe-swiftshader", "--disable-background-networking", "--disable-component-update", "--no-first-run",
];
// Where the narrow layout (390 px wide) puts its Controls button and, once opened, the
// "compare two configurations" checkbox, in CSS px of the page (the canvas starts 18 px down).
const NARROW_CONTROLS_BUTTON = { x: 45, y: 46 };
const NARROW_COMPARE_CHECKBOX = { x: 22, y: 267 };
let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: FLAGS });
});
after(async () => browser && (await browser.close()));

async function open(url, { disableWebGpu = false, viewport = { width: 1280, height: 800 }, hasTouch = false } = {}) {
  const page = await browser.newPage({ viewport, hasTouch });
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  if (disableWebGpu) {
    await page.addInitScript(() => {
      Object.defineProperty(navigator, "gpu", { value: undefined, configurable: true });
    });
  }
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForFunction(() => window.resonanceLabTimes && window.resonanceLabTimes.firstFrame, null, {
    timeout: 120000,
  });
  await page.waitForTimeout(500);
  return { page, errors, loadMs: Date.now() - t0 };
}

test("loads on WebGPU without console errors and the self-check passes", async () => {
  const { page, errors, loadMs } = await open(URL);
  const times = await page.evaluate(() => window.resonanceLab.times());
  console.log(`navigation to first frame: ${times.firstFrame.toFixed(0)} ms (wall ${loadMs} ms)`);
  await page.screenshot({ path: `${OUT}/webgpu.png` });
  const st = await page.evaluate(() => window.resonanceLab.state());
  assert.equal(st.render_backend, "WebGPU");
  // the strip on top names the renderer only; the status bar (and the strip's title) say more
  assert.equal(await page.textContent("#backend"), "running on WebGPU");
  assert.match(await page.getAttribute("#backend", "title"), /^compute: GPU/);
  // the heatmap table comes from the WGSL kernel on the page's WebGPU device; the self-check
  // compares it with the f64 reference once it has arrived
  await page.waitForFunction(() => window.resonanceLab.selfCheck(), null, { timeout: 60000 });
  const check = await page.evaluate(() => window.resonanceLab.selfCheck());
  console.log(`self-check: ${JSON.stringify(check)}`);
  assert.ok(check.ok, JSON.stringify(check));
  assert.match(check.backend, /^GPU/);
  assert.match(st.compute_backend, /^GPU/);
  // SwiftShader is a software rasterizer: `auto` leaves the gap to the (faster) CPU and says why
  assert.match(check.gap_backend, /^CPU/, JSON.stringify(check));
  assert.match(check.gap_cpu_reason, /software rasterizer/, JSON.stringify(check));
  assert.deepEqual(errors.filter((e) => !/WebGPU is experimental/i.test(e)), []);
  await page.close();
  // chosen explicitly, the gap comes from the WGSL kernels on the page's WebGPU device
  const { page: p2, errors: e2 } = await open(`${URL}#gap_compute=gpu&tab=gap`);
  await p2.waitForFunction(() => {
    const c = window.resonanceLab.selfCheck();
    return c && /^GPU/.test(c.gap_backend);
  }, null, { timeout: 60000 });
  const gcheck = await p2.evaluate(() => window.resonanceLab.selfCheck());
  console.log(`self-check, gap on the GPU: ${JSON.stringify(gcheck)}`);
  assert.ok(gcheck.ok && gcheck.gap_cpu_reason === null, JSON.stringify(gcheck));
  assert.ok(gcheck.gap_values > 0 && gcheck.gap_max_abs_err <= 1e-6, JSON.stringify(gcheck));
  const gst = await p2.evaluate(() => window.resonanceLab.state());
  assert.match(gst.plot_source, /gap bars and curves on GPU WebGPU/);
  assert.deepEqual(e2.filter((e) => !/WebGPU is experimental/i.test(e)), []);
  await p2.close();
});

test("a readable permalink round-trips, an old JSON one loads, a bad key is named", async () => {
  const { page: p1 } = await open(`${URL}#scale=9.5&tab=heatmap&feature=4`);
  const st1 = await p1.evaluate(() => window.resonanceLab.state());
  const s = JSON.parse(st1.state_json);
  assert.equal(s.a.scale, 9.5);
  assert.equal(s.tab, "heatmap");
  assert.equal(s.feature, 4);
  // the page keeps the readable form in its URL: only what differs from the defaults
  const hash = await p1.evaluate(() => location.hash);
  assert.equal(hash, `#${st1.hash}`);
  assert.doesNotMatch(hash, /[{%]/);
  for (const kv of ["scale=9.5", "tab=heatmap", "feature=4"]) assert.ok(hash.includes(kv), hash);
  const before = await p1.screenshot({ path: `${OUT}/permalink.png` });
  // "Resonance rounding" checkbox in the side panel (below the 18 px renderer strip)
  await p1.mouse.move(15, 260);
  await p1.waitForTimeout(200);
  await p1.mouse.click(15, 260);
  await p1.waitForTimeout(800);
  const st2 = JSON.parse((await p1.evaluate(() => window.resonanceLab.state())).state_json);
  const afterShot = await p1.screenshot({ path: `${OUT}/after-click.png` });
  assert.notEqual(st2.a.resonance, s.a.resonance, "click toggled Resonance");
  assert.ok(!before.equals(afterShot), "rendered pixels changed");
  assert.ok((await p1.evaluate(() => location.hash)).includes("resonance=true"));
  await p1.close();
  // the same view from the JSON permalink of earlier versions
  const { page: p2 } = await open(`${URL}#${encodeURIComponent(JSON.stringify(s))}`);
  const old = await p2.evaluate(() => window.resonanceLab.state());
  assert.deepEqual(JSON.parse(old.state_json), s);
  assert.equal(old.hash, st1.hash);
  await p2.close();
  // an unknown key and a bad value are named; the rest applies
  const { page: p3 } = await open(`${URL}#scale=6&colour=red&b.dim=odd&tab=gap`);
  const bad = await p3.evaluate(() => window.resonanceLab.state());
  const bs = JSON.parse(bad.state_json);
  assert.equal(bs.a.scale, 6);
  assert.equal(bs.tab, "gap");
  assert.match(bad.message, /'colour': unknown key/);
  assert.match(bad.message, /'b\.dim': bad value 'odd'/);
  await p3.close();
  // a link naming a built-in model loads it (B its twin); an unknown name is named, not shown
  const { page: p4 } = await open(`${URL}#model=Llama-3.1-8B`);
  await p4.waitForFunction(() => window.resonanceLab.state().model_status);
  const m = await p4.evaluate(() => window.resonanceLab.state());
  const ms = JSON.parse(m.state_json);
  assert.deepEqual([ms.a.method, ms.a.dim, ms.a.train_len, ms.a.eval_len], ["llama3", 128, 8192, 131072]);
  assert.ok(ms.compare && ms.b.resonance && !ms.a.resonance, m.state_json);
  assert.match(m.model_status, /^model meta-llama\/Llama-3\.1-8B.*B = its Resonance twin/);
  assert.doesNotMatch(m.model_status, /edited/);
  await p4.close();
  const { page: p5 } = await open(`${URL}#model=Nope`);
  const n = await p5.evaluate(() => window.resonanceLab.state());
  assert.match(n.message, /'model': 'Nope' is not a built-in model/);
  assert.equal(JSON.parse(n.state_json).model, "");
  assert.equal(n.model_status, null);
  await p5.close();
});

const stateOf = async (page) => {
  const st = await page.evaluate(() => window.resonanceLab.state());
  return { ...st, s: JSON.parse(st.state_json) };
};

test("a real model's config.json: loadConfig, its permalink, and a dropped file", async () => {
  const { page, errors } = await open(URL);
  const llama = readFileSync("assets/models/llama-3.1-8b.json", "utf8");
  const broken = llama.replace(/"rope_theta": [0-9.]+/, '"rope_theta": -1');
  const bad = await page.evaluate((t) => window.resonanceLab.loadConfig(t), broken);
  assert.equal(bad.ok, false);
  assert.match(bad.error, /rope_theta/);
  const notJson = await page.evaluate(() => window.resonanceLab.loadConfig("{"));
  assert.match(notJson.error, /malformed JSON/);
  const ok = await page.evaluate((t) => window.resonanceLab.loadConfig(t), llama);
  assert.deepEqual(ok, { ok: true, error: null });
  await page.waitForFunction(() => JSON.parse(window.resonanceLab.state().state_json).model !== "");
  const st = await stateOf(page);
  assert.equal(st.s.model, "meta-llama/Llama-3.1-8B");
  assert.equal(st.s.a.method, "llama3");
  assert.equal(st.s.a.base, 500000);
  assert.equal(st.s.compare, true);
  assert.equal(st.s.b.resonance, true);
  assert.match(st.model_status, /meta-llama\/Llama-3\.1-8B.*Resonance twin/);
  await page.screenshot({ path: `${OUT}/model-llama31.png` });
  // "Export Resonance twin (JSON)" in the model section downloads the twin's export
  await page.mouse.move(104, 169);
  await page.waitForTimeout(200);
  const [download] = await Promise.all([
    page.waitForEvent("download", { timeout: 30000 }),
    page.mouse.click(104, 169),
  ]);
  assert.equal(download.suggestedFilename(), "Llama-3.1-8B-resonance.json");
  const twin = JSON.parse(readFileSync(await download.path(), "utf8"));
  assert.equal(twin.name, "meta-llama/Llama-3.1-8B");
  assert.equal(twin.inv_freq.length, 64);
  assert.ok(twin.wavelength.every(Number.isInteger), JSON.stringify(twin.wavelength));
  // the permalink restores the model in a new page
  const { page: p2 } = await open(`${URL}#${st.hash}`);
  const back = await stateOf(p2);
  assert.deepEqual(back.s, st.s);
  assert.equal(back.model_status, st.model_status);
  await p2.close();
  // a config.json dropped on the page loads the same way
  const phi = readFileSync("assets/models/phi-3.5-mini-instruct.json", "utf8");
  await page.evaluate((t) => {
    const dt = new DataTransfer();
    dt.items.add(new File([t], "config.json", { type: "application/json" }));
    const canvas = document.getElementById("resonance-lab-canvas");
    for (const type of ["dragenter", "dragover", "drop"]) {
      canvas.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  }, phi);
  await page.waitForFunction(
    () => JSON.parse(window.resonanceLab.state().state_json).model === "microsoft/Phi-3.5-mini-instruct",
    null,
    { timeout: 20000 },
  );
  const dropped = await stateOf(page);
  assert.equal(dropped.s.a.method, "longrope");
  assert.equal(dropped.s.a.long_factor.length, 48);
  assert.deepEqual(errors.filter((e) => !/WebGPU is experimental/i.test(e)), []);
  await page.close();
});

// Llama 3.1 (L = 8,192, L' = 131,072): the feature-value tab's detail window shows single
// oscillations (its zero crossings are the count the feature's frequency gives), and zooms by
// the page API, by the mouse wheel and back by a double click.
test("at real-model scale the feature value's detail window shows single oscillations", async () => {
  const { page, errors } = await open(`${URL}#model=Llama-3.1-8B&compare=false&tab=feature-curve`);
  const detail = async () => (await stateOf(page)).detail;
  await page.waitForFunction(() => window.resonanceLab.state().detail);
  const d = await detail();
  assert.ok(d.start < 8192 && d.start + d.len > 8192, JSON.stringify(d));
  const exact = (w) => ((w.len - 1) * w.theta) / Math.PI;
  assert.ok(Math.abs(d.zero_crossings - exact(d)) <= 1, `${d.zero_crossings} crossings, exact ${exact(d)}`);
  assert.ok(d.zero_crossings >= 8, JSON.stringify(d));
  await page.screenshot({ path: `${OUT}/feature-detail-llama31.png` });
  // the page API moves it (setState), and the crossings follow the frequency there too
  const st = (await stateOf(page)).s;
  st.detail_start = 100000;
  st.detail_len = 2000;
  await page.evaluate((s) => window.resonanceLab.setState(s), st);
  await page.waitForFunction(() => window.resonanceLab.state().detail.start === 100000);
  const far = await detail();
  assert.equal(far.len, 2000);
  assert.ok(Math.abs(far.zero_crossings - exact(far)) <= 1, JSON.stringify(far));
  // the wheel over the detail plot (the lower part of the plot area) zooms in
  // (a loaded machine may drop the first wheel before the page saw the pointer: retry)
  await page.mouse.move(800, 578);
  let zoomed = far;
  for (let k = 0; k < 10 && zoomed.len >= far.len; k++) {
    await page.waitForTimeout(300);
    await page.mouse.move(800 + k, 578);
    await page.mouse.wheel(0, -300);
    await page.waitForTimeout(700);
    zoomed = await detail();
  }
  assert.ok(zoomed.len < far.len, `${JSON.stringify(far)} -> ${JSON.stringify(zoomed)}`);
  // a double click returns to the default window
  let back = zoomed;
  for (let k = 0; k < 5 && (back.start !== d.start || back.len !== d.len); k++) {
    await page.mouse.dblclick(800, 578);
    await page.waitForTimeout(800);
    back = await detail();
  }
  assert.deepEqual([back.start, back.len], [d.start, d.len]);
  assert.deepEqual(errors.filter((e) => !/WebGPU is experimental/i.test(e)), []);
  await page.close();
});

// The Stacks tab in the page: Phi-3.5's LongRoPE list in each stack as the context crosses the
// original 4096 (vLLM and llama.cpp switch by their start-up length, mlx-lm never), by the
// page API, and restored by its permalink.
test("the Stacks tab shows each stack's LongRoPE list and its permalink restores it", async () => {
  const { page, errors } = await open(`${URL}#model=Phi-3.5-mini-instruct&tab=stacks&stack_context=131072`);
  await page.waitForFunction(() => window.resonanceLab.state().stacks, null, { timeout: 30000 });
  const stacks = async () => (await stateOf(page)).stacks;
  const long = await stacks();
  assert.equal(long.context, 131072);
  assert.deepEqual(long.stacks.map((s) => s.factor_list), ["long", "long", "long", "long"]);
  const vllm = long.differences.find((d) => d.stacks[1] === "vllm" && d.field === "factor_list");
  assert.match(vllm.effect, /long factors for every sequence/);
  await page.screenshot({ path: `${OUT}/stacks-phi35.png` });
  const st = (await stateOf(page)).s;
  st.stack_context = 4096;
  await page.evaluate((s) => window.resonanceLab.setState(s), st);
  await page.waitForFunction(() => window.resonanceLab.state().stacks?.context === 4096);
  const short = await stacks();
  assert.deepEqual(short.stacks.map((s) => s.factor_list), ["short", "short", "short", "long"]);
  const { hash } = await stateOf(page);
  assert.match(hash, /stack_context=4096/);
  const { page: p2 } = await open(`${URL}#${hash}`);
  await p2.waitForFunction(() => window.resonanceLab.state().stacks, null, { timeout: 30000 });
  const back = await p2.evaluate(() => window.resonanceLab.state().stacks);
  assert.deepEqual(back, short);
  await p2.close();
  assert.deepEqual(errors.filter((e) => !/WebGPU is experimental/i.test(e)), []);
  await page.close();
});

// The Language model tab in the page: the committed real-text studies, read from the same
// files as natively (the verdicts equal the committed JSON's), and the README scored live by the
// shipped model in a Web Worker.
test("the Language model tab shows the committed studies and scores a text live", async () => {
  const { page, errors } = await open(`${URL}#tab=language-model`);
  await page.waitForFunction(() => window.resonanceLab.state().lm, null, { timeout: 30000 });
  const lm = (await stateOf(page)).lm;
  assert.deepEqual(lm.corpora, ["code", "prose"]);
  const file = JSON.parse(readFileSync(`results/lm_study_${lm.corpus}.json`, "utf8"));
  assert.equal(lm.finished_runs, file.runs.length);
  assert.deepEqual(lm.verdicts.map((v) => v.verdict), file.comparisons.map((c) => c.verdict));
  await page.screenshot({ path: `${OUT}/language-model.png` });
  // opening the tab fetched the shipped model and scores the README in a Web Worker
  const live = () => window.resonanceLab.state().lm.live;
  // (seen running with progress, or already finished: a quick scoring can end before the
  // first look, so the result says where it was computed)
  await page.waitForFunction(
    () => {
      const l = window.resonanceLab.state().lm.live;
      return (l.in_worker && l.progress[1] > 0) || (l.result && l.result.in_worker);
    },
    null, { timeout: 60000 });
  await page.waitForFunction(() => window.resonanceLab.state().lm.live.result, null, { timeout: 300000 });
  const got = await page.evaluate(live);
  assert.equal(got.error, null);
  assert.equal(got.result.in_worker, true);
  assert.ok(got.progress[1] > 0 && got.progress[0] === got.progress[1], JSON.stringify(got.progress));
  assert.equal(got.weights, `${readFileSync("web/assets/lm-small-prose/model.safetensors").length} bytes`);
  const r = got.result;
  assert.equal(r.text_bytes, readFileSync("README.md").length);
  assert.deepEqual(r.arms.map((a) => a.label), ["RoPE", "YaRN s=4", "Resonance YaRN s=4"]);
  // the same pattern as natively (tests/lm.rs): well below uniform within L, RoPE breaks past L
  assert.ok(Math.exp(r.arms[0].loss_within) < 32, JSON.stringify(r));
  assert.ok(r.arms[1].loss_beyond < r.arms[0].loss_beyond - 0.2, JSON.stringify(r));
  console.log(`browser lm scoring at ${r.length} bytes: ${r.tokens_per_second.toFixed(0)} tokens/s ` +
    `(${r.windows} windows x ${r.arms.length} schedules)`);
  // the benchmark length of `lm eval`: 2048-byte windows (16L), scored in the worker
  assert.equal(await page.evaluate(() => window.resonanceLab.lmScore({ length: 4096 })), "lmScore: length 4096 is not in 1..=2048");
  assert.equal(await page.evaluate(() => window.resonanceLab.lmScore({ length: 2048 })), null);
  await page.waitForFunction(() => {
    const l = window.resonanceLab.state().lm.live;
    return l.result && l.result.length === 2048 && !l.busy;
  }, null, { timeout: 300000 });
  const r2048 = (await page.evaluate(live)).result;
  console.log(`browser lm scoring at 2048 bytes: ${r2048.tokens_per_second.toFixed(0)} tokens/s ` +
    `(${r2048.windows} windows x ${r2048.arms.length} schedules)`);
  await page.screenshot({ path: `${OUT}/language-model-live.png` });
  assert.deepEqual(errors.filter((e) => !/WebGPU is experimental/i.test(e)), []);
  await page.close();
});

test("an exported PNG decodes and is under 1 MB", async () => {
  const { page } = await open(URL);
  const [download] = await Promise.all([
    page.waitForEvent("download", { timeout: 60000 }),
    page.evaluate(() => window.resonanceLab.exportPng()),
  ]);
  const path = `${OUT}/export.png`;
  await download.saveAs(path);
  const png = readFileSync(path);
  const { width, height, pixels } = decodePng(png);
  console.log(`exported PNG: ${width}x${height}, ${png.length} bytes (${(png.length / (width * height * 4) * 100).toFixed(1)}% of raw RGBA)`);
  assert.ok(width >= 1200 && height >= 700, `${width}x${height}`);
  assert.equal(pixels.length, height * (1 + 4 * width));
  assert.ok(png.length < 1 << 20, `${png.length} bytes`);
  await page.close();
});

// Minimal PNG check: signature, IHDR, and the IDAT stream inflating to one filter byte plus
// width * 4 bytes per row (8-bit RGBA).
function decodePng(buf) {
  assert.deepEqual([...buf.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  let off = 8;
  let width = 0;
  let height = 0;
  const idat = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString("ascii", off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.equal(data[8], 8, "bit depth");
      assert.equal(data[9], 6, "RGBA");
    } else if (type === "IDAT") idat.push(data);
    off += 12 + len;
  }
  return { width, height, pixels: inflateSync(Buffer.concat(idat)) };
}

// Phones: portrait is the narrow layout (controls folded, opened by a tap), landscape the wide
// one; the renderer label never covers the canvas. Screenshots go to docs/ for the README.
test("narrow screens: the controls fold behind a button that works by touch", async () => {
  for (const [width, height, name] of [[390, 844, "portrait"], [844, 390, "landscape"]]) {
    const { page, errors } = await open(URL, { viewport: { width, height }, hasTouch: true });
    const st = await page.evaluate(() => window.resonanceLab.state());
    const label = await page.evaluate(() => document.getElementById("backend").getBoundingClientRect().bottom);
    const canvas = await page.evaluate(() => document.getElementById("resonance-lab-canvas").getBoundingClientRect().top);
    assert.ok(label <= canvas, `label bottom ${label} > canvas top ${canvas}`);
    await page.screenshot({ path: `docs/narrow-${name}.png` });
    if (name === "portrait") {
      assert.equal(st.layout, "narrow");
      assert.equal(st.side_panel_open, false);
      // the status bar is one line, and a tap on it opens the full text (another closes it)
      assert.ok(st.status_height > 10 && st.status_height < 30, `status bar ${st.status_height} px`);
      await page.touchscreen.tap(120, height - 8);
      await page.waitForTimeout(500);
      const tall = (await page.evaluate(() => window.resonanceLab.state())).status_height;
      assert.ok(tall > 2 * st.status_height, `opened status bar ${tall} px`);
      await page.touchscreen.tap(120, height - 8);
      await page.waitForTimeout(500);
      const closed = (await page.evaluate(() => window.resonanceLab.state())).status_height;
      assert.equal(closed, st.status_height);
      await page.touchscreen.tap(NARROW_CONTROLS_BUTTON.x, NARROW_CONTROLS_BUTTON.y);
      await page.waitForTimeout(500);
      const open = await page.evaluate(() => window.resonanceLab.state());
      assert.equal(open.side_panel_open, true, "a tap on Controls opens them");
      await page.screenshot({ path: `docs/narrow-portrait-controls.png` });
      // a control in the opened panel works by touch
      await page.touchscreen.tap(NARROW_COMPARE_CHECKBOX.x, NARROW_COMPARE_CHECKBOX.y);
      await page.waitForTimeout(500);
      const after = JSON.parse((await page.evaluate(() => window.resonanceLab.state())).state_json);
      assert.equal(after.compare, true, "a tap on 'compare two configurations' ticks it");
    } else {
      assert.equal(st.layout, "wide");
      assert.equal(st.side_panel_open, true);
    }
    assert.deepEqual(errors.filter((e) => !/WebGPU is experimental/i.test(e)), []);
    await page.close();
  }
});

test("without WebGPU the WebGL2 fallback renders and says so", async () => {
  const { page, errors } = await open(URL, { disableWebGpu: true });
  await page.screenshot({ path: `${OUT}/webgl2.png` });
  const st = await page.evaluate(() => window.resonanceLab.state());
  assert.equal(st.render_backend, "WebGL2");
  assert.match(await page.textContent("#backend"), /WebGL2/);
  // no compute shaders on WebGL2: the exact CPU path computes and is checked
  assert.doesNotMatch(st.compute_backend, /^GPU/);
  await page.waitForFunction(() => window.resonanceLab.selfCheck(), null, { timeout: 60000 });
  const check = await page.evaluate(() => window.resonanceLab.selfCheck());
  assert.ok(check.ok && /CPU/.test(check.backend), JSON.stringify(check));
  assert.match(check.gap_backend, /^CPU/, JSON.stringify(check));
  assert.match(check.gap_cpu_reason, /WebGL2.*no compute shaders/, JSON.stringify(check));
  assert.match(st.compute_backend, /no compute shaders/);
  assert.deepEqual(errors, []);
  await page.close();
});

// Benchmarks (printed, never asserted beyond sanity): frame time while the scale changes every
// frame at L'=131072, d=128 (the app time-slices the computation), and PosGen training speed of
// the tiny preset in this browser.
// Frame times at L'=131072, d=128 on the gap tab: repainting an unchanged view, then the scale
// changing every frame (as while dragging its slider).
async function dragFrames(page, gapCompute, dragCount) {
  const st = JSON.parse((await page.evaluate(() => window.resonanceLab.state())).state_json);
  st.gap_compute = gapCompute;
  Object.assign(st.a, {
    method: "llama3", dim: 128, base: 500000, train_len: 8192, eval_len: 131072, scale: 8,
    low_freq_factor: 1, high_freq_factor: 4, seq_len: 131072,
  });
  st.tab = "gap";
  const frames = await page.evaluate(async ([st, dragCount]) => {
    const raf = () => new Promise((r) => requestAnimationFrame(r));
    const drawMs = () => JSON.parse(window.resonanceLabNative.stateJson()).frame_ms;
    const stats = (xs) => {
      xs.sort((a, b) => a - b);
      const n = xs.length;
      return { median: xs[n >> 1], p90: xs[Math.floor(n * 0.9)], max: xs[n - 1] };
    };
    const run = async (count, change) => {
      const interval = [];
      const draw = [];
      let last = performance.now();
      for (let k = 0; k < count; k++) {
        if (change) st.a.scale = 8 + 0.05 * (k + 1);
        window.resonanceLab.setState(st);
        await raf();
        const now = performance.now();
        interval.push(now - last);
        draw.push(drawMs());
        last = now;
      }
      return { interval: stats(interval), draw: stats(draw) };
    };
    window.resonanceLab.setState(st);
    for (let k = 0; k < 30; k++) await raf(); // let the first computation start
    const idle = await run(30, false); // same state: repaint only
    const dragging = await run(dragCount, true);
    return { idle, dragging };
  }, [st, dragCount]);
  const after = await page.evaluate(() => window.resonanceLab.state());
  assert.equal(JSON.parse(after.state_json).a.eval_len, 131072);
  return { ...frames, source: after.plot_source };
}

test("benchmarks: frame time while changing the scale (gap on the CPU; on the GPU too with E2E_BENCH=1), PosGen tiny steps/s", async () => {
  const fmt = (x) => `median ${x.median.toFixed(1)} ms, p90 ${x.p90.toFixed(1)} ms, max ${x.max.toFixed(1)} ms`;
  // one WebGPU page, the gap first on the CPU, then on the GPU (SwiftShader: a software GPU)
  const { page } = await open(URL);
  const cpu = await dragFrames(page, "cpu", FULL_BENCH ? 90 : 30);
  const runs = [["gap on the CPU", cpu]];
  // The GPU half only with E2E_BENCH=1 (README): SwiftShader runs each in-flight gap kernel for
  // seconds on the CPU (p90 frames past a minute on a loaded 2-core machine), which CI cannot
  // afford; what it asserts is checked on the CPU half and by the GPU tests of `cargo test`.
  if (FULL_BENCH) {
    const gpu = await dragFrames(page, "gpu", 20);
    runs.unshift(["gap on the GPU", gpu]);
    console.log(`dragging, median frame interval GPU/CPU = ${(gpu.dragging.interval.median / cpu.dragging.interval.median).toFixed(2)}, median app draw GPU/CPU = ${(gpu.dragging.draw.median / cpu.dragging.draw.median).toFixed(2)}`);
  }
  for (const [name, f] of runs) {
    console.log(`${name} (${f.source}): L'=131072, d=128, repainting an unchanged view: frame interval ${fmt(f.idle.interval)}; app draw ${fmt(f.idle.draw)}`);
    console.log(`${name} (${f.source}): L'=131072, d=128, scale changing every frame: frame interval ${fmt(f.dragging.interval)}; app draw ${fmt(f.dragging.draw)}`);
  }
  assert.match(cpu.source, /gap bars and curves on CPU/);
  // training is timed on a fresh page: the gap kernels above keep SwiftShader (a software GPU,
  // on the same CPUs) busy for seconds after the page stops asking, which would be timed too
  await page.close();
  const { page: train } = await open(URL);
  const bench = await train.evaluate(() => window.resonanceLab.benchPosgen(10));
  console.log(`PosGen tiny preset in the browser: ${JSON.stringify(bench)}`);
  assert.ok(bench.steps === 10 && bench.steps_per_second > 0, JSON.stringify(bench));
  // cold start to validation ID accuracy >= 95% on Recursive (the goal: under 10 s; the figure
  // is printed, only convergence asserted)
  const conv = await train.evaluate(() => window.resonanceLab.benchPosgenConverge("recursive", 0.95));
  const { validation, ...summary } = conv;
  console.log(`PosGen tiny preset to 95% validation ID accuracy in the browser: ${JSON.stringify(summary)}`);
  assert.ok(conv.reached, JSON.stringify(conv));
  const unknown = await train.evaluate(() => window.resonanceLab.benchPosgenConverge("nope", 0.95));
  assert.match(unknown.error, /unknown task 'nope'/);
  await train.close();
});

test("the committed studies are not in the wasm: the PosGen tab fetches the one it shows", async () => {
  const { page, errors } = await open(URL);
  const requested = [];
  page.on("request", (r) => r.url().includes("/studies/") && requested.push(r.url()));
  // nothing fetched for the first frame (the plots tab)
  assert.equal(requested.length, 0);
  const before = await page.evaluate(() => window.resonanceLab.posgen().reference_study);
  assert.equal(before.ready, false);
  const st = (await stateOf(page)).s;
  st.tab = "pos-gen";
  await page.evaluate((s) => window.resonanceLab.setState(s), st);
  await page.waitForFunction(() => window.resonanceLab.posgen().reference_study.ready, null, { timeout: 30000 });
  const shown = await page.evaluate(() => window.resonanceLab.posgen().reference_study);
  assert.equal(shown.path, "results/posgen_study_clean_4000.md");
  assert.equal(requested.length, 1, requested.join(", "));
  assert.match(requested[0], /studies\/posgen_study_clean_4000\.json$/);
  assert.deepEqual(errors, []);
  await page.close();
});

test("the PosGen tab trains its four runs in Web Workers while the page keeps drawing", async () => {
  const { page, errors } = await open(URL);
  const steps = 200;
  await page.evaluate((steps) => window.resonanceLab.posgenTrain({ task: "recursive", steps }), steps);
  const t0 = Date.now();
  await page.waitForFunction(() => (window.resonanceLab.posgen() || { runs: [] }).runs.length === 4, null, {
    timeout: 30000,
  });
  // frames keep coming while the workers train (the main thread only draws and reads updates)
  const frames = await page.evaluate(async () => {
    const raf = () => new Promise((r) => requestAnimationFrame(r));
    const t = [];
    for (let k = 0; k < 20; k++) {
      await raf();
      t.push(performance.now());
    }
    const d = t.slice(1).map((x, k) => x - t[k]).sort((a, b) => a - b);
    return { median: d[d.length >> 1], max: d[d.length - 1] };
  });
  const mid = await page.evaluate(() => window.resonanceLab.posgen());
  assert.ok(mid.runs.every((r) => r.in_worker), JSON.stringify(mid));
  await page.waitForFunction(() => window.resonanceLab.posgen().runs.every((r) => r.phase === "done" || r.error), null, {
    timeout: 900000,
    polling: 1000,
  });
  const wall = (Date.now() - t0) / 1000;
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${OUT}/posgen.png` });
  const st = await page.evaluate(() => window.resonanceLab.posgen());
  const rows = st.runs.map((r) => `${r.label} ID ${(100 * r.id_accuracy).toFixed(1)}% OOD ${(100 * r.ood_accuracy).toFixed(1)}% (${r.seconds.toFixed(1)} s)`);
  console.log(`PosGen tab, 4 runs x ${steps} steps on Recursive in Web Workers: ${wall.toFixed(1)} s wall; frame interval while training median ${frames.median.toFixed(0)} ms, max ${frames.max.toFixed(0)} ms; ${rows.join("; ")}`);
  for (const r of st.runs) {
    assert.equal(r.error, null, JSON.stringify(r));
    assert.equal(r.step, steps);
    // chance is 1/17 = 5.9%; 200 steps learn Recursive in distribution (~95% natively)
    assert.ok(r.id_accuracy > 0.5, JSON.stringify(r));
  }
  assert.deepEqual(errors.filter((e) => !/WebGPU is experimental/i.test(e)), []);
  await page.close();
});
