//! The serializable state of the visualizer: one struct that is the URL hash on the web and the
//! eframe storage entry natively, so a permalink reproduces the view exactly. The hash is
//! readable (`#method=yarn&scale=8&b.dim=128`, only what differs from the defaults); the JSON
//! hashes of earlier versions still load.

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
}

impl Tab {
    /// Every tab in display order.
    pub const ALL: [Tab; 7] = [
        Tab::Wavelengths,
        Tab::PhaseWheel,
        Tab::FeatureCurve,
        Tab::Gap,
        Tab::Heatmap,
        Tab::Pairs,
        Tab::PosGen,
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
        }
    }
}

impl AppState {
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
    /// percent-encoded. The default state is the empty string.
    pub fn to_hash(&self) -> String {
        let d = AppState::default();
        let mut pairs = Vec::new();
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
        let mut state = AppState::default();
        let mut view = state.view_fields();
        let (mut a, mut b) = (config_fields(&state.a), config_fields(&state.b));
        let mut problems = Vec::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (key, value) = (decode(k), decode(v));
            let set = match key.strip_prefix("b.") {
                Some(name) => set_field::<ScheduleConfig>(&mut b, name, &value),
                None if view.contains_key(key.as_str()) => {
                    set_field::<ViewFields>(&mut view, &key, &value)
                }
                None => set_field::<ScheduleConfig>(&mut a, &key, &value),
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
        };
        to_map(&v)
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
