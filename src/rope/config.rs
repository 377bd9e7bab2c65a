//! The vocabulary of schedules: the configuration every caller builds ([`ScheduleConfig`]), what
//! a method is ([`MethodDef`], named by [`Method`]) and what a parameter is ([`Param`]). Data
//! types only: the methods themselves live in [`super::methods`], one file each, and the
//! registry there lists them once.

use super::error::{ConfigError, Part};
use super::hf_dict::{ImportError, RopeDict};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest supported rotary dimension.
pub const MAX_DIM: usize = 1024;
/// Largest supported evaluation length (the gap analysis is O(L') per feature in memory).
pub const MAX_EVAL_LEN: u64 = 1 << 24;

/// How the d/2 rotation pairs are laid out in a d-dimensional vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PairLayout {
    /// Llama / HF `rotate_half`: feature i rotates coordinates (i, i + d/2).
    #[default]
    HalfSplit,
    /// GPT-J style: feature i rotates coordinates (2i, 2i+1).
    Interleaved,
}

impl PairLayout {
    /// Every layout, in display order.
    pub const ALL: [PairLayout; 2] = [PairLayout::HalfSplit, PairLayout::Interleaved];

    /// The layout's name (JSON, permalink, CLI value).
    pub fn name(self) -> &'static str {
        match self {
            PairLayout::HalfSplit => "half-split",
            PairLayout::Interleaved => "interleaved",
        }
    }

    /// The layout of a name.
    pub fn from_name(name: &str) -> Option<PairLayout> {
        PairLayout::ALL.into_iter().find(|l| l.name() == name)
    }

    /// The coordinates (x, y) of a d-dimensional vector rotated by feature `i`.
    pub fn pair(self, i: usize, dim: usize) -> (usize, usize) {
        match self {
            PairLayout::HalfSplit => (i, i + dim / 2),
            PairLayout::Interleaved => (2 * i, 2 * i + 1),
        }
    }
}

/// Everything that defines a RoPE schedule. Build it, then call
/// [`ScheduleConfig::validate`] (done by [`crate::rope::Schedule::new`]). Each field is
/// described once, by a [`Param`] of the method that reads it or of the shared core.
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

impl ScheduleConfig {
    /// The rotary dimension `int(dim * partial_rotary_factor)` as transformers computes it; a
    /// method that covers the whole head (Proportional RoPE) gives `dim`.
    pub fn rotary_dim(&self) -> usize {
        if self.method.def().full_head {
            self.dim
        } else {
            (self.dim as f64 * self.partial_rotary_factor) as usize
        }
    }
}

/// A frequency schedule, named by its entry in the registry ([`super::methods`]). Compared,
/// hashed and serialised by its id (`yarn`, `llama3`, ...).
#[derive(Clone, Copy)]
pub struct Method(pub(crate) &'static MethodDef);

impl Method {
    /// Everything the method declares about itself.
    pub fn def(self) -> &'static MethodDef {
        self.0
    }

    /// The lab's name of the method (CLI value, JSON, permalink).
    pub fn name(self) -> &'static str {
        self.0.id
    }
}

impl PartialEq for Method {
    fn eq(&self, other: &Method) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Method {}

impl std::hash::Hash for Method {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.id)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.id)
    }
}

impl Serialize for Method {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.id)
    }
}

