//! The "Model config" section of the side panel: load a Hugging Face `config.json` (pasted,
//! dropped on the window or page, or one of the built-in public models), pick its layer type,
//! and export its Resonance twin. The loaded model becomes configuration A and compare mode
//! shows its Resonance twin as B (see `docs/resonance.md`).
//!
//! Every load, from a button, a dropped file or the page's `resonanceLab.loadConfig`, is an
//! [`AppCommand::LoadModel`] that the app applies at the start of a frame; a config that fails
//! to import leaves the view as it was and shows its error here.

use super::commands::{AppCommand, CommandSender};
use super::model_load::ModelLoad;
use super::models::{self, BuiltinModel};
use super::state::{AppState, twin};
use crate::rope::ScheduleConfig;
use crate::rope::hf_config::{self, ModelRope};
use egui::{Color32, RichText, Ui};
use std::sync::Arc;

/// A model as the app knows it: what was imported, and the text it came from when the app has
/// it (a permalink carries the configurations, not the text; built-in models are re-read).
#[derive(Clone, Debug)]
pub struct LoadedModel {
    /// The model as imported (its configuration is A as loaded).
    pub rope: ModelRope,
    /// The config text, to read another layer type.
    pub text: Option<Arc<str>>,
    /// The built-in entry it is, if any.
    pub builtin: Option<&'static BuiltinModel>,
}

/// State of the model section.
#[derive(Default)]
pub struct ModelPanel {
    /// The paste box.
    pub text: String,
    /// Why the last load failed (cleared by the next good one).
    pub error: Option<String>,
    /// The model A was loaded from, in sync with [`AppState::model`].
    pub loaded: Option<LoadedModel>,
}

impl ModelPanel {
    /// Applies a load: on success A becomes the model and B its twin, and the returned message
    /// says so; on failure the state is untouched and the error is kept for the panel.
    pub fn load(&mut self, state: &mut AppState, load: &ModelLoad) -> Result<String, String> {
        match load.import() {
            Ok(rope) => {
                state.load_model(&rope);
                let msg = format!(
                    "loaded {} ({}){}: A = the model, B = its Resonance twin",
                    rope.name,
                    load.origin,
                    rope.layer_type
                        .as_deref()
                        .map(|l| format!(", layer type {l}"))
                        .unwrap_or_default()
                );
                let builtin = models::find(&rope.name);
                self.loaded = Some(LoadedModel {
                    rope,
                    text: Some(load.text.as_str().into()),
                    builtin,
                });
                self.error = None;
                Ok(msg)
            }
            Err(e) => {
                let msg = format!(
                    "{} could not be loaded: {}",
                    load.origin,
                    e.render(&|k| super::controls::ui_name(k))
                );
                self.error = Some(msg.clone());
                Err(msg)
            }
        }
    }

    /// Keeps [`Self::loaded`] in step with `state.model`: forgets it when A no longer names a
    /// model (a preset replaced it), and rebuilds it after a permalink or `setState` named one
    /// (from the built-in list when the name is there, else from configuration A itself).
    pub fn sync(&mut self, state: &AppState) {
        if state.model.is_empty() {
            self.loaded = None;
            return;
        }
        let layer = (!state.layer_type.is_empty()).then(|| state.layer_type.clone());
        if self
            .loaded
            .as_ref()
            .is_some_and(|l| l.rope.name == state.model && l.rope.layer_type == layer)
        {
            return;
        }
        let builtin = models::find(&state.model);
        let from_builtin = builtin.and_then(|b| {
            let load = b.load(layer.clone());
            load.import().ok().map(|rope| LoadedModel {
                rope,
                text: Some(b.config.into()),
                builtin: Some(b),
            })
        });
        self.loaded = Some(from_builtin.unwrap_or_else(|| LoadedModel {
            rope: rope_from_state(state),
            text: None,
            builtin,
        }));
    }

