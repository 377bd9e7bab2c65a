//! The side panel: method, Resonance, lengths, dimensions and method parameters, presets, and
//! the compare-mode switch. Validation errors appear next to the control they name.

use super::state::{AppState, ConfigPreset, SideId};
use crate::rope::{ConfigError, Method, PairLayout, ScheduleConfig};
use egui::{Color32, RichText, Slider, SliderClamping, Ui};

fn show_error(ui: &mut Ui, error: Option<&ConfigError>, field: &str) {
    if let Some(e) = error.filter(|e| e.field == field) {
        ui.label(RichText::new(e.to_string()).color(Color32::from_rgb(200, 30, 30)))
            .on_hover_text("the plots keep showing the last valid configuration");
    }
}

fn slider_f64(
    ui: &mut Ui,
    v: &mut f64,
    range: std::ops::RangeInclusive<f64>,
    log: bool,
    label: &str,
    hover: &str,
) {
    ui.add(
        Slider::new(v, range)
            .logarithmic(log)
            .clamping(SliderClamping::Never)
            .text(label),
    )
    .on_hover_text(hover);
}

fn slider_u64(
    ui: &mut Ui,
    v: &mut u64,
    range: std::ops::RangeInclusive<u64>,
    label: &str,
    hover: &str,
) {
    ui.add(
        Slider::new(v, range)
            .logarithmic(true)
            .integer()
            .clamping(SliderClamping::Never)
            .text(label),
    )
    .on_hover_text(hover);
}

/// Draws the schedule controls for `c`; `error` is the current validation error of `c`.
pub fn schedule_controls(ui: &mut Ui, c: &mut ScheduleConfig, error: Option<&ConfigError>) {
    egui::ComboBox::from_label("method")
        .selected_text(c.method.name())
        .show_ui(ui, |ui| {
            for m in Method::ALL {
                ui.selectable_value(&mut c.method, m, m.name());
            }
        });
    ui.checkbox(&mut c.resonance, "Resonance rounding")
        .on_hover_text("round every wavelength to an integer after the schedule");
    ui.separator();
    slider_f64(
        ui,
        &mut c.scale,
        1.0..=1024.0,
        true,
        "scale factor s",
        "s = L'/L usually",
    );
    show_error(ui, error, "scale");
    slider_u64(
        ui,
        &mut c.train_len,
        1..=1 << 20,
        "train length L",
        "pre-training context length (tokens)",
    );
    show_error(ui, error, "train-len");
    slider_u64(
        ui,
        &mut c.eval_len,
        1..=1 << 22,
        "eval length L'",
        "evaluation context length (tokens)",
    );
    show_error(ui, error, "eval-len");
    ui.add(
        Slider::new(&mut c.dim, 2..=512)
            .step_by(2.0)
            .clamping(SliderClamping::Never)
            .text("head dim d"),
    )
    .on_hover_text("rotary head dimension (even)");
    show_error(ui, error, "dim");
    slider_f64(ui, &mut c.base, 2.0..=1e8, true, "base b", "RoPE base");
    show_error(ui, error, "base");
    slider_f64(
        ui,
        &mut c.partial_rotary_factor,
        0.01..=1.0,
        false,
        "partial rotary factor",
        "fraction of the head that rotates: rotary dim = int(d * factor) \
         (proportional: the other pairs keep frequency 0)",
    );
    show_error(ui, error, "partial-rotary-factor");
    egui::ComboBox::from_label("pair layout")
        .selected_text(match c.layout {
            PairLayout::HalfSplit => "half-split",
            PairLayout::Interleaved => "interleaved",
        })
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut c.layout, PairLayout::HalfSplit, "half-split");
            ui.selectable_value(&mut c.layout, PairLayout::Interleaved, "interleaved");
        })
        .response
        .on_hover_text(
            "which two coordinates of a head vector each feature rotates; \
             the Pair layout tab shows both",
        );
    method_controls(ui, c, error);
}

/// The parameters of the selected method (YaRN's betas, Llama-3's factors, dynamic NTK's
/// current length).
fn method_controls(ui: &mut Ui, c: &mut ScheduleConfig, error: Option<&ConfigError>) {
    match c.method {
        Method::Yarn => {
            ui.separator();
            ui.label("YaRN");
            slider_f64(
                ui,
                &mut c.beta_fast,
                0.1..=256.0,
                true,
                "beta_fast",
                "rotations where extrapolation ends",
            );
            show_error(ui, error, "beta-fast");
            slider_f64(
                ui,
                &mut c.beta_slow,
                0.01..=64.0,
                true,
                "beta_slow",
                "rotations where interpolation starts",
            );
            show_error(ui, error, "beta-slow");
            ui.checkbox(&mut c.truncate, "truncate (floor/ceil the range)");
        }
        Method::Llama3 => {
            ui.separator();
            ui.label("Llama-3");
            slider_f64(
                ui,
                &mut c.low_freq_factor,
                0.1..=64.0,
                true,
                "low_freq_factor",
                "lambda_low = L / low",
            );
            show_error(ui, error, "low-freq-factor");
            slider_f64(
                ui,
                &mut c.high_freq_factor,
                0.1..=64.0,
                true,
                "high_freq_factor",
                "lambda_high = L / high",
            );
            show_error(ui, error, "high-freq-factor");
        }
        Method::DynamicNtk | Method::Longrope => {
            ui.separator();
            let hover = if c.method == Method::Longrope {
                "LongRoPE uses the long factors when l exceeds the original length L"
            } else {
                "dynamic NTK sequence length"
            };
            slider_u64(ui, &mut c.seq_len, 1..=1 << 22, "current length l", hover);
            show_error(ui, error, "seq-len");
            if c.method == Method::Longrope {
                let which = if c.seq_len > c.train_len {
                    "long"
                } else {
                    "short"
                };
                ui.label(format!(
                    "{which} factors in use ({} short, {} long given; none = 1)",
                    c.short_factor.len(),
                    c.long_factor.len()
                ));
            }
        }
        _ => {}
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
