//! The serializable state of the visualizer: one struct that is the URL hash on the web and the
//! eframe storage entry natively, so a permalink reproduces the view exactly. The hash is
//! readable (`#method=yarn&scale=8&b.dim=128`, only what differs from the defaults); the JSON
//! hashes of earlier versions still load.

use super::models;
use crate::rope::hf_config::{self, ImportOptions, ModelRope};
use crate::rope::{Method, ScheduleConfig};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

/// Which plot the central area shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tab {
    /// Wavelength per feature on a log axis.
    #[default]
    Wavelengths,
    /// Training vs OOD angles of the selected feature on the unit circle.
    PhaseWheel,
    /// Feature value over positions for the selected feature.
    FeatureCurve,
    /// Interpolation gap per feature and over OOD positions.
    Gap,
    /// cos(angle) over positions x features.
    Heatmap,
    /// Which head dimensions each feature rotates (half-split vs interleaved), and one vector
    /// rotated at a chosen position in both layouts.
    Pairs,
    /// The PosGen benchmark panel.
    PosGen,
    /// What transformers, vLLM, llama.cpp and mlx-lm compute for the loaded model.
    Stacks,
    /// The committed real-text studies: perplexity against length per arm.
    LanguageModel,
}

impl Tab {
    /// Every tab in display order.
    pub const ALL: [Tab; 9] = [
        Tab::Wavelengths,
        Tab::PhaseWheel,
        Tab::FeatureCurve,
        Tab::Gap,
        Tab::Heatmap,
        Tab::Pairs,
        Tab::Stacks,
        Tab::PosGen,
        Tab::LanguageModel,
    ];

    /// The tab's button label.
    pub fn label(self) -> &'static str {
        match self {
            Tab::Wavelengths => "Wavelengths",
            Tab::PhaseWheel => "Phase wheel",
            Tab::FeatureCurve => "Feature value",
            Tab::Gap => "Interpolation gap",
            Tab::Heatmap => "Heatmap",
            Tab::Pairs => "Pair layout",
            Tab::PosGen => "PosGen",
            Tab::Stacks => "Stacks",
            Tab::LanguageModel => "Language model",
        }
    }
}

/// Where the interpolation gap is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GapCompute {
    /// On the GPU when the renderer has compute shaders and is a hardware GPU; on the CPU
    /// otherwise (a software rasterizer runs the kernels slower than the CPU path).
    #[default]
    Auto,
    /// On the GPU whenever the renderer has compute shaders, software rasterizers included.
    Gpu,
    /// Always on the exact CPU path.
    Cpu,
}

impl GapCompute {
    /// Every choice in display order.
    pub const ALL: [GapCompute; 3] = [GapCompute::Auto, GapCompute::Gpu, GapCompute::Cpu];

    /// The control's label.
    pub fn label(self) -> &'static str {
        match self {
            GapCompute::Auto => "auto",
            GapCompute::Gpu => "GPU",
            GapCompute::Cpu => "CPU",
        }
    }
}

/// Which of the two configurations the controls edit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SideId {
    /// The primary configuration (the only one outside compare mode).
    #[default]
    A,
    /// The second configuration of compare mode.
    B,
}

/// Reset-to-preset configurations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigPreset {
    /// The paper's PosGen setting: d=64, b=1e4, L=64, L'=256, YaRN s=4.
    PosGen,
    /// Llama-2 7B extended from 4K to 32K with YaRN (d=128, b=1e4, s=8).
    Llama2,
    /// Llama-3.1 8K to 128K (base 500000, d=128, factor 8, low 1, high 4).
    Llama31,
}

impl ConfigPreset {
    /// Every preset in display order.
    pub const ALL: [ConfigPreset; 3] = [
        ConfigPreset::PosGen,
        ConfigPreset::Llama2,
        ConfigPreset::Llama31,
    ];

