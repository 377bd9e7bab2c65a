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
