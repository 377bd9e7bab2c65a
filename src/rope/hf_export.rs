//! The Resonance twin as a Hugging Face `config.json` (`config --export-resonance OUT --format
//! hf-config`): the original file, byte for byte, with only its RoPE section replaced by a
//! LongRoPE section whose two factor lists are equal, so that transformers, vLLM and mlx-lm load
//! the twin without code. Pure text in, text out (no IO).
//!
//! Why LongRoPE: it is the one rope type that every stack reads as per-pair divisors of the plain
//! RoPE frequencies, `inv_freq[i] = 1 / (ext[i] * base^(2i/d))` in f32
//! (docs/stack-notes/transformers.md, "longrope"; vllm.md, "longrope"; mlx.md, "longrope / su").
//! With `short_factor == long_factor` the short/long switch, which each stack places elsewhere,
//! has nothing left to switch. Each `ext[i]` is the f32 whose transformers f32 formula gives the
//! twin's f32 frequency exactly (searched over neighbouring f32 values), printed as the exact
//! decimal of that f32, so that a reader rounding the JSON number to f32 gets the same value.
//!
//! The attention factor is written three times, for the three readers: `attention_factor`
//! (transformers), `short_mscale` and `long_mscale` (vLLM; transformers only warns about these
//! keys). mlx-lm's `SuScaledRoPE` reads none of them and derives its scale from
//! `max_position_embeddings / original_max_position_embeddings`: the section's
//! `original_max_position_embeddings` is therefore `max_position_embeddings` when the twin's
//! factor is 1 (mlx-lm then scales by 1, and vLLM serves the whole length by default), and the
//! model's own original length otherwise. `factor`, `mscale` and `mscale_all_dim` are kept from
//! the original section: DeepSeek's model files read them for the softmax scale, outside the
//! rope helper. Where a stack still cannot carry the twin from the config alone, [`StackSupport`]
//! says which and why.
//!
//! The file keeps its own form: a legacy `rope_scaling` stays `rope_scaling` (with the same type
//! key, `type` or `rope_type`), a `rope_parameters` stays `rope_parameters` (with its
//! `rope_theta`), and a per-layer `rope_parameters` has only the exported layer type's entry
//! replaced. Every other byte of the file is kept, so keys, their order and their spelling do not
//! change.

use super::Schedule;
use super::hf_config::{ImportError, ImportOptions, ModelRope, parse_config};
use super::methods::common::pos_freqs_f32;
use serde_json::{Map, Value, json};

/// Whether one stack loads the exported config as the twin, and why not when it does not.
#[derive(Clone, Debug, PartialEq)]
pub struct StackSupport {
    /// `transformers`, `vllm`, `mlx-lm` or `llama.cpp`.
    pub stack: &'static str,
    /// True when the stack computes the twin's frequencies and attention factor from the file.
    pub loads_twin: bool,
    /// One line: what the stack does with the file, and what to do when it is not the twin.
    pub reason: String,
}

/// The exported config text and what each stack makes of it.
#[derive(Clone, Debug, PartialEq)]
pub struct HfExport {
    /// The new config.json text (the original with its RoPE section replaced).
    pub text: String,
    /// The config path of the replaced section (`rope_scaling`, `rope_parameters.full_attention`,
    /// `text_config.rope_scaling`, ...).
    pub section: String,
    /// The per-pair divisors written to `short_factor` and `long_factor` (f32 values).
    pub factors: Vec<f32>,
    /// The section's `original_max_position_embeddings`.
    pub original_max_position_embeddings: u64,
    /// The attention factor written (`attention_factor`, `short_mscale`, `long_mscale`).
    pub attention_factor: f64,
    /// Per stack: does it load the twin from this file.
    pub stacks: Vec<StackSupport>,
}

/// Why the twin cannot be written as a config.
fn refuse(field: impl Into<String>, message: impl Into<String>) -> ImportError {
    ImportError::new(field, message)
}

