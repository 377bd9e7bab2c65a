//! Web platform glue: start-up on a canvas, the URL hash, file downloads, the panic message in
//! the page, a small JS API (`window.resonanceLab`) for the page and its tests, and PosGen runs
//! in Web Workers (`web/posgen-worker.js` runs this same module, which then trains one run).

use super::posgen_run::{Job, RunUpdate, WorkerRun};
use super::{ResonanceApp, state::AppState};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// Defined in web/glue.js: saves `bytes` as a download named `name`.
    #[wasm_bindgen(js_namespace = window, js_name = resonanceLabDownload)]
    fn download(name: &str, mime: &str, bytes: &[u8]);
    /// Defined in web/glue.js: shows a readable error page.
    #[wasm_bindgen(js_namespace = window, js_name = resonanceLabFail)]
    fn fail(message: &str);
    /// Defined in web/glue.js: hides the loading indicator and shows renderer and compute path.
    #[wasm_bindgen(js_namespace = window, js_name = resonanceLabReady)]
    fn ready(backend: &str, compute: &str);
}

/// Downloads an exported file; returns a status message.
pub fn save_file(name: &str, mime: &str, bytes: &[u8]) -> Result<String, String> {
    download(name, mime, bytes);
    Ok(format!("downloaded {name}"))
}

thread_local! {
    static APP_HOOK: std::cell::RefCell<Option<std::rc::Rc<std::cell::RefCell<super::Published>>>> =
        const { std::cell::RefCell::new(None) };
    static CHECK: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    /// A state set from JS (`resonanceLab.setState`), applied after the current frame.
    static INCOMING: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    /// `resonanceLab.posgenTrain({task, steps})`, applied after the current frame.
    static POSGEN_TRAIN: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The PosGen tab's status after the latest frame (`resonanceLab.posgen()`).
    static POSGEN_STATUS: RefCell<String> = const { RefCell::new(String::new()) };
    /// The egui context, so that JS calls can request a repaint.
    static CTX: std::cell::RefCell<Option<egui::Context>> = const { std::cell::RefCell::new(None) };
}

/// Per-frame web work: keep the URL hash equal to the state (replaceState, no history spam),
/// run the self-check once, report readiness after the first frame, apply a state set from JS.
pub fn after_frame(app: &mut ResonanceApp, ctx: &egui::Context) {
    if app.frames == 1 {
        CTX.with(|c| *c.borrow_mut() = Some(ctx.clone()));
    }
    if let Some(json) = INCOMING.with(|i| i.borrow_mut().take()) {
        match serde_json::from_str::<AppState>(&json) {
            Ok(st) => app.state = st,
            Err(e) => log::warn!("resonanceLab.setState: invalid state: {e}"),
        }
        ctx.request_repaint();
    }
    if let Some(json) = POSGEN_TRAIN.with(|i| i.borrow_mut().take()) {
        match serde_json::from_str::<PosgenTrain>(&json) {
            Ok(cmd) => match crate::posgen::Task::from_name(&cmd.task) {
                Some(task) => {
                    let panel = &mut app.posgen;
                    panel.task = task;
                    panel.steps = cmd.steps.clamp(1, super::posgen_panel::MAX_STEPS);
                    panel.start();
                    app.state.tab = super::state::Tab::PosGen;
                }
                None => log::warn!("resonanceLab.posgenTrain: unknown task '{}'", cmd.task),
            },
            Err(e) => log::warn!("resonanceLab.posgenTrain: {e}"),
        }
        ctx.request_repaint();
    }
    POSGEN_STATUS.with(|s| *s.borrow_mut() = app.posgen.status().to_string());
    let Some(window) = web_sys::window() else {
        return;
    };
    let hash = format!("#{}", app.published.borrow().hash);
    if window.location().hash().ok().as_deref() != Some(hash.as_str())
        && let Ok(history) = window.history()
    {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&hash));
    }
    if CHECK.with(|c| c.borrow().is_none())
        && let Some(c) = app.self_check()
    {
        let json = serde_json::to_string(&c).expect("self-check serializes");
        CHECK.with(|slot| *slot.borrow_mut() = Some(json));
    }
    if app.frames == 1 {
        let p = app.published.borrow();
        ready(&p.render_backend, &p.compute_backend);
    }
}

/// Arguments of `resonanceLab.posgenTrain`.
#[derive(serde::Deserialize)]
struct PosgenTrain {
    task: String,
    steps: usize,
}