/// Where a field lives in a Hugging Face config.json, for import error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HfKey {
    /// Not read from a config (a caller's option, e.g. the current length).
    None,
    /// A top-level key of the (text) config, e.g. `head_dim`.
    Top(&'static str),
    /// A key of the RoPE dictionary (`rope_scaling`, `rope_parameters[.layer]`), e.g. `factor`.
    Rope(&'static str),
}

/// Everything one frequency schedule declares about itself, in its own file under
/// [`super::methods`]; the CLI, the UI, the permalink, the importer, the docs and the tests read
/// it from there.
pub struct MethodDef {
    /// The lab's name (CLI value, JSON and permalink), e.g. `dynamic-ntk`.
    pub id: &'static str,
    /// Other names accepted on input (transformers' `rope_type` spellings), e.g. `dynamic`.
    pub aliases: &'static [&'static str],
    /// The UI's name, e.g. `Dynamic NTK`.
    pub label: &'static str,
    /// One line on what it does (docs table, hover text).
    pub summary: &'static str,
    /// transformers' `rope_type`, when transformers computes this schedule.
    pub transformers_type: Option<&'static str>,
    /// The section of docs/schedules.md that derives it, e.g. `schedules.md#yarn`.
    pub docs_anchor: &'static str,
    /// The parameters it reads beyond the shared core ([`super::params::CORE`]).
    pub params: &'static [&'static Param],
    /// Covers the whole head: the partial rotary factor gives pairs of frequency 0 instead of a
    /// shorter rotary dimension (Proportional RoPE).
    pub full_head: bool,
    /// The f32 inverse frequencies in transformers' operation order (one per pair).
    pub inv_freq_f32: fn(&ScheduleConfig) -> Vec<f32>,
    /// The same formula evaluated in f64 (the analysis twin).
    pub inv_freq_f64: fn(&ScheduleConfig) -> Vec<f64>,
    /// The multiplier on cos and sin (1 for most methods).
    pub attention_factor: fn(&ScheduleConfig) -> f64,
    /// Checks that only matter when this method is selected (its parameters' own ranges are
    /// checked for every method).
    pub validate: Check,
    /// Reads its parameters from a config.json RoPE dictionary into the config; returns the
    /// trained length its formula uses.
    pub import: fn(&mut ScheduleConfig, &RopeDict) -> Result<u64, ImportError>,
    /// Where the trained length comes from in a config.json (error messages).
    pub hf_train_len: HfKey,
    /// Extra facts for the JSON output and the UI (e.g. YaRN's correction range).
    pub details: fn(&ScheduleConfig) -> Vec<(&'static str, serde_json::Value)>,
}

/// A value of a [`Param`], as callers read and write it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number (integers are held exactly: every integer field is at most 2^53).
    Number(f64),
    /// A number that may be absent (computed from other fields when `None`).
    Optional(Option<f64>),
    /// On or off.
    Flag(bool),
    /// One number per rotating pair (empty: 1 for every pair).
    List(Vec<f64>),
    /// One of the kind's names.
    Choice(&'static str),
}

/// The valid range of a number: each bound inclusive or strict; infinite for none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// Lower bound.
    pub min: f64,
    /// The lower bound itself is not valid.
    pub min_strict: bool,
    /// Upper bound (`f64::INFINITY`: none).
    pub max: f64,
    /// The upper bound itself is not valid.
    pub max_strict: bool,
}

impl Range {
    /// `[min, max]`.
    pub const fn closed(min: f64, max: f64) -> Range {
        Range {
            min,
            min_strict: false,
            max,
            max_strict: false,
        }
    }

    /// `(min, max]`.
    pub const fn above(min: f64, max: f64) -> Range {
        Range {
            min,
            min_strict: true,
            max,
            max_strict: false,
        }
    }

    /// Every finite number.
    pub const ANY: Range = Range::closed(f64::NEG_INFINITY, f64::INFINITY);

    /// Whether `v` is finite and in range.
    pub fn contains(&self, v: f64) -> bool {
        v.is_finite()
            && (if self.min_strict {
                v > self.min
            } else {
                v >= self.min
            })
            && (if self.max_strict {
                v < self.max
            } else {
                v <= self.max
            })
    }

    /// The range in words, e.g. `> 1 and <= 1e12`; empty for [`Range::ANY`].
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.min.is_finite() {
            let op = if self.min_strict { ">" } else { ">=" };
            parts.push(format!("{op} {}", fmt_number(self.min)));
        }
        if self.max.is_finite() {
            let op = if self.max_strict { "<" } else { "<=" };
            parts.push(format!("{op} {}", fmt_number(self.max)));
        }
        parts.join(" and ")
    }
}

