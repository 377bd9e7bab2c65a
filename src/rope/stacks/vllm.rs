//! vLLM 0.34.0: `get_rope` as each model file calls it, the rotary classes' f32 caches, the
//! `max_model_len` check (config/model.py:2647-2728). Everything is fixed when the engine starts:
//! the context knob is `max_model_len`. Line references are to the installed package
//! (docs/stack-notes/vllm.md).

use super::transformers::DEEPSEEK;
use super::{Angles, AppliedTo, Stack, StackInput, StackRope};
use crate::rope::hf_config::ImportError;
use crate::rope::methods::{common, dynamic_ntk, get_mscale, longrope, ntk};
use crate::rope::{Method, Schedule, ScheduleConfig};

/// Architectures vLLM runs through its Transformers backend (transformers' own rotary class).
const TRANSFORMERS_BACKEND: &[&str] = &["phi", "hunyuan_v1_dense"];

/// vLLM's RoPE for the input at `max_model_len` = the context.
pub(super) fn compute(input: &StackInput) -> Result<StackRope, ImportError> {
    if input.is(TRANSFORMERS_BACKEND) {
        return transformers_backend(input);
    }
    let rope_type = input.rope_type.as_str();
    let c = config(input);
    let deepseek = input.is(DEEPSEEK) && rope_type != "default";
    let mut r = StackRope::blank(Stack::Vllm, input);
    r.head_dim = c.dim;
    r.softmax_scale_factor = Some(1.0);
    r.max_positions = Some(input.max_pos());
    if input.is(DEEPSEEK) {
        r.pair_layout = "interleaved";
    }
    let inv = match rope_type {
        "ntk" => ntk(input, &c, &mut r),
        "dynamic" => dynamic(input, &c, &mut r),
        "linear" => linear(input, &c, &mut r),
        "yarn" | "deepseek_yarn" if deepseek => deepseek_yarn(input, &c, &mut r)?,
        "yarn" => yarn(input, &c, &mut r)?,
        "longrope" | "su" => longrope(input, &c, &mut r)?,
        "llama3" => {
            r.rope_class = "Llama3RotaryEmbedding".into();
            Schedule::new(&c).map_err(sched_err)?.inv_freq
        }
        "proportional" => proportional(&c, &mut r)?,
        _ => {
            r.rope_class = "RotaryEmbedding".into();
            let mut p = c.clone();
            p.method = Method::ROPE;
            Schedule::new(&p).map_err(sched_err)?.inv_freq
        }
    };
    r.notes.insert(
        0,
        format!(
            "get_rope(head_size {}, rotary_dim {}, max_position {}, is_neox_style {}) from \
             the {} model file",
            c.dim,
            inv.len() * 2,
            input.max_pos(),
            !deepseek,
            if input.model_type.is_empty() {
                "llama"
            } else {
                input.model_type.as_str()
            }
        ),
    );
    r.rotary_dim = inv.len() * 2;
    r.inv_freq = inv;
    r.cos_sin_scale = r.attention_factor;
    let scaled = !matches!(
        rope_type,
        "longrope" | "su" | "llama3" | "yarn" | "deepseek_yarn" | "deepseek_llama_scaling"
    ) && !input.is(&["gemma3", "gemma3_text"]);
    let f = if scaled { factor(input) } else { 1.0 };
    Ok(length_check(input, r, f))
}

/// A model vLLM runs through its Transformers backend: transformers' values, vLLM's length check.
fn transformers_backend(input: &StackInput) -> Result<StackRope, ImportError> {
    let mut r = super::transformers::compute(input)?;
    r.stack = Stack::Vllm;
    r.stack_version = Stack::Vllm.version();
    r.notes.insert(
        0,
        format!(
            "{} runs through vLLM's Transformers backend (models/registry.py:791): \
             transformers' own rotary class, recomputed every forward",
            input.model_type
        ),
    );
    Ok(length_check(input, r, 1.0))
}

/// The schedule config as vLLM's model file builds it: transformers' reading of the section,
/// with Qwen2's head size from hidden_size / num_attention_heads (qwen2.py:150 ignores a
/// config head_dim).
fn config(input: &StackInput) -> ScheduleConfig {
    let mut c: ScheduleConfig = input.plain.config.clone();
    if input.is(&["qwen2"])
        && let (Some(h), Some(n)) = (
            input.top_f64("hidden_size"),
            input.top_f64("num_attention_heads"),
        )
    {
        c.dim = (h / n) as usize;
    }
    if let Ok(m) = input.transformers.as_ref() {
        let mut t = m.config.clone();
        t.dim = c.dim;
        c = t;
    }
    c
}