fn install_js_api(published: std::rc::Rc<std::cell::RefCell<super::Published>>) {
    APP_HOOK.with(|h| *h.borrow_mut() = Some(published));
    let api = js_sys::Object::new();
    let state = Closure::<dyn Fn() -> JsValue>::new(|| {
        APP_HOOK.with(|h| {
            h.borrow()
                .as_ref()
                .map(|p| {
                    JsValue::from_str(&serde_json::to_string(&*p.borrow()).unwrap_or_default())
                })
                .unwrap_or(JsValue::NULL)
        })
    });
    let check = Closure::<dyn Fn() -> JsValue>::new(|| {
        CHECK.with(|c| {
            c.borrow()
                .clone()
                .map(|s| JsValue::from_str(&s))
                .unwrap_or(JsValue::NULL)
        })
    });
    // Training speed of the tiny PosGen preset in this browser (blocks the page while it runs).
    let bench = Closure::<dyn Fn(u32) -> JsValue>::new(|steps: u32| {
        use crate::posgen::{PresetName, RunConfig, Task, time_steps};
        let rc = RunConfig::new(
            PresetName::Tiny,
            Task::SemiRecursive,
            crate::rope::Method::Rope,
            false,
            0,
        );
        let json = match time_steps(rc, steps.max(1) as usize) {
            Ok((secs, n)) => serde_json::json!({
                "preset": "tiny",
                "steps": n,
                "seconds": secs,
                "steps_per_second": n as f64 / secs,
            }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        JsValue::from_str(&json.to_string())
    });
    let _ = js_sys::Reflect::set(&api, &"benchPosgenJson".into(), bench.as_ref());
    bench.forget();
    // Cold start to a validation ID accuracy of the tiny preset (plain RoPE, seed 0) on a task
    // named as on the CLI; blocks the page while it runs.
    let converge = Closure::<dyn Fn(String, f64) -> JsValue>::new(|task: String, target: f64| {
        use crate::posgen::{CONVERGE_EVAL_EVERY, PresetName, RunConfig, Task, time_to_converge};
        let json = match Task::from_name(&task) {
            None => serde_json::json!({ "error": format!("unknown task '{task}'") }),
            Some(t) => {
                let rc = RunConfig::new(PresetName::Tiny, t, crate::rope::Method::Rope, false, 0);
                match time_to_converge(rc, target, CONVERGE_EVAL_EVERY) {
                    Ok(c) => serde_json::to_value(c).expect("convergence serializes"),
                    Err(e) => serde_json::json!({ "error": e.to_string() }),
                }
            }
        };
        JsValue::from_str(&json.to_string())
    });
    let _ = js_sys::Reflect::set(&api, &"benchPosgenConvergeJson".into(), converge.as_ref());
    converge.forget();
    let set_state = Closure::<dyn Fn(String)>::new(|json: String| {
        INCOMING.with(|i| *i.borrow_mut() = Some(json));
        CTX.with(|c| c.borrow().as_ref().map(egui::Context::request_repaint));
    });
    let posgen_train = Closure::<dyn Fn(String)>::new(|json: String| {
        POSGEN_TRAIN.with(|i| *i.borrow_mut() = Some(json));
        CTX.with(|c| c.borrow().as_ref().map(egui::Context::request_repaint));
    });
    let _ = js_sys::Reflect::set(&api, &"posgenTrainJson".into(), posgen_train.as_ref());
    posgen_train.forget();
    let posgen = Closure::<dyn Fn() -> String>::new(|| POSGEN_STATUS.with(|s| s.borrow().clone()));
    let _ = js_sys::Reflect::set(&api, &"posgenJson".into(), posgen.as_ref());
    posgen.forget();
    let _ = js_sys::Reflect::set(&api, &"setStateJson".into(), set_state.as_ref());
    set_state.forget();
    let _ = js_sys::Reflect::set(&api, &"stateJson".into(), state.as_ref());
    let _ = js_sys::Reflect::set(&api, &"selfCheckJson".into(), check.as_ref());
    state.forget();
    check.forget();
    if let Some(w) = web_sys::window() {
        let _ = js_sys::Reflect::set(&w, &"resonanceLabNative".into(), &api);
    }
}

/// A PosGen run training in a Web Worker (module worker `web/posgen-worker.js`); it reports
/// [`RunUpdate`]s as JSON messages and is terminated when dropped.
pub struct TrainWorker {
    worker: web_sys::Worker,
    inbox: Rc<RefCell<Vec<String>>>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::ErrorEvent)>,
}

impl TrainWorker {
    /// Starts a worker and sends it `job`.
    pub fn spawn(job: &Job) -> Result<TrainWorker, String> {
        let options = web_sys::WorkerOptions::new();
        options.set_type(web_sys::WorkerType::Module);
        let worker = web_sys::Worker::new_with_options("web/posgen-worker.js", &options)
            .map_err(|e| format!("{e:?}"))?;
        let inbox = Rc::new(RefCell::new(Vec::new()));
        let repaint = || CTX.with(|c| c.borrow().as_ref().map(egui::Context::request_repaint));
        let sink = inbox.clone();
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                // the panel redraws on its own schedule while workers train
                if let Some(text) = e.data().as_string() {
                    sink.borrow_mut().push(text);
                }
            });
        let sink = inbox.clone();
        let on_error =
            Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |e: web_sys::ErrorEvent| {
                let u = RunUpdate::failed(format!("training worker failed: {}", e.message()));
                sink.borrow_mut()
                    .push(serde_json::to_string(&u).expect("updates serialize"));
                repaint();
            });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let msg = serde_json::json!({ "type": "start", "job": job });
        worker
            .post_message(&JsValue::from_str(&msg.to_string()))
            .map_err(|e| format!("{e:?}"))?;
        Ok(TrainWorker {
            worker,
            inbox,
            _on_message: on_message,
            _on_error: on_error,
        })
    }

    /// Updates received since the last call.
    pub fn updates(&self) -> Vec<RunUpdate> {
        self.inbox
            .borrow_mut()
            .drain(..)
            .map(|text| {
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| RunUpdate::failed(format!("bad worker message: {e}")))
            })
            .collect()
    }

    /// Pauses (`false`) or resumes training.
    pub fn set_running(&self, running: bool) {
        let kind = if running { "resume" } else { "pause" };
        let msg = serde_json::json!({ "type": kind });
        let _ = self
            .worker
            .post_message(&JsValue::from_str(&msg.to_string()));
    }
}