/// A number as messages write it: integers plainly up to a million, `1e12` beyond.
pub fn fmt_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() >= 1e7 && v.abs().log10().fract() == 0.0 {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// What a [`Param`] holds, its valid values, and how a control edits it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A number in `valid`; `integer` for sizes and lengths, `even` for the head dimension.
    Number {
        /// Valid values.
        valid: Range,
        /// Whole numbers only.
        integer: bool,
        /// Even numbers only.
        even: bool,
    },
    /// A number in `valid`, or absent (then computed from other fields).
    Optional {
        /// Valid values when present.
        valid: Range,
    },
    /// On or off.
    Flag,
    /// Rotary dim / 2 numbers in `valid`, one per pair, or none (1 for every pair).
    PairList {
        /// Valid entries.
        valid: Range,
    },
    /// One of these names.
    Choice {
        /// The valid names, in display order.
        names: &'static [&'static str],
    },
}

/// How a slider edits a number: its span (valid values may lie beyond it), a log scale, and
/// the step (0: continuous).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slider {
    /// Left end.
    pub min: f64,
    /// Right end.
    pub max: f64,
    /// Logarithmic scale.
    pub log: bool,
    /// Step between values; 0 for none.
    pub step: f64,
}

/// A check of a configuration (a relation between fields, or a method's own checks).
pub type Check = fn(&ScheduleConfig) -> Result<(), ConfigError>;

/// One field of [`ScheduleConfig`], described once: key, label, unit, default, valid range,
/// documentation and accessors. Everything that shows, parses or checks a field reads this.
pub struct Param {
    /// The field's name in [`ScheduleConfig`], JSON and the permalink (`snake_case`).
    pub key: &'static str,
    /// The UI's label, e.g. `train length L`.
    pub label: &'static str,
    /// The unit, e.g. `tokens` (empty when dimensionless).
    pub unit: &'static str,
    /// One line of documentation (CLI help, hover text).
    pub doc: &'static str,
    /// What it holds and its valid values.
    pub kind: Kind,
    /// How a slider edits it (numbers only).
    pub slider: Option<Slider>,
    /// Where a config.json holds it.
    pub hf: HfKey,
    /// When a caller leaves the field out: computes it from the others (e.g. `eval_len = 4 L`);
    /// `None` keeps [`ScheduleConfig::default`]'s value.
    pub derive: Option<fn(&mut ScheduleConfig)>,
    /// The derived default in words (e.g. `4 x train_len`), when `derive` is given.
    pub derived_doc: &'static str,
    /// A check against other fields, run after the value's own range (e.g. high > low).
    pub relation: Option<Check>,
    /// Reads the field.
    pub get: fn(&ScheduleConfig) -> Value,
    /// Writes the field (the value must be of the kind's shape and pass [`Param::check`]).
    pub set: fn(&mut ScheduleConfig, Value),
}

impl fmt::Debug for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Param({})", self.key)
    }
}

impl Param {
    /// The default value ([`ScheduleConfig::default`]'s).
    pub fn default_value(&self, defaults: &ScheduleConfig) -> Value {
        (self.get)(defaults)
    }