/// The section's `factor` (1 when absent).
fn factor(input: &StackInput) -> f64 {
    input.sec_f64("factor").unwrap_or(1.0)
}

/// vLLM's own `ntk` type: NTK-scaled base, optionally with `mixed_b`.
fn ntk(input: &StackInput, c: &ScheduleConfig, r: &mut StackRope) -> Vec<f32> {
    let d = c.rotary_dim();
    let factor = factor(input);
    r.rope_class = "NTKScalingRotaryEmbedding".into();
    let mixed_b = input.sec_f64("mixed_b");
    r.notes.push(format!(
        "vLLM's own ntk type (rotary_embedding/__init__.py:199): (base*factor)^(-2i/d) / \
             factor^(2/d){} (ntk_scaling_rope.py:32-45)",
        if mixed_b.is_some() {
            ", here with mixed_b: base^(-2i/d) / exp(a (i+1)^mixed_b)"
        } else {
            ""
        }
    ));
    r.quirk(
        "supported",
        "ntk is a vLLM-only rope type (rotary_embedding/__init__.py:199); \
                    transformers has no such type",
        "the config serves in vLLM and fails to load in transformers",
    );
    ntk::vllm_inv_freq_f32(c.base, factor, mixed_b, d)
}

/// `dynamic`: HunYuan's static alpha base, or dynamic NTK fixed at construction.
fn dynamic(input: &StackInput, c: &ScheduleConfig, r: &mut StackRope) -> Vec<f32> {
    let d = c.rotary_dim();
    let factor = factor(input);
    let max_pos = input.max_pos();
    if let Some(alpha) = input.sec_f64("alpha") {
        r.rope_class = "DynamicNTKAlphaRotaryEmbedding".into();
        let b = dynamic_ntk::alpha_base(c.base, alpha, d);
        r.notes.push(format!(
            "dynamic with alpha: static base = theta * alpha^(d/(d-2)) = {b} \
                 (dynamic_ntk_alpha_rope.py:33)"
        ));
        r.quirk(
            "inv_freq",
            "vLLM stretches the base by alpha (dynamic_ntk_alpha_rope.py:33); \
                        transformers' Llama class never reads alpha",
            "every position rotates with the alpha-stretched base in vLLM, \
                         the plain (or factor-dynamic) base in transformers",
        );
        common::default_f32(b, d)
    } else {
        r.rope_class = "DynamicNTKScalingRotaryEmbedding".into();
        let trained = input
            .sec_f64("max_trained_positions")
            .map_or(max_pos, |v| v as u64);
        let b = dynamic_ntk::vllm_base(c.base, factor, max_pos, trained, d);
        r.notes.push(format!(
            "dynamic NTK computed once from max_position_embeddings / max_trained_positions \
                 ({max_pos} / {trained}): base {b} at every length; the cache has {max_pos} rows \
                 (dynamic_ntk_scaling_rope.py:58-67)"
        ));
        r.quirk(
            "inv_freq",
            "vLLM's dynamic NTK is static: the base is fixed at construction from \
                        max_position_embeddings / max_trained_positions (plain RoPE unless the \
                        section spells max_trained_positions), dynamic_ntk_scaling_rope.py:58",
            format!(
                "past {max_pos} tokens transformers stretches the base, vLLM keeps plain \
                     RoPE (and has no cache rows past {max_pos})"
            ),
        );
        common::default_f32(b, d)
    }
}

/// `linear`: positions divided by the factor in f32 (the frequencies fold it in).
fn linear(input: &StackInput, c: &ScheduleConfig, r: &mut StackRope) -> Vec<f32> {
    let d = c.rotary_dim();
    let factor = factor(input);
    let max_pos = input.max_pos();
    r.rope_class = "LinearScalingRotaryEmbedding".into();
    r.max_positions = Some((max_pos as f64 * factor) as u64);
    let unscaled = common::default_f32(c.base, d);
    let inv = unscaled
        .iter()
        .map(|&w| w * (1.0 / factor) as f32)
        .collect();
    r.notes.push(
        "linear: positions divided, not frequencies: t = arange(rows) / factor in f32 \
             (linear_scaling_rope.py:92); inv_freq here folds 1/factor in"
            .into(),
    );
    r.angles = Angles::DividedPosition {
        divisor: factor as f32,
        unscaled,
    };
    inv
}

