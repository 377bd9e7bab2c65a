//! Proportional RoPE (docs/schedules.md#proportional), transformers'
//! `_compute_proportional_rope_parameters`: only the first fraction of the pairs rotates, the
//! rest have frequency 0.

use super::common;
use crate::rope::ScheduleConfig;
use crate::rope::config::{HfKey, Method, MethodDef};

/// Pairs that rotate: `int(partial_rotary_factor * d // 2)`.
pub fn rotating_pairs(c: &ScheduleConfig) -> usize {
    (((c.partial_rotary_factor * c.dim as f64) / 2.0).floor() as usize).min(c.dim / 2)
}

/// The first pairs get `b^(-2i/d)` (exponent over the whole head dim d), the rest 0; then every
/// frequency is divided by the factor (`scale`).
fn inv_freq_f32(c: &ScheduleConfig) -> Vec<f32> {
    let s32 = c.scale as f32;
    let mut v: Vec<f32> = common::pos_freqs_f32(c.base, c.dim, rotating_pairs(c))
        .iter()
        .map(|p| 1.0f32 / p)
        .collect();
    v.resize(c.dim / 2, 0.0);
    v.into_iter().map(|x| x / s32).collect()
}

fn inv_freq_f64(c: &ScheduleConfig) -> Vec<f64> {
    let mut v: Vec<f64> = common::pos_freqs_f64(c.base, c.dim, rotating_pairs(c))
        .iter()
        .map(|p| 1.0 / p)
        .collect();
    v.resize(c.dim / 2, 0.0);
    v.into_iter().map(|x| x / c.scale).collect()
}

/// Proportional RoPE.
pub static DEF: MethodDef = MethodDef {
    id: "proportional",
    aliases: &[],
    label: "Proportional",
    summary: "proportional RoPE: the first int(p d / 2) pairs rotate (exponent over d), the rest \
              have frequency 0",
    transformers_type: Some("proportional"),
    docs_anchor: "schedules.md#proportional",
    params: &[],
    full_head: true,
    inv_freq_f32,
    inv_freq_f64,
    attention_factor: common::unit_attention,
    validate: common::no_checks,
    import: |c, d| {
        c.scale = d.dict.positive_f64("factor")?.unwrap_or(1.0);
        Ok(d.original_or_max())
    },
    hf_train_len: HfKey::Rope("original_max_position_embeddings"),
    details: common::no_details,
};

impl Method {
    /// Proportional RoPE.
    pub const PROPORTIONAL: Method = Method(&DEF);
}