impl Drop for TrainWorker {
    fn drop(&mut self) {
        self.worker.set_onmessage(None);
        self.worker.set_onerror(None);
        self.worker.terminate();
    }
}

thread_local! {
    /// The run of this module when it is a training worker.
    static WORKER_RUN: RefCell<Option<WorkerRun>> = const { RefCell::new(None) };
}

/// In a worker: `self.resonanceLabWorker = { start(jobJson) -> error or null,
/// slice(seconds) -> update JSON, finished() -> bool }` for `web/posgen-worker.js`.
fn install_worker_api() {
    let api = js_sys::Object::new();
    let start = Closure::<dyn Fn(String) -> JsValue>::new(|json: String| {
        let run = serde_json::from_str::<Job>(&json)
            .map_err(|e| format!("bad job: {e}"))
            .and_then(|job| WorkerRun::new(&job));
        match run {
            Ok(run) => {
                WORKER_RUN.with(|w| *w.borrow_mut() = Some(run));
                JsValue::NULL
            }
            Err(e) => JsValue::from_str(&e),
        }
    });
    let slice = Closure::<dyn Fn(f64) -> String>::new(|budget_s: f64| {
        let u = WORKER_RUN.with(|w| match w.borrow_mut().as_mut() {
            Some(run) => run.slice(budget_s),
            None => RunUpdate::failed("no run started"),
        });
        serde_json::to_string(&u).expect("updates serialize")
    });
    let finished = Closure::<dyn Fn() -> bool>::new(|| {
        WORKER_RUN.with(|w| w.borrow().as_ref().is_none_or(WorkerRun::finished))
    });
    for (name, f) in [
        ("start", start.as_ref()),
        ("slice", slice.as_ref()),
        ("finished", finished.as_ref()),
    ] {
        let _ = js_sys::Reflect::set(&api, &name.into(), f);
    }
    start.forget();
    slice.forget();
    finished.forget();
    let _ = js_sys::Reflect::set(&js_sys::global(), &"resonanceLabWorker".into(), &api);
}

/// Starts the app on the canvas with id `resonance-lab-canvas`; errors go to the page. In a
/// worker (no window) it installs the training API instead.
pub fn start() {
    if web_sys::window().is_none() {
        console_error_panic_hook::set_once();
        install_worker_api();
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        fail(&format!("The app stopped: {info}"));
    }));
    let _ = eframe::WebLogger::init(log::LevelFilter::Warn);
    wasm_bindgen_futures::spawn_local(async {
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            fail("no document");
            return;
        };
        let Some(canvas) = document
            .get_element_by_id("resonance-lab-canvas")
            .and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok())
        else {
            fail("the page has no canvas with id resonance-lab-canvas");
            return;
        };
        let hash = web_sys::window()
            .and_then(|w| w.location().hash().ok())
            .unwrap_or_default();
        let mut hash_error = None;
        let state = if hash.len() > 1 {
            match AppState::from_hash(&hash) {
                Ok(s) => Some(s),
                Err(e) => {
                    hash_error = Some(e);
                    None
                }
            }
        } else {
            None
        };
        let options = eframe::WebOptions::default();
        let result = eframe::WebRunner::new()
            .start(
                canvas,
                options,
                Box::new(move |cc| {
                    let mut app =
                        ResonanceApp::from_creation_context(cc, Some(state.unwrap_or_default()));
                    if let Some(e) = hash_error {
                        app.message = Some(e);
                    }
                    install_js_api(app.published.clone());
                    Ok(Box::new(app))
                }),
            )
            .await;
        if let Err(e) = result {
            fail(&format!("The app could not start: {e:?}"));
        }
    });
}
