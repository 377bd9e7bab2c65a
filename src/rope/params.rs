//! The parameters every schedule has (the shared core: head dimension, base, lengths, scale,
//! partial rotary factor, pair layout, Resonance) and the two that several methods share (the
//! current length, an explicit attention factor). A method's own parameters live in its file.

use super::config::{
    HfKey, Kind, MAX_DIM, MAX_EVAL_LEN, PairLayout, Param, Range, ScheduleConfig, Slider, Value,
    relation_error,
};
use super::error::ConfigError;

/// Reads a field of [`ScheduleConfig`] as a [`Value`] of the given shape.
macro_rules! getter {
    (number $f:ident) => {
        |c: &$crate::rope::config::ScheduleConfig| $crate::rope::config::Value::Number(c.$f as f64)
    };
    (flag $f:ident) => {
        |c: &$crate::rope::config::ScheduleConfig| $crate::rope::config::Value::Flag(c.$f)
    };
    (optional $f:ident) => {
        |c: &$crate::rope::config::ScheduleConfig| $crate::rope::config::Value::Optional(c.$f)
    };
    (list $f:ident) => {
        |c: &$crate::rope::config::ScheduleConfig| $crate::rope::config::Value::List(c.$f.clone())
    };
}
pub(crate) use getter;

/// Writes a field of [`ScheduleConfig`] from a [`Value`] of the given shape (a value of
/// another shape is ignored: [`Param::assign`] checks the shape first).
macro_rules! setter {
    (number $f:ident) => {
        |c: &mut $crate::rope::config::ScheduleConfig, v: $crate::rope::config::Value| {
            if let $crate::rope::config::Value::Number(x) = v {
                c.$f = x as _;
            }
        }
    };
    (flag $f:ident) => {
        |c: &mut $crate::rope::config::ScheduleConfig, v: $crate::rope::config::Value| {
            if let $crate::rope::config::Value::Flag(x) = v {
                c.$f = x;
            }
        }
    };
    (optional $f:ident) => {
        |c: &mut $crate::rope::config::ScheduleConfig, v: $crate::rope::config::Value| {
            if let $crate::rope::config::Value::Optional(x) = v {
                c.$f = x;
            }
        }
    };
    (list $f:ident) => {
        |c: &mut $crate::rope::config::ScheduleConfig, v: $crate::rope::config::Value| {
            if let $crate::rope::config::Value::List(x) = v {
                c.$f = x;
            }
        }
    };
}
pub(crate) use setter;

/// The fields every [`Param`] literal starts from (`..BLANK`): no slider, no config key, no
/// derived default, no relation.
pub const BLANK: Param = Param {
    key: "",
    label: "",
    unit: "",
    doc: "",
    kind: Kind::Flag,
    slider: None,
    hf: HfKey::None,
    derive: None,
    derived_doc: "",
    relation: None,
    get: |_| Value::Flag(false),
    set: |_, _| {},
};

const MAX_LEN: f64 = MAX_EVAL_LEN as f64;

/// A length in tokens: an integer in `1..=MAX_EVAL_LEN`.
const LENGTH: Kind = Kind::Number {
    valid: Range::closed(1.0, MAX_LEN),
    integer: true,
    even: false,
};

/// Round every wavelength to an integer after the schedule.
pub static RESONANCE: Param = Param {
    key: "resonance",
    label: "Resonance rounding",
    doc: "round every wavelength to an integer after the schedule (Resonance RoPE)",
    kind: Kind::Flag,
    get: getter!(flag resonance),
    set: setter!(flag resonance),
    ..BLANK
};

/// The head dimension d.
pub static DIM: Param = Param {
    key: "dim",
    label: "head dim d",
    doc: "head dimension d (even); the rotary dimension is int(d * partial rotary factor)",
    kind: Kind::Number {
        valid: Range::closed(2.0, MAX_DIM as f64),
        integer: true,
        even: true,
    },
    slider: Some(Slider {
        min: 2.0,
        max: 512.0,
        log: false,
        step: 2.0,
    }),
    hf: HfKey::Top("head_dim"),
    get: getter!(number dim),
    set: setter!(number dim),
    ..BLANK
};

/// The RoPE base b.
pub static BASE: Param = Param {
    key: "base",
    label: "base b",
    doc: "RoPE base b (rope_theta)",
    kind: Kind::Number {
        valid: Range::above(1.0, 1e12),
        integer: false,
        even: false,
    },
    slider: Some(Slider {
        min: 2.0,
        max: 1e8,
        log: true,
        step: 0.0,
    }),
    hf: HfKey::Rope("rope_theta"),
    get: getter!(number base),
    set: setter!(number base),
    ..BLANK
};

/// The pre-training (original) length L.
pub static TRAIN_LEN: Param = Param {
    key: "train_len",
    label: "train length L",
    unit: "tokens",
    doc: "pre-training (original) context length L",
    kind: LENGTH,
    slider: Some(Slider {
        min: 1.0,
        max: (1u64 << 20) as f64,
        log: true,
        step: 1.0,
    }),
    hf: HfKey::Rope("original_max_position_embeddings"),
    get: getter!(number train_len),
    set: setter!(number train_len),
    ..BLANK
};

