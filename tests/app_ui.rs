//! UI tests of the visualizer with egui_kittest: state changes after clicks (plain assertions)
//! and one snapshot per panel, rendered headless with wgpu (lavapipe). Update the snapshots with
//! `UPDATE_SNAPSHOTS=1 cargo test --test app_ui`.
// Test helpers unwrap freely: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]
#![cfg(not(target_arch = "wasm32"))] // native-only: runs the binary / uses native dev-deps

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use resonance_lab::app::ResonanceApp;
use resonance_lab::app::commands::{AppCommand, PosgenTrainArgs};
use resonance_lab::app::state::{AppState, ConfigPreset, GapCompute, Tab};
use resonance_lab::posgen::Task;
use resonance_lab::rope::Method;

fn harness(state: AppState) -> Harness<'static, ResonanceApp> {
    harness_sized(state, 1280.0, 800.0)
}

fn harness_sized(state: AppState, w: f32, h: f32) -> Harness<'static, ResonanceApp> {
    let mut app = ResonanceApp::new(state, "test renderer");
    // timings vary run to run; keep the snapshots reproducible
    app.show_timings = false;
    let mut h = Harness::builder()
        .with_size(egui::vec2(w, h))
        .wgpu()
        .build_ui_state(|ui, app: &mut ResonanceApp| app.draw(ui), app);
    settle(&mut h);
    h
}

/// Runs frames until the time-sliced computations have finished (at least `3`).
fn settle(h: &mut Harness<'static, ResonanceApp>) {
    h.run_steps(3);
    for _ in 0..10_000 {
        if !h.state().busy() {
            return;
        }
        h.step();
    }
    panic!("computation did not finish");
}

#[test]
fn clicking_resonance_toggles_the_config_and_changes_the_gap() {
    let mut h = harness(AppState::default());
    assert!(!h.state().state.a.resonance);
    let before = h.state().results(false).unwrap();
    h.get_by_label("Resonance rounding").click();
    settle(&mut h);
    assert!(h.state().state.a.resonance);
    let after = h.state().results(false).unwrap();
    // the config's own gap and its twin's swap places
    assert_eq!(after.gap.gap, before.twin_gap.gap);
    assert!(
        after.gap.gap[..after.schedule.critical_feature]
            .iter()
            .all(|&g| g < 1e-12)
    );
    assert!(before.gap.gap[0] > 1e-3);
}

#[test]
fn presets_tabs_and_compare_mode_follow_clicks() {
    let mut h = harness(AppState::default());
    h.get_by_label(ConfigPreset::Llama31.label()).click();
    settle(&mut h);
    let a = h.state().state.a.clone();
    assert_eq!(
        (a.method, a.dim, a.base, a.train_len, a.eval_len),
        (Method::LLAMA3, 128, 500000.0, 8192, 131072)
    );
    let r = h.state().results(false).unwrap();
    assert_eq!(r.schedule.num_features(), 64);
    h.get_by_label("Heatmap").click();
    settle(&mut h);
    assert_eq!(h.state().state.tab, Tab::Heatmap);
    h.get_by_label("compare two configurations").click();
    settle(&mut h);
    assert!(h.state().state.compare);
    assert!(
        h.state().results(true).is_some(),
        "B is computed in compare mode"
    );
    // the cache recomputes only when a config changes
    let n = h.state().computations();
    h.run_steps(5);
    assert_eq!(h.state().computations(), n);
}

#[test]
fn invalid_config_shows_the_error_and_keeps_the_last_good_plot() {
    let mut h = harness(AppState::default());
    let good = h.state().results(false).unwrap();
    h.state_mut().state.a.eval_len = 10; // below L = 64
    settle(&mut h);
    // named in the controls' words: the slider's label
    let label = h.query_by_label_contains("invalid eval length L'");
    assert!(label.is_some(), "error message shown next to the control");
    let kept = h.state().results(false).unwrap();
    assert_eq!(kept.schedule.config, good.schedule.config);
    assert!(
        h.state()
            .published
            .borrow()
            .error
            .as_deref()
            .unwrap()
            .contains("eval length L'")
    );
}

#[test]
fn self_check_matches_the_f64_reference() {
    let h = harness(AppState::default());
    let c = h.state().self_check().unwrap();
    assert!(c.ok, "{c:?}");
    assert_eq!(c.values, 256 * 32);
}

#[test]
fn permalink_state_survives_the_hash() {
    let mut st = AppState::default();
    st.a.scale = 6.5;
    st.tab = Tab::Gap;
    let h = harness(st.clone());
    let hash = h.state().published.borrow().hash.clone();
    assert_eq!(hash, "tab=gap&scale=6.5");
    assert_eq!(AppState::from_hash(&hash).state, st);
}

/// The page API and the workers reach the app only through its command queue; the next frame
/// applies what was queued, in order.
#[test]
fn queued_commands_apply_at_the_next_frame() {
    let mut h = harness(AppState::default());
    let tx = h.state().command_sender();
    let mut st = AppState::default();
    st.a.scale = 5.5;
    st.tab = Tab::Gap;
    assert!(tx.send(AppCommand::SetState(Box::new(st.clone()))));
    assert_eq!(
        h.state().state.a.scale,
        4.0,
        "nothing changes outside a frame"
    );
    h.step();
    assert_eq!(h.state().state, st);
    h.state_mut().posgen.off_thread = false;
    let args = PosgenTrainArgs {
        task: Task::Cot,
        steps: 2,
    };
    assert!(tx.send(AppCommand::PosgenTrain(args)));
    h.step();
    assert_eq!(h.state().state.tab, Tab::PosGen);
    assert_eq!(h.state().posgen.task, Task::Cot);
    assert_eq!(h.state().posgen.runs().len(), 4);
}

