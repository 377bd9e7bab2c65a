//! The RoPE math core: schedules, Resonance rounding, exact phases, feature values and the
//! interpolation gap. Pure Rust with no GPU, UI or IO types, and no caller's syntax (no CLI
//! flags, no widgets): the reference for every backend.
//!
//! Layers, each using only those above it: `error`, `hf_dict` (typed JSON reading) and `config`
//! (the vocabulary: configuration, method and parameter descriptions); `params` (the shared
//! parameters); `methods` (one file per schedule and the registry); `schedule` (defaults,
//! validation, evaluation); then the analyses and the importer.

pub mod config;
pub mod error;
pub mod features;
pub mod gap;
pub mod hf_config;
pub mod hf_dict;
pub mod hf_export;
pub mod methods;
pub mod params;
pub mod phase;
pub mod reference;
pub mod resonance;
pub mod schedule;
pub mod stacks;

pub use config::{Method, MethodDef, PairLayout, Param, ScheduleConfig};
pub use error::ConfigError;
pub use features::{FeatureTable, cos_sin, feature_table, rotate};
pub use gap::{GapAnalysis, GapWorkspace, gap_analysis, gap_curve, gap_for_phase};
pub use phase::Phase;
pub use resonance::RoundingReport;

use std::f64::consts::PI;

/// A validated schedule: the frequencies exactly as a model uses them plus everything the
/// analysis needs (wavelengths, critical feature, exact phase representation, rounding report).
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// The configuration this schedule was built from.
    pub config: ScheduleConfig,
    /// f32 inverse frequencies as used (after Resonance rounding when enabled).
    pub inv_freq: Vec<f32>,
    /// The same schedule evaluated in f64 (analysis path).
    pub inv_freq_f64: Vec<f64>,
    /// The period in tokens of each feature as computed here: the integer wavelength for
    /// Resonance features, `2*pi/inv_freq` otherwise.
    pub wavelength: Vec<f64>,
    /// Wavelengths of the f64 analysis path.
    pub wavelength_f64: Vec<f64>,
    /// Multiplier on cos and sin (YaRN temperature).
    pub attention_factor: f64,
    /// First feature whose wavelength is >= train_len; d/2 when none.
    pub critical_feature: usize,
    /// Exact phase representation of each feature (integer period or 64-bit fixed-point turns).
    pub phases: Vec<Phase>,
    /// Present when Resonance rounding is on.
    pub rounding: Option<RoundingReport>,
}

impl Schedule {
    /// Validates `config` and computes the schedule.
    pub fn new(config: &ScheduleConfig) -> Result<Schedule, ConfigError> {
        config.validate()?;
        let freqs = schedule::method_freqs(config);
        let (inv_freq, inv_freq_f64, wavelength, rounding, phases) = if config.resonance {
            let r = resonance::round_wavelengths(&freqs.inv_freq_f32, &freqs.inv_freq_f64);
            let phases = r
                .rounded
                .iter()
                .map(|&l| Phase::from_wavelength(l))
                .collect();
            (
                r.inv_freq_f32.clone(),
                r.inv_freq_f64.clone(),
                r.rounded.clone(),
                Some(r),
                phases,
            )
        } else {
            let wl = freqs
                .inv_freq_f32
                .iter()
                .map(|&v| 2.0 * PI / v as f64)
                .collect();
            let phases = freqs
                .inv_freq_f32
                .iter()
                .map(|&v| Phase::from_inv_freq(v))
                .collect();
            (freqs.inv_freq_f32, freqs.inv_freq_f64, wl, None, phases)
        };
        let wavelength_f64: Vec<f64> = inv_freq_f64.iter().map(|v| 2.0 * PI / v).collect();
        let critical_feature = critical_feature(&wavelength, config.train_len);
        Ok(Schedule {
            config: config.clone(),
            inv_freq,
            inv_freq_f64,
            wavelength,
            wavelength_f64,
            attention_factor: freqs.attention_factor,
            critical_feature,
            phases,
            rounding,
        })
    }

    /// Number of features (rotary dim / 2).
    pub fn num_features(&self) -> usize {
        self.inv_freq.len()
    }

    /// Features whose frequency is 0 (non-rotating pairs, e.g. Proportional RoPE's tail): their
    /// wavelength is infinite, their gap 0 and their value cos = 1, sin = 0 everywhere.
    pub fn zero_frequency_features(&self) -> Vec<usize> {
        (0..self.inv_freq.len())
            .filter(|&i| self.inv_freq[i] == 0.0)
            .collect()
    }

    /// The same configuration with Resonance toggled: what the plots compare against.
    pub fn twin(&self) -> Schedule {
        let mut c = self.config.clone();
        c.resonance = !c.resonance;
        Schedule::new(&c).expect("twin of a valid config is valid")
    }
}

/// First index whose wavelength is >= `train_len`; `wavelength.len()` when none.
pub fn critical_feature(wavelength: &[f64], train_len: u64) -> usize {
    wavelength
        .iter()
        .position(|&w| w >= train_len as f64)
        .unwrap_or(wavelength.len())
}