    /// The model with configuration A as it is now (the user may have edited it since it was
    /// loaded), as the export and the status bar describe it.
    pub fn current(&self, state: &AppState) -> Option<ModelRope> {
        let l = self.loaded.as_ref()?;
        Some(ModelRope {
            config: ScheduleConfig {
                resonance: false,
                ..state.a.clone()
            },
            ..l.rope.clone()
        })
    }

    /// Whether A differs from the model as loaded (the user edited it).
    pub fn edited(&self, state: &AppState) -> bool {
        self.loaded.as_ref().is_some_and(|l| {
            l.text.is_some()
                && ScheduleConfig {
                    resonance: false,
                    ..state.a.clone()
                } != l.rope.config
        })
    }

    /// The export document of the current model's Resonance twin, and a file name for it.
    pub fn export(&self, state: &AppState) -> Result<(String, Vec<u8>), String> {
        let m = self
            .current(state)
            .ok_or("load a model config first (A is not a model)")?;
        let json = hf_config::resonance_twin_file(&m).map_err(|e| super::controls::ui_error(&e))?;
        Ok((
            format!("{}-resonance.json", file_stem(&m.name)),
            json.into_bytes(),
        ))
    }
}

/// A file-name-safe form of a model name (`meta-llama/Llama-3.1-8B` -> `Llama-3.1-8B`).
fn file_stem(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    let s: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() { "model".into() } else { s }
}

/// What can be said about a model from configuration A alone (after a permalink of a pasted
/// config, whose text the link does not carry).
fn rope_from_state(state: &AppState) -> ModelRope {
    let a = &state.a;
    ModelRope {
        name: state.model.clone(),
        rope_type: a
            .method
            .def()
            .transformers_type
            .unwrap_or(a.method.name())
            .to_string(),
        head_dim: a.dim,
        layer_type: (!state.layer_type.is_empty()).then(|| state.layer_type.clone()),
        layer_types: Vec::new(),
        max_position_embeddings: a.eval_len,
        original_max_position_embeddings: Some(a.train_len),
        config: ScheduleConfig {
            resonance: false,
            ..a.clone()
        },
    }
}

/// What the panel asks the app to do besides loading (which goes through the queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PanelAction {
    /// Nothing.
    None,
    /// Save the Resonance twin's export.
    Export,
}

/// Draws the model section. Loads are queued on `commands`; the export is returned for the
/// app to save.
pub fn ui(
    ui: &mut Ui,
    panel: &mut ModelPanel,
    state: &AppState,
    commands: &CommandSender,
) -> PanelAction {
    let mut action = PanelAction::None;
    ui.heading("Model");
    builtin_picker(ui, state, commands);
    egui::CollapsingHeader::new("paste or drop a config.json")
        .id_salt("model-paste")
        .default_open(false)
        .show(ui, |ui| {
            ui.add(
                egui::TextEdit::multiline(&mut panel.text)
                    .id_salt("model-config-text")
                    .code_editor()
                    .desired_rows(4)
                    .desired_width(f32::INFINITY)
                    .hint_text("{ \"rope_theta\": 500000, ... }"),
            );
            let load = ui
                .add_enabled(
                    !panel.text.trim().is_empty(),
                    egui::Button::new("Load pasted config"),
                )
                .on_hover_text("A becomes the model, B its Resonance twin");
            if load.clicked() {
                commands.send(AppCommand::LoadModel(Box::new(ModelLoad {
                    text: panel.text.clone(),
                    fallback_name: "pasted config".into(),
                    layer_type: None,
                    origin: "pasted".into(),
                })));
            }
            ui.weak("or drop a config.json file anywhere on the window");
        });
    if let Some(e) = &panel.error {
        ui.label(RichText::new(e).color(Color32::from_rgb(200, 30, 30)))
            .on_hover_text("the plots keep showing the last good configuration");
    }
    if let Some(l) = &panel.loaded {
        loaded_summary(ui, l, state, commands);
        if ui
            .button("Export Resonance twin (JSON)")
            .on_hover_text("rounded inv_freq (f32), attention factor and wavelengths of A's twin")
            .clicked()
        {
            action = PanelAction::Export;
        }
    }
    action
}

