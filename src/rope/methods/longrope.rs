//! LongRoPE (docs/schedules.md#longrope), transformers' `_compute_longrope_parameters`:
//! per-pair rescale factors, the long list beyond the original length.

use super::common;
use crate::rope::ScheduleConfig;
use crate::rope::config::{HfKey, Kind, Method, MethodDef, Param, Range};
use crate::rope::error::ConfigError;
use crate::rope::hf_dict::{ImportError, RopeDict};
use crate::rope::params::{ATTENTION_FACTOR, BLANK, SEQ_LEN, getter, setter};
use serde_json::json;

const FACTORS: Kind = Kind::PairList {
    valid: Range {
        min: 0.0,
        min_strict: true,
        max: f64::INFINITY,
        max_strict: false,
    },
};

/// Divisors up to the original length.
pub static SHORT_FACTOR: Param = Param {
    key: "short_factor",
    label: "short factors",
    doc: "LongRoPE: per-pair divisors used up to the original length (rotary dim / 2 numbers, \
          comma-separated; none: 1 for every pair)",
    kind: FACTORS,
    hf: HfKey::Rope("short_factor"),
    get: getter!(list short_factor),
    set: setter!(list short_factor),
    ..BLANK
};

/// Divisors beyond the original length.
pub static LONG_FACTOR: Param = Param {
    key: "long_factor",
    label: "long factors",
    doc: "LongRoPE: per-pair divisors used beyond the original length (rotary dim / 2 numbers, \
          comma-separated; none: 1 for every pair)",
    kind: FACTORS,
    hf: HfKey::Rope("long_factor"),
    get: getter!(list long_factor),
    set: setter!(list long_factor),
    ..BLANK
};

/// The attention factor: the explicit one when given, else `sqrt(1 + ln(s) / ln(L_orig))` for
/// s > 1 and 1 otherwise (`L_orig` = `train_len`).
pub fn attention_factor(c: &ScheduleConfig) -> f64 {
    if let Some(a) = c.attention_factor {
        a
    } else if c.scale <= 1.0 {
        1.0
    } else {
        (1.0 + c.scale.ln() / (c.train_len as f64).ln()).sqrt()
    }
}

/// Whether the long factors are in use: `seq_len > train_len` (the original length), as
/// transformers decides per forward pass.
pub fn uses_long_factors(c: &ScheduleConfig) -> bool {
    c.seq_len > c.train_len
}

/// The factor list in use.
fn factors(c: &ScheduleConfig) -> &[f64] {
    if uses_long_factors(c) {
        &c.long_factor
    } else {
        &c.short_factor
    }
}

/// `1 / (ext_i * b^(2i/d))`, f32 as transformers.
fn inv_freq_f32(c: &ScheduleConfig) -> Vec<f32> {
    let dim = c.rotary_dim();
    let ext = factors(c);
    common::pos_freqs_f32(c.base, dim, dim / 2)
        .iter()
        .enumerate()
        .map(|(i, &p)| 1.0f32 / (ext.get(i).copied().unwrap_or(1.0) as f32 * p))
        .collect()
}

fn inv_freq_f64(c: &ScheduleConfig) -> Vec<f64> {
    let dim = c.rotary_dim();
    let ext = factors(c);
    common::pos_freqs_f64(c.base, dim, dim / 2)
        .iter()
        .enumerate()
        .map(|(i, &p)| 1.0 / (ext.get(i).copied().unwrap_or(1.0) * p))
        .collect()
}

/// The attention factor's `ln L` needs L >= 2 when it is computed.
fn validate(c: &ScheduleConfig) -> Result<(), ConfigError> {
    if c.train_len < 2 && c.scale > 1.0 {
        return Err(ConfigError::new(
            "train_len",
            format!(
                "must be at least 2 for LongRoPE's attention factor sqrt(1 + ln s / ln L) (got {})",
                c.train_len
            ),
        ));
    }
    Ok(())
}

/// The two factor lists (each rotary dim / 2 numbers), the factor and the attention factor.
fn import(c: &mut ScheduleConfig, d: &RopeDict) -> Result<u64, ImportError> {
    let ratio = d.max_pos as f64 / d.original_or_max() as f64;
    c.scale = d.dict.positive_f64("factor")?.unwrap_or(ratio);
    c.attention_factor = d.dict.positive_f64("attention_factor")?;
    let rot = c.rotary_dim();
    for key in ["short_factor", "long_factor"] {
        let list = d.dict.positive_list(key)?.ok_or_else(|| {
            ImportError::new(
                d.dict.field(key),
                format!(
                    "missing; longrope needs a list of rotary dim / 2 = {} numbers",
                    rot / 2
                ),
            )
        })?;
        if list.len() != rot / 2 {
            return Err(ImportError::new(
                d.dict.field(key),
                format!(
                    "must hold rotary dim / 2 = {} numbers (head_dim {} x partial_rotary_factor {}), got {}",
                    rot / 2,
                    c.dim,
                    c.partial_rotary_factor,
                    list.len()
                ),
            ));
        }
        if key == "short_factor" {
            c.short_factor = list;
        } else {
            c.long_factor = list;
        }
    }
    Ok(d.original_or_max())
}

/// LongRoPE.
pub static DEF: MethodDef = MethodDef {
    id: "longrope",
    aliases: &[],
    label: "LongRoPE",
    summary: "LongRoPE: per-pair divisors, the short list up to L and the long list beyond",
    transformers_type: Some("longrope"),
    docs_anchor: "schedules.md#longrope",
    params: &[&SEQ_LEN, &SHORT_FACTOR, &LONG_FACTOR, &ATTENTION_FACTOR],
    full_head: false,
    inv_freq_f32,
    inv_freq_f64,
    attention_factor,
    validate,
    import,
    hf_train_len: HfKey::Rope("original_max_position_embeddings"),
    details: |c| {
        let which = if uses_long_factors(c) { "long" } else { "short" };
        vec![("longrope_factors", json!(which))]
    },
};

impl Method {
    /// LongRoPE.
    pub const LONGROPE: Method = Method(&DEF);
}

/// The LongRoPE attention factor vLLM's `Phi3LongRoPEScaledRotaryEmbedding`, llama.cpp's Phi-3
/// converter and mlx-lm's `SuScaledRoPE` compute: always from
/// `max_position_embeddings / original`, never from the section's `factor` or
/// `attention_factor` (vLLM phi3_long_rope_scaled_rope.py:67, llama.cpp conversion/phi.py:196).
pub fn max_ratio_attention_factor(max_pos: u64, original: u64) -> f64 {
    let s = max_pos as f64 / original as f64;
    if s <= 1.0 {
        1.0
    } else {
        (1.0 + s.ln() / (original as f64).ln()).sqrt()
    }
}
