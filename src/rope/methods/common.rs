//! The computation every schedule starts from (transformers'
//! `base ** (arange(0, dim, 2).float() / dim)` in f32, and its f64 twin) and the no-op hooks of
//! methods that have nothing to add.

use crate::rope::config::ScheduleConfig;
use crate::rope::error::ConfigError;

/// `pos_i = base^(2i/d)` in f32, as `base ** (arange(0, d, 2).float() / d)`, for the first
/// `pairs` pairs (`d/2` in every schedule but Proportional, which rotates fewer pairs).
pub fn pos_freqs_f32(base: f64, dim: usize, pairs: usize) -> Vec<f32> {
    let b = base as f32;
    (0..pairs)
        .map(|i| {
            let e = (2 * i) as f32 / dim as f32;
            // pow of two exact f32 inputs, correctly rounded to f32
            (b as f64).powf(e as f64) as f32
        })
        .collect()
}

/// `pos_i = base^(2i/d)` in f64.
pub fn pos_freqs_f64(base: f64, dim: usize, pairs: usize) -> Vec<f64> {
    (0..pairs)
        .map(|i| base.powf((2 * i) as f64 / dim as f64))
        .collect()
}

/// Plain RoPE `1 / pos_i` in f32 over `dim` (d/2 pairs).
pub fn default_f32(base: f64, dim: usize) -> Vec<f32> {
    pos_freqs_f32(base, dim, dim / 2)
        .iter()
        .map(|p| 1.0f32 / p)
        .collect()
}

/// Plain RoPE `1 / pos_i` in f64 over `dim` (d/2 pairs).
pub fn default_f64(base: f64, dim: usize) -> Vec<f64> {
    pos_freqs_f64(base, dim, dim / 2)
        .iter()
        .map(|p| 1.0 / p)
        .collect()
}

/// The NTK exponent `d/(d-2)`; for d = 2 the formula is singular and the base is left unchanged.
pub fn ntk_exponent(dim: usize) -> Option<f64> {
    (dim > 2).then(|| dim as f64 / (dim as f64 - 2.0))
}

/// Attention factor 1 (no temperature).
pub fn unit_attention(_: &ScheduleConfig) -> f64 {
    1.0
}

/// No checks beyond the parameters' own ranges.
pub fn no_checks(_: &ScheduleConfig) -> Result<(), ConfigError> {
    Ok(())
}

/// Nothing to add to the JSON output.
pub fn no_details(_: &ScheduleConfig) -> Vec<(&'static str, serde_json::Value)> {
    Vec::new()
}
