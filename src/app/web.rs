//! The web entry point: start-up on the canvas, the panic message in the page, and the page's
//! JS API (`window.resonanceLab`), whose readers read what the last frame published and whose
//! setters queue typed commands. In a training worker (no window) it installs the worker's
//! side of the protocol instead.

use super::commands::{AppCommand, CommandSender, LmScoreArgs, PosgenTrainArgs};
use super::page_api::Published;
use super::platform::{export, fail, install_worker_api};
use super::{ResonanceApp, state::AppState};
use crate::rope::Method;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

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
    let c = commands.clone();
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
    install_lm_api(&api, commands);
    install_bench_api(&api);
    if let Some(w) = web_sys::window() {
        let _ = js_sys::Reflect::set(&w, &"resonanceLabNative".into(), &api);
    }
}

/// `resonanceLab.lmScore({text?, length?})`: a length out of range is refused at once, else
/// the scoring is queued.
fn install_lm_api(api: &js_sys::Object, c: CommandSender) {
    export(
        api,
        "lmScoreJson",
        Closure::<dyn Fn(String) -> JsValue>::new(move |json: String| {
            let r = serde_json::from_str::<LmScoreArgs>(&json)
                .map_err(|e| format!("lmScore: {e}"))
                .and_then(|a| {
                    let length = a.length.map_or(Ok(()), crate::lm::live::check_length);
                    length.map_err(|e| format!("lmScore: length {e}"))?;
                    queued(c.send_and_wake(AppCommand::LmScore(a)))
                });
            js_result(r)
        }),
    );
}

/// `resonanceLab.loadConfig(text, layerType?)`: imports the config now (to answer at once
/// with `{ok, error}`) and queues the load, which the next frame applies.
fn load_config(c: &CommandSender, text: String, layer_type: Option<String>) -> String {
    let load = super::model_load::ModelLoad {
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