    /// The button label.
    pub fn label(self) -> &'static str {
        match self {
            ConfigPreset::PosGen => "PosGen d=64 L=64",
            ConfigPreset::Llama2 => "Llama-2 7B 4K->32K",
            ConfigPreset::Llama31 => "Llama-3.1 8K->128K",
        }
    }

    /// The preset's configuration; `resonance` is kept from the caller.
    pub fn config(self, resonance: bool) -> ScheduleConfig {
        let base = ScheduleConfig {
            resonance,
            ..ScheduleConfig::default()
        };
        match self {
            ConfigPreset::PosGen => ScheduleConfig {
                method: Method::YARN,
                dim: 64,
                base: 10000.0,
                train_len: 64,
                eval_len: 256,
                scale: 4.0,
                seq_len: 256,
                ..base
            },
            ConfigPreset::Llama2 => ScheduleConfig {
                method: Method::YARN,
                dim: 128,
                base: 10000.0,
                train_len: 4096,
                eval_len: 32768,
                scale: 8.0,
                seq_len: 32768,
                ..base
            },
            ConfigPreset::Llama31 => ScheduleConfig {
                method: Method::LLAMA3,
                dim: 128,
                base: 500000.0,
                train_len: 8192,
                eval_len: 131072,
                scale: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                seq_len: 131072,
                ..base
            },
        }
    }
}

/// Everything a permalink must reproduce.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppState {
    /// The primary configuration.
    pub a: ScheduleConfig,
    /// The second configuration (shown in compare mode).
    pub b: ScheduleConfig,
    /// Show A and B side by side.
    pub compare: bool,
    /// Which configuration the controls edit.
    pub editing: SideId,
    /// The plot on screen.
    pub tab: Tab,
    /// The feature shown by the phase wheel, the feature curve and the gap curve.
    pub feature: usize,
    /// The position at which the pair-layout tab rotates its example vector.
    pub probe_position: u64,
    /// The model whose config.json configured A (its name; empty when A was set by hand or by
    /// a preset). B is then its Resonance twin.
    pub model: String,
    /// The layer type of `model` that A shows (empty when the config has one RoPE for all).
    pub layer_type: String,
    /// Where the interpolation gap is computed.
    pub gap_compute: GapCompute,
    /// The feature-value tab's detail window: its first position (with `detail_len`).
    pub detail_start: u64,
    /// The detail window's length in positions; 0 is the default window (around L).
    pub detail_len: u64,
    /// The context the Stacks tab runs every stack at (each stack's own knob: the sequence
    /// length, `max_model_len`, `n_ctx`); 0 is the model's `max_position_embeddings`.
    pub stack_context: u64,
    /// Whether the Stacks tab audits the model's Resonance twin instead of the model.
    pub stack_twin: bool,
}

impl Default for AppState {
    fn default() -> Self {
        let a = ConfigPreset::PosGen.config(false);
        let b = ConfigPreset::PosGen.config(true);
        AppState {
            a,
            b,
            compare: false,
            editing: SideId::A,
            tab: Tab::Wavelengths,
            feature: 9,
            probe_position: 100,
            model: String::new(),
            layer_type: String::new(),
            gap_compute: GapCompute::Auto,
            detail_start: 0,
            detail_len: 0,
            stack_context: 0,
            stack_twin: false,
        }
    }
}

/// The twin of `c`: the same schedule with Resonance rounding on.
pub fn twin(c: &ScheduleConfig) -> ScheduleConfig {
    ScheduleConfig {
        resonance: true,
        ..c.clone()
    }
}

impl AppState {
    /// Makes `model` configuration A and its Resonance twin B, in compare mode, editing A.
    pub fn load_model(&mut self, model: &ModelRope) {
        self.a = ScheduleConfig {
            resonance: false,
            ..model.config.clone()
        };
        self.b = twin(&model.config);
        self.compare = true;
        self.editing = SideId::A;
        self.model = model.name.clone();
        self.layer_type = model.layer_type.clone().unwrap_or_default();
    }

    /// The state a link that names the built-in model `name` starts from: the default view with
    /// that model loaded (A its schedule for `layer_type`, B its twin). `None` when no built-in
    /// model has that name; a layer type the model lacks is an `Err` naming it.
    pub fn of_builtin(name: &str, layer_type: &str) -> Option<Result<AppState, String>> {
        let m = models::find_by_name(name)?;
        let opts = ImportOptions {
            layer_type: (!layer_type.is_empty()).then(|| layer_type.to_string()),
            ..ImportOptions::default()
        };
        Some(
            hf_config::parse_config(m.config, &m.model_id, &opts)
                .map(|rope| {
                    let mut s = AppState::default();
                    s.load_model(&rope);
                    s
                })
                .map_err(|e| e.to_string()),
        )
    }