const LLAMA31: &str = include_str!("data/configs/llama-3.1-8b.json");

/// The PosGen tab opens on the study README's answer rests on (the 4000-step clean one) and
/// shows each committed study's budget check, read from its file: the seeds it names are the
/// file's check seeds (or it says the study has none).
#[test]
fn posgen_reference_results_show_the_budget_check() {
    let check_label = |stem: &str| {
        let path = format!("{}/results/{stem}.json", env!("CARGO_MANIFEST_DIR"));
        let study: resonance_lab::posgen::study::StudyResult =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        study.budget_check.map_or_else(
            || "No budget check in this study".to_string(),
            |b| format!("Budget check: seeds {:?}", b.seeds),
        )
    };
    let mut h = harness(with_tab(Tab::PosGen));
    assert!(
        h.query_by_label_contains(&check_label("posgen_study_clean_4000"))
            .is_some()
    );
    for (button, stem) in [
        ("clean, 1000 steps", "posgen_study_clean"),
        ("clean, 2000 steps", "posgen_study_clean_2000"),
        ("authors', 1000 steps", "posgen_study_authors"),
        ("authors', 2000 steps", "posgen_study_authors_2000"),
        ("authors', 4000 steps", "posgen_study_authors_4000"),
        ("clean, 4000 steps", "posgen_study_clean_4000"),
    ] {
        h.get_by_label(button).click();
        settle(&mut h);
        assert!(
            h.query_by_label_contains(&check_label(stem)).is_some(),
            "{button}"
        );
    }
}

/// Pasting a config.json and clicking Load makes A the model and B its Resonance twin: the
/// plots change to the model's schedule and compare mode shows the twin's integer wavelengths.
#[test]
fn pasting_a_model_config_shows_the_model_and_its_twin() {
    let mut h = harness(AppState {
        tab: Tab::Gap,
        ..AppState::default()
    });
    let before = h.state().results(false).unwrap();
    h.get_by_label("paste or drop a config.json").click();
    h.run_steps(2);
    h.state_mut().model.text = LLAMA31.to_string();
    h.run_steps(1);
    h.get_by_label("Load pasted config").click();
    settle(&mut h);
    let st = h.state().state.clone();
    assert_eq!(st.model, "meta-llama/Llama-3.1-8B");
    assert!(st.compare && !st.a.resonance && st.b.resonance);
    let a = h.state().results(false).unwrap();
    let b = h.state().results(true).unwrap();
    assert_ne!(a.gap.gap, before.gap.gap, "the plots show the model now");
    assert_eq!(
        (a.schedule.num_features(), a.schedule.config.base),
        (64, 500000.0)
    );
    assert!(
        b.schedule.wavelength.iter().all(|w| w.fract() == 0.0),
        "B is the twin"
    );
    assert_eq!(a.twin_gap.gap, b.gap.gap);
    let status = h.state().published.borrow().model_status.clone().unwrap();
    assert!(
        status.contains("meta-llama/Llama-3.1-8B") && status.contains("twin"),
        "{status}"
    );
    // a bad paste names the field and keeps the model on screen
    h.state_mut().model.text = LLAMA31.replace("\"rope_theta\": 500000.0", "\"rope_theta\": \"x\"");
    h.run_steps(1);
    h.get_by_label("Load pasted config").click();
    settle(&mut h);
    let err = h.state().published.borrow().model_error.clone().unwrap();
    assert!(err.contains("rope_theta"), "{err}");
    assert_eq!(h.state().state, st);
    // the hash carries the model, and restores it
    let hash = h.state().published.borrow().hash.clone();
    assert!(hash.contains("model=meta-llama%2FLlama-3.1-8B"), "{hash}");
    assert_eq!(AppState::from_hash(&hash).state, st);
}

