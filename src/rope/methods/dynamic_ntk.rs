//! Dynamic NTK (docs/schedules.md#dynamic-ntk), transformers' `dynamic`: the NTK base follows
//! the current sequence length.

use super::common;
use crate::rope::ScheduleConfig;
use crate::rope::config::{HfKey, Method, MethodDef};
use crate::rope::params::SEQ_LEN;

/// `b' = b * ((s*l*/L) - (s-1))^(d/(d-2))` with `l* = max(seq_len, L)` (f64; L is
/// `max_position_embeddings` in transformers).
fn dynamic_base(c: &ScheduleConfig) -> f64 {
    let l = c.seq_len.max(c.train_len) as f64;
    match common::ntk_exponent(c.rotary_dim()) {
        Some(e) => c.base * ((c.scale * l / c.train_len as f64) - (c.scale - 1.0)).powf(e),
        None => c.base,
    }
}

/// Dynamic NTK.
pub static DEF: MethodDef = MethodDef {
    id: "dynamic-ntk",
    aliases: &["dynamic"],
    label: "Dynamic NTK",
    summary: "dynamic NTK: the NTK base follows the current length l beyond L",
    transformers_type: Some("dynamic"),
    docs_anchor: "schedules.md#dynamic-ntk",
    params: &[&SEQ_LEN],
    full_head: false,
    inv_freq_f32: |c| common::default_f32(dynamic_base(c), c.rotary_dim()),
    inv_freq_f64: |c| common::default_f64(dynamic_base(c), c.rotary_dim()),
    attention_factor: common::unit_attention,
    validate: common::no_checks,
    import: |c, d| {
        c.scale = d.need(d.dict.positive_f64("factor")?, "factor")?;
        // transformers' dynamic formula uses max_position_embeddings as the trained length
        Ok(d.max_pos)
    },
    hf_train_len: HfKey::Top("max_position_embeddings"),
    details: common::no_details,
};

impl Method {
    /// Dynamic NTK.
    pub const DYNAMIC_NTK: Method = Method(&DEF);
}

/// The static NTK-alpha base `b * alpha^(d/(d-2))` (f64) that HunYuan's `ntk_alpha` (transformers,
/// mlx-lm), vLLM's `DynamicNTKAlphaRotaryEmbedding` and llama.cpp's HunYuan converter compute
/// for a `dynamic` section with `alpha`; `d` is the rotary dimension.
pub fn alpha_base(base: f64, alpha: f64, dim: usize) -> f64 {
    match common::ntk_exponent(dim) {
        Some(e) => base * alpha.powf(e),
        None => base,
    }
}

/// vLLM's `DynamicNTKScalingRotaryEmbedding` base, computed once at construction:
/// `b * ((s * max_position / max_trained) - (s - 1))^(d/(d-2))` (f64,
/// dynamic_ntk_scaling_rope.py:58). With `max_trained == max_position` (every config that does
/// not spell `max_trained_positions`) the bracket is 1 and the base is unchanged.
pub fn vllm_base(base: f64, factor: f64, max_position: u64, max_trained: u64, dim: usize) -> f64 {
    match common::ntk_exponent(dim) {
        Some(e) => {
            base * ((factor * max_position as f64 / max_trained as f64) - (factor - 1.0)).powf(e)
        }
        None => base,
    }
}
