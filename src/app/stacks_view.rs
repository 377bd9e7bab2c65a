//! The Stacks tab: what transformers, vLLM, llama.cpp and mlx-lm compute for the loaded model
//! (or its Resonance twin) at a chosen context, from [`crate::rope::stacks::audit`]: each
//! stack's wavelength per feature relative to transformers (log scale of |ratio - 1|), the
//! attention factor and where each stack applies it, and the audit's differences with their
//! causes and what a user sees. The context slider moves every stack's own knob (sequence
//! length, `max_model_len`, `n_ctx`), so LongRoPE's and dynamic NTK's switches show as it
//! crosses them. The audit runs when the model, layer type, context or twin choice changes,
//! never per frame.

use super::commands::{AppCommand, CommandSender};
use super::model_panel::LoadedModel;
use super::state::AppState;
use super::tabs::{hover, pow10_label};
use crate::rope::stacks::{Audit, Stack, StackOptions, StackRope, audit};
use egui::{Color32, RichText, Ui};
use egui_plot::{Legend, Line, Plot, PlotPoints, Points};

/// Colours of vLLM, llama.cpp and mlx-lm in the ratio plot (transformers is the reference).
const STACK_COLORS: [Color32; 3] = [
    Color32::from_rgb(52, 120, 220),
    Color32::from_rgb(40, 160, 80),
    Color32::from_rgb(200, 50, 60),
];

/// |ratio - 1| at or below this is drawn on the floor of the log plot (the two agree exactly).
const RATIO_FLOOR: f64 = 1e-12;

/// What the audit was run for: the config text, layer type, context and twin choice.
type AuditKey = (usize, usize, Option<String>, u64, bool);

/// The Stacks tab's state: the last audit and what it was run for.
#[derive(Default)]
pub struct StacksView {
    last: Option<(AuditKey, Result<Audit, String>)>,
}

impl StacksView {
    /// The audit for the loaded model and the state's context and twin choice (run again only
    /// when one of them changed); `None` when no model with a config text is loaded.
    pub fn audit(
        &mut self,
        model: Option<&LoadedModel>,
        state: &AppState,
    ) -> Option<&Result<Audit, String>> {
        let m = model?;
        let text = m.text.as_deref()?;
        let key: AuditKey = (
            text.as_ptr() as usize,
            text.len(),
            m.rope.layer_type.clone(),
            state.stack_context,
            state.stack_twin,
        );
        if self.last.as_ref().is_none_or(|(k, _)| *k != key) {
            let opts = StackOptions {
                layer_type: m.rope.layer_type.clone(),
                context: (state.stack_context > 0).then_some(state.stack_context),
                resonance: state.stack_twin,
            };
            let result = audit(text, &opts).map_err(|e| e.to_string());
            self.last = Some((key, result));
        }
        self.last.as_ref().map(|(_, r)| r)
    }

    /// What the tab shows, for the page API and tests: the model, context, twin choice, each
    /// stack's support and attention factor, and the differences (stacks, field, effect).
    pub fn status(&self) -> Option<serde_json::Value> {
        let (key, result) = self.last.as_ref()?;
        Some(match result {
            Err(e) => serde_json::json!({ "error": e }),
            Ok(a) => serde_json::json!({
                "context": a.context,
                "twin": key.4,
                "stacks": a.stacks.iter().map(|s| serde_json::json!({
                    "stack": s.stack.name(),
                    "supported": s.supported,
                    "attention_factor": s.attention_factor,
                    "attention_factor_applied_to": s.attention_factor_applied_to.as_str(),
                    "factor_list": s.factor_list,
                })).collect::<Vec<_>>(),
                "differences": a.differences.iter().map(|d| serde_json::json!({
                    "stacks": [d.stacks[0].name(), d.stacks[1].name()],
                    "field": d.field,
                    "max_rel": d.max_rel,
                    "rounding_only": d.rounding_only,
                    "effect": d.effect,
                })).collect::<Vec<_>>(),
            }),
        })
    }

