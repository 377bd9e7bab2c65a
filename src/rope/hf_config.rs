//! Hugging Face `config.json` import: turns a model's RoPE settings into a [`ScheduleConfig`]
//! exactly as transformers' `modeling_rope_utils` reads them, and builds the export document of
//! the model's Resonance twin. Pure text in, values out (no IO), so the CLI and the app share it.
//!
//! Both forms are read: legacy `rope_theta` + `rope_scaling` (type under `type` or `rope_type`)
//! and transformers 5 `rope_parameters`, flat or nested per layer type (`full_attention`,
//! `sliding_attention`, ...). Gemma 3's legacy `rope_local_base_freq` becomes the
//! `sliding_attention` entry, as transformers' Gemma 3 config converts it. A multimodal config
//! whose RoPE lives under `text_config` is read from there.

use super::schedule::{MAX_DIM, MAX_EVAL_LEN};
use super::{ConfigError, Method, Schedule, ScheduleConfig};
use serde_json::{Map, Value, json};
use std::fmt;

/// transformers' `RotaryEmbeddingConfigMixin.default_theta`: the base when a config gives none.
pub const DEFAULT_THETA: f64 = 10_000.0;

/// What the caller chooses beyond the file: which layer type, and the lengths to analyse.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportOptions {
    /// Layer type to read from per-layer `rope_parameters`; `None` picks `full_attention` when
    /// present, else the first in sorted order.
    pub layer_type: Option<String>,
    /// Current sequence length for `dynamic` and `longrope`; `None` means
    /// `max_position_embeddings` (transformers' init-time length for `dynamic`).
    pub seq_len: Option<u64>,
    /// Evaluation length of the gap analysis; `None` means the larger of
    /// `max_position_embeddings` and `seq_len`.
    pub eval_len: Option<u64>,
}

/// A config that cannot be imported: the field (a JSON path such as `rope_scaling.factor`, or
/// a CLI option such as `--seq-len`) and what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportError {
    /// The offending field.
    pub field: String,
    /// What is wrong and what is valid.
    pub message: String,
}

impl ImportError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ImportError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config field {}: {}", self.field, self.message)
    }
}

impl std::error::Error for ImportError {}

/// The RoPE of one model (one layer type) as read from its config, ready to analyse.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelRope {
    /// The model's name: `_name_or_path`, else `model_type`, else the file name given.
    pub name: String,
    /// transformers' `rope_type` (`default`, `linear`, `dynamic`, `yarn`, `longrope`, `llama3`,
    /// `proportional`).
    pub rope_type: String,
    /// Head size: `qk_rope_head_dim` (DeepSeek MLA), else `head_dim`, else
    /// `hidden_size / num_attention_heads`.
    pub head_dim: usize,
    /// The layer type read (per-layer configs only).
    pub layer_type: Option<String>,
    /// The layer types that `--layer-type` can pick (empty for a single RoPE dictionary).
    pub layer_types: Vec<String>,
    /// `max_position_embeddings` of the config.
    pub max_position_embeddings: u64,
    /// `original_max_position_embeddings` when the config gives one.
    pub original_max_position_embeddings: Option<u64>,
    /// The schedule configuration, Resonance off: `train_len` is the original length the
    /// schedule's formula uses (`max_position_embeddings` for `dynamic`).
    pub config: ScheduleConfig,
}

/// Where the RoPE dictionary came from, for error messages (`rope_scaling`,
/// `rope_parameters.full_attention`, ...).
struct Source<'a> {
    dict: &'a Map<String, Value>,
    path: String,
    nested: bool,
}

fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}...", &s[..s.floor_char_boundary(40)])
    } else {
        s
    }
}

/// A positive number or `None` when absent or `null`.
fn positive_f64(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<f64>, ImportError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() && v > 0.0 => Ok(Some(v)),
            _ => Err(ImportError::new(
                field(path, key),
                format!("must be a number > 0 (got {n})"),
            )),
        },
        Some(v) => Err(ImportError::new(
            field(path, key),
            format!("must be a number > 0 (got {})", describe(v)),
        )),
    }
}

/// A finite number (any sign) or `None` when absent or `null`.
fn finite_f64(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<f64>, ImportError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => Ok(n.as_f64()),
        Some(v) => Err(ImportError::new(
            field(path, key),
            format!("must be a number (got {})", describe(v)),
        )),
    }
}