/// A file dropped on the window is read as a model config (natively from its path).
#[test]
fn a_dropped_config_file_loads() {
    #[derive(Debug)]
    struct Dropped(std::path::PathBuf, &'static str);
    impl egui::DroppedFile for Dropped {
        fn path(&self) -> &std::path::Path {
            &self.0
        }
        fn bytes(&self) -> Result<Vec<u8>, String> {
            Ok(self.1.as_bytes().to_vec())
        }
    }
    let mut h = harness(AppState::default());
    let file = Dropped(
        "/tmp/qwen/config.json".into(),
        include_str!("data/configs/qwen2-7b-instruct.json"),
    );
    h.input_mut().dropped_files.push(std::sync::Arc::new(file));
    settle(&mut h);
    let st = &h.state().state;
    assert_eq!(st.model, "Qwen/Qwen2-7B-Instruct");
    assert_eq!((st.a.base, st.a.dim), (1000000.0, 128));
    assert!(st.compare && st.b.resonance);
    let bad = Dropped("/tmp/x.bin".into(), "not json");
    h.input_mut().dropped_files.push(std::sync::Arc::new(bad));
    settle(&mut h);
    let err = h.state().published.borrow().model_error.clone().unwrap();
    assert!(
        err.contains("x.bin") && err.contains("malformed JSON"),
        "{err}"
    );
    assert_eq!(
        h.state().state.model,
        "Qwen/Qwen2-7B-Instruct",
        "the last good model stays"
    );
}

/// Training advances in the app's per-frame update, not in the PosGen tab's drawing: runs in
/// place and runs in worker threads both finish while another tab is on screen.
#[test]
fn posgen_trains_while_another_tab_is_shown() {
    for off_thread in [false, true] {
        let mut h = harness(AppState::default());
        let p = &mut h.state_mut().posgen;
        p.steps = 3;
        p.off_thread = off_thread;
        p.methods = std::array::from_fn(|i| i == 0);
        p.resonance = false;
        p.start();
        let start = std::time::Instant::now();
        while h.state().posgen.running && start.elapsed().as_secs() < 120 {
            h.step();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(h.state().state.tab, Tab::Wavelengths);
        let runs = h.state().posgen.runs();
        assert_eq!(runs[0].in_worker(), off_thread);
        assert_eq!(runs[0].progress().step, 3, "off_thread {off_thread}");
        assert!(runs[0].result().is_some(), "off_thread {off_thread}");
    }
}

/// A phone in portrait (390 x 844): the controls start folded behind a button, the tabs are a
/// drop-down menu, and both open and work by clicks.
#[test]
fn narrow_layout_folds_the_controls_and_turns_tabs_into_a_menu() {
    let mut h = harness_sized(AppState::default(), 390.0, 844.0);
    {
        let p = h.state().published.borrow();
        assert_eq!((p.layout, p.side_panel_open), ("narrow", false));
    }
    assert!(
        h.query_by_label("Resonance rounding").is_none(),
        "controls closed"
    );
    assert!(
        h.query_by_label("Interpolation gap").is_none(),
        "no tab row"
    );
    h.snapshot("narrow_closed");
    // the tab menu
    h.get_by_label("plot").click();
    h.run_steps(2);
    h.get_by_label("Interpolation gap").click();
    settle(&mut h);
    assert_eq!(h.state().state.tab, Tab::Gap);
    h.snapshot("narrow_gap");
    // the controls open full width and work
    h.get_by_label("Controls").click();
    h.run_steps(2);
    assert!(h.state().published.borrow().side_panel_open);
    h.snapshot("narrow_controls");
    h.get_by_label("Resonance rounding").click();
    settle(&mut h);
    assert!(h.state().state.a.resonance);
    h.get_by_label("Close controls").click();
    h.run_steps(2);
    assert!(h.query_by_label("Resonance rounding").is_none());
    assert!(!h.state().published.borrow().side_panel_open);
    // landscape (844 x 390) is wide enough for the side panel
    let h = harness_sized(AppState::default(), 844.0, 390.0);
    let p = h.state().published.borrow();
    assert_eq!((p.layout, p.side_panel_open), ("wide", true));
}

/// On a phone the status bar stays one line with a model loaded and a long message; a click
/// on it opens the full text and another closes it.
#[test]
fn the_status_bar_is_one_line_on_a_phone() {
    let st = AppState::from_hash("#model=Llama-3.1-8B").state;
    let mut h = harness_sized(st, 390.0, 844.0);
    h.state().command_sender().send(AppCommand::ModelLoadFailed(
        "x.bin: not a text file (expected a config.json), a message far longer than a phone \
             is wide"
            .into(),
    ));
    settle(&mut h);
    let one_line = h.state().published.borrow().status_height;
    let row = h.ctx.global_style().spacing.interact_size.y;
    assert!(
        one_line > 0.0 && one_line < 2.0 * row,
        "status bar {one_line} pt, row {row} pt"
    );
    h.get_by_label_contains("test renderer · compute").click();
    h.run_steps(2);
    let open = h.state().published.borrow().status_height;
    assert!(open > 2.0 * one_line, "opened: {open} pt");
    // the full text is a clickable label too; a click on the line closes it as well
    assert!(
        h.query_all_by_label_contains("render: test renderer")
            .count()
            >= 1
    );
    h.get_by_label_contains("test renderer · compute").click();
    h.run_steps(2);
    assert_eq!(h.state().published.borrow().status_height, one_line);
}

/// At real-model scale (Llama 3.1: L = 8,192, L' = 131,072) the feature-value tab's detail
/// window shows single oscillations: its zero crossings are the exact count from the feature's
/// frequency; scrolling zooms it, the keys move and zoom it, "reset" resets it, and the window
/// survives the permalink.
#[test]
fn the_feature_value_detail_window_reads_at_real_model_scale() {
    let st = AppState {
        tab: Tab::FeatureCurve,
        compare: false,
        ..AppState::from_hash("#model=Llama-3.1-8B").state
    };
    let mut h = harness(st);
    let d = h.state().published.borrow().detail.clone().unwrap();
    // the default window: eight wavelengths around L
    assert!(d.start < 8192 && d.start + d.len > 8192, "{d:?}");
    let exact = |d: &resonance_lab::app::page_api::DetailStatus| {
        // cos(p theta) changes sign once per half turn: over len - 1 steps, (len - 1) theta / pi
        (d.len - 1) as f64 * d.theta / std::f64::consts::PI
    };
    assert!(
        (d.zero_crossings as f64 - exact(&d)).abs() <= 1.0,
        "{} crossings, exact {:.2}",
        d.zero_crossings,
        exact(&d)
    );
    assert!(d.zero_crossings >= 8, "single oscillations: {d:?}");
    // scroll over the detail plot (the lower part of the plot area) zooms in around the pointer
    let centre = egui::pos2(800.0, 560.0);
    h.hover_at(centre);
    h.run();
    h.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Point,
        delta: egui::vec2(0.0, 120.0),
        modifiers: egui::Modifiers::NONE,
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
    });
    h.run_steps(4);
    let z = h.state().published.borrow().detail.clone().unwrap();
    assert!(z.len < d.len, "zoomed in: {d:?} -> {z:?}");
    // the arrow key pans by a tenth, '-' zooms out by two
    h.key_press(egui::Key::ArrowRight);
    h.run_steps(2);
    let k = h.state().published.borrow().detail.clone().unwrap();
    assert!(k.start > z.start, "panned right: {z:?} -> {k:?}");
    h.key_press(egui::Key::Minus);
    h.run_steps(2);
    let m = h.state().published.borrow().detail.clone().unwrap();
    assert!(m.len > k.len, "zoomed out: {k:?} -> {m:?}");
    // the window is in the link
    let hash = h.state().published.borrow().hash.clone();
    assert!(hash.contains("detail_len="), "{hash}");
    assert_eq!(AppState::from_hash(&hash).state, h.state().state);
    // "reset" returns to the default window (a double click does too: the browser test)
    h.get_by_label("reset").click();
    h.run_steps(3);
    let back = h.state().published.borrow().detail.clone().unwrap();
    assert_eq!((back.start, back.len), (d.start, d.len));
    h.snapshot("feature_detail_llama31");
}

