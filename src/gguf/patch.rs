//! What `gguf-patch` changes in a GGUF to carry a Resonance twin, as llama.cpp reads it
//! (docs/stack-notes/llama.cpp.md): the twin document is checked against the GGUF's
//! architecture, rotary size, base and rope scaling, and the plan lists the new header, the
//! factor tensors written in place of existing ones and those appended after the data.
//!
//! llama.cpp's ggml rope divides each pair's angle by `freq_factors[i]` (`theta / freq_factor`,
//! ggml-cpu ops.cpp), starting from plain RoPE's `base^(-2i/n_rot)`. So the factor of pair i is
//! the twin's wavelength over the plain RoPE wavelength, `lambda~_i / (2 pi base^(2i/d))`, and
//! every other frequency change must be switched off so that it is not applied twice:
//! `rope.scaling.type` becomes `none` (frequency scale 1, no YaRN ramp, llama-context.cpp:170-175),
//! the scaling factor and the YaRN keys are removed, and `rope.scaling.attn_factor` carries the
//! twin's attention factor, which the context multiplies into the kernel's `attn_factor` on cos
//! and sin (llama-context.cpp:214). Architectures: `llama` (also Mistral and Mixtral
//! conversions) reads one `rope_freqs.weight` for every layer (src/models/llama.cpp:140); `phi3`
//! reads `rope_factors_long` / `rope_factors_short` (src/models/phi3.cpp:97), both written with
//! the twin's factors so that the context-dependent switch has nothing to switch. Other
//! architectures pass no factor tensor to their rope, so they are refused.

use super::{GGML_TYPE_F32, GgufError, Header, MetaValue, TensorInfo, align_up};
use serde_json::{Value, json};
use std::f64::consts::PI;

/// The twin document's `format`.
pub const TWIN_FORMAT: &str = "resonance-lab/resonance-twin";
/// Metadata key that marks a GGUF patched with a twin (its value: the twin's name).
pub const MARK_KEY: &str = "resonance_lab.twin.name";

/// The factor tensors each supported architecture reads.
pub fn factor_tensors(arch: &str) -> Option<&'static [&'static str]> {
    match arch {
        "llama" => Some(&["rope_freqs.weight"]),
        "phi3" => Some(&["rope_factors_long.weight", "rope_factors_short.weight"]),
        _ => None,
    }
}

/// The twin, as `gguf-patch` needs it from the document `config --export-resonance` writes.
#[derive(Clone, Debug, PartialEq)]
pub struct Twin {
    /// The model's name.
    pub name: String,
    /// The rope type of the config the twin was made from.
    pub rope_type: String,
    /// The rotary dimension (number of rotated coordinates per head).
    pub dim: usize,
    /// The head size.
    pub head_dim: usize,
    /// The integer wavelength of each pair.
    pub wavelength: Vec<f64>,
    /// The attention factor on cos/sin.
    pub attention_factor: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// The config's scaling factor (`None` in documents that predate the field).
    pub factor: Option<f64>,
    /// The llama.cpp architecture of the config's model type, when the document has one.
    pub llama_cpp_architecture: Option<String>,
    /// The config's `model_type`, when the document has one.
    pub model_type: Option<String>,
    /// The layer type the twin was made for.
    pub layer_type: Option<String>,
}

fn bad_twin(m: impl Into<String>) -> GgufError {
    GgufError::Invalid(format!("invalid --twin: {}", m.into()))
}

