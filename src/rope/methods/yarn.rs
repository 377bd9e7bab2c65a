//! YaRN (docs/schedules.md#yarn), transformers' `_compute_yarn_parameters`: NTK-by-parts (a
//! ramp between extrapolated high-frequency and interpolated low-frequency features) plus an
//! attention temperature.

use super::common;
use crate::rope::ScheduleConfig;
use crate::rope::config::{HfKey, Kind, Method, MethodDef, Param, Range, Slider};
use crate::rope::params::{ATTENTION_FACTOR, BLANK, getter, setter};
use serde_json::json;
use std::f64::consts::PI;

const POSITIVE: Kind = Kind::Number {
    valid: Range {
        min: 0.0,
        min_strict: true,
        max: f64::INFINITY,
        max_strict: false,
    },
    integer: false,
    even: false,
};

/// Rotations bounding the extrapolated (high-frequency) band.
pub static BETA_FAST: Param = Param {
    key: "beta_fast",
    label: "beta_fast",
    unit: "rotations",
    doc: "YaRN: rotations within L where extrapolation ends (high-frequency bound)",
    kind: POSITIVE,
    slider: Some(Slider {
        min: 0.1,
        max: 256.0,
        log: true,
        step: 0.0,
    }),
    hf: HfKey::Rope("beta_fast"),
    get: getter!(number beta_fast),
    set: setter!(number beta_fast),
    ..BLANK
};

/// Rotations bounding the interpolated (low-frequency) band.
pub static BETA_SLOW: Param = Param {
    key: "beta_slow",
    label: "beta_slow",
    unit: "rotations",
    doc: "YaRN: rotations within L where interpolation starts (low-frequency bound)",
    kind: POSITIVE,
    slider: Some(Slider {
        min: 0.01,
        max: 64.0,
        log: true,
        step: 0.0,
    }),
    hf: HfKey::Rope("beta_slow"),
    get: getter!(number beta_slow),
    set: setter!(number beta_slow),
    ..BLANK
};

/// Floor/ceil the correction range.
pub static TRUNCATE: Param = Param {
    key: "truncate",
    label: "truncate (floor/ceil the range)",
    doc: "YaRN: floor and ceil the correction range (false: the fractional range, as gpt-oss)",
    kind: Kind::Flag,
    hf: HfKey::Rope("truncate"),
    get: getter!(flag truncate),
    set: setter!(flag truncate),
    ..BLANK
};

/// DeepSeek's `mscale`.
pub static MSCALE: Param = Param {
    key: "mscale",
    label: "mscale",
    doc: "YaRN: mscale of the attention factor get_mscale(s, mscale) / get_mscale(s, mscale_all_dim)",
    kind: Kind::Optional { valid: Range::ANY },
    hf: HfKey::Rope("mscale"),
    get: getter!(optional mscale),
    set: setter!(optional mscale),
    ..BLANK
};

/// DeepSeek's `mscale_all_dim`.
pub static MSCALE_ALL_DIM: Param = Param {
    key: "mscale_all_dim",
    label: "mscale_all_dim",
    doc: "YaRN: mscale_all_dim of the attention factor (used together with mscale)",
    kind: Kind::Optional { valid: Range::ANY },
    hf: HfKey::Rope("mscale_all_dim"),
    get: getter!(optional mscale_all_dim),
    set: setter!(optional mscale_all_dim),
    ..BLANK
};

/// YaRN correction dimension `D(r) = d ln(L / (2 pi r)) / (2 ln b)`.
pub fn correction_dim(rotations: f64, dim: usize, base: f64, train_len: u64) -> f64 {
    (dim as f64 * (train_len as f64 / (rotations * 2.0 * PI)).ln()) / (2.0 * base.ln())
}

/// YaRN correction range `(low, high)` after optional floor/ceil and clamping to `[0, d-1]`
/// (d the rotary dimension).
pub fn correction_range(c: &ScheduleConfig) -> (f64, f64) {
    let dim = c.rotary_dim();
    let mut low = correction_dim(c.beta_fast, dim, c.base, c.train_len);
    let mut high = correction_dim(c.beta_slow, dim, c.base, c.train_len);
    if c.truncate {
        low = low.floor();
        high = high.ceil();
    }
    (low.max(0.0), high.min(dim as f64 - 1.0))
}

/// transformers' `get_mscale(scale, mscale)`: `0.1 * mscale * ln(s) + 1` for s > 1, else 1.
pub fn get_mscale(scale: f64, mscale: f64) -> f64 {
    if scale <= 1.0 {
        1.0
    } else {
        0.1 * mscale * scale.ln() + 1.0
    }
}

/// The attention factor: the explicit `attention_factor` when given, else
/// `get_mscale(s, mscale) / get_mscale(s, mscale_all_dim)` when both are non-zero, else
/// `get_mscale(s) = 0.1 ln(s) + 1` (transformers' order of precedence).
pub fn attention_factor(c: &ScheduleConfig) -> f64 {
    if let Some(a) = c.attention_factor {
        return a;
    }
    match (c.mscale, c.mscale_all_dim) {
        (Some(m), Some(m_all)) if m != 0.0 && m_all != 0.0 => {
            get_mscale(c.scale, m) / get_mscale(c.scale, m_all)
        }
        _ => get_mscale(c.scale, 1.0),
    }
}