/// The evaluation length L'.
pub static EVAL_LEN: Param = Param {
    key: "eval_len",
    label: "eval length L'",
    unit: "tokens",
    doc: "evaluation context length L'",
    kind: LENGTH,
    slider: Some(Slider {
        min: 1.0,
        max: (1u64 << 22) as f64,
        log: true,
        step: 1.0,
    }),
    hf: HfKey::Top("max_position_embeddings"),
    derive: Some(|c| c.eval_len = c.train_len.saturating_mul(4)),
    derived_doc: "4 x train_len",
    relation: Some(|c| {
        if c.eval_len < c.train_len {
            Err(relation_error(
                "eval_len",
                "must be in ",
                "train_len",
                format!(
                    "..={MAX_EVAL_LEN}, i.e. {}..={MAX_EVAL_LEN} (got {})",
                    c.train_len, c.eval_len
                ),
            ))
        } else {
            Ok(())
        }
    }),
    get: getter!(number eval_len),
    set: setter!(number eval_len),
};

/// The scale factor s.
pub static SCALE: Param = Param {
    key: "scale",
    label: "scale factor s",
    doc: "scale factor s >= 1 (usually L'/L)",
    kind: Kind::Number {
        valid: Range::closed(1.0, 1e6),
        integer: false,
        even: false,
    },
    slider: Some(Slider {
        min: 1.0,
        max: 1024.0,
        log: true,
        step: 0.0,
    }),
    hf: HfKey::Rope("factor"),
    derive: Some(|c| c.scale = c.eval_len as f64 / c.train_len.max(1) as f64),
    derived_doc: "eval_len / train_len",
    get: getter!(number scale),
    set: setter!(number scale),
    ..BLANK
};

/// The fraction of the head that rotates.
pub static PARTIAL_ROTARY_FACTOR: Param = Param {
    key: "partial_rotary_factor",
    label: "partial rotary factor",
    doc: "fraction of the head that rotates, in (0, 1]: rotary dim = int(d * factor) \
          (proportional: the other pairs keep frequency 0)",
    kind: Kind::Number {
        valid: Range::above(0.0, 1.0),
        integer: false,
        even: false,
    },
    slider: Some(Slider {
        min: 0.01,
        max: 1.0,
        log: false,
        step: 0.0,
    }),
    hf: HfKey::Rope("partial_rotary_factor"),
    relation: Some(rotary_dim_is_even),
    get: getter!(number partial_rotary_factor),
    set: setter!(number partial_rotary_factor),
    ..BLANK
};

/// `int(dim * partial_rotary_factor)` must be an even number of at least 2, unless the
/// method covers the whole head.
fn rotary_dim_is_even(c: &ScheduleConfig) -> Result<(), ConfigError> {
    let rot = c.rotary_dim();
    if c.method.def().full_head || (rot >= 2 && rot.is_multiple_of(2)) {
        return Ok(());
    }
    Err(ConfigError::new(
        "partial_rotary_factor",
        format!(
            "the rotary dimension int(dim * partial rotary factor) = int({} * {}) = {rot} \
             must be even and at least 2",
            c.dim, c.partial_rotary_factor
        ),
    ))
}

/// The layout names, in [`PairLayout::ALL`] order.
const LAYOUT_NAMES: &[&str] = &["half-split", "interleaved"];

/// Which two coordinates each feature rotates.
pub static LAYOUT: Param = Param {
    key: "layout",
    label: "pair layout",
    doc: "which two coordinates of a head vector each feature rotates (half-split: i and i + d/2; \
          interleaved: 2i and 2i + 1)",
    kind: Kind::Choice {
        names: LAYOUT_NAMES,
    },
    get: |c| Value::Choice(c.layout.name()),
    set: |c, v| {
        if let Value::Choice(n) = v
            && let Some(l) = PairLayout::from_name(n)
        {
            c.layout = l;
        }
    },
    ..BLANK
};

/// The current sequence length (dynamic NTK, LongRoPE).
pub static SEQ_LEN: Param = Param {
    key: "seq_len",
    label: "current length l",
    unit: "tokens",
    doc: "current sequence length l: dynamic NTK's base follows it; LongRoPE uses its long \
          factors when it exceeds L",
    kind: LENGTH,
    slider: Some(Slider {
        min: 1.0,
        max: (1u64 << 22) as f64,
        log: true,
        step: 1.0,
    }),
    derive: Some(|c| c.seq_len = c.eval_len),
    derived_doc: "eval_len",
    get: getter!(number seq_len),
    set: setter!(number seq_len),
    ..BLANK
};

/// An explicit attention factor (YaRN, LongRoPE).
pub static ATTENTION_FACTOR: Param = Param {
    key: "attention_factor",
    label: "attention factor",
    doc: "explicit multiplier on cos and sin (> 0), overriding the computed one",
    kind: Kind::Optional {
        valid: Range {
            min: 0.0,
            min_strict: true,
            max: f64::INFINITY,
            max_strict: false,
        },
    },
    hf: HfKey::Rope("attention_factor"),
    get: getter!(optional attention_factor),
    set: setter!(optional attention_factor),
    ..BLANK
};

/// The parameters of every schedule, in the order they are checked (each after those its
/// checks and derived default read: the lengths before the scale derived from them).
pub static CORE: [&Param; 8] = [
    &RESONANCE,
    &DIM,
    &BASE,
    &TRAIN_LEN,
    &EVAL_LEN,
    &SCALE,
    &PARTIAL_ROTARY_FACTOR,
    &LAYOUT,
];

/// The parameters with a derived default, in the order their defaults are computed (each
/// reads only those before it): L' from L, s from L' and L, l from L'.
pub static DERIVE_ORDER: [&Param; 3] = [&EVAL_LEN, &SCALE, &SEQ_LEN];
