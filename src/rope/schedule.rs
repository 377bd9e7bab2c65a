//! Schedule configuration, validation and the frequency schedules of every scaling method.
//!
//! Each method is one variant of [`Method`] plus one function that turns a validated
//! [`ScheduleConfig`] into per-feature f32 inverse frequencies, computed with the same
//! operation order as Hugging Face transformers' `modeling_rope_utils` (the behaviour most
//! users run), and an f64 twin of the same formula for analysis.

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use std::fmt;

/// Largest supported rotary dimension.
pub const MAX_DIM: usize = 1024;
/// Largest supported evaluation length (the gap analysis is O(L') per feature in memory).
pub const MAX_EVAL_LEN: u64 = 1 << 24;

/// A frequency schedule (docs/schedules.md). Resonance rounding is a separate modifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum Method {
    /// Plain RoPE: `theta_i = b^(-2i/d)` (transformers' `default`).
    #[serde(alias = "default")]
    #[cfg_attr(not(target_arch = "wasm32"), value(alias = "default"))]
    Rope,
    /// Position interpolation (transformers' `linear`): every frequency divided by the scale.
    #[serde(alias = "linear")]
    #[cfg_attr(not(target_arch = "wasm32"), value(alias = "linear"))]
    Pi,
    /// NTK-aware: the base is raised to `b * s^(d/(d-2))`.
    Ntk,
    /// Dynamic NTK (transformers' `dynamic`): the NTK base depends on the current sequence length.
    #[serde(alias = "dynamic")]
    #[cfg_attr(not(target_arch = "wasm32"), value(alias = "dynamic"))]
    DynamicNtk,
    /// YaRN: NTK-by-parts ramp plus attention temperature.
    Yarn,
    /// Llama-3 wavelength-banded scaling.
    Llama3,
    /// LongRoPE (Phi-3): per-pair rescale factors, the long list beyond the original length.
    Longrope,
    /// Proportional RoPE: only the first fraction of the pairs rotates, the rest have frequency 0.
    Proportional,
}

impl Method {
    /// All methods, in the order the UI lists them.
    pub const ALL: [Method; 8] = [
        Method::Rope,
        Method::Pi,
        Method::Ntk,
        Method::DynamicNtk,
        Method::Yarn,
        Method::Llama3,
        Method::Longrope,
        Method::Proportional,
    ];

    /// The CLI / JSON name of the method.
    pub fn name(self) -> &'static str {
        match self {
            Method::Rope => "rope",
            Method::Pi => "pi",
            Method::Ntk => "ntk",
            Method::DynamicNtk => "dynamic-ntk",
            Method::Yarn => "yarn",
            Method::Llama3 => "llama3",
            Method::Longrope => "longrope",
            Method::Proportional => "proportional",
        }
    }

    /// Parses a CLI / JSON name; transformers' `rope_type` names are accepted too.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .or_else(|| Method::from_rope_type(name))
    }

    /// transformers' `rope_type` of this schedule (`default`, `linear`, `dynamic`, ...); `None`
    /// for the lab's NTK-aware schedule, which transformers does not compute.
    pub fn rope_type(self) -> Option<&'static str> {
        match self {
            Method::Rope => Some("default"),
            Method::Pi => Some("linear"),
            Method::Ntk => None,
            Method::DynamicNtk => Some("dynamic"),
            Method::Yarn => Some("yarn"),
            Method::Llama3 => Some("llama3"),
            Method::Longrope => Some("longrope"),
            Method::Proportional => Some("proportional"),
        }
    }

    /// The schedule for a transformers `rope_type` name (as in a model's config.json).
    pub fn from_rope_type(rope_type: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.rope_type() == Some(rope_type))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the d/2 rotation pairs are laid out in a d-dimensional vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum PairLayout {
    /// Llama / HF `rotate_half`: feature i rotates coordinates (i, i + d/2).
    #[default]
    HalfSplit,
    /// GPT-J style: feature i rotates coordinates (2i, 2i+1).
    Interleaved,
}

impl PairLayout {
    /// The coordinates (x, y) of a d-dimensional vector rotated by feature `i`.
    pub fn pair(self, i: usize, dim: usize) -> (usize, usize) {
        match self {
            PairLayout::HalfSplit => (i, i + dim / 2),
            PairLayout::Interleaved => (2 * i, 2 * i + 1),
        }
    }
}