/// A positive integer (an integral JSON number) or `None` when absent or `null`.
fn positive_u64(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<u64>, ImportError> {
    let bad = |v: &Value| {
        ImportError::new(
            field(path, key),
            format!("must be a positive integer (got {})", describe(v)),
        )
    };
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                return if u > 0 { Ok(Some(u)) } else { Err(bad(v)) };
            }
            match n.as_f64() {
                Some(f) if f >= 1.0 && f.fract() == 0.0 && f < 9.0e15 => Ok(Some(f as u64)),
                _ => Err(bad(v)),
            }
        }
        Some(v) => Err(bad(v)),
    }
}

fn field(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A list of positive numbers or `None` when absent or `null`.
fn positive_list(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<Vec<f64>>, ImportError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v.as_f64() {
                Some(x) if x.is_finite() && x > 0.0 => Ok(x),
                _ => Err(ImportError::new(
                    format!("{}[{i}]", field(path, key)),
                    format!("must be a number > 0 (got {})", describe(v)),
                )),
            })
            .collect::<Result<Vec<f64>, _>>()
            .map(Some),
        Some(v) => Err(ImportError::new(
            field(path, key),
            format!("must be a list of numbers > 0 (got {})", describe(v)),
        )),
    }
}

/// The model's display name: `_name_or_path`, `model_type`, else `fallback`.
fn model_name(top: &Map<String, Value>, fallback: &str) -> String {
    ["_name_or_path", "name_or_path", "model_type"]
        .iter()
        .filter_map(|k| top.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or(fallback)
        .to_string()
}

const ROPE_KEYS: [&str; 6] = [
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
    "head_dim",
    "hidden_size",
    "max_position_embeddings",
];

/// Parses a config.json text (`fallback_name` names it when the config has no name) and reads
/// the RoPE of one layer type. Every failure names the field.
pub fn parse_config(
    text: &str,
    fallback_name: &str,
    opts: &ImportOptions,
) -> Result<ModelRope, ImportError> {
    if text.trim().is_empty() {
        return Err(ImportError::new(
            "(document)",
            "the config is empty; expected a config.json object",
        ));
    }
    let root: Value = serde_json::from_str(text).map_err(|e| {
        ImportError::new(
            "(document)",
            format!(
                "malformed JSON at line {} column {}: {}",
                e.line(),
                e.column(),
                e.to_string().split(" at line").next().unwrap_or("")
            ),
        )
    })?;
    let Value::Object(root) = root else {
        return Err(ImportError::new(
            "(document)",
            format!("the config must be a JSON object (got {})", describe(&root)),
        ));
    };
    let name = model_name(&root, fallback_name);
    // multimodal configs keep the language model's settings under `text_config`
    let (top, prefix) = match root.get("text_config") {
        Some(Value::Object(tc)) if !ROPE_KEYS.iter().any(|k| root.contains_key(*k)) => {
            (tc, "text_config")
        }
        _ => (&root, ""),
    };
    let top = with_model_defaults(top);
    read_model(&top, prefix, name, opts)
}

/// The config with the defaults its `model_type`'s config class fills in: transformers reads
/// sparse hub configs (Gemma 3 4B and up write only what differs) through class defaults, so
/// the same values are needed here. Only `gemma3_text` needs this among the types we know.
fn with_model_defaults(top: &Map<String, Value>) -> std::borrow::Cow<'_, Map<String, Value>> {
    if top.get("model_type").and_then(Value::as_str) != Some("gemma3_text") {
        return std::borrow::Cow::Borrowed(top);
    }
    // transformers' Gemma3TextConfig defaults
    let mut defaults = vec![
        ("head_dim", json!(256)),
        ("num_attention_heads", json!(8)),
        ("max_position_embeddings", json!(131072)),
    ];
    if !top.contains_key("rope_parameters") {
        defaults.push(("rope_theta", json!(1_000_000.0)));
        defaults.push(("rope_local_base_freq", json!(10_000.0)));
    }
    let mut out = top.clone();
    for (k, v) in defaults {
        out.entry(k).or_insert(v);
    }
    std::borrow::Cow::Owned(out)
}

