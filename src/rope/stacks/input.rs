//! A config as every stack model needs it: transformers' reading (the lab's importer) plus the
//! raw keys the other stacks read their own way (architecture, top-level fields, the RoPE
//! section as written, which spelling the file uses).

use super::StackOptions;
use crate::rope::hf_config::{ImportError, ImportOptions, ModelRope, parse_config};
use serde_json::{Map, Value};

/// One config, one layer type, one context: what the stack models read.
#[derive(Clone, Debug)]
pub struct StackInput {
    /// The file as given.
    pub text: String,
    /// The language model's top-level fields (`text_config` for a multimodal file).
    pub top: Map<String, Value>,
    /// Whether the fields came from `text_config`.
    pub text_config: bool,
    /// `model_type` (empty when absent).
    pub model_type: String,
    /// `architectures[0]` (empty when absent).
    pub architecture: String,
    /// The RoPE section is spelt `rope_parameters` (transformers 5), not `rope_scaling`.
    pub rope_parameters_form: bool,
    /// The chosen layer's RoPE section as written (empty when none).
    pub section: Map<String, Value>,
    /// The section's rope type as written (`type` or `rope_type`; `default` when none).
    pub rope_type: String,
    /// The layer type read, for per-layer configs.
    pub layer_type: Option<String>,
    /// The context asked for, else `max_position_embeddings`.
    pub context: u64,
    /// Audit the Resonance twin.
    pub resonance: bool,
    /// transformers' reading of the config at the context (an error for a rope type
    /// transformers does not know, e.g. vLLM's `ntk`).
    pub transformers: Result<ModelRope, ImportError>,
    /// The same config read with its rope type replaced by `default`: head size, base and
    /// lengths for stacks that run a type transformers does not know.
    pub plain: ModelRope,
}

/// The lab's importer (transformers' reading) on `text` at `ctx`.
fn import(text: &str, opts: &StackOptions, ctx: Option<u64>) -> Result<ModelRope, ImportError> {
    parse_config(
        text,
        "config",
        &ImportOptions {
            layer_type: opts.layer_type.clone(),
            seq_len: ctx,
            eval_len: None,
        },
    )
}

/// The language model's top-level fields: `text_config` for a multimodal file (one whose top
/// level holds no RoPE keys), else the top level; and whether they came from `text_config`.
fn language_fields(root: &Map<String, Value>) -> (Map<String, Value>, bool) {
    match root.get("text_config") {
        Some(Value::Object(tc))
            if !["rope_theta", "rope_scaling", "rope_parameters", "head_dim"]
                .iter()
                .any(|k| root.contains_key(*k)) =>
        {
            (tc.clone(), true)
        }
        _ => (root.clone(), false),
    }
}

/// Gemma 4's full-attention layers use `global_head_dim` (per_layer_config in transformers,
/// gemma4.py:516 in vLLM, key_length in llama.cpp's GGUF).
fn global_head_dim(top: &Map<String, Value>, plain: &mut ModelRope, first: Option<&mut ModelRope>) {
    if let Some(g) = top.get("global_head_dim").and_then(Value::as_u64) {
        for m in std::iter::once(plain).chain(first) {
            m.head_dim = g as usize;
            m.config.dim = g as usize;
        }
    }
}

