//! Typed reading of a Hugging Face config.json's JSON objects, with errors that name the JSON
//! path (`rope_scaling.factor`, `rope_parameters.full_attention.short_factor[3]`): the readers
//! that [`super::hf_config`] and each method's `import` share.

use serde_json::{Map, Value};
use std::fmt;

/// What an import error is about: a config.json field by JSON path, or one of the caller's
/// options by key (rendered in the caller's words, e.g. `--seq-len` on the CLI).
#[derive(Clone, Debug, PartialEq)]
pub enum ImportField {
    /// A field of the config, e.g. `rope_scaling.factor` or `(document)`.
    Config(String),
    /// An import option by key, e.g. `layer_type` or `seq_len`.
    Option(&'static str),
}

/// A config that cannot be imported: the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportError {
    /// The offending field.
    pub field: ImportField,
    /// What is wrong and what is valid.
    pub message: String,
}

impl ImportError {
    /// An error about the config field at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ImportError {
            field: ImportField::Config(path.into()),
            message: message.into(),
        }
    }

    /// An error about the caller's option `key`.
    pub fn option(key: &'static str, message: impl Into<String>) -> Self {
        ImportError {
            field: ImportField::Option(key),
            message: message.into(),
        }
    }

    /// The one-line message with an option said by `name` (config fields keep their path).
    pub fn render(&self, name: &dyn Fn(&'static str) -> String) -> String {
        match &self.field {
            ImportField::Config(p) => format!("invalid config field {p}: {}", self.message),
            ImportField::Option(k) => format!("invalid {}: {}", name(k), self.message),
        }
    }

    /// The field in words: the JSON path, or the option's key.
    pub fn field_name(&self) -> String {
        match &self.field {
            ImportField::Config(p) => p.clone(),
            ImportField::Option(k) => k.to_string(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&|k| k.to_string()))
    }
}

impl std::error::Error for ImportError {}

/// A JSON path joined with a key (`rope_scaling` + `factor`).
pub fn field(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A JSON value in a short form for messages.
pub fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}...", &s[..s.floor_char_boundary(40)])
    } else {
        s
    }
}

/// A JSON object and the path it was found at: every read names `path.key` on failure.
#[derive(Clone, Copy, Debug)]
pub struct Dict<'a> {
    /// The object.
    pub map: &'a Map<String, Value>,
    /// Its JSON path (`""` for the top level).
    pub path: &'a str,
}

impl<'a> Dict<'a> {
    /// The object at `path`.
    pub fn new(map: &'a Map<String, Value>, path: &'a str) -> Self {
        Dict { map, path }
    }

    /// The path of `key` in this object.
    pub fn field(&self, key: &str) -> String {
        field(self.path, key)
    }

    /// Whether the key is present (null included).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// A positive number, or `None` when absent or `null`.
    pub fn positive_f64(&self, key: &str) -> Result<Option<f64>, ImportError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if v.is_finite() && v > 0.0 => Ok(Some(v)),
                _ => Err(ImportError::new(
                    self.field(key),
                    format!("must be a number > 0 (got {n})"),
                )),
            },
            Some(v) => Err(ImportError::new(
                self.field(key),
                format!("must be a number > 0 (got {})", describe(v)),
            )),
        }
    }

    /// A finite number (any sign), or `None` when absent or `null`.
    pub fn finite_f64(&self, key: &str) -> Result<Option<f64>, ImportError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => Ok(n.as_f64()),
            Some(v) => Err(ImportError::new(
                self.field(key),
                format!("must be a number (got {})", describe(v)),
            )),
        }
    }

    /// A positive integer (an integral JSON number), or `None` when absent or `null`.
    pub fn positive_u64(&self, key: &str) -> Result<Option<u64>, ImportError> {
        let bad = |v: &Value| {
            ImportError::new(
                self.field(key),
                format!("must be a positive integer (got {})", describe(v)),
            )
        };
        match self.map.get(key) {
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

    /// `true` or `false`, or `None` when absent or `null`.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ImportError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(ImportError::new(
                self.field(key),
                format!("must be true or false (got {})", describe(v)),
            )),
        }
    }

    /// A list of positive numbers, or `None` when absent or `null`.
    pub fn positive_list(&self, key: &str) -> Result<Option<Vec<f64>>, ImportError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v.as_f64() {
                    Some(x) if x.is_finite() && x > 0.0 => Ok(x),
                    _ => Err(ImportError::new(
                        format!("{}[{i}]", self.field(key)),
                        format!("must be a number > 0 (got {})", describe(v)),
                    )),
                })
                .collect::<Result<Vec<f64>, _>>()
                .map(Some),
            Some(v) => Err(ImportError::new(
                self.field(key),
                format!("must be a list of numbers > 0 (got {})", describe(v)),
            )),
        }
    }
}

/// What a method's `import` reads: the RoPE dictionary of the chosen layer type and the
/// lengths transformers derives around it.
#[derive(Clone, Copy, Debug)]
pub struct RopeDict<'a> {
    /// The dictionary (`rope_scaling`, `rope_parameters` or one layer type's entry).
    pub dict: Dict<'a>,
    /// Its rope type as written (`yarn`, `dynamic`, ...).
    pub rope_type: &'a str,
    /// `max_position_embeddings`.
    pub max_pos: u64,
    /// `original_max_position_embeddings` as transformers sees it for this dictionary.
    pub original: Option<u64>,
    /// Where YaRN's `truncate` is read: transformers reads it from the outer dictionary, so in
    /// the per-layer form a layer's own `truncate` is not seen.
    pub truncate_from: Dict<'a>,
}

impl RopeDict<'_> {
    /// `original_max_position_embeddings`, else `max_position_embeddings`.
    pub fn original_or_max(&self) -> u64 {
        self.original.unwrap_or(self.max_pos)
    }

    /// A required positive number of the dictionary.
    pub fn need(&self, v: Option<f64>, key: &str) -> Result<f64, ImportError> {
        v.ok_or_else(|| {
            ImportError::new(
                self.dict.field(key),
                format!("missing; rope type '{}' needs a number > 0", self.rope_type),
            )
        })
    }
}