/// The built-in model list; choosing one loads it.
fn builtin_picker(ui: &mut Ui, state: &AppState, commands: &CommandSender) {
    let current = models::find(&state.model);
    egui::ComboBox::from_label("built-in model")
        .selected_text(current.map_or("choose...", |m| m.label.as_str()))
        .height(f32::INFINITY)
        .show_ui(ui, |ui| {
            for m in models::all() {
                let chosen = current.is_some_and(|c| std::ptr::eq(c, m));
                if ui
                    .selectable_label(chosen, &m.label)
                    .on_hover_text(format!("{}\n{}\nvalues: {}", m.model_id, m.note, m.source))
                    .clicked()
                {
                    commands.send(AppCommand::LoadModel(Box::new(m.load(None))));
                }
            }
        });
    if let Some(m) = current {
        ui.hyperlink_to(format!("{} config.json", m.model_id), &m.hub_url)
            .on_hover_text(format!("values confirmed from {}", m.source));
    }
}

/// Name, type, sizes and lengths of the loaded model, and its layer-type picker.
fn loaded_summary(ui: &mut Ui, l: &LoadedModel, state: &AppState, commands: &CommandSender) {
    let r = &l.rope;
    let c = &state.a;
    ui.label(RichText::new(&r.name).strong());
    ui.label(format!(
        "rope_type {} · head_dim {} · rotary dim {} · L {} -> L' {}",
        r.rope_type,
        r.head_dim,
        c.rotary_dim(),
        c.train_len,
        c.eval_len
    ));
    if !r.layer_types.is_empty()
        && let Some(text) = &l.text
    {
        let now = r.layer_type.clone().unwrap_or_default();
        egui::ComboBox::from_label("layer type")
            .selected_text(&now)
            .show_ui(ui, |ui| {
                for t in &r.layer_types {
                    if ui.selectable_label(*t == now, t).clicked() && *t != now {
                        commands.send(AppCommand::LoadModel(Box::new(ModelLoad {
                            text: text.to_string(),
                            fallback_name: r.name.clone(),
                            layer_type: Some(t.clone()),
                            origin: format!("layer type {t}"),
                        })));
                    }
                }
            });
    }
}

/// The status bar's words for the model, e.g. `model meta-llama/Llama-3.1-8B · layer type
/// full_attention · B = its Resonance twin`.
pub fn status(panel: &ModelPanel, state: &AppState) -> Option<String> {
    if state.model.is_empty() {
        return None;
    }
    let mut s = format!("model {}", state.model);
    if !state.layer_type.is_empty() {
        s += &format!(" · layer type {}", state.layer_type);
    }
    if panel.edited(state) {
        s += " (A edited)";
    }
    if state.compare && state.b == twin(&state.a) {
        s += " · B = its Resonance twin";
    }
    Some(s)
}

