//! Web platform glue: start-up on a canvas, the URL hash, file downloads, the panic message in
//! the page, a small JS API (`window.resonanceLab`) for the page and its tests, and PosGen runs
//! in Web Workers (`web/posgen-worker.js` runs this same module, which then trains one run).

use super::commands::{AppCommand, CommandSender, PosgenTrainArgs};
use super::posgen_run::{FromWorker, RunId, ToWorker, TrainJob, WORKER_SLICE_S, WorkerState};
use super::{Published, ResonanceApp, state::AppState};
use crate::rope::Method;
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

/// Reads a file dropped on the page (browsers read files asynchronously) and queues its load
/// (or the reason it failed).
pub fn read_dropped(file: egui::DroppedFileHandle, commands: CommandSender) {
    wasm_bindgen_futures::spawn_local(async move {
        let name = file.path().display().to_string();
        let command = match file.bytes_async().await {
            Ok(bytes) => super::model_panel::dropped(&name, bytes),
            Err(e) => AppCommand::ModelLoadFailed(format!("{name}: cannot read it: {e}")),
        };
        commands.send_and_wake(command);
    });
}

thread_local! {
    /// The egui context, so that a worker's failure can wake the page (set on the first frame).
    static CTX: RefCell<Option<egui::Context>> = const { RefCell::new(None) };
}

/// Per-frame web work: keep the URL hash equal to the state (replaceState, no history spam)
/// and report readiness after the first frame. Commands from the page are applied by the app
/// itself at the start of each frame.
pub fn after_frame(app: &mut ResonanceApp, ctx: &egui::Context) {
    if app.frames == 1 {
        CTX.with(|c| *c.borrow_mut() = Some(ctx.clone()));
    }
    let Some(window) = web_sys::window() else {
        return;
    };
    let hash = format!("#{}", app.published.borrow().hash);
    if window.location().hash().ok().as_deref() != Some(hash.as_str())
        && let Ok(history) = window.history()
    {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&hash));
    }
    if app.frames == 1 {
        let p = app.published.borrow();
        ready(&p.render_backend, &p.compute_backend);
    }
}

/// Sets `f` as the property `name` of `target` (the closure lives as long as the page).
fn export<F: ?Sized + wasm_bindgen::closure::WasmClosure>(
    target: &js_sys::Object,
    name: &str,
    f: Closure<F>,
) {
    let _ = js_sys::Reflect::set(target, &name.into(), f.as_ref());
    f.forget();
}

/// Whether a command reached the app's queue, as the page API reports it.
fn queued(sent: bool) -> Result<(), String> {
    if sent {
        Ok(())
    } else {
        Err("the app has stopped".into())
    }
}

/// `null` for success, else the error message (what the page API's setters return).
fn js_result(r: Result<(), String>) -> JsValue {
    match r {
        Ok(()) => JsValue::NULL,
        Err(e) => JsValue::from_str(&e),
    }
}