    /// Draws the tab.
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        model: Option<&LoadedModel>,
        edited: bool,
        state: &AppState,
        commands: &CommandSender,
    ) {
        let Some(m) = model.filter(|m| m.text.is_some()) else {
            ui.label(
                "Load a model (the Model section: a built-in model, or paste or drop a \
                 config.json) to see what transformers, vLLM, llama.cpp and mlx-lm compute for it.",
            );
            return;
        };
        let name = m.rope.name.clone();
        let max_pos = m.rope.max_position_embeddings;
        let original = m.rope.original_max_position_embeddings.unwrap_or(max_pos);
        let layer = m.rope.layer_type.clone();
        controls(ui, state, commands, (max_pos, original));
        let a = match self.audit(Some(m), state) {
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                ui.colored_label(Color32::RED, format!("{name}: {e}"));
                return;
            }
            None => return,
        };
        ui.label(format!(
            "{name}{} at context {}{}: every stack's RoPE as its own code computes it for this \
             config.json.",
            layer.map(|l| format!(" ({l})")).unwrap_or_default(),
            a.context,
            if state.stack_twin {
                ", Resonance twin"
            } else {
                ""
            }
        ));
        if edited {
            ui.colored_label(
                Color32::from_rgb(220, 160, 40),
                "A was edited since the model was loaded: the stacks read the config.json as \
                 loaded, not the edits (export the twin, or paste the edited file, to audit it).",
            );
        }
        egui::ScrollArea::both().show(ui, |ui| {
            stack_table(ui, a);
            ratio_plot(ui, a);
            differences(ui, a);
            notes(ui, a);
        });
    }
}

/// The context slider (log scale) with its landmarks, and the twin switch.
fn controls(
    ui: &mut Ui,
    state: &AppState,
    commands: &CommandSender,
    (max_pos, original): (u64, u64),
) {
    let set = |context: u64, twin: bool| {
        let _ = commands.send(AppCommand::SetStackView { context, twin });
    };
    ui.horizontal_wrapped(|ui| {
        let mut context = if state.stack_context == 0 {
            max_pos
        } else {
            state.stack_context
        };
        let top = (4 * max_pos).max(context).max(2);
        let r = ui
            .add(
                egui::Slider::new(&mut context, 1..=top)
                    .logarithmic(true)
                    .text("context (tokens)"),
            )
            .on_hover_text(
                "Each stack's own knob: the sequence length (transformers, mlx-lm), \
                 max_model_len (vLLM), n_ctx (llama.cpp)",
            );
        if r.changed() {
            set(context, state.stack_twin);
        }
        if original != max_pos
            && ui
                .small_button(format!("original length {original}"))
                .clicked()
        {
            set(original, state.stack_twin);
        }
        if ui
            .small_button(format!("max_position_embeddings {max_pos}"))
            .clicked()
        {
            set(0, state.stack_twin);
        }
        let mut twin = state.stack_twin;
        if ui
            .checkbox(&mut twin, "Resonance twin")
            .on_hover_text("audit the config carrying the model's Resonance twin")
            .changed()
        {
            set(state.stack_context, twin);
        }
    });
}