/// Builds the `hf-config` export of `model`'s Resonance twin `twin` from the config `text` that
/// `model` was read from (with the same `opts`). The result is checked by reading it back with
/// [`parse_config`]: its frequencies must equal the twin's to 1 ulp and its attention factor must
/// be the twin's, else the export is refused.
pub fn hf_config_export(
    text: &str,
    model: &ModelRope,
    twin: &Schedule,
    opts: &ImportOptions,
) -> Result<HfExport, ImportError> {
    let zero = twin.zero_frequency_features();
    if !zero.is_empty() {
        return Err(refuse(
            "(twin)",
            format!(
                "the twin has {} zero-frequency pairs ({} RoPE); LongRoPE factors cannot carry a zero \
                 frequency, so no config form holds this twin",
                zero.len(),
                model.rope_type
            ),
        ));
    }
    let spans = Spans::new(text)?;
    let (root_start, prefix) = spans.rope_object()?;
    let root_members = spans.members(root_start)?;
    let target = locate_section(&spans, &root_members, model, &prefix)?;
    let factors = exact_factors(twin);
    let a = twin.attention_factor;
    let original = if a == 1.0 {
        model.max_position_embeddings
    } else {
        twin.config.train_len
    };
    let section = new_section(&target, &factors, a, original);
    let rendered = render_object(&section, &target.indent, &target.unit, target.compact);
    let mut out = String::with_capacity(text.len() + rendered.len());
    match target.replace {
        Some((start, end)) => {
            out.push_str(&text[..start]);
            out.push_str(&rendered);
            out.push_str(&text[end..]);
        }
        None => {
            // insert `"rope_scaling": {...}` after the last member of the object
            let (obj_start, obj_end) = target.container;
            let members = spans.members(obj_start)?;
            let (sep, key_indent) = if target.compact {
                (String::new(), String::new())
            } else {
                ("\n".to_string(), target.indent.clone())
            };
            let entry = format!("{sep}{key_indent}\"{}\": {rendered}", target.key);
            match members.last() {
                Some(m) => {
                    out.push_str(&text[..m.value_end]);
                    out.push(',');
                    out.push_str(&entry);
                    out.push_str(&text[m.value_end..]);
                }
                None => {
                    out.push_str(&text[..obj_start + 1]);
                    out.push_str(&entry);
                    out.push_str(&text[obj_start + 1..obj_end]);
                    out.push_str(&text[obj_end..]);
                }
            }
        }
    }
    check_readback(&out, model, twin, opts, &target.path)?;
    let stacks = stack_support(&spans, &root_members, model, &target, a, original)?;
    Ok(HfExport {
        text: out,
        section: target.path,
        factors,
        original_max_position_embeddings: original,
        attention_factor: a,
        stacks,
    })
}

/// The f32 divisors `ext[i]` with `1f32 / (ext[i] * pos[i]) == twin.inv_freq[i]` in f32, pos
/// being transformers' f32 `base^(2i/d)`; the nearest value when no f32 gives it exactly.
pub fn exact_factors(twin: &Schedule) -> Vec<f32> {
    let dim = twin.config.rotary_dim();
    let pos = pos_freqs_f32(twin.config.base, dim, dim / 2);
    pos.iter()
        .zip(&twin.inv_freq)
        .map(|(&p, &target)| exact_factor(target, p))
        .collect()
}

/// Distance in ulps of two positive finite f32 values.
fn ulps(a: f32, b: f32) -> u64 {
    (i64::from(a.to_bits() as i32) - i64::from(b.to_bits() as i32)).unsigned_abs()
}

fn exact_factor(target: f32, p: f32) -> f32 {
    let e0 = (1.0 / (f64::from(target) * f64::from(p))) as f32;
    let mut best = e0;
    let mut best_err = ulps(1.0f32 / (e0 * p), target);
    for k in 1..=8i32 {
        for e in [
            f32::from_bits((e0.to_bits() as i32 + k) as u32),
            f32::from_bits((e0.to_bits() as i32 - k) as u32),
        ] {
            if !(e.is_finite() && e > 0.0) {
                continue;
            }
            let err = ulps(1.0f32 / (e * p), target);
            if err < best_err {
                best = e;
                best_err = err;
            }
        }
        if best_err == 0 {
            break;
        }
    }
    best
}