/// `window.resonanceLabNative`: readers of what the last frame published, and setters that
/// queue typed commands for the next frame (they return `null`, or the error in the input).
fn install_js_api(published: Rc<RefCell<Published>>, commands: CommandSender) {
    let api = js_sys::Object::new();
    let p = published.clone();
    export(
        &api,
        "stateJson",
        Closure::<dyn Fn() -> String>::new(move || {
            serde_json::to_string(&*p.borrow()).unwrap_or_default()
        }),
    );
    let p = published.clone();
    export(
        &api,
        "selfCheckJson",
        Closure::<dyn Fn() -> JsValue>::new(move || match &p.borrow().self_check {
            Some(c) => JsValue::from_str(&serde_json::to_string(c).unwrap_or_default()),
            None => JsValue::NULL,
        }),
    );
    let p = published;
    export(
        &api,
        "posgenJson",
        Closure::<dyn Fn() -> String>::new(move || p.borrow().posgen.to_string()),
    );
    let c = commands.clone();
    export(
        &api,
        "setStateJson",
        Closure::<dyn Fn(String) -> JsValue>::new(move |json: String| {
            let r = serde_json::from_str::<AppState>(&json)
                .map_err(|e| format!("invalid state: {e}"))
                .and_then(|s| queued(c.send_and_wake(AppCommand::SetState(Box::new(s)))));
            js_result(r)
        }),
    );
    let c = commands.clone();
    export(
        &api,
        "exportPng",
        Closure::<dyn Fn() -> JsValue>::new(move || {
            js_result(queued(c.send_and_wake(AppCommand::ExportPng)))
        }),
    );
    let c = commands.clone();
    export(
        &api,
        "loadConfigJson",
        Closure::<dyn Fn(String, Option<String>) -> String>::new(
            move |text: String, layer_type: Option<String>| load_config(&c, text, layer_type),
        ),
    );
    let c = commands;
    export(
        &api,
        "posgenTrainJson",
        Closure::<dyn Fn(String) -> JsValue>::new(move |json: String| {
            let r = serde_json::from_str::<PosgenTrainArgs>(&json)
                .map_err(|e| format!("posgenTrain: {e}"))
                .and_then(|a| queued(c.send_and_wake(AppCommand::PosgenTrain(a))));
            js_result(r)
        }),
    );
    install_bench_api(&api);
    if let Some(w) = web_sys::window() {
        let _ = js_sys::Reflect::set(&w, &"resonanceLabNative".into(), &api);
    }
}

/// `resonanceLab.loadConfig(text, layerType?)`: imports the config now (to answer at once
/// with `{ok, error}`) and queues the load, which the next frame applies.
fn load_config(c: &CommandSender, text: String, layer_type: Option<String>) -> String {
    let load = super::model_panel::ModelLoad {
        text,
        fallback_name: "config.json".into(),
        layer_type,
        origin: "loadConfig".into(),
    };
    let r = load
        .import()
        .map_err(|e| e.to_string())
        .and_then(|_| queued(c.send_and_wake(AppCommand::LoadModel(Box::new(load)))));
    let error = r.err();
    serde_json::json!({ "ok": error.is_none(), "error": error }).to_string()
}

