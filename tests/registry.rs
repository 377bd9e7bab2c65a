//! The method registry is the one list of methods: every registered method must appear
//! everywhere a method appears — the CLI's `--method` values (and each alias), the app's
//! method picker, a permalink round trip, the PosGen method picker, the methods table of
//! docs/schedules.md, and, where transformers computes it, transformers' reference fixtures.
// Test helpers unwrap freely: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]
#![cfg(not(target_arch = "wasm32"))] // native-only: runs the binary / uses native dev-deps

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use resonance_lab::app::ResonanceApp;
use resonance_lab::app::state::{AppState, Tab};
use resonance_lab::posgen::{PresetName, RunConfig, Task, Trainer};
use resonance_lab::rope::{Method, Schedule, ScheduleConfig, methods};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_resonance-lab"))
}

fn harness(state: AppState) -> Harness<'static, ResonanceApp> {
    let mut app = ResonanceApp::new(state, "test renderer");
    app.show_timings = false;
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(|ui, app: &mut ResonanceApp| app.draw(ui), app);
    settle(&mut h);
    h
}

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
fn every_method_and_alias_is_a_cli_method_value() {
    for &m in Method::ALL {
        for name in std::iter::once(m.name()).chain(m.def().aliases.iter().copied()) {
            let o = bin()
                .args(["freqs", "--method", name, "--dim", "16", "--scale", "2"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "--method {name}: {err}");
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["method"], m.name(), "--method {name}");
            assert_eq!(v["inv_freq"].as_array().unwrap().len(), 8);
        }
    }
    // and the CLI accepts nothing else
    let o = bin()
        .args(["freqs", "--method", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn every_method_is_in_the_app_picker_and_plots() {
    let mut h = harness(AppState::default());
    for &m in Method::ALL {
        h.get_by_label("method").click();
        h.run();
        // the popup scrolls once the list is longer than it: bring the entry into view first
        h.get_by_label(m.name()).scroll_to_me();
        h.run();
        h.get_by_label(m.name()).click();
        settle(&mut h);
        assert_eq!(h.state().state.a.method, m, "picked {}", m.name());
        let r = h.state().results(false).unwrap();
        assert_eq!(r.schedule.config.method, m, "{} has results", m.name());
    }
}

#[test]
fn every_method_survives_a_permalink() {
    for &m in Method::ALL {
        let mut s = AppState::default();
        s.a.method = m;
        s.b.method = m;
        s.b.resonance = !s.a.resonance;
        let hash = s.to_hash();
        if m != AppState::default().a.method {
            assert!(hash.contains(&format!("method={}", m.name())), "{hash}");
        }
        let back = AppState::from_hash(&hash);
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        assert_eq!(back.state, s, "{hash}");
    }
}

#[test]
fn every_method_is_in_the_posgen_picker_and_trains() {
    let s = AppState {
        tab: Tab::PosGen,
        ..AppState::default()
    };
    let mut h = harness(s);
    for &m in Method::ALL {
        let label = m.def().label;
        let checkbox = |h: &Harness<'static, ResonanceApp>| {
            h.get_by_role_and_label(egui::accesskit::Role::CheckBox, label)
                .accesskit_node()
                .toggled()
        };
        let before = checkbox(&h);
        h.get_by_role_and_label(egui::accesskit::Role::CheckBox, label)
            .click();
        h.run();
        let after = checkbox(&h);
        assert_ne!(before, after, "the {label} checkbox toggles");
        // a PosGen run of the method builds: data, model and both schedules
        let mut rc = RunConfig::new(PresetName::Tiny, Task::Recursive, m, false, 0);
        rc.steps = 1;
        rc.preset.sizes.train = 64;
        Trainer::new(rc).unwrap();
    }
}

/// The text between the docs page's table markers.
fn docs_table() -> String {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schedules.md")).unwrap();
    let start =
        "<!-- methods table: generated from the registry by rope::methods::docs_table -->\n";
    let a = page.find(start).unwrap() + start.len();
    let b = page.find("<!-- end of methods table -->").unwrap();
    page[a..b].to_string()
}

#[test]
fn the_docs_table_is_the_registry_and_every_method_has_its_section() {
    let want = methods::docs_table();
    assert_eq!(
        docs_table(),
        want,
        "docs/schedules.md's methods table must be exactly:\n{want}"
    );
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schedules.md")).unwrap();
    for &m in Method::ALL {
        let (file, anchor) = m.def().docs_anchor.split_once('#').unwrap();
        assert_eq!(file, "schedules.md", "{}", m.name());
        assert!(
            page.lines().any(|l| l == format!("## {anchor}")),
            "docs/schedules.md has no section `## {anchor}` for {}",
            m.name()
        );
    }
}

#[test]
fn every_transformers_type_has_transformers_fixtures() {
    let data: serde_json::Value =
        serde_json::from_str(include_str!("data/hf_reference.json")).unwrap();
    let fixture_types: std::collections::BTreeSet<&str> = data["transformers_configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rope_type"].as_str().unwrap())
        .collect();
    for &m in Method::ALL {
        if let Some(t) = m.def().transformers_type {
            assert!(
                fixture_types.contains(t),
                "{} (transformers type {t}) has no transformers fixture",
                m.name()
            );
        }
    }
}

#[test]
fn every_parameter_is_a_cli_option_with_its_field_named_on_bad_input() {
    use resonance_lab::rope::config::Kind;
    for p in methods::all_params() {
        let flag = resonance_lab::cli::schedule_args::flag(p.key);
        let bad = match p.kind {
            Kind::Number { .. } | Kind::Optional { .. } => "-1e30",
            Kind::PairList { .. } => "1,x",
            Kind::Choice { .. } => "nosuch",
            Kind::Flag => continue,
        };
        if p.key == "mscale" || p.key == "mscale_all_dim" {
            // any finite number is valid
            continue;
        }
        let o = bin().args(["freqs", &flag, bad]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {bad}: {err}");
        assert!(err.contains(&flag), "{flag} {bad}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{flag}: {err}");
    }
    // every method's own schedule is valid at the defaults
    for &m in Method::ALL {
        Schedule::new(&ScheduleConfig {
            method: m,
            ..ScheduleConfig::default()
        })
        .unwrap();
    }
}