fn read_model(
    top: &Map<String, Value>,
    prefix: &str,
    name: String,
    opts: &ImportOptions,
) -> Result<ModelRope, ImportError> {
    let head_dim = head_dim(top, prefix)?;
    let max_pos = positive_u64(top, "max_position_embeddings", prefix)?.ok_or_else(|| {
        ImportError::new(
            field(prefix, "max_position_embeddings"),
            "missing; a positive integer is required",
        )
    })?;
    let top_theta = positive_f64(top, "rope_theta", prefix)?;
    let top_partial = positive_f64(top, "partial_rotary_factor", prefix)?;
    let top_original = positive_u64(top, "original_max_position_embeddings", prefix)?;
    // the RoPE dictionary: `rope_scaling` wins over `rope_parameters`, as transformers' BC path
    let scaling = rope_dict(top, "rope_scaling", prefix)?;
    let outer = scaling.or(rope_dict(top, "rope_parameters", prefix)?);
    let local_theta = positive_f64(top, "rope_local_base_freq", prefix)?;
    let layers = layers(top, outer, local_theta, opts)?;
    let empty = Map::new();
    let src = source(&layers, outer, &empty, prefix)?;
    let (rope_type, method) = rope_type_of(&src)?;

    let p = &src.path;
    let d = src.dict;
    let theta = if layers.gemma_legacy && layers.chosen.as_deref() == Some("sliding_attention") {
        local_theta
    } else {
        positive_f64(d, "rope_theta", p)?.or(top_theta)
    }
    .unwrap_or(DEFAULT_THETA);
    let partial = positive_f64(d, "partial_rotary_factor", p)?
        .or(top_partial)
        .unwrap_or(1.0);
    let dict_original = positive_u64(d, "original_max_position_embeddings", p)?;
    // transformers moves the pre-training length into the RoPE dictionary for the types that
    // use it; a top-level value has priority in the flat form (Phi-3)
    let original = if src.nested {
        dict_original
    } else {
        top_original.or(dict_original)
    };
    let mut c = ScheduleConfig {
        method,
        dim: head_dim,
        base: theta,
        partial_rotary_factor: partial,
        scale: 1.0,
        ..ScheduleConfig::default()
    };
    let truncate_from = match outer {
        Some((key, m)) if src.nested => (m, field(prefix, key)),
        _ => (d, p.clone()),
    };
    let inputs = MethodInputs {
        dict: d,
        path: p,
        rope_type: &rope_type,
        max_pos,
        original,
        truncate_from: (truncate_from.0, &truncate_from.1),
    };
    c.train_len = method_parameters(&mut c, &inputs)?;
    let seq_len = opts.seq_len.unwrap_or(max_pos);
    c.seq_len = seq_len;
    c.eval_len = opts.eval_len.unwrap_or(max_pos.max(seq_len));
    if opts.eval_len.is_none() && c.eval_len < c.train_len {
        return Err(ImportError::new(
            field(prefix, "original_max_position_embeddings"),
            format!(
                "must not exceed max_position_embeddings ({max_pos}) (got {})",
                c.train_len
            ),
        ));
    }
    c.validate()
        .map_err(|e| map_schedule_error(e, &src.path, prefix, method))?;
    Ok(ModelRope {
        name,
        rope_type,
        head_dim,
        layer_type: layers.chosen,
        layer_types: layers.types,
        max_position_embeddings: max_pos,
        original_max_position_embeddings: original,
        config: c,
    })
}

/// A RoPE dictionary and the config key it was found under.
type NamedDict<'a> = (&'static str, &'a Map<String, Value>);

/// `rope_scaling` or `rope_parameters` when it is a non-empty object (`None` when absent, null
/// or empty; an error for anything else).
fn rope_dict<'a>(
    top: &'a Map<String, Value>,
    key: &'static str,
    prefix: &str,
) -> Result<Option<NamedDict<'a>>, ImportError> {
    match top.get(key) {
        Some(Value::Object(m)) if !m.is_empty() => Ok(Some((key, m))),
        None | Some(Value::Null) | Some(Value::Object(_)) => Ok(None),
        Some(v) => Err(ImportError::new(
            field(prefix, key),
            format!("must be an object or null (got {})", describe(v)),
        )),
    }
}

/// The layer types a config offers and the one read.
struct Layers {
    /// Every layer type with its own RoPE (sorted; empty for one RoPE everywhere).
    types: Vec<String>,
    /// The one read: `--layer-type`, else `full_attention`, else the first.
    chosen: Option<String>,
    /// Gemma 3's legacy form: `rope_scaling` (or nothing) for full attention and
    /// `rope_local_base_freq` for sliding attention.
    gemma_legacy: bool,
}

