//! NTK-aware scaling (docs/schedules.md#ntk): the base raised to `b * s^(d/(d-2))`. The lab's
//! own: transformers has no static NTK-aware type.

use super::common;
use crate::rope::ScheduleConfig;
use crate::rope::config::{HfKey, Method, MethodDef};

/// The NTK-aware base `b * s^(d/(d-2))` (f64).
fn ntk_base(c: &ScheduleConfig) -> f64 {
    match common::ntk_exponent(c.rotary_dim()) {
        Some(e) => c.base * c.scale.powf(e),
        None => c.base,
    }
}

/// NTK-aware scaling.
pub static DEF: MethodDef = MethodDef {
    id: "ntk",
    aliases: &[],
    label: "NTK",
    summary: "NTK-aware: base raised to b * s^(d/(d-2)), then plain RoPE",
    transformers_type: None,
    docs_anchor: "schedules.md#ntk",
    params: &[],
    full_head: false,
    inv_freq_f32: |c| common::default_f32(ntk_base(c), c.rotary_dim()),
    inv_freq_f64: |c| common::default_f64(ntk_base(c), c.rotary_dim()),
    attention_factor: common::unit_attention,
    validate: common::no_checks,
    import: |_, d| Ok(d.original_or_max()),
    hf_train_len: HfKey::Rope("original_max_position_embeddings"),
    details: common::no_details,
};

impl Method {
    /// NTK-aware scaling.
    pub const NTK: Method = Method(&DEF);
}

/// vLLM's `NTKScalingRotaryEmbedding` (ntk_scaling_rope.py:32-45), a type transformers lacks.
/// Without `mixed_b`: `1 / f32(b*s)^(2i/d)`, then divided by `f32(s^(2/d))`. With `mixed_b`:
/// `a = ln(f32 s) / (d/2)^mixed_b` and each pair divided by `exp(a * (i+1)^mixed_b)`, all f32.
pub fn vllm_inv_freq_f32(base: f64, factor: f64, mixed_b: Option<f64>, dim: usize) -> Vec<f32> {
    match mixed_b {
        None => {
            let d = (factor.powf(2.0 / dim as f64)) as f32;
            common::default_f32(base * factor, dim)
                .into_iter()
                .map(|v| v / d)
                .collect()
        }
        Some(b) => {
            let a = ((factor as f32) as f64).ln() as f32 / ((dim as f64 / 2.0).powf(b)) as f32;
            common::default_f32(base, dim)
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let k = (((i + 1) as f32) as f64).powf((b as f32) as f64) as f32;
                    let lambda = ((a * k) as f64).exp() as f32;
                    v / lambda
                })
                .collect()
        }
    }
}
