//! The side panel: method, the shared parameters and the selected method's own, each control
//! drawn from its parameter's description ([`crate::rope::Param`]) by kind: a slider with the
//! parameter's range, a checkbox, a choice, an optional value, a list editor. Validation errors
//! appear next to the control they name, in the controls' words (their labels).

use super::state::{AppState, ConfigPreset, SideId};
use crate::rope::config::{Kind, Value};
use crate::rope::methods::param;
use crate::rope::params::CORE;
use crate::rope::{ConfigError, Method, Param, ScheduleConfig};
use egui::{Color32, RichText, Slider, SliderClamping, Ui};

/// A field in the UI's words: its control's label (the key itself when it has none).
pub fn ui_name(key: &str) -> String {
    param(key).map_or_else(|| key.replace('_', " "), |p| p.label.to_string())
}

/// A validation error in the UI's words, e.g. `invalid eval length L': must be in ...`.
pub fn ui_error(e: &ConfigError) -> String {
    e.render(&|k| ui_name(k))
}

fn show_error(ui: &mut Ui, error: Option<&ConfigError>, key: &str) {
    if let Some(e) = error.filter(|e| e.field == key) {
        ui.label(RichText::new(ui_error(e)).color(Color32::from_rgb(200, 30, 30)))
            .on_hover_text("the plots keep showing the last valid configuration");
    }
}

fn hover(p: &Param) -> String {
    if p.unit.is_empty() {
        p.doc.to_string()
    } else {
        format!("{} [{}]", p.doc, p.unit)
    }
}

/// A number's slider (or a drag value when the parameter has no slider span).
fn number_control(ui: &mut Ui, p: &Param, c: &mut ScheduleConfig, integer: bool) {
    let Value::Number(mut x) = (p.get)(c) else {
        return;
    };
    let before = x;
    let response = match p.slider {
        Some(s) => {
            let mut slider = Slider::new(&mut x, s.min..=s.max)
                .logarithmic(s.log)
                .clamping(SliderClamping::Never)
                .text(p.label);
            if integer {
                slider = slider.integer();
            }
            if s.step > 0.0 {
                slider = slider.step_by(s.step);
            }
            ui.add(slider)
        }
        None => {
            ui.horizontal(|ui| {
                let r = ui.add(egui::DragValue::new(&mut x));
                ui.label(p.label);
                r
            })
            .inner
        }
    };
    response.on_hover_text(hover(p));
    if x != before {
        (p.set)(c, Value::Number(x));
    }
}

/// An optional number: a checkbox says whether it is given, a drag value edits it.
fn optional_control(ui: &mut Ui, p: &Param, c: &mut ScheduleConfig) {
    let Value::Optional(v) = (p.get)(c) else {
        return;
    };
    let mut on = v.is_some();
    let mut x = v.unwrap_or(1.0);
    ui.horizontal(|ui| {
        ui.checkbox(&mut on, p.label).on_hover_text(hover(p));
        if on {
            ui.add(egui::DragValue::new(&mut x).speed(0.01));
        } else {
            ui.weak("not set");
        }
    });
    let after = on.then_some(x);
    if after != v {
        (p.set)(c, Value::Optional(after));
    }
}

/// A list of numbers, one per pair, edited as comma-separated text; a text that does not parse
/// is shown with its error and leaves the list as it was.
fn list_control(ui: &mut Ui, p: &Param, c: &mut ScheduleConfig) {
    let id = ui.scope_id().with(("list", p.key));
    let current = p.format(c);
    let mut text: String = ui
        .data(|d| d.get_temp::<(String, String)>(id))
        .filter(|(shown, _)| *shown == current)
        .map_or_else(|| current.clone(), |(_, t)| t);
    ui.label(p.label).on_hover_text(hover(p));
    let response = ui.add(
        egui::TextEdit::singleline(&mut text)
            .hint_text("none: 1 for every pair")
            .desired_width(f32::INFINITY),
    );
    let mut shown = current;
    if response.changed() {
        match p.parse(&text) {
            Ok(v) => {
                (p.set)(c, v);
                shown = p.format(c);
            }
            Err(e) => {
                ui.label(RichText::new(ui_error(&e)).color(Color32::from_rgb(200, 30, 30)));
            }
        }
    }
    let Value::List(list) = (p.get)(c) else {
        return;
    };
    ui.weak(format!("{} numbers", list.len()));
    ui.data_mut(|d| d.insert_temp(id, (shown, text)));
}