    /// Checks a value on its own (shape and range); `rotary_pairs` is the number of rotating
    /// pairs a non-empty list must hold (`None`: any length).
    pub fn check(&self, v: &Value, rotary_pairs: Option<usize>) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError::new(self.key, m));
        match (self.kind, v) {
            (
                Kind::Number {
                    valid,
                    integer,
                    even,
                },
                Value::Number(x),
            ) => {
                let whole = x.fract() == 0.0;
                let ok = valid.contains(*x)
                    && (!integer || whole)
                    && (!even || (whole && (*x / 2.0).fract() == 0.0));
                if ok {
                    Ok(())
                } else if integer {
                    let parity = if even { "even and " } else { "" };
                    err(format!(
                        "must be {parity}in {}..={} (got {})",
                        fmt_number(valid.min),
                        fmt_number(valid.max),
                        fmt_number(*x)
                    ))
                } else {
                    err(format!(
                        "must be a finite number {} (got {x})",
                        valid.describe()
                    ))
                }
            }
            (Kind::Optional { valid }, Value::Optional(o)) => match o {
                Some(x) if !valid.contains(*x) => {
                    let range = valid.describe();
                    let sep = if range.is_empty() { "" } else { " " };
                    err(format!("must be a finite number{sep}{range} (got {x})"))
                }
                _ => Ok(()),
            },
            (Kind::Flag, Value::Flag(_)) => Ok(()),
            (Kind::PairList { valid }, Value::List(list)) => {
                if let Some(n) = rotary_pairs
                    && !list.is_empty()
                    && list.len() != n
                {
                    return err(format!(
                        "must hold rotary dim / 2 = {n} numbers, one per pair (got {})",
                        list.len()
                    ));
                }
                match list.iter().find(|x| !valid.contains(**x)) {
                    Some(x) => err(format!(
                        "every entry must be a finite number {} (got {x})",
                        valid.describe()
                    )),
                    None => Ok(()),
                }
            }
            (Kind::Choice { names }, Value::Choice(c)) if names.contains(c) => Ok(()),
            (kind, v) => err(format!("expected a value of kind {kind:?} (got {v:?})")),
        }
    }

    /// Parses the text form of a value (numbers; `true`/`false`; comma-separated lists; a
    /// choice's name), as typed into a CLI option or a list editor.
    pub fn parse(&self, text: &str) -> Result<Value, ConfigError> {
        let t = text.trim();
        let number = |s: &str| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| ConfigError::new(self.key, format!("'{}' is not a number", s.trim())))
        };
        Ok(match self.kind {
            Kind::Number { .. } => Value::Number(number(t)?),
            Kind::Optional { .. } if t.is_empty() => Value::Optional(None),
            Kind::Optional { .. } => Value::Optional(Some(number(t)?)),
            Kind::Flag => match t {
                "true" => Value::Flag(true),
                "false" => Value::Flag(false),
                _ => {
                    return Err(ConfigError::new(
                        self.key,
                        format!("must be true or false (got '{t}')"),
                    ));
                }
            },
            Kind::PairList { .. } if t.is_empty() => Value::List(Vec::new()),
            Kind::PairList { .. } => Value::List(
                t.split(',')
                    .map(|s| {
                        number(s).map_err(|_| {
                            ConfigError::new(
                                self.key,
                                format!(
                                    "'{}' is not a number; expected comma-separated numbers",
                                    s.trim()
                                ),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Kind::Choice { names } => match names.iter().find(|n| **n == t) {
                Some(n) => Value::Choice(n),
                None => {
                    return Err(ConfigError::new(
                        self.key,
                        format!("must be one of {} (got '{t}')", names.join(", ")),
                    ));
                }
            },
        })
    }

    /// Checks `v` on its own (a list's length is checked later, against the final rotary
    /// dimension, by validation) and writes it into `c`.
    pub fn assign(&self, c: &mut ScheduleConfig, v: Value) -> Result<(), ConfigError> {
        self.check(&v, None)?;
        (self.set)(c, v);
        Ok(())
    }

    /// The value in the text form [`Param::parse`] reads.
    pub fn format(&self, c: &ScheduleConfig) -> String {
        match (self.get)(c) {
            Value::Number(x) => format!("{x}"),
            Value::Optional(Some(x)) => format!("{x}"),
            Value::Optional(None) => String::new(),
            Value::Flag(b) => b.to_string(),
            Value::List(l) => l
                .iter()
                .map(|x| format!("{x}"))
                .collect::<Vec<_>>()
                .join(","),
            Value::Choice(n) => n.to_string(),
        }
    }
}

/// An error about `key` whose message names another field: `text_before <other> text_after`.
pub fn relation_error(
    key: &'static str,
    before: &str,
    other: &'static str,
    after: String,
) -> ConfigError {
    ConfigError::with_parts(
        key,
        vec![
            Part::Text(before.to_string()),
            Part::Field(other),
            Part::Text(after),
        ],
    )
}