/// Reads the export back as the lab reads any config and compares it with the twin.
fn check_readback(
    text: &str,
    model: &ModelRope,
    twin: &Schedule,
    opts: &ImportOptions,
    path: &str,
) -> Result<(), ImportError> {
    let back = parse_config(text, &model.name, opts)?;
    let s = Schedule::new(&back.config)
        .map_err(|e| refuse(path, e.message_with(&|k| k.to_string())))?;
    let worst = s
        .inv_freq
        .iter()
        .zip(&twin.inv_freq)
        .map(|(&a, &b)| ulps(a, b))
        .max();
    let same_len = s.inv_freq.len() == twin.inv_freq.len();
    if !same_len || worst.unwrap_or(0) > 1 || s.attention_factor != twin.attention_factor {
        return Err(refuse(
            path,
            format!(
                "the LongRoPE form of this twin does not read back as the twin ({} of {} pairs, \
                 worst {} ulp, attention factor {} vs {})",
                s.inv_freq.len(),
                twin.inv_freq.len(),
                worst.unwrap_or(0),
                s.attention_factor,
                twin.attention_factor
            ),
        ));
    }
    Ok(())
}

// ----- where the section is, and the new one ------------------------------------------------

/// The section to replace (or the place to insert one).
struct Target {
    /// The config path written (`rope_scaling`, `rope_parameters.full_attention`, ...).
    path: String,
    /// The key to insert when there is no section (`rope_scaling`).
    key: &'static str,
    /// Byte span of the value replaced; `None` to insert a new member.
    replace: Option<(usize, usize)>,
    /// The object holding the member (start and end byte of `{` ... `}`).
    container: (usize, usize),
    /// The old section (empty when absent or null).
    old: Map<String, Value>,
    /// `rope_parameters` form: the section carries `rope_theta` and `partial_rotary_factor`.
    parameters_form: bool,
    /// Whether the file is on one line where the section sits.
    compact: bool,
    /// Indentation of the member's key line.
    indent: String,
    /// One indentation step.
    unit: String,
}

fn locate_section(
    spans: &Spans,
    root: &[Member],
    model: &ModelRope,
    prefix: &str,
) -> Result<Target, ImportError> {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    let find = |k: &str| root.iter().find(|m| m.key == k);
    let object_of = |m: &Member| -> Option<Map<String, Value>> {
        match serde_json::from_str::<Value>(&spans.text[m.value_start..m.value_end]) {
            Ok(Value::Object(o)) if !o.is_empty() => Some(o),
            _ => None,
        }
    };
    let container = spans.container_of(root)?;
    let (indent, unit, compact) = spans.style(root, container.0);
    let scaling = find("rope_scaling");
    let params = find("rope_parameters");
    // the section transformers reads: a non-empty `rope_scaling` wins over `rope_parameters`
    let (outer, outer_key) = match (scaling.and_then(|m| object_of(m).map(|o| (m, o))), params) {
        (Some((m, o)), _) => (Some((m, o)), "rope_scaling"),
        (None, Some(p)) => (object_of(p).map(|o| (p, o)), "rope_parameters"),
        (None, None) => (None, "rope_scaling"),
    };
    if let (Some(lt), Some((m, o))) = (&model.layer_type, &outer)
        && let Some(Value::Object(layer)) = o.get(lt)
    {
        // per-layer: replace only this layer type's entry
        let inner = spans.members(m.value_start)?;
        let Some(member) = inner.iter().find(|x| &x.key == lt) else {
            return Err(refuse(join(outer_key), format!("no entry '{lt}'")));
        };
        let (indent, unit, compact) = spans.style(&inner, m.value_start);
        return Ok(Target {
            path: format!("{}.{lt}", join(outer_key)),
            key: "rope_scaling",
            replace: Some((member.value_start, member.value_end)),
            container: spans.container_of(&inner)?,
            old: layer.clone(),
            parameters_form: true,
            compact,
            indent,
            unit,
        });
    }
    if model.layer_type.as_deref() == Some("sliding_attention") {
        return Err(refuse(
            join("rope_local_base_freq"),
            "the legacy Gemma 3 form has no RoPE section for sliding_attention (only \
             rope_local_base_freq); export full_attention, or convert the file to per-layer \
             rope_parameters first",
        ));
    }
    let member = match (outer.as_ref(), scaling, params) {
        (Some((m, _)), _, _) => Some(*m),
        (None, Some(s), _) => Some(s),
        (None, None, Some(p)) => Some(p),
        (None, None, None) => None,
    };
    let parameters_form = member.is_some_and(|m| m.key == "rope_parameters");
    Ok(Target {
        path: join(member.map_or("rope_scaling", |m| m.key.as_str())),
        key: "rope_scaling",
        replace: member.map(|m| (m.value_start, m.value_end)),
        container,
        old: outer.map(|(_, o)| o).unwrap_or_default(),
        parameters_form,
        compact,
        indent,
        unit,
    })
}

