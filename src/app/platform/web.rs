//! Web platform primitives: file downloads, dropped files, the URL hash and readiness after each
//! frame, and PosGen runs in Web Workers (`web/posgen-worker.js` runs this same module, which
//! then installs the worker's side of the protocol and trains one run).

use crate::app::commands::{AppCommand, CommandSender};
use crate::app::page_api::Published;
use crate::app::worker::{FromWorker, RunId, ToWorker, WorkerState};
use std::cell::RefCell;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// Defined in web/glue.js: saves `bytes` as a download named `name`.
    #[wasm_bindgen(js_namespace = window, js_name = resonanceLabDownload)]
    fn download(name: &str, mime: &str, bytes: &[u8]);
    /// Defined in web/glue.js: shows a readable error page.
    #[wasm_bindgen(js_namespace = window, js_name = resonanceLabFail)]
    pub fn fail(message: &str);
    /// Defined in web/glue.js: hides the loading indicator and shows renderer and compute path.
    #[wasm_bindgen(js_namespace = window, js_name = resonanceLabReady)]
    fn ready(backend: &str, compute: &str);
}

/// Downloads an exported file; returns a status message.
pub fn save_file(name: &str, mime: &str, bytes: &[u8]) -> Result<String, String> {
    download(name, mime, bytes);
    Ok(format!("downloaded {name}"))
}

/// Fetches a file of the bundle (a URL relative to the page) and hands its text, or why it
/// could not be had, to `done` when it arrives.
pub fn fetch_text(url: &str, done: impl FnOnce(Result<String, String>) + 'static) {
    let url = url.to_string();
    wasm_bindgen_futures::spawn_local(async move {
        done(fetch(&url).await.map_err(|e| format!("{url}: {e}")));
    });
}

/// Fetches a binary file of the bundle (a URL relative to the page) and hands its bytes, or
/// why they could not be had, to `done` when they arrive.
pub fn fetch_bytes(url: &str, done: impl FnOnce(Result<Vec<u8>, String>) + 'static) {
    let url = url.to_string();
    wasm_bindgen_futures::spawn_local(async move {
        let bytes = async {
            let response = response(&url).await?;
            let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?)
                .await
                .map_err(js_error)?;
            Ok(js_sys::Uint8Array::new(&buffer).to_vec())
        };
        done(bytes.await.map_err(|e: String| format!("{url}: {e}")));
    });
}

fn js_error(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// The response for `url` when it is a success, or the reason there is none.
async fn response(url: &str) -> Result<web_sys::Response, String> {
    let window = web_sys::window().ok_or("no window")?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)?;
    if !response.ok() {
        return Err(format!("HTTP {}", response.status()));
    }
    Ok(response)
}

/// The text at `url`, or the reason there is none (network error, HTTP status, not text).
async fn fetch(url: &str) -> Result<String, String> {
    let response = response(url).await?;
    let text = JsFuture::from(response.text().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    text.as_string().ok_or_else(|| "not text".to_string())
}

/// Reads a file dropped on the page (browsers read files asynchronously) and queues
/// `make(name, its bytes or why not)`.
pub fn read_dropped(
    file: egui::DroppedFileHandle,
    make: fn(&str, Result<Vec<u8>, String>) -> AppCommand,
    commands: CommandSender,
) {
    wasm_bindgen_futures::spawn_local(async move {
        let name = file.path().display().to_string();
        let bytes = file.bytes_async().await.map_err(|e| e.to_string());
        commands.send_and_wake(make(&name, bytes));
    });
}

thread_local! {
    /// The egui context, so that a worker's failure can wake the page (set on the first frame).
    static CTX: RefCell<Option<egui::Context>> = const { RefCell::new(None) };
}

/// Per-frame web work after the frame published `p`: keep the URL hash equal to the state
/// (replaceState, no history spam) and report readiness after the first frame. Commands from
/// the page are applied by the app itself at the start of each frame.
pub fn after_frame(p: &Published, frames: u64, ctx: &egui::Context) {
    if frames == 1 {
        CTX.with(|c| *c.borrow_mut() = Some(ctx.clone()));
    }
    let Some(window) = web_sys::window() else {
        return;
    };
    let hash = format!("#{}", p.hash);
    if window.location().hash().ok().as_deref() != Some(hash.as_str())
        && let Ok(history) = window.history()
    {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&hash));
    }
    if frames == 1 {
        ready(&p.render_backend, &p.compute_backend);
    }
}

/// Sets `f` as the property `name` of `target` (the closure lives as long as the page).
pub fn export<F: ?Sized + wasm_bindgen::closure::WasmClosure>(
    target: &js_sys::Object,
    name: &str,
    f: Closure<F>,
) {
    let _ = js_sys::Reflect::set(target, &name.into(), f.as_ref());
    f.forget();
}

/// A worker (module worker `web/posgen-worker.js`) training a PosGen run or scoring a text. It
/// is sent [`ToWorker`] messages and its [`FromWorker`] messages go to the app's command queue;
/// it is terminated when dropped.
pub struct TrainWorker {
    worker: web_sys::Worker,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::ErrorEvent)>,
}

impl TrainWorker {
    /// Starts a worker on `start` (a [`ToWorker::Start`] or [`ToWorker::Score`]); its reports
    /// go to `updates` as `route(id, report)`.
    pub fn spawn(
        start: ToWorker,
        id: RunId,
        route: fn(RunId, FromWorker) -> AppCommand,
        updates: CommandSender,
    ) -> Result<TrainWorker, String> {
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
                            error: format!("bad message from the worker: {e}"),
                        }
                    }),
                    None => FromWorker::Failed {
                        error: "the worker sent a non-text message".into(),
                    },
                };
                // training runs redraw on their tab's schedule; a scoring is waited on
                let wake = matches!(m, FromWorker::Scored(_));
                sink.send(route(id, m));
                if wake {
                    CTX.with(|c| c.borrow().as_ref().map(egui::Context::request_repaint));
                }
            });
        let on_error =
            Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |e: web_sys::ErrorEvent| {
                let message = FromWorker::Failed {
                    error: format!("worker failed: {}", e.message()),
                };
                updates.send(route(id, message));
                CTX.with(|c| c.borrow().as_ref().map(egui::Context::request_repaint));
            });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let w = TrainWorker {
            worker,
            _on_message: on_message,
            _on_error: on_error,
        };
        w.post(&start)?;
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
pub fn install_worker_api() {
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