    /// What [`Self::to_hash`] leaves out: the default state, or the named built-in model as a
    /// link to it loads it.
    fn link_base(&self) -> AppState {
        match AppState::of_builtin(&self.model, &self.layer_type) {
            Some(Ok(s)) if !self.model.is_empty() => s,
            _ => AppState::default(),
        }
    }

    /// The configuration the controls edit.
    pub fn edited_mut(&mut self) -> &mut ScheduleConfig {
        match (self.compare, self.editing) {
            (true, SideId::B) => &mut self.b,
            _ => &mut self.a,
        }
    }

    /// The configuration the controls edit.
    pub fn edited(&self) -> &ScheduleConfig {
        match (self.compare, self.editing) {
            (true, SideId::B) => &self.b,
            _ => &self.a,
        }
    }

    /// The readable URL-hash form, like `method=yarn&scale=8&b.dim=128&tab=gap`: only the
    /// fields that differ from [`AppState::default`], B's prefixed `b.`, each key and value
    /// percent-encoded. The default state is the empty string. A state that shows a built-in
    /// model starts with `model=` (and `layer_type=`) and lists only what differs from that
    /// model as loaded, so `#model=meta-llama/Llama-3.1-8B` alone is the model.
    pub fn to_hash(&self) -> String {
        let d = self.link_base();
        let mut pairs = Vec::new();
        if !d.model.is_empty() {
            pairs.push(("model".to_string(), d.model.clone()));
            if !d.layer_type.is_empty() {
                pairs.push(("layer_type".to_string(), d.layer_type.clone()));
            }
        }
        diff_pairs(&self.view_fields(), &d.view_fields(), "", &mut pairs);
        diff_pairs(
            &config_fields(&self.a),
            &config_fields(&d.a),
            "",
            &mut pairs,
        );
        diff_pairs(
            &config_fields(&self.b),
            &config_fields(&d.b),
            "b.",
            &mut pairs,
        );
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Parses a URL hash (with or without the leading `#`): the readable form of
    /// [`Self::to_hash`], or the percent-encoded JSON of earlier versions. Never fails: what
    /// cannot be applied (an unknown key, a bad value, broken JSON) is listed in
    /// [`HashLoad::problems`] and everything else still applies.
    pub fn from_hash(hash: &str) -> HashLoad {
        let raw = hash.strip_prefix('#').unwrap_or(hash);
        if raw.starts_with("%7B") || raw.starts_with("%7b") || raw.starts_with('{') {
            return from_json_hash(raw);
        }
        let pairs: Vec<(String, String)> = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect();
        let (mut state, mut problems, skip) = link_start(&pairs);
        let mut view = state.view_fields();
        let (mut a, mut b) = (config_fields(&state.a), config_fields(&state.b));
        for (key, value) in pairs.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
            let set = match key.strip_prefix("b.") {
                Some(name) => set_field::<ScheduleConfig>(&mut b, name, value),
                None if view.contains_key(key.as_str()) => {
                    set_field::<ViewFields>(&mut view, key, value)
                }
                None => set_field::<ScheduleConfig>(&mut a, key, value),
            };
            if let Err(e) = set {
                problems.push(format!("'{key}': {e}"));
            }
        }
        // every field was checked on its own above, so these only fail on a combination
        if let Ok(v) = serde_json::from_value::<ViewFields>(serde_json::Value::Object(view)) {
            v.apply(&mut state);
        }
        for (map, cfg) in [(a, &mut state.a), (b, &mut state.b)] {
            if let Ok(c) = serde_json::from_value(serde_json::Value::Object(map)) {
                *cfg = c;
            }
        }
        HashLoad { state, problems }
    }