/// The gap tab's detail window at Llama 3.1 scale: 0 in the training range, and centred on
/// the worst OOD position ("at the worst gap") its exact curve reaches the feature's gap from
/// the whole-range analysis; the window is the feature tab's (one window, one link).
#[test]
fn the_gap_detail_window_reaches_the_whole_range_gap_at_real_model_scale() {
    let st = AppState {
        tab: Tab::Gap,
        compare: false,
        feature: 50,
        ..AppState::from_hash("#model=Llama-3.1-8B").state
    };
    let mut h = harness(st);
    let d = h.state().published.borrow().detail.clone().unwrap();
    assert!(d.start < 8192 && d.start + d.len > 8192, "around L: {d:?}");
    let r = h.state().results(false).unwrap();
    let (gap, worst) = (r.gap.gap[50], r.gap.worst_position[50]);
    assert!(gap > 0.1, "a post-critical feature: gap {gap}");
    let g = d.gap_max.unwrap();
    assert!(g > 0.0 && g <= gap, "{g} vs {gap}");
    h.get_by_label("at the worst gap").click();
    h.run_steps(3);
    let w = h.state().published.borrow().detail.clone().unwrap();
    assert!(
        w.start <= worst && worst < w.start + w.len,
        "{w:?} holds {worst}"
    );
    assert_eq!(w.gap_max, Some(gap), "{w:?}");
    let hash = h.state().published.borrow().hash.clone();
    assert_eq!(AppState::from_hash(&hash).state, h.state().state);
    h.snapshot("gap_detail_llama31");
}

