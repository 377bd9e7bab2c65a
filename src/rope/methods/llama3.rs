//! Llama-3 scaling (docs/schedules.md#llama3), transformers' `_compute_llama3_parameters`:
//! wavelength bands kept, interpolated, or blended in between.

use super::common;
use crate::rope::ScheduleConfig;
use crate::rope::config::{HfKey, Kind, Method, MethodDef, Param, Range, Slider, relation_error};
use crate::rope::params::{BLANK, getter, setter};
use std::f64::consts::PI;

const FACTOR: Kind = Kind::Number {
    valid: Range {
        min: 0.0,
        min_strict: true,
        max: f64::INFINITY,
        max_strict: false,
    },
    integer: false,
    even: false,
};

const FACTOR_SLIDER: Option<Slider> = Some(Slider {
    min: 0.1,
    max: 64.0,
    log: true,
    step: 0.0,
});

/// `lambda_low = L / low_freq_factor`: longer wavelengths are interpolated.
pub static LOW_FREQ_FACTOR: Param = Param {
    key: "low_freq_factor",
    label: "low_freq_factor",
    doc: "Llama-3: wavelengths above L / low_freq_factor are divided by s",
    kind: FACTOR,
    slider: FACTOR_SLIDER,
    hf: HfKey::Rope("low_freq_factor"),
    get: getter!(number low_freq_factor),
    set: setter!(number low_freq_factor),
    ..BLANK
};

/// `lambda_high = L / high_freq_factor`: shorter wavelengths are kept.
pub static HIGH_FREQ_FACTOR: Param = Param {
    key: "high_freq_factor",
    label: "high_freq_factor",
    doc: "Llama-3: wavelengths below L / high_freq_factor are kept (must exceed low_freq_factor)",
    kind: FACTOR,
    slider: FACTOR_SLIDER,
    hf: HfKey::Rope("high_freq_factor"),
    relation: Some(|c| {
        if c.high_freq_factor <= c.low_freq_factor {
            Err(relation_error(
                "high_freq_factor",
                "must be greater than ",
                "low_freq_factor",
                format!(" ({}) (got {})", c.low_freq_factor, c.high_freq_factor),
            ))
        } else {
            Ok(())
        }
    }),
    get: getter!(number high_freq_factor),
    set: setter!(number high_freq_factor),
    ..BLANK
};

fn inv_freq_f32(c: &ScheduleConfig) -> Vec<f32> {
    let l = c.train_len as f64;
    let (lf, hf, s) = (c.low_freq_factor, c.high_freq_factor, c.scale);
    let (low_wl, high_wl) = (l / lf, l / hf);
    let two_pi32 = (2.0 * PI) as f32;
    common::default_f32(c.base, c.rotary_dim())
        .into_iter()
        .map(|inv| {
            let wl = two_pi32 / inv;
            if wl > low_wl as f32 {
                inv / s as f32
            } else if wl < high_wl as f32 {
                inv
            } else {
                let k = (l as f32 / wl - lf as f32) / (hf - lf) as f32;
                (1.0 - k) * inv / s as f32 + k * inv
            }
        })
        .collect()
}

fn inv_freq_f64(c: &ScheduleConfig) -> Vec<f64> {
    let l = c.train_len as f64;
    let (lf, hf, s) = (c.low_freq_factor, c.high_freq_factor, c.scale);
    let (low_wl, high_wl) = (l / lf, l / hf);
    common::default_f64(c.base, c.rotary_dim())
        .into_iter()
        .map(|inv| {
            let wl = 2.0 * PI / inv;
            if wl > low_wl {
                inv / s
            } else if wl < high_wl {
                inv
            } else {
                let k = (l / wl - lf) / (hf - lf);
                (1.0 - k) * inv / s + k * inv
            }
        })
        .collect()
}

/// Llama-3 scaling.
pub static DEF: MethodDef = MethodDef {
    id: "llama3",
    aliases: &[],
    label: "Llama-3",
    summary: "Llama-3: wavelengths below L/high kept, above L/low divided by s, blended between",
    transformers_type: Some("llama3"),
    docs_anchor: "schedules.md#llama3",
    params: &[&LOW_FREQ_FACTOR, &HIGH_FREQ_FACTOR],
    full_head: false,
    inv_freq_f32,
    inv_freq_f64,
    attention_factor: common::unit_attention,
    validate: common::no_checks,
    import: |c, d| {
        c.scale = d.need(d.dict.positive_f64("factor")?, "factor")?;
        c.low_freq_factor = d.need(d.dict.positive_f64("low_freq_factor")?, "low_freq_factor")?;
        c.high_freq_factor =
            d.need(d.dict.positive_f64("high_freq_factor")?, "high_freq_factor")?;
        Ok(d.original_or_max())
    },
    hf_train_len: HfKey::Rope("original_max_position_embeddings"),
    details: common::no_details,
};

impl Method {
    /// Llama-3 scaling.
    pub const LLAMA3: Method = Method(&DEF);
}

/// mlx-lm's `Llama3RoPE` periods (rope_utils.py:72-123), f32 in its order: `base**(2i/d)`,
/// times `factor` where `2 pi period > L/low_freq_factor`, the medium band (strict on both edges)
/// `period / ((1 - smooth)/factor + smooth)`; mx.fast.rope inverts them.
pub fn mlx_periods(c: &ScheduleConfig) -> Vec<f32> {
    let l = c.train_len as f32;
    let (lf, hf, s) = (
        c.low_freq_factor as f32,
        c.high_freq_factor as f32,
        c.scale as f32,
    );
    let (low_wl, high_wl) = (
        (c.train_len as f64 / c.low_freq_factor) as f32,
        (c.train_len as f64 / c.high_freq_factor) as f32,
    );
    let two_pi = (2.0 * PI) as f32;
    common::pos_freqs_f32(c.base, c.rotary_dim(), c.rotary_dim() / 2)
        .into_iter()
        .map(|p| {
            let wl = two_pi * p;
            let f = if wl > low_wl { p * s } else { p };
            if wl > high_wl && wl < low_wl {
                let smooth = (l / wl - lf) / (hf - lf);
                f / ((1.0 - smooth) / s + smooth)
            } else {
                f
            }
        })
        .collect()
}

/// llama.cpp's `rope_freqs` for a llama3 section (`LlamaModel.generate_extra_tensors`,
/// conversion/llama.py:298-326): per pair the divisor 1, `factor`, or
/// `1 / ((1 - smooth)/factor + smooth)`, from transformers' default frequencies in torch f32.
pub fn llama_cpp_rope_freqs(c: &ScheduleConfig) -> Vec<f32> {
    let l = c.train_len as f64;
    let (lf, hf, s) = (c.low_freq_factor, c.high_freq_factor, c.scale);
    let (low_wl, high_wl) = (l / lf, l / hf);
    let two_pi = (2.0 * PI) as f32;
    common::default_f32(c.base, c.rotary_dim())
        .into_iter()
        .map(|inv| {
            let wl = two_pi / inv;
            if (wl as f64) < high_wl {
                1.0
            } else if (wl as f64) > low_wl {
                s as f32
            } else {
                let smooth = (l as f32 / wl - lf as f32) / (hf - lf) as f32;
                1.0f32 / ((1.0f32 - smooth) / s as f32 + smooth)
            }
        })
        .collect()
}