/// The ramp bounds as the formula uses them (`high` nudged when the range is empty).
fn ramp_bounds(c: &ScheduleConfig) -> (f64, f64) {
    let (low, high) = correction_range(c);
    (low, if low == high { high + 0.001 } else { high })
}

/// f32, with transformers' operation order.
fn inv_freq_f32(c: &ScheduleConfig) -> Vec<f32> {
    let dim = c.rotary_dim();
    let (low, high) = ramp_bounds(c);
    let s32 = c.scale as f32;
    let (low32, span32) = (low as f32, (high - low) as f32);
    common::pos_freqs_f32(c.base, dim, dim / 2)
        .iter()
        .enumerate()
        .map(|(i, &pos)| {
            let extrap = 1.0f32 / pos;
            let interp = 1.0f32 / (s32 * pos);
            let ramp = ((i as f32 - low32) / span32).clamp(0.0, 1.0);
            let mask = 1.0f32 - ramp;
            interp * (1.0f32 - mask) + extrap * mask
        })
        .collect()
}

fn inv_freq_f64(c: &ScheduleConfig) -> Vec<f64> {
    let dim = c.rotary_dim();
    let (low, high) = ramp_bounds(c);
    common::pos_freqs_f64(c.base, dim, dim / 2)
        .iter()
        .enumerate()
        .map(|(i, &pos)| {
            let ramp = ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
            let mask = 1.0 - ramp;
            let e = 1.0 / pos;
            e / c.scale * (1.0 - mask) + e * mask
        })
        .collect()
}

/// YaRN.
pub static DEF: MethodDef = MethodDef {
    id: "yarn",
    aliases: &[],
    label: "YaRN",
    summary: "YaRN: NTK-by-parts ramp between extrapolated and interpolated features, plus a \
              temperature on cos and sin",
    transformers_type: Some("yarn"),
    docs_anchor: "schedules.md#yarn",
    params: &[
        &BETA_FAST,
        &BETA_SLOW,
        &TRUNCATE,
        &MSCALE,
        &MSCALE_ALL_DIM,
        &ATTENTION_FACTOR,
    ],
    full_head: false,
    inv_freq_f32,
    inv_freq_f64,
    attention_factor,
    validate: common::no_checks,
    import: |c, d| {
        // without a factor, transformers uses max_position_embeddings / original length
        let ratio = d.max_pos as f64 / d.original_or_max() as f64;
        c.scale = d.dict.positive_f64("factor")?.unwrap_or(ratio);
        // `or 32` / `or 1` in transformers: 0 and null take the defaults
        c.beta_fast = d
            .dict
            .finite_f64("beta_fast")?
            .filter(|v| *v != 0.0)
            .unwrap_or(32.0);
        c.beta_slow = d
            .dict
            .finite_f64("beta_slow")?
            .filter(|v| *v != 0.0)
            .unwrap_or(1.0);
        c.mscale = d.dict.finite_f64("mscale")?;
        c.mscale_all_dim = d.dict.finite_f64("mscale_all_dim")?;
        c.attention_factor = d.dict.positive_f64("attention_factor")?;
        c.truncate = d.truncate_from.bool("truncate")?.unwrap_or(true);
        Ok(d.original_or_max())
    },
    hf_train_len: HfKey::Rope("original_max_position_embeddings"),
    details: |c| {
        let (low, high) = correction_range(c);
        vec![("yarn_correction_range", json!([low, high]))]
    },
};

impl Method {
    /// YaRN.
    pub const YARN: Method = Method(&DEF);
}


/// mlx-lm's `YarnRoPE` / `DeepseekV2YarnRotaryEmbedding` periods (rope_utils.py:126-195): the
/// correction range always floored and ceiled, clamped to `[0, d-1]`; ramp over `arange(d/2)`;
/// `(inter * extra) / (inter * mask + extra * (1 - mask))` in f32, inverted by mx.fast.rope.
pub fn mlx_periods(c: &ScheduleConfig) -> Vec<f32> {
    let dim = c.rotary_dim();
    let low = correction_dim(c.beta_fast, dim, c.base, c.train_len).floor().max(0.0);
    let mut high = correction_dim(c.beta_slow, dim, c.base, c.train_len)
        .ceil()
        .min(dim as f64 - 1.0);
    if low == high {
        high += 0.001;
    }
    let s32 = c.scale as f32;
    common::pos_freqs_f32(c.base, dim, dim / 2)
        .into_iter()
        .enumerate()
        .map(|(i, extra)| {
            let inter = s32 * extra;
            let ramp = ((i as f32 - low as f32) / (high - low) as f32).clamp(0.0, 1.0);
            let mask = 1.0f32 - ramp;
            (inter * extra) / (inter * mask + extra * (1.0f32 - mask))
        })
        .collect()
}

/// ggml's `ggml_rope_yarn_corr_dims` (ggml/src/ggml.c:4478-4490) in f32: always floored and
/// ceiled, clamped to `[0, n_dims - 1]`.
pub fn ggml_corr_dims(n_dims: usize, n_ctx_orig: u64, base: f32, beta_fast: f32, beta_slow: f32) -> (f32, f32) {
    let dim = |r: f32| {
        let x = n_ctx_orig as f32 / (r * 2.0f32 * std::f32::consts::PI);
        n_dims as f32 * ((x as f64).ln() as f32) / (2.0f32 * ((base as f64).ln() as f32))
    };
    let start = dim(beta_fast).floor();
    let end = dim(beta_slow).ceil();
    (start.max(0.0), end.min(n_dims as f32 - 1.0))
}