impl BuiltinModel {
    /// The load of this built-in model's config.
    pub fn load(&'static self, layer_type: Option<String>) -> ModelLoad {
        ModelLoad {
            text: self.config.to_string(),
            fallback_name: self.model_id.clone(),
            layer_type,
            origin: "built-in".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LLAMA: &str = include_str!("../../tests/data/configs/llama-3.1-8b.json");

    fn load(text: &str) -> ModelLoad {
        ModelLoad {
            text: text.into(),
            fallback_name: "x.json".into(),
            layer_type: None,
            origin: "pasted".into(),
        }
    }

    #[test]
    fn a_model_becomes_a_and_its_twin_b() {
        let mut p = ModelPanel::default();
        let mut st = AppState::default();
        let msg = p.load(&mut st, &load(LLAMA)).unwrap();
        assert!(msg.contains("meta-llama/Llama-3.1-8B"), "{msg}");
        assert_eq!(
            (st.a.base, st.a.dim, st.a.train_len, st.a.eval_len),
            (500000.0, 128, 8192, 131072)
        );
        assert!(!st.a.resonance && st.b.resonance);
        assert_eq!(st.b, twin(&st.a));
        assert!(st.compare);
        assert_eq!(st.model, "meta-llama/Llama-3.1-8B");
        let s = status(&p, &st).unwrap();
        assert!(
            s.contains("B = its Resonance twin") && !s.contains("edited"),
            "{s}"
        );
        st.a.scale = 4.0;
        assert!(status(&p, &st).unwrap().contains("(A edited)"));
    }

    #[test]
    fn a_bad_config_keeps_the_view_and_names_the_field() {
        let mut p = ModelPanel::default();
        let mut st = AppState::default();
        p.load(&mut st, &load(LLAMA)).unwrap();
        let good = st.clone();
        let bad = LLAMA.replace("\"rope_theta\": 500000.0", "\"rope_theta\": -1");
        let e = p.load(&mut st, &load(&bad)).unwrap_err();
        assert!(e.contains("rope_theta"), "{e}");
        assert_eq!(st, good);
        assert_eq!(p.error.as_deref(), Some(e.as_str()));
        assert!(p.load(&mut st, &load("")).unwrap_err().contains("empty"));
        assert!(
            matches!(AppCommand::from_dropped_file("x.bin", Ok(vec![0xff, 0xfe])), AppCommand::ModelLoadFailed(m) if m.contains("x.bin"))
        );
    }

    #[test]
    fn the_export_equals_the_clis_twin_and_a_preset_forgets_the_model() {
        let mut p = ModelPanel::default();
        let mut st = AppState::default();
        p.load(&mut st, &load(LLAMA)).unwrap();
        let (name, bytes) = p.export(&st).unwrap();
        assert_eq!(name, "Llama-3.1-8B-resonance.json");
        // byte for byte what `config --export-resonance` writes
        let m = load(LLAMA).import().unwrap();
        let cli = hf_config::resonance_twin_file(&m).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), cli);
        st.model.clear();
        p.sync(&st);
        assert!(p.loaded.is_none() && p.export(&st).is_err());
    }

    #[test]
    fn a_permalink_of_a_pasted_model_rebuilds_it_from_a() {
        let mut p = ModelPanel::default();
        let mut st = AppState::default();
        p.load(&mut st, &load(LLAMA)).unwrap();
        let back = AppState::from_hash(&st.to_hash());
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        assert_eq!(back.state, st);
        let mut q = ModelPanel::default();
        q.sync(&back.state);
        let (_, a) = p.export(&st).unwrap();
        let (_, b) = q.export(&back.state).unwrap();
        assert_eq!(a, b, "same export after the permalink");
    }

    #[test]
    fn a_link_to_a_builtin_model_is_labelled_honestly() {
        let mut p = ModelPanel::default();
        let st = AppState::from_hash("#model=Llama-3.1-8B").state;
        p.sync(&st);
        let s = status(&p, &st).unwrap();
        assert!(
            s.starts_with("model meta-llama/Llama-3.1-8B") && s.contains("Resonance twin"),
            "{s}"
        );
        assert!(!s.contains("edited"), "{s}");
        let edited = AppState::from_hash("#model=Llama-3.1-8B&scale=4").state;
        p.sync(&edited);
        assert!(status(&p, &edited).unwrap().contains("(A edited)"));
        let unknown = AppState::from_hash("#model=Nope").state;
        p.sync(&unknown);
        assert_eq!(status(&p, &unknown), None);
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("meta-llama/Llama-3.1-8B"), "Llama-3.1-8B");
        assert_eq!(file_stem("a b:c"), "a-b-c");
        assert_eq!(file_stem(""), "model");
    }
}
