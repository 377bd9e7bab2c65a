//! Plain RoPE (docs/schedules.md#rope): `theta_i = b^(-2i/d)`, transformers' `default`.

use super::common;
use crate::rope::config::{HfKey, Method, MethodDef};

/// Plain RoPE.
pub static DEF: MethodDef = MethodDef {
    id: "rope",
    aliases: &["default"],
    label: "RoPE",
    summary: "plain RoPE: theta_i = b^(-2i/d) on the rotary dimension",
    transformers_type: Some("default"),
    docs_anchor: "schedules.md#rope",
    params: &[],
    full_head: false,
    inv_freq_f32: |c| common::default_f32(c.base, c.rotary_dim()),
    inv_freq_f64: |c| common::default_f64(c.base, c.rotary_dim()),
    attention_factor: common::unit_attention,
    validate: common::no_checks,
    import: |_, d| Ok(d.original_or_max()),
    hf_train_len: HfKey::Rope("original_max_position_embeddings"),
    details: common::no_details,
};

impl Method {
    /// Plain RoPE.
    pub const ROPE: Method = Method(&DEF);
}