    fn view_fields(&self) -> Map {
        let v = ViewFields {
            compare: self.compare,
            editing: self.editing,
            tab: self.tab,
            feature: self.feature,
            probe_position: self.probe_position,
            model: self.model.clone(),
            layer_type: self.layer_type.clone(),
            gap_compute: self.gap_compute,
            detail_start: self.detail_start,
            detail_len: self.detail_len,
            stack_context: self.stack_context,
            stack_twin: self.stack_twin,
        };
        to_map(&v)
    }
}

/// Where a readable hash starts: the default state, or the built-in model its `model=` names
/// (loaded, as the model panel loads it; the hash's other fields then apply on top). Returns the
/// start, the problems found so far and the keys already applied. A name that is not built in
/// is ignored and named, unless the hash carries A's schedule itself (the permalink of a pasted
/// config, whose name then labels that schedule).
fn link_start(pairs: &[(String, String)]) -> (AppState, Vec<String>, Vec<&'static str>) {
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let Some(name) = get("model").filter(|n| !n.is_empty()) else {
        return (AppState::default(), Vec::new(), Vec::new());
    };
    let layer = get("layer_type").unwrap_or("");
    let skip = vec!["model", "layer_type"];
    match AppState::of_builtin(name, layer) {
        Some(Ok(s)) => (s, Vec::new(), skip),
        Some(Err(e)) => {
            let problem = format!("'layer_type': {e}");
            match AppState::of_builtin(name, "") {
                Some(Ok(s)) => (s, vec![problem], skip),
                _ => (AppState::default(), vec![problem], skip),
            }
        }
        None => {
            let view = AppState::default().view_fields();
            let carries_a = pairs
                .iter()
                .any(|(k, _)| !k.starts_with("b.") && !view.contains_key(k.as_str()));
            if carries_a {
                (AppState::default(), Vec::new(), Vec::new())
            } else {
                let problem = format!(
                    "'model': '{name}' is not a built-in model (the schedule shown is not it)"
                );
                (AppState::default(), vec![problem], skip)
            }
        }
    }
}

/// The result of reading a URL hash: the state, and what of the hash could not be applied.
#[derive(Clone, Debug, PartialEq)]
pub struct HashLoad {
    /// The state with every valid field of the hash applied.
    pub state: AppState,
    /// One message per key or value that was ignored, naming it.
    pub problems: Vec<String>,
}

impl HashLoad {
    /// The problems as one message for the app's status bar, if there are any.
    pub fn message(&self) -> Option<String> {
        (!self.problems.is_empty()).then(|| {
            format!(
                "ignored in the URL (the rest applies): {}",
                self.problems.join("; ")
            )
        })
    }
}

type Map = serde_json::Map<String, serde_json::Value>;

/// The view fields of [`AppState`] besides the two configurations (the hash's unprefixed,
/// non-schedule keys).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewFields {
    compare: bool,
    editing: SideId,
    tab: Tab,
    feature: usize,
    probe_position: u64,
    model: String,
    layer_type: String,
    gap_compute: GapCompute,
    detail_start: u64,
    detail_len: u64,
    stack_context: u64,
    stack_twin: bool,
}

impl ViewFields {
    fn apply(self, s: &mut AppState) {
        s.compare = self.compare;
        s.editing = self.editing;
        s.tab = self.tab;
        s.feature = self.feature;
        s.probe_position = self.probe_position;
        s.model = self.model;
        s.layer_type = self.layer_type;
        s.gap_compute = self.gap_compute;
        s.detail_start = self.detail_start;
        s.detail_len = self.detail_len;
        s.stack_context = self.stack_context;
        s.stack_twin = self.stack_twin;
    }
}