/// Everything that defines a RoPE schedule. Build it, then call [`ScheduleConfig::validate`]
/// (done by [`crate::rope::Schedule::new`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduleConfig {
    /// Frequency schedule.
    pub method: Method,
    /// Round every wavelength to an integer after the schedule (Resonance RoPE).
    pub resonance: bool,
    /// Rotary head dimension d (even).
    pub dim: usize,
    /// RoPE base b.
    pub base: f64,
    /// Pre-training (original) context length L.
    pub train_len: u64,
    /// Evaluation length L'.
    pub eval_len: u64,
    /// Scale factor s (usually L'/L).
    pub scale: f64,
    /// YaRN: number of rotations where extrapolation ends (high-frequency bound).
    pub beta_fast: f64,
    /// YaRN: number of rotations where interpolation starts (low-frequency bound).
    pub beta_slow: f64,
    /// YaRN: floor/ceil the correction range.
    pub truncate: bool,
    /// Llama-3: low-frequency factor.
    pub low_freq_factor: f64,
    /// Llama-3: high-frequency factor.
    pub high_freq_factor: f64,
    /// Dynamic NTK: current sequence length. LongRoPE: picks the long factors when it exceeds
    /// `train_len` (the original length).
    pub seq_len: u64,
    /// Pair layout used when features are expanded to d-dimensional vectors.
    pub layout: PairLayout,
    /// Fraction of the head dimension that rotates: the rotary dimension is
    /// `int(dim * partial_rotary_factor)` (transformers' `partial_rotary_factor`). Proportional
    /// keeps d/2 features and gives the non-rotating pairs frequency 0 instead.
    pub partial_rotary_factor: f64,
    /// YaRN: `mscale` of `get_mscale` (DeepSeek-style attention factor); used with `mscale_all_dim`.
    pub mscale: Option<f64>,
    /// YaRN: `mscale_all_dim`; the attention factor is `get_mscale(s, mscale) /
    /// get_mscale(s, mscale_all_dim)` when both are non-zero.
    pub mscale_all_dim: Option<f64>,
    /// YaRN / LongRoPE: an explicit attention factor that overrides the computed one.
    pub attention_factor: Option<f64>,
    /// LongRoPE: per-pair divisors used up to the original length (rotary dim / 2 numbers; empty
    /// means 1 for every pair).
    pub short_factor: Vec<f64>,
    /// LongRoPE: per-pair divisors used beyond the original length (rotary dim / 2 numbers; empty
    /// means 1 for every pair).
    pub long_factor: Vec<f64>,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            method: Method::Rope,
            resonance: false,
            dim: 64,
            base: 10000.0,
            train_len: 64,
            eval_len: 256,
            scale: 4.0,
            beta_fast: 32.0,
            beta_slow: 1.0,
            truncate: true,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            seq_len: 256,
            layout: PairLayout::HalfSplit,
            partial_rotary_factor: 1.0,
            mscale: None,
            mscale_all_dim: None,
            attention_factor: None,
            short_factor: Vec::new(),
            long_factor: Vec::new(),
        }
    }
}

/// A rejected configuration value: which option, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    /// The option's CLI name without dashes (e.g. `dim`), also used to place UI messages.
    pub field: &'static str,
    /// What is wrong and the valid range.
    pub message: String,
}

impl ConfigError {
    /// Creates an error for `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid --{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn finite_at_least(field: &'static str, v: f64, min: f64, strict: bool) -> Result<(), ConfigError> {
    let ok = v.is_finite() && if strict { v > min } else { v >= min };
    if ok {
        Ok(())
    } else {
        let op = if strict { ">" } else { ">=" };
        Err(ConfigError::new(
            field,
            format!("must be a finite number {op} {min} (got {v})"),
        ))
    }
}

impl ScheduleConfig {
    /// A config with `eval_len = 4 * train_len`, `scale = eval_len / train_len`, `seq_len = eval_len`.
    pub fn with_lengths(
        method: Method,
        dim: usize,
        base: f64,
        train_len: u64,
        eval_len: u64,
    ) -> Self {
        ScheduleConfig {
            method,
            dim,
            base,
            train_len,
            eval_len,
            scale: eval_len as f64 / train_len.max(1) as f64,
            seq_len: eval_len,
            ..ScheduleConfig::default()
        }
    }