fn layers(
    top: &Map<String, Value>,
    outer: Option<(&str, &Map<String, Value>)>,
    local_theta: Option<f64>,
    opts: &ImportOptions,
) -> Result<Layers, ImportError> {
    // per-layer dictionaries: keys named in `layer_types` (or, without it, object-valued keys)
    let declared: Option<Vec<&str>> = top
        .get("layer_types")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    let mut types: Vec<String> = match outer {
        Some((_, m)) => m
            .iter()
            .filter(|(k, v)| match &declared {
                Some(d) => d.contains(&k.as_str()),
                None => v.is_object(),
            })
            .map(|(k, _)| k.clone())
            .collect(),
        None => Vec::new(),
    };
    types.sort();
    let gemma_legacy = local_theta.is_some() && types.is_empty();
    if gemma_legacy {
        types = vec!["full_attention".into(), "sliding_attention".into()];
    }
    let chosen = match (&opts.layer_type, types.is_empty()) {
        (Some(lt), true) => {
            return Err(ImportError::new(
                "--layer-type",
                format!(
                    "the config has one RoPE for every layer; there is no layer type '{lt}' to pick"
                ),
            ));
        }
        (Some(lt), false) if !types.contains(lt) => {
            return Err(ImportError::new(
                "--layer-type",
                format!("must be one of {} (got '{lt}')", types.join(", ")),
            ));
        }
        (Some(lt), false) => Some(lt.clone()),
        (None, true) => None,
        (None, false) => Some(
            types
                .iter()
                .find(|t| *t == "full_attention")
                .unwrap_or(&types[0])
                .clone(),
        ),
    };
    Ok(Layers {
        types,
        chosen,
        gemma_legacy,
    })
}

/// The RoPE dictionary of the chosen layer type (an empty one where the config has none).
fn source<'a>(
    layers: &Layers,
    outer: Option<NamedDict<'a>>,
    empty: &'a Map<String, Value>,
    prefix: &str,
) -> Result<Source<'a>, ImportError> {
    let outer_path = |o: &str| field(prefix, o);
    Ok(match (&layers.chosen, outer) {
        (Some(lt), _) if layers.gemma_legacy => {
            if lt == "sliding_attention" {
                Source {
                    dict: empty,
                    path: field(prefix, "rope_local_base_freq"),
                    nested: true,
                }
            } else {
                Source {
                    dict: outer.map(|(_, m)| m).unwrap_or(empty),
                    path: outer_path(outer.map(|(k, _)| k).unwrap_or("rope_scaling")),
                    nested: true,
                }
            }
        }
        (Some(lt), Some((key, m))) => match m.get(lt) {
            Some(Value::Object(d)) => Source {
                dict: d,
                path: format!("{}.{lt}", outer_path(key)),
                nested: true,
            },
            Some(Value::Null) => {
                return Err(ImportError::new(
                    format!("{}.{lt}", outer_path(key)),
                    "is null: this layer type has no RoPE",
                ));
            }
            Some(v) => {
                return Err(ImportError::new(
                    format!("{}.{lt}", outer_path(key)),
                    format!("must be an object (got {})", describe(v)),
                ));
            }
            None => unreachable_layer(lt)?,
        },
        (_, Some((key, m))) => Source {
            dict: m,
            path: outer_path(key),
            nested: false,
        },
        (_, None) => Source {
            dict: empty,
            path: outer_path("rope_scaling"),
            nested: false,
        },
    })
}

/// The dictionary's rope type (`rope_type`, or the legacy `type`; `default` when neither).
fn rope_type_of(src: &Source) -> Result<(String, Method), ImportError> {
    let rope_type = match (src.dict.get("rope_type"), src.dict.get("type")) {
        (Some(Value::String(t)), _) | (None | Some(Value::Null), Some(Value::String(t))) => {
            t.clone()
        }
        (None | Some(Value::Null), None | Some(Value::Null)) => "default".to_string(),
        (Some(v), _) => {
            return Err(ImportError::new(
                field(&src.path, "rope_type"),
                format!("must be a string (got {})", describe(v)),
            ));
        }
        (_, Some(v)) => {
            return Err(ImportError::new(
                field(&src.path, "type"),
                format!("must be a string (got {})", describe(v)),
            ));
        }
    };
    let type_key = if src.dict.contains_key("rope_type") || !src.dict.contains_key("type") {
        "rope_type"
    } else {
        "type"
    };
    let method = Method::from_rope_type(&rope_type).ok_or_else(|| {
        ImportError::new(
            field(&src.path, type_key),
            format!(
                "unknown rope type '{rope_type}'; known: default, linear, dynamic, yarn, longrope, llama3, proportional"
            ),
        )
    })?;
    Ok((rope_type, method))
}

