//! Hugging Face `config.json` import: turns a model's RoPE settings into a [`ScheduleConfig`]
//! exactly as transformers' `modeling_rope_utils` reads them, and builds the export document of
//! the model's Resonance twin. Pure text in, values out (no IO), so the CLI and the app share it.
//!
//! Both forms are read: legacy `rope_theta` + `rope_scaling` (type under `type` or `rope_type`)
//! and transformers 5 `rope_parameters`, flat or nested per layer type (`full_attention`,
//! `sliding_attention`, ...). Gemma 3's legacy `rope_local_base_freq` becomes the
//! `sliding_attention` entry, as transformers' Gemma 3 config converts it. A multimodal config
//! whose RoPE lives under `text_config` is read from there.

use super::config::{HfKey, MAX_DIM, MAX_EVAL_LEN};
use super::hf_dict::{Dict, RopeDict, describe, field};
pub use super::hf_dict::{ImportError, ImportField};
use super::methods::param;
use super::{ConfigError, Method, Schedule, ScheduleConfig};
use serde_json::{Map, Value, json};

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
    let t = Dict::new(top, prefix);
    let head_dim = head_dim(t)?;
    let max_pos = t.positive_u64("max_position_embeddings")?.ok_or_else(|| {
        ImportError::new(
            t.field("max_position_embeddings"),
            "missing; a positive integer is required",
        )
    })?;
    let top_theta = t.positive_f64("rope_theta")?;
    let top_partial = t.positive_f64("partial_rotary_factor")?;
    let top_original = t.positive_u64("original_max_position_embeddings")?;
    // the RoPE dictionary: `rope_scaling` wins over `rope_parameters`, as transformers' BC path
    let scaling = rope_dict(top, "rope_scaling", prefix)?;
    let outer = scaling.or(rope_dict(top, "rope_parameters", prefix)?);
    let local_theta = t.positive_f64("rope_local_base_freq")?;
    let layers = layers(top, outer, local_theta, opts)?;
    let empty = Map::new();
    let src = source(&layers, outer, &empty, prefix)?;
    let (rope_type, method) = rope_type_of(&src)?;

    let d = Dict::new(src.dict, &src.path);
    let theta = if layers.gemma_legacy && layers.chosen.as_deref() == Some("sliding_attention") {
        local_theta
    } else {
        d.positive_f64("rope_theta")?.or(top_theta)
    }
    .unwrap_or(DEFAULT_THETA);
    let partial = d
        .positive_f64("partial_rotary_factor")?
        .or(top_partial)
        .unwrap_or(1.0);
    let dict_original = d.positive_u64("original_max_position_embeddings")?;
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
    let truncate_path;
    let truncate_from = match outer {
        Some((key, m)) if src.nested => {
            truncate_path = field(prefix, key);
            Dict::new(m, &truncate_path)
        }
        _ => d,
    };
    let inputs = RopeDict {
        dict: d,
        rope_type: &rope_type,
        max_pos,
        original,
        truncate_from,
    };
    c.train_len = (method.def().import)(&mut c, &inputs)?;
    set_lengths(&mut c, opts, max_pos, prefix)?;
    c.validate()
        .map_err(|e| map_schedule_error(&e, &src.path, prefix, method))?;
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

/// The current and evaluation lengths: the caller's, else `max_position_embeddings`; the
/// trained length must not exceed the latter.
fn set_lengths(
    c: &mut ScheduleConfig,
    opts: &ImportOptions,
    max_pos: u64,
    prefix: &str,
) -> Result<(), ImportError> {
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
    Ok(())
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
            return Err(ImportError::option(
                "layer_type",
                format!(
                    "the config has one RoPE for every layer; there is no layer type '{lt}' to pick"
                ),
            ));
        }
        (Some(lt), false) if !types.contains(lt) => {
            return Err(ImportError::option(
                "layer_type",
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
    let method = Method::from_transformers_type(&rope_type).ok_or_else(|| {
        let known: Vec<&str> = Method::ALL
            .iter()
            .filter_map(|m| m.def().transformers_type)
            .collect();
        ImportError::new(
            field(&src.path, type_key),
            format!(
                "unknown rope type '{rope_type}'; known: {}",
                known.join(", ")
            ),
        )
    })?;
    Ok((rope_type, method))
}

fn unreachable_layer(lt: &str) -> Result<Source<'static>, ImportError> {
    Err(ImportError::option(
        "layer_type",
        format!("layer type '{lt}' not found"),
    ))
}

/// The head size, with the field named when it is missing or bad.
fn head_dim(t: Dict) -> Result<usize, ImportError> {
    let direct = match t.positive_u64("qk_rope_head_dim")? {
        Some(v) => Some(("qk_rope_head_dim", v)),
        None => t.positive_u64("head_dim")?.map(|v| ("head_dim", v)),
    };
    let (key, v) = match direct {
        Some(kv) => kv,
        None => {
            let hidden = t.positive_u64("hidden_size")?;
            let heads = t.positive_u64("num_attention_heads")?;
            match (hidden, heads) {
                (Some(h), Some(n)) => ("hidden_size", h / n),
                _ => {
                    return Err(ImportError::new(
                        t.field("head_dim"),
                        "no head size: give head_dim, or hidden_size and num_attention_heads",
                    ));
                }
            }
        }
    };
    if v < 2 || v > MAX_DIM as u64 || v % 2 != 0 {
        return Err(ImportError::new(
            t.field(key),
            format!("the head size must be even and in 2..={MAX_DIM} (got {v})"),
        ));
    }
    Ok(v as usize)
}

/// The config.json name of a schedule field: the method's own trained-length key, else the
/// parameter's, at the top level or in the RoPE dictionary at `path`; `None` for a field the
/// config does not hold (one of the import's options).
fn hf_name(key: &str, path: &str, prefix: &str, method: Method) -> Option<String> {
    let hf = if key == "train_len" {
        method.def().hf_train_len
    } else {
        param(key).map_or(HfKey::None, |p| p.hf)
    };
    match hf {
        HfKey::Top(k) => Some(field(prefix, k)),
        HfKey::Rope(k) => Some(field(path, k)),
        HfKey::None => None,
    }
}

/// Renames a [`ScheduleConfig`] validation error to the config field it came from (or the
/// import option, e.g. the current length), naming other fields the same way.
fn map_schedule_error(e: &ConfigError, path: &str, prefix: &str, method: Method) -> ImportError {
    let name = |k: &'static str| hf_name(k, path, prefix, method).unwrap_or_else(|| k.to_string());
    let mut message = e.message_with(&name);
    if e.field == "eval_len" || e.field == "train_len" {
        message = format!("{message} (max length {MAX_EVAL_LEN})");
    }
    match hf_name(e.field, path, prefix, method) {
        Some(f) => ImportError::new(f, message),
        None => ImportError::option(e.field, message),
    }
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
        "factor": twin.config.scale,
        "max_position_embeddings": model.max_position_embeddings,
        "original_max_position_embeddings": model.original_max_position_embeddings,
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