impl Twin {
    /// Reads a twin document, naming the field that is missing or wrong.
    pub fn from_json(v: &Value) -> Result<Twin, GgufError> {
        if v.get("format").and_then(Value::as_str) != Some(TWIN_FORMAT) {
            return Err(bad_twin(format!(
                "format must be \"{TWIN_FORMAT}\" (a document of config --export-resonance)"
            )));
        }
        if v.get("resonance") != Some(&Value::Bool(true)) {
            return Err(bad_twin("resonance must be true"));
        }
        let uint = |k: &str| -> Result<usize, GgufError> {
            v.get(k)
                .and_then(Value::as_u64)
                .map(|x| x as usize)
                .ok_or_else(|| bad_twin(format!("{k} must be a positive integer")))
        };
        let num = |k: &str| -> Result<f64, GgufError> {
            v.get(k)
                .and_then(Value::as_f64)
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| bad_twin(format!("{k} must be a positive number")))
        };
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let dim = uint("dim")?;
        let wl = v
            .get("wavelength")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_twin("wavelength must be a list"))?;
        if dim < 2 || dim % 2 != 0 || wl.len() != dim / 2 {
            return Err(bad_twin(format!(
                "wavelength must hold dim / 2 = {} numbers (got {})",
                dim / 2,
                wl.len()
            )));
        }
        let mut wavelength = Vec::with_capacity(wl.len());
        for (i, w) in wl.iter().enumerate() {
            match w.as_f64() {
                Some(x) if x.is_finite() && x > 0.0 => wavelength.push(x),
                _ => {
                    return Err(bad_twin(format!(
                        "wavelength[{i}] is {w}: a zero frequency cannot be written as a llama.cpp frequency factor"
                    )));
                }
            }
        }
        Ok(Twin {
            name: text("name").unwrap_or_default(),
            rope_type: text("rope_type").ok_or_else(|| bad_twin("rope_type must be a string"))?,
            dim,
            head_dim: uint("head_dim")?,
            wavelength,
            attention_factor: num("attention_factor")?,
            rope_theta: num("rope_theta")?,
            factor: v.get("factor").and_then(Value::as_f64),
            llama_cpp_architecture: text("llama_cpp_architecture"),
            model_type: text("model_type"),
            layer_type: text("layer_type"),
        })
    }

    /// The per-pair factors `lambda~_i / (2 pi base^(2i/d))` in f64, stored as f32.
    pub fn factors(&self) -> Vec<f32> {
        self.wavelength
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let plain = 2.0 * PI * self.rope_theta.powf((2 * i) as f64 / self.dim as f64);
                (w / plain) as f32
            })
            .collect()
    }
}

/// What the patch does.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The new header.
    pub header: Header,
    /// Factor tensors rewritten in place: offset in the data section and the new bytes.
    pub in_place: Vec<(u64, Vec<u8>)>,
    /// The bytes of the input's data section that are copied (the end of the last tensor).
    pub data_len: u64,
    /// Where the appended tensors start in the new data section (aligned).
    pub appended_at: u64,
    /// Bytes of the appended tensors (each already padded to the alignment but the last).
    pub appended: Vec<u8>,
    /// The factors written.
    pub factors: Vec<f32>,
    /// A JSON summary: architecture, tensors written, metadata set and removed.
    pub report: Value,
}

fn refuse(m: impl Into<String>) -> GgufError {
    GgufError::Invalid(m.into())
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn meta_str(v: &MetaValue) -> String {
    match v {
        MetaValue::String(s) => format!("'{s}'"),
        MetaValue::F32(x) => format!("{x}"),
        MetaValue::F64(x) => format!("{x}"),
        other => other
            .as_u64()
            .map_or_else(|| format!("{other:?}"), |u| u.to_string()),
    }
}

/// What the checks found: the architecture, its rotary size and base, the factor tensors.
struct Checked {
    arch: String,
    n_rot: u64,
    base: f64,
    tensor_names: &'static [&'static str],
}

/// The GGUF's rotary dimensions: `rope.dimension_count`, else the key length, else
/// `embedding_length / head_count` (llama.cpp's defaults).
fn rotary_dims(input: &Header, arch: &str) -> Result<u64, GgufError> {
    let key = |k: &str| format!("{arch}.{k}");
    let n_rot = match input.get(&key("rope.dimension_count")) {
        Some(v) => v.as_u64().ok_or_else(|| {
            refuse(format!(
                "malformed GGUF: {} is not an integer",
                key("rope.dimension_count")
            ))
        })?,
        None => match input
            .get(&key("attention.key_length"))
            .and_then(MetaValue::as_u64)
        {
            Some(k) => k,
            None => {
                let e = input
                    .get(&key("embedding_length"))
                    .and_then(MetaValue::as_u64);
                let h = input
                    .get(&key("attention.head_count"))
                    .and_then(MetaValue::as_u64);
                match (e, h) {
                    (Some(e), Some(h)) if h > 0 => e / h,
                    _ => {
                        return Err(refuse(format!(
                            "malformed GGUF: no {} and no head size to derive it from",
                            key("rope.dimension_count")
                        )));
                    }
                }
            }
        },
    };
    Ok(n_rot)
}