#[test]
fn the_stacks_tab_shows_where_each_stack_switches_longrope_lists() {
    let st = AppState {
        tab: Tab::Stacks,
        stack_context: 131_072,
        ..AppState::from_hash("#model=Phi-3.5-mini-instruct").state
    };
    let mut h = harness(st);
    let s = h.state().published.borrow().stacks.clone().unwrap();
    assert_eq!(s["context"], 131_072, "{s}");
    let stacks = s["stacks"].as_array().unwrap();
    let names: Vec<&str> = stacks
        .iter()
        .map(|x| x["stack"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["transformers", "vllm", "llama.cpp", "mlx"]);
    // past the original 4096 every stack runs the long list
    assert!(stacks.iter().all(|x| x["factor_list"] == "long"), "{s}");
    let effect_of = |s: &serde_json::Value, stack: &str, field: &str| -> Option<String> {
        s["differences"].as_array().unwrap().iter().find_map(|d| {
            (d["stacks"][1] == stack && d["field"] == field)
                .then(|| d["effect"].as_str().unwrap().to_string())
        })
    };
    // vLLM fixes the list by max_model_len: also a short prompt gets the long factors
    let e = effect_of(&s, "vllm", "factor_list").unwrap();
    assert!(e.contains("long factors for every sequence"), "{e}");
    // at the original length, vLLM and llama.cpp switch to the short list, mlx-lm does not
    h.get_by_label("original length 4096").click();
    settle(&mut h);
    let s = h.state().published.borrow().stacks.clone().unwrap();
    assert_eq!(s["context"], 4096, "{s}");
    let list = |s: &serde_json::Value, i: usize| s["stacks"][i]["factor_list"].clone();
    assert_eq!(list(&s, 0), "short");
    assert_eq!(list(&s, 1), "short");
    assert_eq!(list(&s, 2), "short");
    assert_eq!(list(&s, 3), "long");
    let e = effect_of(&s, "mlx", "factor_list").unwrap();
    assert!(e.contains("long factors for every sequence"), "{e}");
    assert_eq!(effect_of(&s, "vllm", "factor_list"), None, "{s}");
    // the permalink carries the tab's context and twin choice
    h.get_by_label("Resonance twin").click();
    settle(&mut h);
    assert!(h.state().state.stack_twin);
    assert_eq!(
        h.state().published.borrow().stacks.clone().unwrap()["twin"],
        true
    );
    let hash = h.state().published.borrow().hash.clone();
    assert!(hash.contains("stack_context=4096"), "{hash}");
    assert_eq!(AppState::from_hash(&hash).state, h.state().state);
    h.snapshot("stacks_phi35_twin");
}

/// The Language model tab reads the committed real-text studies: its runs and verdicts are the
/// committed JSON's, and the corpus selector switches between them.
#[test]
fn the_language_model_tab_shows_the_committed_studies() {
    let mut h = harness(with_tab(Tab::LanguageModel));
    let lm = |h: &Harness<'static, ResonanceApp>| h.state().published.borrow().lm.clone().unwrap();
    let s = lm(&h);
    assert_eq!(s["corpora"], serde_json::json!(["code", "prose"]), "{s}");
    for corpus in ["code", "prose"] {
        if s["corpus"] != corpus {
            h.get_by_label_contains(&format!("{corpus} (")).click();
            settle(&mut h);
        }
        let s = lm(&h);
        assert_eq!(s["corpus"], corpus);
        let path = format!("results/lm_study_{corpus}.json");
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(s["finished_runs"], file["runs"].as_array().unwrap().len());
        assert_eq!(s["planned_runs"], file["planned_runs"]);
        let want: Vec<&serde_json::Value> = file["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["verdict"])
            .collect();
        let got: Vec<&serde_json::Value> = s["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["verdict"])
            .collect();
        assert_eq!(got, want);
        assert_eq!(s["arms"].as_array().unwrap().len(), 8, "{s}");
        // its CSV holds the committed summary, one row per arm and length
        let queue = resonance_lab::app::commands::CommandQueue::default();
        let mut view = resonance_lab::app::lm_view::LmView::new(queue.sender());
        view.selected = view.corpora().iter().position(|c| *c == corpus).unwrap();
        let (name, csv) = view.csv().unwrap();
        assert_eq!(name, format!("resonance-lab-lm-{corpus}.csv"));
        let summary = file["summary"].as_array().unwrap();
        assert_eq!(csv.lines().count(), summary.len() + 1);
        let first = csv.lines().nth(1).unwrap();
        let mean = summary[0]["perplexity"]["mean"].as_f64().unwrap();
        assert!(first.contains(&format!(",{mean},")), "{first}");
        if corpus == "code" {
            h.snapshot("language_model_code");
        }
    }
}

#[test]
fn snapshot_pair_layout() {
    snapshot(
        "pair_layout",
        AppState {
            feature: 3,
            ..with_tab(Tab::Pairs)
        },
    );
}

/// Frames until the Language model tab's scoring has finished (at most two minutes).
fn wait_for_scoring(h: &mut Harness<'static, ResonanceApp>) {
    let start = std::time::Instant::now();
    h.run_steps(2);
    while h.state().lm.live.busy() && start.elapsed().as_secs() < 120 {
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(!h.state().lm.live.busy(), "the scoring did not finish");
    h.run_steps(2);
}

/// Opening the Language model tab loads the shipped model and scores the README in a worker;
/// the live section shows what direct scoring of the README gives, and a dropped text file is
/// scored in its place.
#[test]
fn the_language_model_tab_scores_a_text_live() {
    use resonance_lab::lm::live::{TextScoreJob, TextScoring};
    let mut h = harness_sized(with_tab(Tab::LanguageModel), 1280.0, 900.0);
    wait_for_scoring(&mut h);
    h.get_by_label("Score a text").click();
    h.run_steps(3);
    let live = h.state().published.borrow().lm.clone().unwrap()["live"].clone();
    assert_eq!(live["error"], serde_json::Value::Null, "{live}");
    let weights = std::fs::read("web/assets/lm-small-prose/model.safetensors").unwrap();
    assert_eq!(live["weights"], format!("{} bytes", weights.len()));
    let readme = std::fs::read_to_string("README.md").unwrap();
    let job = TextScoreJob {
        text: readme.clone(),
        weights,
        preset: resonance_lab::lm::preset::LmPresetName::Small,
        length: 512,
    };
    let mut direct = TextScoring::new(&job).unwrap();
    direct.step_for(f64::INFINITY).unwrap();
    let want = direct.result().unwrap();
    let got = &live["result"];
    assert_eq!(got["in_worker"], true, "{live}");
    assert_eq!(got["text_bytes"], readme.len());
    for (g, w) in got["arms"].as_array().unwrap().iter().zip(&want.arms) {
        assert_eq!(g["label"], w.label.as_str());
        assert_eq!(g["loss_beyond"].as_f64(), w.loss_beyond, "{}", w.label);
    }
    // a dropped text replaces the README and is scored (a fixed text: the snapshot must not
    // change with every README edit)
    #[derive(Debug)]
    struct Dropped;
    impl egui::DroppedFile for Dropped {
        fn path(&self) -> &std::path::Path {
            std::path::Path::new("/tmp/lm_snapshot_text.md")
        }
        fn bytes(&self) -> Result<Vec<u8>, String> {
            Ok(include_bytes!("data/lm_snapshot_text.md").to_vec())
        }
    }
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped));
    wait_for_scoring(&mut h);
    let live = h.state().published.borrow().lm.clone().unwrap()["live"].clone();
    let text = include_str!("data/lm_snapshot_text.md");
    assert_eq!(live["result"]["text_bytes"], text.len(), "{live}");
    assert_eq!(
        h.state().state.model,
        AppState::default().model,
        "not read as a config"
    );
    h.snapshot("language_model_live");
    // another window length rescores the text in windows of that length
    h.get_by_label("256 bytes (2L)").click();
    wait_for_scoring(&mut h);
    let live = h.state().published.borrow().lm.clone().unwrap()["live"].clone();
    assert_eq!(live["result"]["length"], 256, "{live}");
    let want256 = {
        let mut j = job.clone();
        j.text = text.to_string();
        j.length = 256;
        let mut d = TextScoring::new(&j).unwrap();
        d.step_for(f64::INFINITY).unwrap();
        d.result().unwrap()
    };
    let rope = &live["result"]["arms"][0]["loss_beyond"];
    assert_eq!(rope.as_f64(), want256.arms[0].loss_beyond);
    h.get_by_label("512 bytes (4L)").click();
    wait_for_scoring(&mut h);
    h.get_by_label("Use the README").click();
    wait_for_scoring(&mut h);
    let live = h.state().published.borrow().lm.clone().unwrap()["live"].clone();
    assert_eq!(live["result"]["text_bytes"], readme.len());
}

fn snapshot(name: &str, state: AppState) {
    let mut h = harness(state);
    h.snapshot(name);
}

fn with_tab(tab: Tab) -> AppState {
    AppState {
        tab,
        ..AppState::default()
    }
}

#[test]
fn snapshot_wavelengths() {
    snapshot("wavelengths", with_tab(Tab::Wavelengths));
}

#[test]
fn snapshot_phase_wheel() {
    snapshot(
        "phase_wheel",
        AppState {
            feature: 3,
            ..with_tab(Tab::PhaseWheel)
        },
    );
}

#[test]
fn snapshot_feature_curve() {
    snapshot("feature_curve", with_tab(Tab::FeatureCurve));
}

#[test]
fn snapshot_posgen_tab_before_training() {
    snapshot("posgen", with_tab(Tab::PosGen));
}

#[test]
fn snapshot_heatmap() {
    snapshot("heatmap", with_tab(Tab::Heatmap));
}

#[test]
fn snapshot_compare_yarn_vs_resonance_yarn() {
    snapshot(
        "compare_gap",
        AppState {
            compare: true,
            ..with_tab(Tab::Gap)
        },
    );
}

/// A built-in model picked from the list: Phi-3.5 mini (LongRoPE) as A, its twin as B.
#[test]
fn snapshot_builtin_model_and_its_twin() {
    let mut h = harness(with_tab(Tab::Wavelengths));
    h.get_by_label("built-in model").click();
    h.run_steps(2);
    h.get_by_label("Phi-3.5 mini instruct").click();
    settle(&mut h);
    let st = &h.state().state;
    assert_eq!(st.model, "microsoft/Phi-3.5-mini-instruct");
    assert_eq!(
        (st.a.method, st.a.dim, st.a.long_factor.len()),
        (Method::LONGROPE, 96, 48)
    );
    // the plots' automatic bounds follow the new data within a few frames
    h.run_steps(5);
    h.snapshot("builtin_model_phi35");
}

#[test]
fn snapshot_gap_changes_with_resonance() {
    let mut h = harness(with_tab(Tab::Gap));
    h.snapshot("gap_rope_yarn");
    let before = h.render().unwrap();
    h.get_by_label("Resonance rounding").click();
    h.run_steps(3);
    h.snapshot("gap_resonance_yarn");
    let after = h.render().unwrap();
    assert_ne!(
        before.as_raw(),
        after.as_raw(),
        "the gap plot changes when Resonance is toggled"
    );
}

/// Benchmark (prints, asserts nothing about time): frames while dragging the scale slider at
/// L' = 131,072, d = 128 (Llama-3.1 preset), with the gap on the CPU and on the GPU (lavapipe
/// here, a software GPU), in one run; each step changes the config so every frame starts a
/// new computation. Reports frame times and how many results completed meanwhile.
/// Run: `cargo test --release --test app_ui bench_ -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_frame_time_while_dragging_scale() {
    let mut rows = Vec::new();
    for on_gpu in [false, true] {
        let st = AppState {
            a: ConfigPreset::Llama31.config(false),
            tab: Tab::Gap,
            gap_compute: if on_gpu {
                GapCompute::Gpu
            } else {
                GapCompute::Cpu
            },
            ..AppState::default()
        };
        let mut app = ResonanceApp::new(st, "bench");
        if on_gpu {
            match resonance_lab::gpu::GpuCompute::new_headless_blocking() {
                Ok(g) => app = app.with_gpu(g),
                Err(e) => {
                    println!("no GPU adapter, GPU row skipped: {e}");
                    continue;
                }
            }
        }
        let mut h = Harness::builder()
            .with_size(egui::vec2(1280.0, 800.0))
            .build_ui_state(|ui, app: &mut ResonanceApp| app.draw(ui), app);
        while h.state().busy() || h.state().results(false).is_none() {
            h.step();
        }
        let frames = 120;
        let mut times = Vec::with_capacity(frames);
        let mut completed = 0;
        let mut last = h.state().results(false).unwrap().generation;
        let t_all = std::time::Instant::now();
        for k in 0..frames {
            h.state_mut().state.a.scale = 8.0 + 0.05 * (k + 1) as f64;
            let t0 = std::time::Instant::now();
            h.step();
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            let g = h.state().results(false).unwrap().generation;
            completed += usize::from(g != last);
            last = g;
        }
        let wall = t_all.elapsed().as_secs_f64();
        times.sort_by(f64::total_cmp);
        let r = h.state().results(false).unwrap();
        rows.push((
            r.gap_backend.clone(),
            times[frames / 2],
            times[frames * 9 / 10],
            times[frames - 1],
            completed,
            wall,
            r.compute_ms,
        ));
    }
    for (backend, med, p90, max, completed, wall, comp) in &rows {
        println!(
            "L'=131072 d=128, 120 frames dragging the scale, gap on {backend}: median {med:.1} ms, \
             p90 {p90:.1} ms, max {max:.1} ms per frame; {completed} results completed in {wall:.2} s; \
             last computation {comp:.1} ms from start to result"
        );
    }
    if let [cpu, gpu] = &rows[..] {
        println!(
            "median frame GPU/CPU = {:.2}; results per second GPU/CPU = {:.2}",
            gpu.1 / cpu.1,
            (gpu.4 as f64 / gpu.5) / (cpu.4 as f64 / cpu.5).max(1e-9)
        );
    }
}

/// Benchmark (prints, asserts nothing about time): load a config with head_dim 256 and
/// max_position_embeddings 1,048,576 (YaRN 32x from 32K; a synthetic config of that size), then
/// draw every plot tab in turn until its computation has finished. The computation is
/// time-sliced, so no frame should stall.
/// Run: `cargo test --release --test app_ui bench_ -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_frame_time_loading_a_1m_position_config() {
    let config = r#"{"_name_or_path": "synthetic/head256-1M", "model_type": "llama",
        "hidden_size": 4096, "num_attention_heads": 16, "head_dim": 256,
        "max_position_embeddings": 1048576, "rope_theta": 10000000.0,
        "rope_scaling": {"rope_type": "yarn", "factor": 32.0,
                         "original_max_position_embeddings": 32768}}"#;
    let mut h = harness(AppState::default());
    let tx = h.state().command_sender();
    let mut times = Vec::new();
    let t_load = std::time::Instant::now();
    assert!(tx.send(AppCommand::LoadModel(Box::new(
        resonance_lab::app::model_load::ModelLoad {
            text: config.into(),
            fallback_name: "bench".into(),
            layer_type: None,
            origin: "bench".into(),
        }
    ))));
    let mut first_done = None;
    for tab in Tab::ALL.into_iter().filter(|t| *t != Tab::PosGen) {
        h.state_mut().state.tab = tab;
        loop {
            let t0 = std::time::Instant::now();
            h.step();
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            if !h.state().busy() && h.state().results(true).is_some() {
                break;
            }
        }
        first_done.get_or_insert(t_load.elapsed().as_secs_f64());
    }
    assert_eq!(h.state().state.a.eval_len, 1 << 20);
    times.sort_by(f64::total_cmp);
    let n = times.len();
    println!(
        "head_dim 256, L' = 1,048,576 (A and its twin B): {n} frames over every plot tab: \
         median {:.1} ms, p90 {:.1} ms, max {:.1} ms per frame; \
         first plots complete {:.2} s after the load",
        times[n / 2],
        times[n * 9 / 10],
        times[n - 1],
        first_done.unwrap_or(0.0)
    );
}