/// The new section's members, in the order written.
fn new_section(
    t: &Target,
    factors: &[f32],
    attention_factor: f64,
    original: u64,
) -> Vec<(String, Value)> {
    let type_key = if t.old.contains_key("type") && !t.old.contains_key("rope_type") {
        "type"
    } else {
        "rope_type"
    };
    let mut m: Vec<(String, Value)> = vec![(type_key.into(), json!("longrope"))];
    let keep = |k: &str, m: &mut Vec<(String, Value)>| {
        if let Some(v) = t.old.get(k)
            && !v.is_null()
        {
            m.push((k.into(), v.clone()));
        }
    };
    if t.parameters_form {
        keep("rope_theta", &mut m);
        keep("partial_rotary_factor", &mut m);
    }
    // read outside the rope helper (DeepSeek's softmax scale)
    keep("factor", &mut m);
    keep("mscale", &mut m);
    keep("mscale_all_dim", &mut m);
    let list: Vec<Value> = factors.iter().map(|&f| json!(f64::from(f))).collect();
    m.push(("original_max_position_embeddings".into(), json!(original)));
    m.push(("attention_factor".into(), json!(attention_factor)));
    m.push(("short_mscale".into(), json!(attention_factor)));
    m.push(("long_mscale".into(), json!(attention_factor)));
    m.push(("short_factor".into(), Value::Array(list.clone())));
    m.push(("long_factor".into(), Value::Array(list)));
    m
}

/// A JSON object from ordered members; pretty with `indent` as the key line's indentation
/// (lists on one line), or compact.
fn render_object(members: &[(String, Value)], indent: &str, unit: &str, compact: bool) -> String {
    let item = |v: &Value| -> String {
        match v {
            Value::Array(a) if !compact => {
                let parts: Vec<String> = a.iter().map(Value::to_string).collect();
                format!("[{}]", parts.join(", "))
            }
            other => other.to_string(),
        }
    };
    if compact {
        let parts: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), item(v)))
            .collect();
        return format!("{{{}}}", parts.join(","));
    }
    let inner = format!("{indent}{unit}");
    let parts: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{inner}{}: {}", Value::from(k.as_str()), item(v)))
        .collect();
    format!("{{\n{}\n{indent}}}", parts.join(",\n"))
}

// ----- what each stack makes of the file ------------------------------------------------------

/// mlx-lm model types whose `ModelArgs` read `rope_parameters` (docs/stack-notes/mlx.md).
const MLX_READS_ROPE_PARAMETERS: [&str; 8] = [
    "qwen3",
    "gemma4_text",
    "qwen3_5",
    "mistral4",
    "laguna",
    "mellum",
    "minimax_m3_vl",
    "glm_moe_dsa",
];