/// Checks the GGUF against the twin: architecture, rotary size, base, rope scaling, not yet
/// patched.
fn check(input: &Header, twin: &Twin) -> Result<Checked, GgufError> {
    let arch = input
        .get("general.architecture")
        .and_then(MetaValue::as_str)
        .ok_or_else(|| refuse("malformed GGUF: no string general.architecture"))?
        .to_string();
    if let Some(want) = &twin.llama_cpp_architecture
        && *want != arch
    {
        return Err(refuse(format!(
            "wrong architecture: the GGUF's general.architecture is '{arch}', the twin is of a '{}' model (llama.cpp '{want}')",
            twin.model_type.as_deref().unwrap_or("?")
        )));
    }
    let tensor_names = factor_tensors(&arch).ok_or_else(|| {
        refuse(format!(
            "wrong architecture: llama.cpp's '{arch}' graph passes no frequency factors to its rope, so a GGUF of it cannot carry the twin (supported: llama, phi3)"
        ))
    })?;
    if input.get(MARK_KEY).is_some() {
        return Err(refuse(format!(
            "the GGUF already holds a Resonance twin ({MARK_KEY}); patch the original file"
        )));
    }
    if twin
        .layer_type
        .as_deref()
        .is_some_and(|l| l != "full_attention")
    {
        return Err(refuse(format!(
            "invalid --twin: layer_type '{}': only a twin of the model's one (or full-attention) RoPE can be written",
            twin.layer_type.as_deref().unwrap_or_default()
        )));
    }
    let key = |k: &str| format!("{arch}.{k}");
    let n_rot = rotary_dims(input, &arch)?;
    if n_rot != twin.dim as u64 {
        return Err(refuse(format!(
            "head size mismatch: the GGUF rotates {n_rot} dimensions per head ({}), the twin {} (head_dim {})",
            key("rope.dimension_count"),
            twin.dim,
            twin.head_dim
        )));
    }
    // base
    let base = match input.get(&key("rope.freq_base")) {
        Some(v) => v.as_f64().ok_or_else(|| {
            refuse(format!(
                "malformed GGUF: {} is not a float",
                key("rope.freq_base")
            ))
        })?,
        None => 10_000.0,
    };
    if base as f32 != twin.rope_theta as f32 {
        return Err(refuse(format!(
            "rope metadata mismatch: {} is {base}, the twin's rope_theta is {}",
            key("rope.freq_base"),
            twin.rope_theta
        )));
    }
    check_scaling(input, twin, &arch, tensor_names)?;

    Ok(Checked {
        arch,
        n_rot,
        base,
        tensor_names,
    })
}

/// Checks the GGUF against the twin and plans the patch.
pub fn plan(input: &Header, twin: &Twin) -> Result<Plan, GgufError> {
    let Checked {
        arch,
        n_rot,
        base,
        tensor_names,
    } = check(input, twin)?;
    let key = |k: &str| format!("{arch}.{k}");
    // the new header
    let factors = twin.factors();
    let bytes = f32_bytes(&factors);
    let mut header = input.clone();
    let mut removed = Vec::new();
    for k in [
        "rope.scaling.factor",
        "rope.scale_linear",
        "rope.scaling.yarn_ext_factor",
        "rope.scaling.yarn_attn_factor",
        "rope.scaling.yarn_beta_fast",
        "rope.scaling.yarn_beta_slow",
        "rope.scaling.yarn_log_multiplier",
    ] {
        if header.remove(&key(k)) {
            removed.push(key(k));
        }
    }
    let set = vec![
        (key("rope.scaling.type"), MetaValue::String("none".into())),
        (
            key("rope.scaling.attn_factor"),
            MetaValue::F32(twin.attention_factor as f32),
        ),
        (MARK_KEY.to_string(), MetaValue::String(twin.name.clone())),
        (
            "resonance_lab.twin.source_rope_type".to_string(),
            MetaValue::String(twin.rope_type.clone()),
        ),
    ];
    for (k, v) in &set {
        header.set(k, v.clone());
    }
    let alignment = input.alignment();
    let data_len = input.data_len()?;
    let appended_at = align_up(data_len, alignment);
    let (in_place, appended, written) = write_factor_tensors(
        input,
        &mut header,
        tensor_names,
        &bytes,
        twin.dim,
        appended_at,
    )?;
    let report = json!({
        "architecture": arch,
        "rotary_dim": n_rot,
        "rope_theta": base,
        "alignment": alignment,
        "tensors_written": written,
        "metadata_set": set.iter().map(|(k, v)| json!({"key": k, "value": meta_str(v)})).collect::<Vec<_>>(),
        "metadata_removed": removed,
    });
    Ok(Plan {
        header,
        in_place,
        data_len,
        appended_at,
        appended,
        factors,
        report,
    })
}