impl StackInput {
    /// Reads `text` for the options; errors name the field (bad JSON, no head size, ...).
    pub fn parse(text: &str, opts: &StackOptions) -> Result<StackInput, ImportError> {
        let imp = |t: &str, ctx: Option<u64>| import(t, opts, ctx);
        // a first reading for the errors every stack shares (syntax, head size, lengths)
        let first = imp(text, opts.context);
        let root: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => return Err(first.expect_err("malformed JSON fails the import")),
        };
        let Value::Object(root) = root else {
            return Err(first.expect_err("a non-object fails the import"));
        };
        let (top, text_config) = language_fields(&root);
        let str_of = |m: &Map<String, Value>, k: &str| {
            m.get(k).and_then(Value::as_str).unwrap_or("").to_string()
        };
        let model_type = str_of(&top, "model_type");
        let architecture = root
            .get("architectures")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let scaling = top.get("rope_scaling").and_then(Value::as_object);
        let params = top.get("rope_parameters").and_then(Value::as_object);
        let rope_parameters_form = scaling.is_none_or(|m| m.is_empty()) && params.is_some();
        let outer = match scaling {
            Some(m) if !m.is_empty() => Some(m),
            _ => params,
        };
        let mut plain_text = text.to_string();
        let (section, layer_type) = match &first {
            Ok(m) => (select(outer, m.layer_type.as_deref()), m.layer_type.clone()),
            Err(e) if !e.message.starts_with("unknown rope type") => return Err(e.clone()),
            Err(_) => {
                // an unknown rope type: read everything else with the type set to default
                let mut r = root.clone();
                let layer = opts.layer_type.as_deref();
                set_default_type(&mut r, text_config, layer);
                plain_text = Value::Object(r).to_string();
                let p = imp(&plain_text, opts.context)?;
                (select(outer, p.layer_type.as_deref()), p.layer_type)
            }
        };
        let rope_type = match (section.get("rope_type"), section.get("type")) {
            (Some(Value::String(t)), _) | (_, Some(Value::String(t))) => t.clone(),
            _ => "default".to_string(),
        };
        let plain = match &first {
            Ok(m) if plain_text == text => m.clone(),
            _ => imp(&plain_text, opts.context)?,
        };
        let mut plain = plain;
        let mut first = first;
        if model_type.starts_with("gemma4") && layer_type.as_deref() == Some("full_attention") {
            global_head_dim(&top, &mut plain, first.as_mut().ok());
        }
        let context = opts.context.unwrap_or(plain.max_position_embeddings);
        Ok(StackInput {
            text: text.to_string(),
            top,
            text_config,
            model_type,
            architecture,
            rope_parameters_form,
            section,
            rope_type,
            layer_type,
            context,
            resonance: opts.resonance,
            transformers: first,
            plain,
        })
    }

    /// A number from the RoPE section.
    pub fn sec_f64(&self, key: &str) -> Option<f64> {
        self.section.get(key).and_then(Value::as_f64)
    }

    /// A number from the top level.
    pub fn top_f64(&self, key: &str) -> Option<f64> {
        self.top.get(key).and_then(Value::as_f64)
    }

    /// A list of numbers from the RoPE section.
    pub fn sec_list(&self, key: &str) -> Option<Vec<f64>> {
        self.section
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
    }

    /// `max_position_embeddings`.
    pub fn max_pos(&self) -> u64 {
        self.plain.max_position_embeddings
    }

    /// Whether the model type is one of `types`.
    pub fn is(&self, types: &[&str]) -> bool {
        types.contains(&self.model_type.as_str())
    }
}

/// The chosen layer's section of a (possibly per-layer) RoPE dictionary.
fn select(outer: Option<&Map<String, Value>>, layer: Option<&str>) -> Map<String, Value> {
    let Some(m) = outer else {
        return Map::new();
    };
    match layer.and_then(|l| m.get(l)) {
        Some(Value::Object(d)) => d.clone(),
        _ if layer.is_some() && m.values().any(Value::is_object) => Map::new(),
        // Gemma 3's legacy form: rope_scaling is the full-attention layers' only
        _ if layer == Some("sliding_attention") => Map::new(),
        _ => m.clone(),
    }
}

/// Sets the rope type of the section(s) to `default`, in place.
fn set_default_type(root: &mut Map<String, Value>, text_config: bool, layer: Option<&str>) {
    let top = if text_config {
        match root.get_mut("text_config") {
            Some(Value::Object(t)) => t,
            _ => return,
        }
    } else {
        root
    };
    for key in ["rope_scaling", "rope_parameters"] {
        if let Some(Value::Object(m)) = top.get_mut(key) {
            let nested = m.values().any(Value::is_object);
            let dicts: Vec<&mut Map<String, Value>> = if nested {
                m.iter_mut()
                    .filter(|(k, _)| layer.is_none_or(|l| l == k.as_str()))
                    .filter_map(|(_, v)| v.as_object_mut())
                    .collect()
            } else {
                vec![m]
            };
            for d in dicts {
                for k in ["type", "rope_type"] {
                    if d.contains_key(k) {
                        d.insert(k.to_string(), Value::String("default".into()));
                    }
                }
            }
        }
    }
}