/// LongRoPE's default scale `sqrt(1 + ln(max/orig) / ln(orig))` (1 when max <= orig), as mlx-lm
/// (`SuScaledRoPE`) and llama.cpp's Phi-3 converter compute it.
fn max_over_original_scale(max: u64, orig: u64) -> f64 {
    let s = max as f64 / orig as f64;
    if s <= 1.0 {
        1.0
    } else {
        (1.0 + s.ln() / (orig as f64).ln()).sqrt()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-7 * b.abs()
}

// one flat case table per stack, each case with its citation: clearer in one place than split
#[allow(clippy::too_many_lines)]
fn stack_support(
    spans: &Spans,
    root: &[Member],
    model: &ModelRope,
    t: &Target,
    a: f64,
    original: u64,
) -> Result<Vec<StackSupport>, ImportError> {
    let get = |k: &str| -> Option<Value> {
        root.iter()
            .find(|m| m.key == k)
            .and_then(|m| serde_json::from_str(&spans.text[m.value_start..m.value_end]).ok())
    };
    let model_type = get("model_type")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let arch0 = get("architectures")
        .and_then(|v| v.get(0).and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let top_original = get("original_max_position_embeddings").and_then(|v| v.as_u64());
    let max = model.max_position_embeddings;
    let deepseek = model_type.starts_with("deepseek");

    let transformers = StackSupport {
        stack: "transformers",
        loads_twin: true,
        reason: format!(
            "longrope with equal short/long factors and attention_factor {a}: inv_freq = 1/(ext*base^(2i/d)) \
             in f32 gives the twin's frequencies (read back to 1 ulp); unknown keys short_mscale/long_mscale \
             only log a warning"
        ),
    };

    let vllm = if deepseek {
        StackSupport {
            stack: "vllm",
            loads_twin: false,
            reason: "vLLM's DeepSeek model file renames any non-default section to deepseek_yarn or \
                     deepseek_llama_scaling (deepseek_v2.py:1115-1120), which compute YaRN and never read \
                     LongRoPE factors"
                .into(),
        }
    } else if model_type == "gpt_oss" {
        StackSupport {
            stack: "vllm",
            loads_twin: false,
            reason: "vLLM's gpt-oss model file rebuilds a yarn section from six keys (gpt_oss.py:111-124) \
                     whatever the file says"
                .into(),
        }
    } else if model_type == "qwen2"
        && get("head_dim").and_then(|v| v.as_u64()).is_some_and(|h| {
            get("hidden_size")
                .and_then(|v| v.as_u64())
                .zip(get("num_attention_heads").and_then(|v| v.as_u64()))
                .is_some_and(|(hs, n)| n > 0 && hs / n != h)
        })
    {
        StackSupport {
            stack: "vllm",
            loads_twin: false,
            reason:
                "vLLM's Qwen2 takes the head size as hidden_size / num_attention_heads and ignores \
                     head_dim (qwen2.py:150), so the factor lists have the wrong length there"
                    .into(),
        }
    } else {
        let len_note = if original < max {
            format!(
                "; vLLM defaults max_model_len to original_max_position_embeddings ({original}) for \
                 LongRoPE: pass --max-model-len {max}"
            )
        } else {
            String::new()
        };
        StackSupport {
            stack: "vllm",
            loads_twin: true,
            reason: format!(
                "longrope (phi3_long_rope_scaled_rope.py): the same f32 inv_freq as transformers, one list \
                 for every sequence (both lists are equal), cos/sin scaled by short_mscale = long_mscale = {a}{len_note}"
            ),
        }
    };

    let mlx = {
        let reads_section =
            !t.parameters_form || MLX_READS_ROPE_PARAMETERS.contains(&model_type.as_str());
        let mlx_orig = if model_type == "phi3" {
            top_original.unwrap_or(original)
        } else {
            original
        };
        let mlx_scale = max_over_original_scale(max, mlx_orig);
        if !reads_section {
            StackSupport {
                stack: "mlx-lm",
                loads_twin: false,
                reason: format!(
                    "mlx-lm's {} ModelArgs has no rope_parameters field and drops the section \
                     (mlx_lm/models/base.py:15-21): it would run plain RoPE; a legacy rope_scaling file \
                     carries the twin",
                    if model_type.is_empty() {
                        "model"
                    } else {
                        &model_type
                    }
                ),
            }
        } else if model_type == "mixtral" {
            StackSupport {
                stack: "mlx-lm",
                loads_twin: false,
                reason: "mlx-lm's Mixtral never reads rope_scaling (mixtral.py:59-63)".into(),
            }
        } else if deepseek {
            StackSupport {
                stack: "mlx-lm",
                loads_twin: false,
                reason: "mlx-lm's SuScaledRoPE always rotates half-split pairs (traditional=False), while \
                         its DeepSeek files need interleaved pairs (deepseek_v3.py:112)"
                    .into(),
            }
        } else if !close(mlx_scale, a) {
            StackSupport {
                stack: "mlx-lm",
                loads_twin: false,
                reason: format!(
                    "mlx-lm's SuScaledRoPE ignores attention_factor and long_mscale and scales q/k by \
                     sqrt(1 + ln(max/orig)/ln(orig)) = {mlx_scale} from max_position_embeddings {max} and \
                     original_max_position_embeddings {mlx_orig}, not the twin's {a}; the frequencies are the twin's"
                ),
            }
        } else {
            StackSupport {
                stack: "mlx-lm",
                loads_twin: true,
                reason: format!(
                    "longrope (SuScaledRoPE, rope_utils.py): periods long_factor * base^(2i/d), inverted by \
                     the kernel (a few ulp from transformers), scale {mlx_scale} from max/original"
                ),
            }
        }
    };

    let llama_cpp = if arch0 == "Phi3ForCausalLM" {
        let orig = top_original.unwrap_or(original);
        let conv = max_over_original_scale(max, orig);
        StackSupport {
            stack: "llama.cpp",
            loads_twin: close(conv, a),
            reason: format!(
                "convert_hf_to_gguf.py writes Phi-3's lists as rope_factors_long/short (conversion/phi.py:210-211) \
                 and rope.scaling.attn_factor = {conv} from max/original (conversion/phi.py:196){}",
                if close(conv, a) {
                    String::new()
                } else {
                    format!(", not the twin's {a}: run gguf-patch on the converted GGUF")
                }
            ),
        }
    } else {
        StackSupport {
            stack: "llama.cpp",
            loads_twin: false,
            reason: "llama.cpp does not read config.json at run time, and convert_hf_to_gguf.py writes only \
                     rope.scaling.type = longrope for a LongRoPE section outside Phi-3 (conversion/base.py:1458-1510), \
                     no factor tensor: convert the original model, then run resonance-lab gguf-patch with the twin"
                .into(),
        }
    };
    Ok(vec![transformers, vllm, mlx, llama_cpp])
}

/// The `stacks` object of the CLI output: per stack `loads_twin` and `reason`.
pub fn stacks_json(stacks: &[StackSupport]) -> Value {
    let mut m = Map::new();
    for s in stacks {
        m.insert(
            s.stack.to_string(),
            json!({"loads_twin": s.loads_twin, "reason": s.reason}),
        );
    }
    Value::Object(m)
}

/// The llama.cpp architecture (`general.architecture`) that `convert_hf_to_gguf.py` writes for a
/// config's `model_type`, where known (docs/stack-notes/llama.cpp.md and its fixture).
pub fn llama_cpp_architecture(model_type: &str) -> Option<&'static str> {
    Some(match model_type {
        "llama" | "mistral" | "mixtral" => "llama",
        "phi3" => "phi3",
        "phi" => "phi2",
        "qwen2" => "qwen2",
        "qwen3" => "qwen3",
        "qwen3_next" => "qwen3next",
        "gemma3" | "gemma3_text" => "gemma3",
        "gemma4" | "gemma4_text" => "gemma4",
        "deepseek_v2" | "deepseek_v3" => "deepseek2",
        "gpt_oss" => "gpt-oss",
        "hunyuan_v1_dense" => "hunyuan-dense",
        _ => return None,
    })
}

// ----- byte spans of a JSON text ----------------------------------------------------------------

/// One member of a JSON object: its key and the byte span of its value.
struct Member {
    key: String,
    key_start: usize,
    value_start: usize,
    value_end: usize,
}

/// Byte spans of values in a JSON text that `serde_json` already accepted.
struct Spans<'a> {
    text: &'a str,
    bytes: &'a [u8],
}