/// What the method's parameters are read from.
struct MethodInputs<'a> {
    dict: &'a Map<String, Value>,
    path: &'a str,
    rope_type: &'a str,
    max_pos: u64,
    /// `original_max_position_embeddings` as transformers sees it for this dictionary.
    original: Option<u64>,
    /// Where YaRN's `truncate` is read: transformers reads it from the outer dictionary, so in
    /// the per-layer form a layer's own `truncate` is not seen.
    truncate_from: (&'a Map<String, Value>, &'a str),
}

/// Reads the method's parameters into `c`; returns the trained length its formula uses.
fn method_parameters(c: &mut ScheduleConfig, m: &MethodInputs) -> Result<u64, ImportError> {
    let (d, p) = (m.dict, m.path);
    let original_or_max = m.original.unwrap_or(m.max_pos);
    let factor = positive_f64(d, "factor", p)?;
    let need = |v: Option<f64>, key: &str| {
        v.ok_or_else(|| {
            ImportError::new(
                field(p, key),
                format!("missing; rope type '{}' needs a number > 0", m.rope_type),
            )
        })
    };
    let ratio = m.max_pos as f64 / original_or_max as f64;
    match c.method {
        Method::Rope | Method::Ntk => Ok(original_or_max),
        Method::Pi => {
            c.scale = need(factor, "factor")?;
            Ok(original_or_max)
        }
        Method::DynamicNtk => {
            c.scale = need(factor, "factor")?;
            // transformers' dynamic formula uses max_position_embeddings as the trained length
            Ok(m.max_pos)
        }
        Method::Proportional => {
            c.scale = factor.unwrap_or(1.0);
            Ok(original_or_max)
        }
        Method::Yarn => {
            c.scale = factor.unwrap_or(ratio);
            yarn_parameters(c, d, p, m.truncate_from)?;
            Ok(original_or_max)
        }
        Method::Llama3 => {
            c.scale = need(factor, "factor")?;
            c.low_freq_factor = need(positive_f64(d, "low_freq_factor", p)?, "low_freq_factor")?;
            c.high_freq_factor = need(positive_f64(d, "high_freq_factor", p)?, "high_freq_factor")?;
            Ok(original_or_max)
        }
        Method::Longrope => {
            c.scale = factor.unwrap_or(ratio);
            c.attention_factor = positive_f64(d, "attention_factor", p)?;
            longrope_factors(c, d, p)?;
            Ok(original_or_max)
        }
    }
}

/// YaRN's betas, attention-factor inputs and `truncate`.
fn yarn_parameters(
    c: &mut ScheduleConfig,
    d: &Map<String, Value>,
    p: &str,
    (tdict, tpath): (&Map<String, Value>, &str),
) -> Result<(), ImportError> {
    // `or 32` / `or 1` in transformers: 0 and null take the defaults
    c.beta_fast = finite_f64(d, "beta_fast", p)?
        .filter(|v| *v != 0.0)
        .unwrap_or(32.0);
    c.beta_slow = finite_f64(d, "beta_slow", p)?
        .filter(|v| *v != 0.0)
        .unwrap_or(1.0);
    c.mscale = finite_f64(d, "mscale", p)?;
    c.mscale_all_dim = finite_f64(d, "mscale_all_dim", p)?;
    c.attention_factor = positive_f64(d, "attention_factor", p)?;
    c.truncate = match tdict.get("truncate") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(ImportError::new(
                field(tpath, "truncate"),
                format!("must be true or false (got {})", describe(v)),
            ));
        }
    };
    Ok(())
}