/// One row per stack (its version on hover): support, class, attention factor and where it goes.
fn stack_table(ui: &mut Ui, a: &Audit) {
    let heads = [
        "stack",
        "supported",
        "runs",
        "attention factor",
        "applied to",
        "cos/sin x",
        "softmax x",
        "factor list",
        "pairs",
        "rotary dim",
    ];
    egui::Grid::new("stacks-table")
        .striped(true)
        .num_columns(heads.len())
        .show(ui, |ui| {
            for h in heads {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for s in &a.stacks {
                ui.label(RichText::new(s.stack.name()).strong())
                    .on_hover_text(s.stack_version);
                if s.supported {
                    ui.colored_label(Color32::from_rgb(60, 170, 90), "yes");
                } else {
                    ui.colored_label(Color32::from_rgb(225, 85, 75), "no")
                        .on_hover_text(s.reason.clone().unwrap_or_default());
                }
                ui.label(match &s.runs_instead {
                    Some(r) => format!("{} (instead: {r})", s.rope_type),
                    None => s.rope_type.clone(),
                })
                .on_hover_text(&s.rope_class);
                ui.label(format!("{:.7}", s.attention_factor));
                ui.label(s.attention_factor_applied_to.as_str());
                ui.label(format!("{:.7}", s.cos_sin_scale));
                ui.label(
                    s.softmax_scale_factor
                        .map_or("-".into(), |f| format!("{f:.7}")),
                );
                ui.label(s.factor_list.unwrap_or("-"));
                ui.label(s.pair_layout);
                ui.label(s.rotary_dim.to_string());
                ui.end_row();
            }
        });
}

/// |wavelength_stack / wavelength_transformers - 1| per feature, log scale, one series per
/// stack other than transformers (exact agreement on the floor).
fn ratio_plot(ui: &mut Ui, a: &Audit) {
    let Some(tf) = a.stacks.iter().find(|s| s.stack == Stack::Transformers) else {
        return;
    };
    let reference = tf.wavelength();
    let others: Vec<&StackRope> = a
        .stacks
        .iter()
        .filter(|s| s.stack != Stack::Transformers)
        .collect();
    ui.label(RichText::new("Wavelength per feature relative to transformers").strong());
    Plot::new("stacks-ratio")
        .height(240.0)
        .legend(Legend::default())
        .x_axis_label("feature index i")
        .y_axis_label("|ratio - 1| (log; floor: equal)")
        .y_axis_formatter(|m, _| pow10_label(m.value))
        .label_formatter(|h| {
            let (name, q) = hover(h);
            Some(format!(
                "{name}feature {:.0}\n|ratio - 1| = {}",
                q.x,
                if q.y <= RATIO_FLOOR.log10() + 1e-9 {
                    "0 (equal)".to_string()
                } else {
                    format!("{:.3e}", 10f64.powf(q.y))
                }
            ))
        })
        .show(ui, |p| {
            for (s, color) in others.iter().zip(STACK_COLORS) {
                let pts: Vec<[f64; 2]> = s
                    .wavelength()
                    .iter()
                    .zip(&reference)
                    .enumerate()
                    .map(|(i, (w, r))| {
                        let d = if w == r { 0.0 } else { (w / r - 1.0).abs() };
                        [i as f64, d.max(RATIO_FLOOR).log10()]
                    })
                    .collect();
                let name = s.stack.name();
                p.add(Line::new(name, PlotPoints::new(pts.clone())).color(color));
                p.add(
                    Points::new(name, PlotPoints::new(pts))
                        .color(color)
                        .radius(2.5),
                );
            }
        });
}

/// The audit's differences: which stacks, which field, how large, the cause and what a user
/// sees; differences of float rounding only are listed last, greyed.
fn differences(ui: &mut Ui, a: &Audit) {
    ui.label(
        RichText::new(format!(
            "Differences from transformers ({})",
            a.differences.len()
        ))
        .strong(),
    );
    if a.differences.is_empty() {
        ui.label("None: every stack computes what transformers computes for this config.");
        return;
    }
    let mut rows: Vec<_> = a.differences.iter().collect();
    rows.sort_by_key(|d| d.rounding_only);
    for d in rows {
        let head = format!(
            "{} vs {}: {} (largest abs {:.3e}, rel {:.3e}){}{}",
            d.stacks[1].name(),
            d.stacks[0].name(),
            d.field,
            d.max_abs,
            d.max_rel,
            if d.features.is_empty() {
                String::new()
            } else {
                format!(", features {}", ranges(&d.features))
            },
            if d.positions.is_empty() {
                String::new()
            } else {
                format!(", positions {:?}", d.positions)
            },
        );
        let color = if d.rounding_only {
            Color32::GRAY
        } else {
            ui.visuals().strong_text_color()
        };
        ui.label(RichText::new(head).color(color));
        ui.label(RichText::new(format!("  cause: {}", d.cause)).color(color));
        ui.label(RichText::new(format!("  a user sees: {}", d.effect)).color(color));
    }
}

/// Each stack's notes (what it does with this config, with its source references).
fn notes(ui: &mut Ui, a: &Audit) {
    for s in &a.stacks {
        egui::CollapsingHeader::new(format!("{} notes", s.stack.name()))
            .id_salt(("stack-notes", s.stack.name()))
            .show(ui, |ui| {
                if let Some(r) = &s.reason {
                    ui.label(format!("not supported: {r}"));
                }
                for n in &s.notes {
                    ui.label(n);
                }
            });
    }
}

/// `0-3, 7, 9-12`: a sorted index list in runs.
fn ranges(v: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::ranges;

    #[test]
    fn index_lists_print_as_runs() {
        assert_eq!(ranges(&[0, 1, 2, 3, 7, 9, 10]), "0-3, 7, 9-10");
        assert_eq!(ranges(&[]), "");
        assert_eq!(ranges(&[5]), "5");
    }
}