/// The page's PosGen benchmarks (they block the page while they run and touch no app state).
fn install_bench_api(api: &js_sys::Object) {
    use crate::posgen::{CONVERGE_EVAL_EVERY, PresetName, RunConfig, Task};
    // training speed of the tiny preset in this browser
    let bench = Closure::<dyn Fn(u32) -> String>::new(|steps: u32| {
        let rc = RunConfig::new(
            PresetName::Tiny,
            Task::SemiRecursive,
            Method::ROPE,
            false,
            0,
        );
        let json = match crate::posgen::time_steps(rc, steps.max(1) as usize) {
            Ok((secs, n)) => serde_json::json!({
                "preset": "tiny",
                "steps": n,
                "seconds": secs,
                "steps_per_second": n as f64 / secs,
            }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        json.to_string()
    });
    export(api, "benchPosgenJson", bench);
    // cold start to a validation ID accuracy of the tiny preset (plain RoPE, seed 0) on a task
    // named as on the CLI
    let converge = Closure::<dyn Fn(String, f64) -> String>::new(|task: String, target: f64| {
        let json = match Task::from_name(&task) {
            None => serde_json::json!({ "error": format!("unknown task '{task}'") }),
            Some(t) => {
                let rc = RunConfig::new(PresetName::Tiny, t, Method::ROPE, false, 0);
                match crate::posgen::time_to_converge(rc, target, CONVERGE_EVAL_EVERY) {
                    Ok(c) => serde_json::to_value(c).unwrap_or_default(),
                    Err(e) => serde_json::json!({ "error": e.to_string() }),
                }
            }
        };
        json.to_string()
    });
    export(api, "benchPosgenConvergeJson", converge);
}

/// A PosGen run training in a Web Worker (module worker `web/posgen-worker.js`). It is sent
/// [`ToWorker`] messages and its [`FromWorker`] messages go to the app's command queue; it is
/// terminated when dropped.
pub struct TrainWorker {
    worker: web_sys::Worker,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::ErrorEvent)>,
}

impl TrainWorker {
    /// Starts a worker training `job`; its updates go to `updates`, tagged with `id`.
    pub fn spawn(job: &TrainJob, id: RunId, updates: CommandSender) -> Result<TrainWorker, String> {
        let options = web_sys::WorkerOptions::new();
        options.set_type(web_sys::WorkerType::Module);
        let worker = web_sys::Worker::new_with_options("web/posgen-worker.js", &options)
            .map_err(|e| format!("{e:?}"))?;
        let sink = updates.clone();
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                let m = match e.data().as_string() {
                    Some(text) => serde_json::from_str::<FromWorker>(&text).unwrap_or_else(|e| {
                        FromWorker::Failed {
                            error: format!("bad message from the training worker: {e}"),
                        }
                    }),
                    None => FromWorker::Failed {
                        error: "the training worker sent a non-text message".into(),
                    },
                };
                // the tab redraws on its own schedule while workers train
                sink.send(AppCommand::Worker {
                    run: id,
                    message: m,
                });
            });
        let on_error =
            Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |e: web_sys::ErrorEvent| {
                let message = FromWorker::Failed {
                    error: format!("training worker failed: {}", e.message()),
                };
                updates.send(AppCommand::Worker { run: id, message });
                CTX.with(|c| c.borrow().as_ref().map(egui::Context::request_repaint));
            });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let w = TrainWorker {
            worker,
            _on_message: on_message,
            _on_error: on_error,
        };
        w.post(&ToWorker::Start {
            job: job.clone(),
            slice_s: WORKER_SLICE_S,
        })?;
        Ok(w)
    }

    fn post(&self, m: &ToWorker) -> Result<(), String> {
        let json = serde_json::to_string(m).map_err(|e| e.to_string())?;
        self.worker
            .post_message(&JsValue::from_str(&json))
            .map_err(|e| format!("{e:?}"))
    }

    /// Pauses (`false`) or resumes training.
    pub fn set_running(&self, running: bool) {
        let m = if running {
            ToWorker::Resume
        } else {
            ToWorker::Pause
        };
        if let Err(e) = self.post(&m) {
            log::warn!("could not message a training worker: {e}");
        }
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
    /// The worker's side of the protocol when this module runs in a training worker.
    static WORKER: RefCell<WorkerState> = RefCell::new(WorkerState::default());
}

/// In a worker: `self.resonanceLabWorker = { command(json) -> reply JSON or null,
/// wantsSlice() -> bool, slice() -> update JSON }` for `web/posgen-worker.js`, which only pumps
/// messages: the protocol, the run and the slice length live here.
fn install_worker_api() {
    let api = js_sys::Object::new();
    export(
        &api,
        "command",
        Closure::<dyn Fn(String) -> JsValue>::new(|json: String| {
            match WORKER.with(|w| w.borrow_mut().handle_json(&json)) {
                Some(reply) => {
                    JsValue::from_str(&serde_json::to_string(&reply).unwrap_or_default())
                }
                None => JsValue::NULL,
            }
        }),
    );
    export(
        &api,
        "wantsSlice",
        Closure::<dyn Fn() -> bool>::new(|| WORKER.with(|w| w.borrow().wants_slice())),
    );
    export(
        &api,
        "slice",
        Closure::<dyn Fn() -> String>::new(|| {
            let m = WORKER.with(|w| w.borrow_mut().slice());
            serde_json::to_string(&m).unwrap_or_default()
        }),
    );
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
        let load = (hash.len() > 1).then(|| AppState::from_hash(&hash));
        let message = load.as_ref().and_then(|l| l.message());
        let state = load.map(|l| l.state);
        let options = eframe::WebOptions::default();
        let result = eframe::WebRunner::new()
            .start(
                canvas,
                options,
                Box::new(move |cc| {
                    let mut app =
                        ResonanceApp::from_creation_context(cc, Some(state.unwrap_or_default()));
                    app.message = message;
                    install_js_api(app.published.clone(), app.command_sender());
                    Ok(Box::new(app))
                }),
            )
            .await;
        if let Err(e) = result {
            fail(&format!("The app could not start: {e:?}"));
        }
    });
}