/// DeepSeek's YaRN class: always-truncated ramp, mscale ratio on cos/sin, softmax
/// mscale.
fn deepseek_yarn(
    input: &StackInput,
    c: &ScheduleConfig,
    r: &mut StackRope,
) -> Result<Vec<f32>, ImportError> {
    let factor = factor(input);
    let llama_scaling = input.sec_f64("attention_factor") == Some(1.0);
    r.rope_class = "DeepseekScalingRotaryEmbedding".into();
    let mscale = input.sec_f64("mscale").unwrap_or(1.0);
    let mscale_all = input.sec_f64("mscale_all_dim").unwrap_or(0.0);
    r.attention_factor = get_mscale(factor, mscale) / get_mscale(factor, mscale_all);
    r.attention_factor_applied_to = AppliedTo::CosSin;
    if !llama_scaling {
        r.softmax_scale_factor = Some(get_mscale(factor, mscale_all).powi(2));
    }
    r.notes.push(format!(
        "DeepSeek renames the section to {} (deepseek_v2.py:1115-1120): YaRN inv_freq with \
             the correction range always truncated (deepseek_scaling_rope.py:86-92), cos/sin \
             times get_mscale(f, mscale)/get_mscale(f, mscale_all_dim) with defaults 1 and 0 \
             (:44-55){}",
        if llama_scaling {
            "deepseek_llama_scaling"
        } else {
            "deepseek_yarn"
        },
        if llama_scaling {
            "; no softmax mscale"
        } else {
            "; softmax scale times get_mscale(f, mscale_all_dim)^2 (deepseek_v2.py:1129-1136)"
        }
    ));
    if !c.truncate {
        r.quirk(
            "inv_freq",
            "vLLM's DeepSeek class has no truncate argument and always floors/ceils \
                        the correction range (deepseek_scaling_rope.py:86-92; vLLM 27722 still \
                        open for this class)",
            "the ramp features rotate at other speeds than transformers computes \
                         with truncate: false",
        );
    }
    if llama_scaling {
        r.quirk(
            "softmax_scale_factor",
            "attention_factor 1.0 renames the type to deepseek_llama_scaling \
                        (deepseek_v2.py:1115-1120), which drops the softmax mscale; the explicit \
                        attention_factor itself is not an argument of the class (vLLM PR 48351)",
            "attention logits are not sharpened by mscale_all_dim^2 as in \
                         transformers",
        );
    }
    if input.sec_f64("mscale").is_some() && input.sec_f64("mscale_all_dim").is_none() {
        r.quirk(
            "attention_factor",
            "vLLM's DeepSeek class uses mscale alone (divides by get_mscale(f, 0) = \
                        1, deepseek_scaling_rope.py:52-55); transformers needs both keys and \
                        falls back to 0.1 ln(f) + 1 (modeling_rope_utils.py:438)",
            "q and k are scaled by another temperature than in transformers",
        );
    }
    let mut y = c.clone();
    y.truncate = true;
    y.attention_factor = None;
    r.max_positions = Some((c.train_len as f64 * factor) as u64);
    Ok(Schedule::new(&y).map_err(sched_err)?.inv_freq)
}

/// `yarn`: transformers' f32 formula with cos/sin carrying the attention factor.
fn yarn(
    input: &StackInput,
    c: &ScheduleConfig,
    r: &mut StackRope,
) -> Result<Vec<f32>, ImportError> {
    r.rope_class = "YaRNScalingRotaryEmbedding".into();
    let mut y = c.clone();
    if input.is(&["gpt_oss"]) {
        // gpt_oss.py:111-124 rebuilds the section from six keys, without attention_factor
        y.attention_factor = None;
        if c.attention_factor.is_some() {
            r.quirk(
                "attention_factor",
                "gpt-oss's model file rebuilds the YaRN section without \
                            attention_factor (gpt_oss.py:111-124)",
                "the explicit attention factor is ignored",
            );
        }
    }
    let s = Schedule::new(&y).map_err(sched_err)?;
    r.attention_factor = s.attention_factor;
    r.attention_factor_applied_to = AppliedTo::CosSin;
    r.max_positions = Some((c.train_len as f64 * c.scale) as u64);
    r.notes.push(
        "YaRN: transformers' f32 formula, explicit attention_factor and truncate honoured \
             (yarn_scaling_rope.py:38-74); cos/sin carry the factor"
            .into(),
    );
    Ok(s.inv_freq)
}