/// One choice among names.
fn choice_control(ui: &mut Ui, p: &Param, c: &mut ScheduleConfig, names: &[&'static str]) {
    let Value::Choice(mut chosen) = (p.get)(c) else {
        return;
    };
    let before = chosen;
    egui::ComboBox::from_label(p.label)
        .selected_text(chosen)
        .show_ui(ui, |ui| {
            for n in names {
                ui.selectable_value(&mut chosen, n, *n);
            }
        })
        .response
        .on_hover_text(hover(p));
    if chosen != before {
        (p.set)(c, Value::Choice(chosen));
    }
}

/// The control of one parameter, by its kind, with its error below it.
pub fn param_control(ui: &mut Ui, p: &Param, c: &mut ScheduleConfig, error: Option<&ConfigError>) {
    match p.kind {
        Kind::Number { integer, .. } => number_control(ui, p, c, integer),
        Kind::Optional { .. } => optional_control(ui, p, c),
        Kind::Flag => {
            if let Value::Flag(mut on) = (p.get)(c)
                && ui
                    .checkbox(&mut on, p.label)
                    .on_hover_text(hover(p))
                    .changed()
            {
                (p.set)(c, Value::Flag(on));
            }
        }
        Kind::PairList { .. } => list_control(ui, p, c),
        Kind::Choice { names } => choice_control(ui, p, c, names),
    }
    show_error(ui, error, p.key);
}

/// The method picker: every method of the registry.
pub fn method_picker(ui: &mut Ui, c: &mut ScheduleConfig) {
    egui::ComboBox::from_label("method")
        .selected_text(c.method.name())
        .show_ui(ui, |ui| {
            for &m in Method::ALL {
                ui.selectable_value(&mut c.method, m, m.name())
                    .on_hover_text(format!("{}: {}", m.def().label, m.def().summary));
            }
        });
}

/// The shared parameters that lead the panel, in this order (Resonance, then the scale and the
/// lengths users move most); every other shared parameter follows in the registry's order, so
/// none can be left without a control.
const LEADING: [&str; 4] = ["resonance", "scale", "train_len", "eval_len"];

/// The shared parameters in the panel's order.
fn core_in_panel_order() -> Vec<&'static Param> {
    let lead = LEADING
        .iter()
        .filter_map(|k| CORE.iter().copied().find(|p| p.key == *k));
    let rest = CORE.iter().copied().filter(|p| !LEADING.contains(&p.key));
    lead.chain(rest).collect()
}

/// Draws the schedule controls for `c`; `error` is the current validation error of `c`.
pub fn schedule_controls(ui: &mut Ui, c: &mut ScheduleConfig, error: Option<&ConfigError>) {
    method_picker(ui, c);
    for (i, p) in core_in_panel_order().into_iter().enumerate() {
        param_control(ui, p, c, error);
        if i == 0 {
            // Resonance is a modifier of every method; the schedule's numbers follow
            ui.separator();
        }
    }
    method_controls(ui, c, error);
}

/// The selected method's own parameters and the facts it reports (e.g. which LongRoPE list is
/// in use).
fn method_controls(ui: &mut Ui, c: &mut ScheduleConfig, error: Option<&ConfigError>) {
    let def = c.method.def();
    if def.params.is_empty() {
        return;
    }
    ui.separator();
    ui.label(def.label);
    for p in def.params {
        param_control(ui, p, c, error);
    }
    if c.validate().is_ok() {
        for (k, v) in (def.details)(c) {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            ui.weak(format!("{}: {v}", k.replace('_', " ")));
        }
    }
}

/// The whole side panel: compare switch, side selector, presets, schedule controls, feature.
/// `errors` holds the validation errors of A and B; `num_features` is d/2 of the last good A.
pub fn side_panel(
    ui: &mut Ui,
    st: &mut AppState,
    errors: [Option<&ConfigError>; 2],
    num_features: usize,
) {
    ui.heading("Schedule");
    ui.checkbox(&mut st.compare, "compare two configurations")
        .on_hover_text("show A and B side by side");
    if st.compare {
        ui.horizontal(|ui| {
            ui.label("editing:");
            ui.selectable_value(&mut st.editing, SideId::A, "A");
            ui.selectable_value(&mut st.editing, SideId::B, "B");
        });
    }
    ui.label("reset to preset:");
    ui.horizontal_wrapped(|ui| {
        for p in ConfigPreset::ALL {
            if ui.button(p.label()).clicked() {
                let res = st.edited().resonance;
                *st.edited_mut() = p.config(res);
                if !st.compare || st.editing == SideId::A {
                    // A is no longer the loaded model
                    st.model.clear();
                    st.layer_type.clear();
                }
            }
        }
    });
    ui.separator();
    let err = match (st.compare, st.editing) {
        (true, SideId::B) => errors[1],
        _ => errors[0],
    };
    schedule_controls(ui, st.edited_mut(), err);
    ui.separator();
    let max = num_features.saturating_sub(1);
    ui.add(Slider::new(&mut st.feature, 0..=max).text("selected feature i"))
        .on_hover_text("feature shown by the phase wheel, feature value and gap curve");
}