/// Tensors rewritten in place, bytes appended and a report entry per factor tensor; appended
/// tensors get their info in `header`.
type FactorWrites = (Vec<(u64, Vec<u8>)>, Vec<u8>, Vec<Value>);

fn write_factor_tensors(
    input: &Header,
    header: &mut Header,
    tensor_names: &[&str],
    bytes: &[u8],
    dim: usize,
    appended_at: u64,
) -> Result<FactorWrites, GgufError> {
    let alignment = input.alignment();
    let mut in_place = Vec::new();
    let mut appended = Vec::new();
    let mut written = Vec::new();
    for name in tensor_names {
        match input.tensor(name) {
            Some(t) => {
                if t.ggml_type != GGML_TYPE_F32 || t.dims != [dim as u64 / 2] {
                    return Err(refuse(format!(
                        "the GGUF's '{name}' is not an f32 vector of {} (type {}, dims {:?})",
                        dim / 2,
                        t.ggml_type,
                        t.dims
                    )));
                }
                in_place.push((t.offset, bytes.to_vec()));
                written.push(json!({"name": name, "offset": t.offset, "action": "replaced"}));
            }
            None => {
                let pad = align_up(appended.len() as u64, alignment) - appended.len() as u64;
                appended.extend(std::iter::repeat_n(0u8, pad as usize));
                let offset = appended_at + appended.len() as u64;
                header.tensors.push(TensorInfo {
                    name: name.to_string(),
                    dims: vec![dim as u64 / 2],
                    ggml_type: GGML_TYPE_F32,
                    offset,
                });
                appended.extend_from_slice(bytes);
                written.push(json!({"name": name, "offset": offset, "action": "added"}));
            }
        }
    }
    in_place.sort_by_key(|(o, _)| *o);
    Ok((in_place, appended, written))
}

/// The GGUF's rope scaling must be what llama.cpp's converter writes for the twin's source
/// config (docs/stack-notes/llama.cpp.md, "What the converter writes").
fn check_scaling(
    input: &Header,
    twin: &Twin,
    arch: &str,
    tensor_names: &[&str],
) -> Result<(), GgufError> {
    let key = |k: &str| format!("{arch}.{k}");
    let ty = input
        .get(&key("rope.scaling.type"))
        .and_then(MetaValue::as_str)
        .map(str::to_string);
    let factor = input
        .get(&key("rope.scaling.factor"))
        .or_else(|| input.get(&key("rope.scale_linear")))
        .and_then(MetaValue::as_f64);
    let has_factors = tensor_names.iter().any(|n| input.tensor(n).is_some());
    let plain = matches!(ty.as_deref(), None | Some("none") | Some("linear"))
        && factor.is_none_or(|f| f == 1.0);
    let same_factor = match (factor, twin.factor) {
        (Some(g), Some(t)) => g as f32 == t as f32,
        (_, None) => true,
        (None, Some(_)) => false,
    };
    let ok = match twin.rope_type.as_str() {
        "yarn" => ty.as_deref() == Some("yarn") && same_factor,
        "linear" => {
            matches!(ty.as_deref(), None | Some("linear")) && factor.is_some() && same_factor
        }
        "llama3" => plain && has_factors,
        "longrope" => arch == "phi3" && has_factors,
        "default" | "dynamic" => plain && !has_factors,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let gguf = format!(
        "{} = {}, {} = {}, factor tensors {}",
        key("rope.scaling.type"),
        ty.as_deref()
            .map_or("(absent)".to_string(), |t| format!("'{t}'")),
        key("rope.scaling.factor"),
        factor.map_or("(absent)".to_string(), |f| f.to_string()),
        if has_factors { "present" } else { "absent" }
    );
    Err(refuse(format!(
        "rope metadata mismatch: the GGUF has {gguf}, which is not what llama.cpp's converter writes for the twin's '{}' config (factor {})",
        twin.rope_type,
        twin.factor.map_or("?".to_string(), |f| f.to_string())
    )))
}