    /// Checks every field; the error names the offending option and its valid range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_sizes()?;
        self.validate_method_parameters()?;
        self.validate_rotary()
    }

    /// Head dimension, base, the three lengths and the scale.
    fn validate_sizes(&self) -> Result<(), ConfigError> {
        if self.dim < 2 || self.dim > MAX_DIM || !self.dim.is_multiple_of(2) {
            return Err(ConfigError::new(
                "dim",
                format!("must be even and in 2..={MAX_DIM} (got {})", self.dim),
            ));
        }
        finite_at_least("base", self.base, 1.0, true)?;
        if self.base > 1e12 {
            return Err(ConfigError::new(
                "base",
                format!("must be at most 1e12 (got {})", self.base),
            ));
        }
        if self.train_len < 1 || self.train_len > MAX_EVAL_LEN {
            return Err(ConfigError::new(
                "train-len",
                format!("must be in 1..={MAX_EVAL_LEN} (got {})", self.train_len),
            ));
        }
        if self.eval_len < self.train_len || self.eval_len > MAX_EVAL_LEN {
            return Err(ConfigError::new(
                "eval-len",
                format!(
                    "must be in train-len..={MAX_EVAL_LEN}, i.e. {}..={MAX_EVAL_LEN} (got {})",
                    self.train_len, self.eval_len
                ),
            ));
        }
        finite_at_least("scale", self.scale, 1.0, false)?;
        if self.scale > 1e6 {
            return Err(ConfigError::new(
                "scale",
                format!("must be at most 1e6 (got {})", self.scale),
            ));
        }
        if self.seq_len < 1 || self.seq_len > MAX_EVAL_LEN {
            return Err(ConfigError::new(
                "seq-len",
                format!("must be in 1..={MAX_EVAL_LEN} (got {})", self.seq_len),
            ));
        }
        Ok(())
    }

    /// YaRN's betas and Llama-3's factors (checked whatever the method, so that switching the
    /// method never reveals a bad value), and LongRoPE's minimum length.
    fn validate_method_parameters(&self) -> Result<(), ConfigError> {
        finite_at_least("beta-fast", self.beta_fast, 0.0, true)?;
        finite_at_least("beta-slow", self.beta_slow, 0.0, true)?;
        finite_at_least("low-freq-factor", self.low_freq_factor, 0.0, true)?;
        finite_at_least("high-freq-factor", self.high_freq_factor, 0.0, true)?;
        if self.high_freq_factor <= self.low_freq_factor {
            return Err(ConfigError::new(
                "high-freq-factor",
                format!(
                    "must be greater than --low-freq-factor ({}) (got {})",
                    self.low_freq_factor, self.high_freq_factor
                ),
            ));
        }
        if self.method == Method::Longrope && self.train_len < 2 && self.scale > 1.0 {
            return Err(ConfigError::new(
                "train-len",
                format!(
                    "must be at least 2 for LongRoPE's attention factor sqrt(1 + ln s / ln L) (got {})",
                    self.train_len
                ),
            ));
        }
        Ok(())
    }

    /// The partial rotary factor, the attention-factor inputs and the LongRoPE factor lists.
    fn validate_rotary(&self) -> Result<(), ConfigError> {
        let p = self.partial_rotary_factor;
        if !(p.is_finite() && p > 0.0 && p <= 1.0) {
            return Err(ConfigError::new(
                "partial-rotary-factor",
                format!("must be in (0, 1] (got {p})"),
            ));
        }
        let rot = self.rotary_dim();
        if self.method != Method::Proportional && (rot < 2 || !rot.is_multiple_of(2)) {
            return Err(ConfigError::new(
                "partial-rotary-factor",
                format!(
                    "the rotary dimension int(dim * partial-rotary-factor) = int({} * {p}) = {rot} \
                     must be even and at least 2",
                    self.dim
                ),
            ));
        }
        for (field, v) in [
            ("mscale", self.mscale),
            ("mscale-all-dim", self.mscale_all_dim),
        ] {
            if let Some(v) = v
                && !v.is_finite()
            {
                return Err(ConfigError::new(
                    field,
                    format!("must be a finite number (got {v})"),
                ));
            }
        }
        if let Some(a) = self.attention_factor {
            finite_at_least("attention-factor", a, 0.0, true)?;
        }
        for (field, list) in [
            ("short-factor", &self.short_factor),
            ("long-factor", &self.long_factor),
        ] {
            if !list.is_empty() && list.len() != rot / 2 {
                return Err(ConfigError::new(
                    field,
                    format!(
                        "must hold rotary dim / 2 = {} numbers, one per pair (got {})",
                        rot / 2,
                        list.len()
                    ),
                ));
            }
            if let Some(v) = list.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                return Err(ConfigError::new(
                    field,
                    format!("every entry must be a finite number > 0 (got {v})"),
                ));
            }
        }
        Ok(())
    }

    /// The rotary dimension `int(dim * partial_rotary_factor)` as transformers computes it;
    /// Proportional RoPE always covers the whole head (`dim`).
    pub fn rotary_dim(&self) -> usize {
        if self.method == Method::Proportional {
            self.dim
        } else {
            (self.dim as f64 * self.partial_rotary_factor) as usize
        }
    }
}

