//! Resonance RoPE (docs/resonance.md#the-rule): round every wavelength to the nearest integer after any
//! scaling method, with the official code's f32 semantics, and report where that is fragile.

use serde::Serialize;
use std::f64::consts::PI;

/// The outcome of rounding every wavelength, in the official f32 semantics and in f64.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoundingReport {
    /// Wavelengths before rounding, `reciprocal(theta) * 2*pi` in f32 (as the official code).
    pub raw_wavelength: Vec<f64>,
    /// Rounded (half to even) wavelengths of the f32 path: the periods actually used.
    pub rounded: Vec<f64>,
    /// Rounded wavelengths when the whole computation is done in f64.
    pub rounded_f64: Vec<f64>,
    /// Resulting f32 inverse frequencies `2*pi / rounded`.
    pub inv_freq_f32: Vec<f32>,
    /// Resulting f64 inverse frequencies `2*pi / rounded_f64`.
    pub inv_freq_f64: Vec<f64>,
    /// Features i whose rounded wavelength equals that of feature i+1 (two features collapse).
    pub duplicates: Vec<usize>,
    /// Features whose f32 and f64 rounded wavelengths differ (large wavelengths).
    pub f32_f64_disagreements: Vec<usize>,
    /// Features with frequency 0 (e.g. the non-rotating pairs of Proportional RoPE): their
    /// wavelength is infinite (`null` in JSON), rounding leaves them at frequency 0, and their
    /// feature value is cos = 1, sin = 0 at every position.
    pub zero_frequency_features: Vec<usize>,
}

/// Rounds the wavelengths of a schedule given as f32 and f64 inverse frequencies.
pub fn round_wavelengths(inv32: &[f32], inv64: &[f64]) -> RoundingReport {
    let two_pi32 = (2.0 * PI) as f32;
    let raw32: Vec<f32> = inv32.iter().map(|&v| (1.0f32 / v) * two_pi32).collect();
    let rounded32: Vec<f32> = raw32.iter().map(|w| w.round_ties_even()).collect();
    let rounded64: Vec<f64> = inv64
        .iter()
        .map(|&v| (2.0 * PI / v).round_ties_even())
        .collect();
    // a zero frequency has an infinite wavelength; it stays 0 (2*pi / inf) and is not a
    // "duplicate" of a neighbouring zero frequency
    let duplicates = (0..rounded32.len().saturating_sub(1))
        .filter(|&i| rounded32[i] == rounded32[i + 1] && rounded32[i].is_finite())
        .collect();
    let zero_frequency_features = (0..inv32.len()).filter(|&i| inv32[i] == 0.0).collect();
    let f32_f64_disagreements = (0..rounded32.len())
        .filter(|&i| rounded32[i] as f64 != rounded64[i])
        .collect();
    RoundingReport {
        raw_wavelength: raw32.iter().map(|&w| w as f64).collect(),
        rounded: rounded32.iter().map(|&w| w as f64).collect(),
        inv_freq_f32: rounded32.iter().map(|&w| two_pi32 / w).collect(),
        inv_freq_f64: rounded64.iter().map(|&w| 2.0 * PI / w).collect(),
        rounded_f64: rounded64,
        duplicates,
        f32_f64_disagreements,
        zero_frequency_features,
    }
}