fn to_map<T: Serialize>(v: &T) -> Map {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn config_fields(c: &ScheduleConfig) -> Map {
    to_map(c)
}

/// Characters escaped in a hash key or value: all but RFC 3986's unreserved ones.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// A field's value as hash text: strings bare, whole floats without `.0`.
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() && x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Appends `prefix + key = value` for every field of `now` that differs from `default`.
fn diff_pairs(now: &Map, default: &Map, prefix: &str, out: &mut Vec<(String, String)>) {
    for (k, v) in now {
        if default.get(k) != Some(v) {
            out.push((format!("{prefix}{k}"), value_text(v)));
        }
    }
}

/// Sets field `name` of `fields` from hash text, typed like the field's current value; the
/// field is only changed when the whole record still deserializes as a `T` (so the value is
/// one `T` accepts, e.g. a known method name).
fn set_field<T: serde::de::DeserializeOwned>(
    fields: &mut Map,
    name: &str,
    text: &str,
) -> Result<(), String> {
    let Some(old) = fields.get(name).cloned() else {
        return Err("unknown key".into());
    };
    let new = match &old {
        serde_json::Value::Bool(_) => text.parse::<bool>().map(serde_json::Value::Bool).ok(),
        serde_json::Value::Number(n) if n.is_f64() => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(serde_json::Value::Number),
        serde_json::Value::Number(_) => text.parse::<u64>().ok().map(serde_json::Value::from),
        serde_json::Value::String(_) => Some(serde_json::Value::String(text.to_string())),
        // optional numbers (`null` by default) and lists (LongRoPE's factors) are JSON text
        _ => serde_json::from_str(text).ok(),
    };
    let bad = || format!("bad value '{text}'");
    let new = new.ok_or_else(bad)?;
    fields.insert(name.to_string(), new);
    if serde_json::from_value::<T>(serde_json::Value::Object(fields.clone())).is_err() {
        fields.insert(name.to_string(), old);
        return Err(bad());
    }
    Ok(())
}

/// The JSON hashes of earlier versions (percent-encoded `AppState` JSON).
fn from_json_hash(raw: &str) -> HashLoad {
    let json = decode(raw);
    match serde_json::from_str::<AppState>(&json) {
        Ok(state) => HashLoad {
            state,
            problems: Vec::new(),
        },
        Err(e) => HashLoad {
            state: AppState::default(),
            problems: vec![format!("invalid state JSON: {e}")],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_hash_round_trips_with_only_changed_fields() {
        assert_eq!(AppState::default().to_hash(), "");
        let mut s = AppState::default();
        s.a.scale = 7.25;
        s.a.base = 500000.0;
        s.b.method = Method::LLAMA3;
        s.b.dim = 128;
        s.compare = true;
        s.editing = SideId::B;
        s.tab = Tab::Heatmap;
        s.feature = 3;
        let h = s.to_hash();
        assert_eq!(
            h,
            "compare=true&editing=b&feature=3&tab=heatmap&base=500000&scale=7.25&\
             b.dim=128&b.method=llama3"
        );
        let back = AppState::from_hash(&format!("#{h}"));
        assert_eq!(back.problems, Vec::<String>::new());
        assert_eq!(back.state, s);
        // awkward floats survive exactly
        s.a.beta_slow = 0.1 + 0.2;
        assert_eq!(AppState::from_hash(&s.to_hash()).state, s);
    }

    #[test]
    fn json_hashes_of_earlier_versions_still_load() {
        let mut s = AppState::default();
        s.a.scale = 9.5;
        s.tab = Tab::Gap;
        let json = serde_json::to_string(&s).unwrap();
        let old = utf8_percent_encode(&json, NON_ALPHANUMERIC).to_string();
        let back = AppState::from_hash(&format!("#{old}"));
        assert_eq!(back.state, s);
        assert!(back.message().is_none());
        let broken = AppState::from_hash("#%7B%22a%22");
        assert_eq!(broken.state, AppState::default());
        assert!(broken.message().unwrap().contains("invalid state JSON"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named_and_the_rest_applies() {
        let load = AppState::from_hash(
            "#scale=6&colour=red&dim=4.5&b.method=nonsense&tab=gap&b.eval_len=1024&feature=x",
        );
        assert_eq!(load.state.a.scale, 6.0);
        assert_eq!(load.state.tab, Tab::Gap);
        assert_eq!(load.state.b.eval_len, 1024);
        assert_eq!(load.state.a.dim, AppState::default().a.dim);
        assert_eq!(load.state.b.method, AppState::default().b.method);
        assert_eq!(
            load.problems,
            [
                "'colour': unknown key",
                "'dim': bad value '4.5'",
                "'b.method': bad value 'nonsense'",
                "'feature': bad value 'x'",
            ]
        );
        let m = load.message().unwrap();
        assert!(m.contains("colour") && m.contains("b.method"), "{m}");
        // escapes decode; a key without '=' is a bad (empty) value, not a panic
        let load = AppState::from_hash("method=dynamic%2Dntk&scale");
        assert_eq!(load.state.a.method, Method::DYNAMIC_NTK);
        assert_eq!(load.problems, ["'scale': bad value ''"]);
    }

    #[test]
    fn a_link_naming_a_builtin_model_loads_it_and_lists_only_edits() {
        for name in ["Llama-3.1-8B", "meta-llama/Llama-3.1-8B", "llama 3.1 8b"] {
            let load = AppState::from_hash(&format!("#model={}", encode(name)));
            assert_eq!(load.problems, Vec::<String>::new(), "{name}");
            let s = load.state;
            assert_eq!(s.model, "meta-llama/Llama-3.1-8B");
            assert_eq!(s.a.method, Method::LLAMA3);
            assert_eq!((s.a.dim, s.a.train_len, s.a.eval_len), (128, 8192, 131072));
            assert!(s.compare && !s.a.resonance);
            assert_eq!(s.b, twin(&s.a));
            assert_eq!(s.to_hash(), "model=meta-llama%2FLlama-3.1-8B");
        }
        // an edit on top of the model is listed against the model, and round-trips
        let edited = AppState::from_hash("#model=Llama-3.1-8B&scale=4&tab=gap").state;
        assert_eq!((edited.a.scale, edited.a.base), (4.0, 500000.0));
        assert_eq!(
            edited.to_hash(),
            "model=meta-llama%2FLlama-3.1-8B&tab=gap&scale=4"
        );
        assert_eq!(AppState::from_hash(&edited.to_hash()).state, edited);
        // a field set back to the lab's default still differs from the model, so it is kept
        let mut back_to_default = edited.clone();
        back_to_default.a.base = AppState::default().a.base;
        assert_eq!(
            AppState::from_hash(&back_to_default.to_hash()).state,
            back_to_default
        );
        // per-layer models: the layer type is part of the link
        let local = AppState::from_hash("#model=gemma-3-1b-it&layer_type=sliding_attention");
        assert_eq!(local.problems, Vec::<String>::new());
        assert_eq!(local.state.layer_type, "sliding_attention");
        assert_eq!(local.state.a.base, 10000.0);
        assert_eq!(
            AppState::from_hash(&local.state.to_hash()).state,
            local.state
        );
    }

    #[test]
    fn a_link_naming_an_unknown_model_says_so_and_shows_the_default() {
        let load = AppState::from_hash("#model=Nope&tab=gap");
        assert_eq!(load.state.model, "");
        assert_eq!(load.state.tab, Tab::Gap);
        assert_eq!(load.state.a, AppState::default().a);
        assert_eq!(
            load.problems,
            ["'model': 'Nope' is not a built-in model (the schedule shown is not it)"]
        );
        let bad_layer = AppState::from_hash("#model=Llama-3.1-8B&layer_type=sliding");
        assert_eq!(bad_layer.state.a.method, Method::LLAMA3);
        assert!(
            bad_layer.problems.len() == 1 && bad_layer.problems[0].contains("sliding"),
            "{:?}",
            bad_layer.problems
        );
        // the permalink of a pasted config carries A itself: its name labels it
        let pasted = AppState::from_hash("#model=my-model&method=llama3&dim=128");
        assert!(pasted.problems.is_empty(), "{:?}", pasted.problems);
        assert_eq!(pasted.state.model, "my-model");
        assert_eq!(pasted.state.a.method, Method::LLAMA3);
    }

    #[test]
    fn llama31_preset_matches_the_published_config() {
        let c = ConfigPreset::Llama31.config(false);
        assert_eq!(
            (c.dim, c.base, c.train_len, c.eval_len),
            (128, 500000.0, 8192, 131072)
        );
        assert_eq!(
            (c.scale, c.low_freq_factor, c.high_freq_factor),
            (8.0, 1.0, 4.0)
        );
        assert!(c.validate().is_ok());
    }
}