/// Per-feature frequencies of one schedule before Resonance rounding.
#[derive(Clone, Debug, PartialEq)]
pub struct Frequencies {
    /// f32 inverse frequencies with transformers' operation order.
    pub inv_freq_f32: Vec<f32>,
    /// The same formula evaluated in f64.
    pub inv_freq_f64: Vec<f64>,
    /// Multiplier on both cos and sin (YaRN temperature; 1 otherwise).
    pub attention_factor: f64,
}

/// `pos_i = base^(2i/d)` in f32, as `base ** (arange(0, d, 2).float() / d)`, for the first
/// `pairs` pairs (`d/2` in every schedule but Proportional, which rotates fewer pairs).
fn pos_freqs_f32(base: f64, dim: usize, pairs: usize) -> Vec<f32> {
    let b = base as f32;
    (0..pairs)
        .map(|i| {
            let e = (2 * i) as f32 / dim as f32;
            // pow of two exact f32 inputs, correctly rounded to f32
            (b as f64).powf(e as f64) as f32
        })
        .collect()
}

fn pos_freqs_f64(base: f64, dim: usize, pairs: usize) -> Vec<f64> {
    (0..pairs)
        .map(|i| base.powf((2 * i) as f64 / dim as f64))
        .collect()
}

fn default_freqs(base: f64, dim: usize) -> Frequencies {
    Frequencies {
        inv_freq_f32: pos_freqs_f32(base, dim, dim / 2)
            .iter()
            .map(|p| 1.0f32 / p)
            .collect(),
        inv_freq_f64: pos_freqs_f64(base, dim, dim / 2)
            .iter()
            .map(|p| 1.0 / p)
            .collect(),
        attention_factor: 1.0,
    }
}

/// Plain RoPE on the rotary dimension (transformers' `default`, with `partial_rotary_factor`
/// as the models that use it compute it).
pub fn rope_freqs(c: &ScheduleConfig) -> Frequencies {
    default_freqs(c.base, c.rotary_dim())
}

/// Position interpolation: `inv_freq / s` (transformers' `linear`).
pub fn pi_freqs(c: &ScheduleConfig) -> Frequencies {
    let mut f = default_freqs(c.base, c.rotary_dim());
    let s32 = c.scale as f32;
    f.inv_freq_f32.iter_mut().for_each(|v| *v /= s32);
    f.inv_freq_f64.iter_mut().for_each(|v| *v /= c.scale);
    f
}

/// The NTK exponent `d/(d-2)`; for d = 2 the formula is singular and the base is left unchanged.
fn ntk_exponent(dim: usize) -> Option<f64> {
    (dim > 2).then(|| dim as f64 / (dim as f64 - 2.0))
}

/// NTK-aware: `b' = b * s^(d/(d-2))`.
pub fn ntk_freqs(c: &ScheduleConfig) -> Frequencies {
    let dim = c.rotary_dim();
    let base = match ntk_exponent(dim) {
        Some(e) => c.base * c.scale.powf(e),
        None => c.base,
    };
    default_freqs(base, dim)
}