/// LongRoPE: one factor list for every sequence, chosen by `max_model_len`.
fn longrope(
    input: &StackInput,
    c: &ScheduleConfig,
    r: &mut StackRope,
) -> Result<Vec<f32>, ImportError> {
    let max_pos = input.max_pos();
    let ctx = input.context;
    r.rope_class = "Phi3LongRoPEScaledRotaryEmbedding".into();
    let original = c.train_len;
    let long = ctx > original;
    r.factor_list = Some(if long { "long" } else { "short" });
    let mut l = c.clone();
    l.seq_len = if long { original + 1 } else { original };
    let mscale = if long {
        input.sec_f64("long_mscale")
    } else {
        input.sec_f64("short_mscale")
    };
    r.attention_factor =
        mscale.unwrap_or_else(|| longrope::max_ratio_attention_factor(max_pos, original));
    r.attention_factor_applied_to = AppliedTo::CosSin;
    r.max_positions = Some(if long { max_pos } else { original });
    r.notes.push(format!(
        "LongRoPE: one factor list for every sequence, chosen at start: max_model_len {ctx} \
             {} original {original} -> {} factors (phi3_long_rope_scaled_rope.py:54-55)",
        if long { ">" } else { "<=" },
        if long { "long" } else { "short" }
    ));
    r.quirk(
        "factor_list",
        "vLLM picks the LongRoPE list once, by max_model_len > original \
                    (phi3_long_rope_scaled_rope.py:54-55; vLLM 27414); transformers per forward \
                    by the sequence length",
        if long {
            format!(
                "with max_model_len {ctx}, vLLM uses the long factors for every sequence, \
                     also those shorter than {original} tokens"
            )
        } else {
            format!(
                "with max_model_len {ctx}, vLLM uses the short factors and serves no \
                     position past {original}"
            )
        },
    );
    if input.sec_f64("factor").is_some() || input.sec_f64("attention_factor").is_some() {
        r.quirk(
            "attention_factor",
            "vLLM's LongRoPE attention factor is always sqrt(1 + ln(max/original) / \
                        ln(original)); the section's factor and attention_factor are not read \
                        (phi3_long_rope_scaled_rope.py:67-77)",
            "cos and sin carry another temperature than in transformers",
        );
    }
    Ok(Schedule::new(&l).map_err(sched_err)?.inv_freq)
}

/// `proportional` (Gemma 4): the section's factor ignored.
fn proportional(c: &ScheduleConfig, r: &mut StackRope) -> Result<Vec<f32>, ImportError> {
    r.rope_class = "Gemma4RotaryEmbedding".into();
    let mut p = c.clone();
    p.scale = 1.0;
    if c.scale != 1.0 {
        r.quirk(
            "inv_freq",
            "vLLM's proportional RoPE ignores the section's factor (gemma4_rope.py:64-76)",
            "frequencies are not divided by the factor as in transformers",
        );
    }
    Ok(Schedule::new(&p).map_err(sched_err)?.inv_freq)
}

/// vLLM's `max_model_len` check (config/model.py:2647-2728): the derived maximum is
/// `max_position_embeddings` times `factor` (1 for the types that scale on their own); a longer
/// `max_model_len` is refused unless `VLLM_ALLOW_LONG_MAX_MODEL_LEN=1`.
fn length_check(input: &StackInput, mut r: StackRope, factor: f64) -> StackRope {
    let derived = (input.max_pos() as f64 * factor) as u64;
    if input.context > derived {
        r.supported = false;
        r.reason = Some(format!(
            "vLLM refuses max_model_len {}: it is greater than the derived max_model_len {derived} \
             (max_position_embeddings {}{}; config/model.py:2701)",
            input.context,
            input.max_pos(),
            if factor != 1.0 {
                format!(" x factor {factor}")
            } else {
                String::new()
            }
        ));
        r.runs_instead = Some(
            "with VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vLLM accepts the length and builds the rotary \
             embedding shown here"
                .into(),
        );
        r.quirk(
            "supported",
            format!("vLLM's derived maximum length is {derived} (config/model.py:2647-2678)"),
            format!(
                "`vllm serve --max-model-len {}` fails unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1",
                input.context
            ),
        );
    }
    r
}

fn sched_err(e: crate::rope::ConfigError) -> ImportError {
    ImportError::new("(rope)", e.message_with(&|k| k.to_string()))
}