fn malformed(at: usize) -> ImportError {
    refuse("(document)", format!("malformed JSON near byte {at}"))
}

impl<'a> Spans<'a> {
    fn new(text: &'a str) -> Result<Self, ImportError> {
        serde_json::from_str::<Value>(text).map_err(|e| {
            refuse(
                "(document)",
                format!("malformed JSON at line {} column {}", e.line(), e.column()),
            )
        })?;
        Ok(Spans {
            text,
            bytes: text.as_bytes(),
        })
    }

    fn skip_ws(&self, mut i: usize) -> usize {
        while i < self.bytes.len() && matches!(self.bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    }

    /// The end (exclusive) of the string starting at `i` (a `"`).
    fn string_end(&self, mut i: usize) -> Result<usize, ImportError> {
        i += 1;
        while i < self.bytes.len() {
            match self.bytes[i] {
                b'\\' => i += 2,
                b'"' => return Ok(i + 1),
                _ => i += 1,
            }
        }
        Err(malformed(i))
    }

    /// The end (exclusive) of the value starting at `i`.
    fn value_end(&self, i: usize) -> Result<usize, ImportError> {
        match self.bytes.get(i) {
            Some(b'"') => self.string_end(i),
            Some(b'{') | Some(b'[') => {
                let mut depth = 0usize;
                let mut j = i;
                while j < self.bytes.len() {
                    match self.bytes[j] {
                        b'"' => {
                            j = self.string_end(j)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Ok(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                Err(malformed(j))
            }
            Some(_) => {
                let mut j = i;
                while j < self.bytes.len()
                    && !matches!(
                        self.bytes[j],
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    j += 1;
                }
                Ok(j)
            }
            None => Err(malformed(i)),
        }
    }

    /// The members of the object starting at `start` (a `{`).
    fn members(&self, start: usize) -> Result<Vec<Member>, ImportError> {
        let mut out = Vec::new();
        let mut i = self.skip_ws(start + 1);
        if self.bytes.get(i) == Some(&b'}') {
            return Ok(out);
        }
        loop {
            let key_start = i;
            let key_end = self.string_end(i)?;
            let key: String = serde_json::from_str(&self.text[key_start..key_end])
                .map_err(|_| malformed(key_start))?;
            i = self.skip_ws(key_end);
            if self.bytes.get(i) != Some(&b':') {
                return Err(malformed(i));
            }
            let value_start = self.skip_ws(i + 1);
            let value_end = self.value_end(value_start)?;
            out.push(Member {
                key,
                key_start,
                value_start,
                value_end,
            });
            i = self.skip_ws(value_end);
            match self.bytes.get(i) {
                Some(b',') => i = self.skip_ws(i + 1),
                Some(b'}') => return Ok(out),
                _ => return Err(malformed(i)),
            }
        }
    }

    /// The object holding the RoPE settings: the root, or `text_config` as
    /// [`parse_config`] picks it; its start byte and the config path prefix.
    fn rope_object(&self) -> Result<(usize, String), ImportError> {
        let root = self.skip_ws(0);
        if self.bytes.get(root) != Some(&b'{') {
            return Err(refuse("(document)", "the config must be a JSON object"));
        }
        let members = self.members(root)?;
        let has_rope_key = members.iter().any(|m| {
            [
                "rope_theta",
                "rope_scaling",
                "rope_parameters",
                "head_dim",
                "hidden_size",
                "max_position_embeddings",
            ]
            .contains(&m.key.as_str())
        });
        if !has_rope_key
            && let Some(tc) = members.iter().find(|m| m.key == "text_config")
            && self.bytes[tc.value_start] == b'{'
        {
            return Ok((tc.value_start, "text_config".into()));
        }
        Ok((root, String::new()))
    }

    /// The span `{` .. `}` of the object whose members are `members` (non-empty) or that starts
    /// at the given byte.
    fn container_of(&self, members: &[Member]) -> Result<(usize, usize), ImportError> {
        let first = members.first().map_or(0, |m| m.key_start);
        let start = self.text[..first]
            .rfind('{')
            .ok_or_else(|| malformed(first))?;
        let end = self.value_end(start)? - 1;
        Ok((start, end))
    }

    /// Indentation of the members' key lines, one indentation step, and whether the object is
    /// written on one line.
    fn style(&self, members: &[Member], obj_start: usize) -> (String, String, bool) {
        let line_indent = |pos: usize| -> Option<String> {
            let line_start = self.text[..pos].rfind('\n')? + 1;
            let prefix = &self.text[line_start..pos];
            prefix
                .chars()
                .all(|c| c == ' ' || c == '\t')
                .then(|| prefix.to_string())
        };
        let Some(indent) = members.first().and_then(|m| line_indent(m.key_start)) else {
            return (String::new(), String::new(), true);
        };
        // the leading whitespace of the line that holds the object's `{`
        let line_start = self.text[..obj_start].rfind('\n').map_or(0, |i| i + 1);
        let outer: String = self.text[line_start..obj_start]
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        let unit = indent
            .strip_prefix(outer.as_str())
            .filter(|u| !u.is_empty())
            .unwrap_or("  ")
            .to_string();
        (indent, unit, false)
    }
}