/// Dynamic NTK: `b' = b * ((s*l*/L) - (s-1))^(d/(d-2))` with `l* = max(seq_len, L)`
/// (transformers' `dynamic`, where L is `max_position_embeddings`).
pub fn dynamic_ntk_freqs(c: &ScheduleConfig) -> Frequencies {
    let dim = c.rotary_dim();
    let l = c.seq_len.max(c.train_len) as f64;
    let base = match ntk_exponent(dim) {
        Some(e) => c.base * ((c.scale * l / c.train_len as f64) - (c.scale - 1.0)).powf(e),
        None => c.base,
    };
    default_freqs(base, dim)
}

/// YaRN correction dimension `D(r) = d ln(L / (2 pi r)) / (2 ln b)`.
pub fn yarn_correction_dim(rotations: f64, dim: usize, base: f64, train_len: u64) -> f64 {
    (dim as f64 * (train_len as f64 / (rotations * 2.0 * PI)).ln()) / (2.0 * base.ln())
}

/// YaRN correction range `(low, high)` after optional floor/ceil and clamping to `[0, d-1]`
/// (d the rotary dimension).
pub fn yarn_correction_range(c: &ScheduleConfig) -> (f64, f64) {
    let dim = c.rotary_dim();
    let mut low = yarn_correction_dim(c.beta_fast, dim, c.base, c.train_len);
    let mut high = yarn_correction_dim(c.beta_slow, dim, c.base, c.train_len);
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

/// YaRN attention factor `0.1 ln(s) + 1` for s > 1, else 1.
pub fn yarn_attention_factor(scale: f64) -> f64 {
    get_mscale(scale, 1.0)
}

/// The attention factor YaRN uses for `c`: the explicit `attention_factor` when given, else
/// `get_mscale(s, mscale) / get_mscale(s, mscale_all_dim)` when both are non-zero, else
/// `get_mscale(s)` (transformers' order of precedence).
pub fn yarn_config_attention_factor(c: &ScheduleConfig) -> f64 {
    if let Some(a) = c.attention_factor {
        return a;
    }
    match (c.mscale, c.mscale_all_dim) {
        (Some(m), Some(m_all)) if m != 0.0 && m_all != 0.0 => {
            get_mscale(c.scale, m) / get_mscale(c.scale, m_all)
        }
        _ => yarn_attention_factor(c.scale),
    }
}

/// YaRN (NTK-by-parts + temperature), transformers' `_compute_yarn_parameters`.
pub fn yarn_freqs(c: &ScheduleConfig) -> Frequencies {
    let dim = c.rotary_dim();
    let half = dim / 2;
    let (low, mut high) = yarn_correction_range(c);
    if low == high {
        high += 0.001;
    }
    let pos32 = pos_freqs_f32(c.base, dim, half);
    let pos64 = pos_freqs_f64(c.base, dim, half);
    let s32 = c.scale as f32;
    let (low32, span32) = (low as f32, (high - low) as f32);
    let mut inv32 = Vec::with_capacity(half);
    let mut inv64 = Vec::with_capacity(half);
    for i in 0..half {
        // f32, same operation order as transformers
        let extrap = 1.0f32 / pos32[i];
        let interp = 1.0f32 / (s32 * pos32[i]);
        let ramp = ((i as f32 - low32) / span32).clamp(0.0, 1.0);
        let mask = 1.0f32 - ramp;
        inv32.push(interp * (1.0f32 - mask) + extrap * mask);
        // f64 twin
        let ramp64 = ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
        let mask64 = 1.0 - ramp64;
        let e64 = 1.0 / pos64[i];
        inv64.push(e64 / c.scale * (1.0 - mask64) + e64 * mask64);
    }
    Frequencies {
        inv_freq_f32: inv32,
        inv_freq_f64: inv64,
        attention_factor: yarn_config_attention_factor(c),
    }
}

/// LongRoPE attention factor: the explicit `attention_factor` when given, else
/// `sqrt(1 + ln(s) / ln(L_orig))` for s > 1 and 1 otherwise (`L_orig` = `train_len`).
pub fn longrope_attention_factor(c: &ScheduleConfig) -> f64 {
    if let Some(a) = c.attention_factor {
        a
    } else if c.scale <= 1.0 {
        1.0
    } else {
        (1.0 + c.scale.ln() / (c.train_len as f64).ln()).sqrt()
    }
}

/// Whether LongRoPE uses its long factors: `seq_len > train_len` (the original length), as
/// transformers decides per forward pass.
pub fn longrope_uses_long_factors(c: &ScheduleConfig) -> bool {
    c.seq_len > c.train_len
}

/// LongRoPE, transformers' `_compute_longrope_parameters`: `1 / (ext_i * b^(2i/d))` with
/// `ext` the long factors when `seq_len > train_len`, else the short ones.
pub fn longrope_freqs(c: &ScheduleConfig) -> Frequencies {
    let dim = c.rotary_dim();
    let half = dim / 2;
    let list = if longrope_uses_long_factors(c) {
        &c.long_factor
    } else {
        &c.short_factor
    };
    let ext = |i: usize| list.get(i).copied().unwrap_or(1.0);
    let pos32 = pos_freqs_f32(c.base, dim, half);
    let pos64 = pos_freqs_f64(c.base, dim, half);
    Frequencies {
        inv_freq_f32: (0..half)
            .map(|i| 1.0f32 / (ext(i) as f32 * pos32[i]))
            .collect(),
        inv_freq_f64: (0..half).map(|i| 1.0 / (ext(i) * pos64[i])).collect(),
        attention_factor: longrope_attention_factor(c),
    }
}

/// Pairs that rotate under Proportional RoPE: `int(partial_rotary_factor * d // 2)`.
pub fn proportional_rotating_pairs(c: &ScheduleConfig) -> usize {
    ((c.partial_rotary_factor * c.dim as f64) / 2.0).floor() as usize
}

/// Proportional RoPE, transformers' `_compute_proportional_rope_parameters`: the first
/// `int(p * d // 2)` pairs get `b^(-2i/d)` (exponent over the whole head dim d), the rest 0;
/// then every frequency is divided by the factor (`scale`). Attention factor 1.
pub fn proportional_freqs(c: &ScheduleConfig) -> Frequencies {
    let (dim, half) = (c.dim, c.dim / 2);
    let rot = proportional_rotating_pairs(c).min(half);
    let s32 = c.scale as f32;
    let mut inv32: Vec<f32> = pos_freqs_f32(c.base, dim, rot)
        .iter()
        .map(|p| 1.0f32 / p)
        .collect();
    let mut inv64: Vec<f64> = pos_freqs_f64(c.base, dim, rot)
        .iter()
        .map(|p| 1.0 / p)
        .collect();
    inv32.resize(half, 0.0);
    inv64.resize(half, 0.0);
    inv32.iter_mut().for_each(|v| *v /= s32);
    inv64.iter_mut().for_each(|v| *v /= c.scale);
    Frequencies {
        inv_freq_f32: inv32,
        inv_freq_f64: inv64,
        attention_factor: 1.0,
    }
}

/// Llama-3 scaling, transformers' `_compute_llama3_parameters` with
/// `original_max_position_embeddings = train_len` and `factor = scale`.
pub fn llama3_freqs(c: &ScheduleConfig) -> Frequencies {
    let base = default_freqs(c.base, c.rotary_dim());
    let l = c.train_len as f64;
    let (lf, hf, s) = (c.low_freq_factor, c.high_freq_factor, c.scale);
    let (low_wl, high_wl) = (l / lf, l / hf);
    let two_pi32 = (2.0 * PI) as f32;
    let inv32 = base
        .inv_freq_f32
        .iter()
        .map(|&inv| {
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
        .collect();
    let inv64 = base
        .inv_freq_f64
        .iter()
        .map(|&inv| {
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
        .collect();
    Frequencies {
        inv_freq_f32: inv32,
        inv_freq_f64: inv64,
        attention_factor: 1.0,
    }
}

/// Dispatches to the method's schedule function. The config must be valid.
pub fn method_freqs(c: &ScheduleConfig) -> Frequencies {
    match c.method {
        Method::Rope => rope_freqs(c),
        Method::Pi => pi_freqs(c),
        Method::Ntk => ntk_freqs(c),
        Method::DynamicNtk => dynamic_ntk_freqs(c),
        Method::Yarn => yarn_freqs(c),
        Method::Llama3 => llama3_freqs(c),
        Method::Longrope => longrope_freqs(c),
        Method::Proportional => proportional_freqs(c),
    }
}