/// A harness of the app showing `st` with GPU compute on a headless device (lavapipe in CI),
/// and whether that device is a software rasterizer; `None` (the test skips) when there is no
/// adapter, which fails instead when the env var `CI` is set.
/// Frame times with the Stacks tab open on Phi-3.5 (four stacks, 48 pairs) and on a
/// 1M-position config with head_dim 256: steady frames
/// (the audit is kept) and frames that each move the context, as dragging the slider does
/// (the audit runs again in that frame).
#[test]
#[ignore]
fn bench_frame_time_stacks_tab() {
    fn time(h: &mut Harness<'static, ResonanceApp>, moving: bool) -> (f64, f64, f64) {
        let mut t = Vec::new();
        for k in 0..120u64 {
            if moving {
                h.state_mut().state.stack_context = 2048 + 997 * k;
            }
            let t0 = std::time::Instant::now();
            h.step();
            t.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        t.sort_by(f64::total_cmp);
        (t[60], t[108], t[119])
    }
    let st = AppState {
        tab: Tab::Stacks,
        ..AppState::from_hash("#model=Phi-3.5-mini-instruct").state
    };
    let app = ResonanceApp::new(st, "bench");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(|ui, app: &mut ResonanceApp| app.draw(ui), app);
    h.run_steps(3);
    while h.state().busy() {
        h.step();
    }
    let steady = time(&mut h, false);
    let moving = time(&mut h, true);
    let drawn = h.state().published.borrow().stacks.clone().unwrap();
    assert_eq!(drawn["context"], 2048 + 997 * 119, "{drawn}");
    // a 1M-position config with head_dim 256 (the frames include its audits)
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/stack_configs/llama-1m-d256.json"
    ))
    .unwrap();
    let tx = h.state().command_sender();
    assert!(tx.send(AppCommand::LoadModel(Box::new(
        resonance_lab::app::model_load::ModelLoad {
            text: config,
            fallback_name: "1m".into(),
            layer_type: None,
            origin: "bench".into(),
        }
    ))));
    h.state_mut().state.stack_context = 0;
    h.run_steps(3);
    // the other tabs' results for the new model finish first (time-sliced, off this tab)
    while h.state().busy() {
        h.step();
    }
    let big_steady = time(&mut h, false);
    let big_moving = time(&mut h, true);
    let drawn = h.state().published.borrow().stacks.clone().unwrap();
    assert_eq!(drawn["context"], 2048 + 997 * 119, "{drawn}");
    for (what, (med, p90, max)) in [
        ("Phi-3.5 mini (d 96), steady", steady),
        ("Phi-3.5 mini (d 96), context moved every frame", moving),
        ("1M positions, d 256, steady", big_steady),
        ("1M positions, d 256, context moved every frame", big_moving),
    ] {
        println!(
            "Stacks tab, {what}, 120 frames: median {med:.1} ms, p90 {p90:.1} ms, max {max:.1} ms \
             per frame"
        );
    }
}

