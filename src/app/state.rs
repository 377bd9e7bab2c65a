//! The serializable state of the visualizer: one struct that is the URL hash on the web and the
//! eframe storage entry natively, so a permalink reproduces the view exactly.

use crate::rope::{Method, ScheduleConfig};
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
    /// The PosGen benchmark panel.
    PosGen,
}

impl Tab {
    /// Every tab in display order.
    pub const ALL: [Tab; 6] = [
        Tab::Wavelengths,
        Tab::PhaseWheel,
        Tab::FeatureCurve,
        Tab::Gap,
        Tab::Heatmap,
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
            Tab::PosGen => "PosGen",
        }
    }

    /// A short file-name-safe identifier (CSV export names).
    pub fn slug(self) -> &'static str {
        match self {
            Tab::Wavelengths => "wavelengths",
            Tab::PhaseWheel => "phase-wheel",
            Tab::FeatureCurve => "feature-value",
            Tab::Gap => "gap",
            Tab::Heatmap => "heatmap",
            Tab::PosGen => "posgen",
        }
    }
}

/// Which of the two configurations the controls edit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// The primary configuration (the only one outside compare mode).
    #[default]
    A,
    /// The second configuration of compare mode.
    B,
}

/// Reset-to-preset configurations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// The paper's PosGen setting: d=64, b=1e4, L=64, L'=256, YaRN s=4.
    PosGen,
    /// Llama-2 7B extended from 4K to 32K with YaRN (d=128, b=1e4, s=8).
    Llama2,
    /// Llama-3.1 8K to 128K (base 500000, d=128, factor 8, low 1, high 4).
    Llama31,
}

impl Preset {
    /// Every preset in display order.
    pub const ALL: [Preset; 3] = [Preset::PosGen, Preset::Llama2, Preset::Llama31];

    /// The button label.
    pub fn label(self) -> &'static str {
        match self {
            Preset::PosGen => "PosGen d=64 L=64",
            Preset::Llama2 => "Llama-2 7B 4K->32K",
            Preset::Llama31 => "Llama-3.1 8K->128K",
        }
    }

    /// The preset's configuration; `resonance` is kept from the caller.
    pub fn config(self, resonance: bool) -> ScheduleConfig {
        let base = ScheduleConfig {
            resonance,
            ..ScheduleConfig::default()
        };
        match self {
            Preset::PosGen => ScheduleConfig {
                method: Method::Yarn,
                dim: 64,
                base: 10000.0,
                train_len: 64,
                eval_len: 256,
                scale: 4.0,
                seq_len: 256,
                ..base
            },
            Preset::Llama2 => ScheduleConfig {
                method: Method::Yarn,
                dim: 128,
                base: 10000.0,
                train_len: 4096,
                eval_len: 32768,
                scale: 8.0,
                seq_len: 32768,
                ..base
            },
            Preset::Llama31 => ScheduleConfig {
                method: Method::Llama3,
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
    pub editing: Side,
    /// The plot on screen.
    pub tab: Tab,
    /// The feature shown by the phase wheel, the feature curve and the gap curve.
    pub feature: usize,
}

impl Default for AppState {
    fn default() -> Self {
        let a = Preset::PosGen.config(false);
        let b = Preset::PosGen.config(true);
        AppState {
            a,
            b,
            compare: false,
            editing: Side::A,
            tab: Tab::Wavelengths,
            feature: 9,
        }
    }
}

impl AppState {
    /// The configuration the controls edit.
    pub fn edited_mut(&mut self) -> &mut ScheduleConfig {
        match (self.compare, self.editing) {
            (true, Side::B) => &mut self.b,
            _ => &mut self.a,
        }
    }

    /// The configuration the controls edit.
    pub fn edited(&self) -> &ScheduleConfig {
        match (self.compare, self.editing) {
            (true, Side::B) => &self.b,
            _ => &self.a,
        }
    }

    /// Serializes to the URL-hash form: percent-encoded JSON.
    pub fn to_hash(&self) -> String {
        let json = serde_json::to_string(self).expect("AppState always serializes");
        percent_encode(&json)
    }

    /// Parses the URL-hash form (with or without the leading `#`).
    pub fn from_hash(hash: &str) -> Result<AppState, String> {
        let raw = hash.strip_prefix('#').unwrap_or(hash);
        let json = percent_decode(raw)?;
        serde_json::from_str(&json).map_err(|e| format!("invalid state in URL: {e}"))
    }
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; fails on a truncated or non-hex escape or invalid UTF-8.
pub fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("truncated escape at byte {i}"))?;
            let v = u8::from_str_radix(hex, 16)
                .map_err(|_| format!("invalid escape %{hex} at byte {i}"))?;
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|e| format!("URL state is not UTF-8: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_round_trip_reproduces_state() {
        let mut s = AppState::default();
        s.a.scale = 7.25;
        s.compare = true;
        s.tab = Tab::Heatmap;
        s.feature = 3;
        let h = s.to_hash();
        assert!(!h.contains('"') && !h.contains('{') && !h.contains(' '));
        assert_eq!(AppState::from_hash(&format!("#{h}")).unwrap(), s);
    }

    #[test]
    fn percent_decode_rejects_bad_escapes() {
        assert_eq!(percent_decode("a%20b").unwrap(), "a b");
        assert!(percent_decode("a%2").is_err());
        assert!(percent_decode("a%zz").is_err());
    }

    #[test]
    fn llama31_preset_matches_the_published_config() {
        let c = Preset::Llama31.config(false);
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
