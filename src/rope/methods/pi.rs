//! Position interpolation (docs/schedules.md#pi), transformers' `linear`: every frequency
//! divided by the scale.

use super::common;
use crate::rope::config::{HfKey, Method, MethodDef};

fn inv_freq_f32(c: &crate::rope::ScheduleConfig) -> Vec<f32> {
    let s32 = c.scale as f32;
    common::default_f32(c.base, c.rotary_dim())
        .into_iter()
        .map(|v| v / s32)
        .collect()
}

fn inv_freq_f64(c: &crate::rope::ScheduleConfig) -> Vec<f64> {
    common::default_f64(c.base, c.rotary_dim())
        .into_iter()
        .map(|v| v / c.scale)
        .collect()
}

/// Position interpolation.
pub static DEF: MethodDef = MethodDef {
    id: "pi",
    aliases: &["linear"],
    label: "PI",
    summary: "position interpolation: every frequency divided by s",
    transformers_type: Some("linear"),
    docs_anchor: "schedules.md#pi",
    params: &[],
    full_head: false,
    inv_freq_f32,
    inv_freq_f64,
    attention_factor: common::unit_attention,
    validate: common::no_checks,
    import: |c, d| {
        c.scale = d.need(d.dict.positive_f64("factor")?, "factor")?;
        Ok(d.original_or_max())
    },
    hf_train_len: HfKey::Rope("original_max_position_embeddings"),
    details: common::no_details,
};

impl Method {
    /// Position interpolation.
    pub const PI: Method = Method(&DEF);
}