fn gpu_harness(st: AppState) -> Option<(Harness<'static, ResonanceApp>, bool)> {
    let gpu = match resonance_lab::gpu::GpuCompute::new_headless_blocking() {
        Ok(g) => g,
        Err(e) if std::env::var_os("CI").is_some() => panic!("CI is set but {e}"),
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            return None;
        }
    };
    let software = gpu.is_software();
    let mut app = ResonanceApp::new(st, "test renderer").with_gpu(gpu);
    app.show_timings = false;
    let h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .wgpu()
        .build_ui_state(|ui, app: &mut ResonanceApp| app.draw(ui), app);
    Some((h, software))
}

/// With a GPU (lavapipe in CI) the heatmap raster comes from the WGSL feature-table kernel and
/// the self-check compares that raster, not the CPU one, with the f64 reference.
#[test]
fn gpu_heatmap_raster_matches_the_f64_reference() {
    let st = AppState {
        tab: Tab::Heatmap,
        ..AppState::default()
    };
    let Some((mut h, _)) = gpu_harness(st) else {
        return;
    };
    assert!(h.state().compute_label().starts_with("GPU"));
    let mut check = None;
    for _ in 0..600 {
        h.run_steps(1);
        check = h.state().self_check();
        if check.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let c = check.expect("the GPU table arrived");
    assert!(c.backend.starts_with("GPU"), "{c:?}");
    assert!(c.ok, "{c:?}");
    assert_eq!(c.values, 256 * 32);
}

/// With a GPU the interpolation gap comes from the WGSL gap kernels: the gap per feature equals
/// the exact CPU analysis bit for bit, the gap curves are the kernel's min/max buckets, and the
/// self-check names the GPU and compares the gap with the f64 reference. Compare mode and a
/// config change go through the same path.
#[test]
fn gpu_gap_plot_matches_the_f64_reference() {
    let st = AppState {
        tab: Tab::Gap,
        compare: true,
        // lavapipe in CI is a software rasterizer, which `auto` leaves to the CPU
        gap_compute: GapCompute::Gpu,
        ..AppState::default()
    };
    let Some((mut h, software)) = gpu_harness(st) else {
        return;
    };
    let wait = |h: &mut Harness<'static, ResonanceApp>| {
        for _ in 0..2000 {
            h.run_steps(1);
            let current = h.state().results(false).map(|r| r.generation);
            if !h.state().busy() && h.state().self_check().map(|c| c.generation) == current {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the GPU gap did not arrive");
    };
    wait(&mut h);
    for b in [false, true] {
        let r = h.state().results(b).unwrap();
        assert!(r.gap_backend.starts_with("GPU"), "{}", r.gap_backend);
        let want = resonance_lab::rope::gap_analysis(&r.schedule);
        let want_twin = resonance_lab::rope::gap_analysis(&r.twin);
        assert_eq!(r.gap.gap, want.gap, "bit-identical gap per feature");
        assert_eq!(r.gap.worst_position, want.worst_position);
        assert_eq!(r.twin_gap.gap, want_twin.gap);
        assert!(
            r.gap_buckets.is_some(),
            "curves come from the kernel's buckets"
        );
    }
    let c = h.state().self_check().unwrap();
    assert!(c.ok && c.gap_backend.starts_with("GPU"), "{c:?}");
    assert!(c.gap_values > 5 && c.gap_max_abs_err <= 1e-6, "{c:?}");
    assert!(c.gap_cpu_reason.is_none(), "{c:?}");
    // a new config is computed on the GPU too
    h.state_mut().state.a.scale = 6.0;
    wait(&mut h);
    let r = h.state().results(false).unwrap();
    assert_eq!(r.schedule.config.scale, 6.0);
    assert_eq!(
        r.gap.gap,
        resonance_lab::rope::gap_analysis(&r.schedule).gap
    );
    // `auto` leaves a software rasterizer (lavapipe) to the faster CPU path and says why; `cpu`
    // always uses the CPU
    for (choice, scale) in [(GapCompute::Auto, 5.0), (GapCompute::Cpu, 7.0)] {
        h.state_mut().state.gap_compute = choice;
        h.state_mut().state.a.scale = scale;
        wait(&mut h);
        let r = h.state().results(false).unwrap();
        let c = h.state().self_check().unwrap();
        let on_cpu = choice == GapCompute::Cpu || software;
        assert_eq!(r.gap_backend.starts_with("CPU"), on_cpu, "{choice:?} {c:?}");
        assert_eq!(c.gap_cpu_reason.is_some(), on_cpu, "{choice:?} {c:?}");
        if choice == GapCompute::Auto && software {
            assert!(c.gap_cpu_reason.unwrap().contains("software rasterizer"));
        }
    }
    assert!(
        h.state().compute_label().contains("gap"),
        "{}",
        h.state().compute_label()
    );
}

/// Without a GPU the gap is computed on the CPU and the self-check says why.
#[test]
fn without_a_gpu_the_gap_is_on_the_cpu_and_the_reason_is_named() {
    let h = harness(with_tab(Tab::Gap));
    let r = h.state().results(false).unwrap();
    assert!(r.gap_backend.starts_with("CPU"), "{}", r.gap_backend);
    assert!(r.gap_buckets.is_none());
    let c = h.state().self_check().unwrap();
    assert!(c.ok && c.gap_backend.starts_with("CPU"), "{c:?}");
    assert_eq!(c.gap_max_abs_err, 0.0);
    assert!(c.gap_cpu_reason.is_some(), "{c:?}");
}

/// The PosGen tab trains the paper's four schedules, each on its own worker thread, from a
/// click to finished test results.
#[test]
fn posgen_tab_trains_four_runs_to_completion() {
    let st = AppState {
        tab: Tab::PosGen,
        ..AppState::default()
    };
    let mut h = harness(st);
    h.state_mut().posgen.steps = 2;
    h.get_by_label("Train 4 runs").click();
    h.run_steps(1);
    assert!(h.state().posgen.running);
    assert!(h.state().posgen.runs().iter().all(|r| r.in_worker()));
    let start = std::time::Instant::now();
    while h.state().posgen.running && start.elapsed().as_secs() < 300 {
        h.run_steps(1);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let labels: Vec<&str> = h
        .state()
        .posgen
        .runs()
        .iter()
        .map(|r| r.label.as_str())
        .collect();
    assert_eq!(labels, ["RoPE", "Resonance RoPE", "YaRN", "Resonance YaRN"]);
    for r in h.state().posgen.runs() {
        let res = r.result().expect("finished");
        assert_eq!(res.steps, 2);
        assert!((0.0..=1.0).contains(&res.ood_accuracy));
    }
    h.get_by_label("Reset").click();
    h.run_steps(1);
    assert!(h.state().posgen.runs().is_empty());
}