/// LongRoPE's two factor lists, each of rotary dim / 2 numbers.
fn longrope_factors(
    c: &mut ScheduleConfig,
    d: &Map<String, Value>,
    p: &str,
) -> Result<(), ImportError> {
    let rot = c.rotary_dim();
    for key in ["short_factor", "long_factor"] {
        let list = positive_list(d, key, p)?.ok_or_else(|| {
            ImportError::new(
                field(p, key),
                format!(
                    "missing; longrope needs a list of rotary dim / 2 = {} numbers",
                    rot / 2
                ),
            )
        })?;
        if list.len() != rot / 2 {
            return Err(ImportError::new(
                field(p, key),
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
    Ok(())
}

fn unreachable_layer(lt: &str) -> Result<Source<'static>, ImportError> {
    Err(ImportError::new(
        "--layer-type",
        format!("layer type '{lt}' not found"),
    ))
}

/// The head size, with the field named when it is missing or bad.
fn head_dim(top: &Map<String, Value>, prefix: &str) -> Result<usize, ImportError> {
    let direct = match positive_u64(top, "qk_rope_head_dim", prefix)? {
        Some(v) => Some(("qk_rope_head_dim", v)),
        None => positive_u64(top, "head_dim", prefix)?.map(|v| ("head_dim", v)),
    };
    let (key, v) = match direct {
        Some(kv) => kv,
        None => {
            let hidden = positive_u64(top, "hidden_size", prefix)?;
            let heads = positive_u64(top, "num_attention_heads", prefix)?;
            match (hidden, heads) {
                (Some(h), Some(n)) => ("hidden_size", h / n),
                _ => {
                    return Err(ImportError::new(
                        field(prefix, "head_dim"),
                        "no head size: give head_dim, or hidden_size and num_attention_heads",
                    ));
                }
            }
        }
    };
    if v < 2 || v > MAX_DIM as u64 || v % 2 != 0 {
        return Err(ImportError::new(
            field(prefix, key),
            format!("the head size must be even and in 2..={MAX_DIM} (got {v})"),
        ));
    }
    Ok(v as usize)
}

/// Renames a [`ScheduleConfig`] validation error to the config field it came from.
fn map_schedule_error(e: ConfigError, path: &str, prefix: &str, method: Method) -> ImportError {
    let top = |k: &str| field(prefix, k);
    let name = match e.field {
        "dim" => top("head_dim"),
        "base" => field(path, "rope_theta"),
        "scale" => field(path, "factor"),
        "train-len" if method == Method::DynamicNtk => top("max_position_embeddings"),
        "train-len" => field(path, "original_max_position_embeddings"),
        "eval-len" => top("max_position_embeddings"),
        "beta-fast" => field(path, "beta_fast"),
        "beta-slow" => field(path, "beta_slow"),
        "low-freq-factor" => field(path, "low_freq_factor"),
        "high-freq-factor" => field(path, "high_freq_factor"),
        "partial-rotary-factor" => field(path, "partial_rotary_factor"),
        "mscale" => field(path, "mscale"),
        "mscale-all-dim" => field(path, "mscale_all_dim"),
        "attention-factor" => field(path, "attention_factor"),
        "short-factor" => field(path, "short_factor"),
        "long-factor" => field(path, "long_factor"),
        other => format!("--{other}"),
    };
    let message = if e.field == "eval-len" || e.field == "train-len" {
        format!("{} (max length {MAX_EVAL_LEN})", e.message)
    } else {
        e.message
    };
    ImportError::new(name, message)
}

/// The export document of a model's Resonance twin: the rounded f32 `inv_freq`, the attention
/// factor, the integer wavelengths and where they came from. `twin` must be the Resonance
/// schedule of `model` (`Schedule::new` of its config with `resonance = true`); zero-frequency
/// features keep frequency 0 and a `null` (infinite) wavelength.
pub fn resonance_export(model: &ModelRope, twin: &Schedule) -> Value {
    json!({
        "format": "resonance-lab/resonance-twin",
        "version": 1,
        "name": model.name,
        "rope_type": model.rope_type,
        "layer_type": model.layer_type,
        "resonance": twin.config.resonance,
        "head_dim": model.head_dim,
        "dim": twin.config.rotary_dim(),
        "inv_freq": twin.inv_freq,
        "attention_factor": twin.attention_factor,
        "wavelength": twin.wavelength,
        "zero_frequency_features": twin.zero_frequency_features(),
        "rope_theta": twin.config.base,
        "train_len": twin.config.train_len,
        "max_position_embeddings": model.max_position_embeddings,
    })
}

/// Builds the Resonance twin of `model` and its export document.
pub fn resonance_twin_export(model: &ModelRope) -> Result<Value, ConfigError> {
    let twin = Schedule::new(&ScheduleConfig {
        resonance: true,
        ..model.config.clone()
    })?;
    Ok(resonance_export(model, &twin))
}

/// The export file of `model`'s Resonance twin as the CLI writes it and the app downloads it:
/// [`resonance_twin_export`] as pretty JSON and a final newline.
pub fn resonance_twin_file(model: &ModelRope) -> Result<String, ConfigError> {
    Ok(format!("{:#}\n", resonance_twin_export(model)?))
}
