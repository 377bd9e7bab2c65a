//! mlx-lm 0.32.2 with mlx 0.32.4 on the CPU: the model file's `ModelArgs` (which keys survive
//! `from_dict`), `initialize_rope` and its classes, and `mx.fast.rope`'s fallback (positions
//! scaled in f32, default frequencies from `exp`/`logf`). The knob is the length of the call.
//! Line references are to the installed mlx-lm (docs/stack-notes/mlx.md).

use super::transformers::DEEPSEEK;
use super::{Angles, AppliedTo, Stack, StackInput, StackRope, logf};
use crate::rope::ScheduleConfig;
use crate::rope::hf_config::ImportError;
use crate::rope::methods::{common, dynamic_ntk, get_mscale, llama3, longrope, yarn};
use serde_json::Value;

/// Model files whose `ModelArgs` read `rope_parameters` (the rest lose a transformers-5 section).
const READS_ROPE_PARAMETERS: &[&str] = &[
    "qwen3",
    "gemma4",
    "gemma4_text",
    "qwen3_5",
    "mistral4",
    "laguna",
    "mellum",
    "minimax_m3_vl",
    "glm_moe_dsa",
];

/// mlx's CPU `exp` (mlx/backend/cpu/simd/math.h): `2^(x log2 e)` with the integer part by bit
/// shifting and the fraction by Cephes' degree-6 polynomial in fused multiply-adds. Not
/// correctly rounded: up to ~15 ulp from `exp` on RoPE's arguments.
fn mlx_exp(x_init: f32) -> f32 {
    if x_init.is_nan() {
        return x_init;
    }
    if x_init > 88.0 {
        return f32::INFINITY;
    }
    if x_init < -88.0 {
        return 0.0;
    }
    let x = x_init * std::f32::consts::LOG2_E;
    let ipart = (x + 0.5).floor();
    let fpart = x - ipart;
    let mut y = 1.535_336_2e-4_f32;
    for c in [
        1.339_887_4e-3_f32,
        9.618_437e-3,
        5.550_332_5e-2,
        2.402_264_8e-1,
        6.931_472e-1,
        1.0,
    ] {
        y = y.mul_add(fpart, c);
    }
    let epart = f32::from_bits((((ipart as i32) + 127) << 23) as u32);
    epart * y
}

/// `mx.fast.rope`'s default inverse frequencies: `exp(-i * (logf(base) / (d/2)))` in f32 with
/// mlx's own `exp` (mlx/fast.cpp:459-466).
fn default_inv(base: f64, dims: usize) -> Vec<f32> {
    let half = dims / 2;
    let c = logf(base as f32) / half as f32;
    (0..half).map(|i| mlx_exp(-(i as f32) * c)).collect()
}

/// `mx.fast.rope` with `freqs`: the reciprocal of the periods.
fn reciprocal(periods: &[f32]) -> Vec<f32> {
    periods.iter().map(|&p| 1.0f32 / p).collect()
}

/// The `ModelArgs` default `rope_theta` of a model file.
fn default_theta(model_type: &str) -> f64 {
    match model_type {
        "qwen2" | "gemma3" | "gemma3_text" | "mixtral" | "qwen3" | "qwen3_next" => 1_000_000.0,
        _ => 10_000.0,
    }
}

/// What one rope branch of mlx-lm reads: the model file, the base that survived `ModelArgs`,
/// the rotated dimensions and the section's factor.
struct Args<'a> {
    mt: &'a str,
    base_cfg: ScheduleConfig,
    base: f64,
    dims: usize,
    factor: f64,
}

/// mlx-lm's RoPE for the input, called on a sequence of the context's length.
pub(super) fn compute(input: &StackInput) -> Result<StackRope, ImportError> {
    let mt = if input.model_type == "mistral" {
        "llama"
    } else {
        input.model_type.as_str()
    };
    let mut r = StackRope::blank(Stack::Mlx, input);
    r.head_dim = input.plain.config.dim;
    r.softmax_scale_factor = Some(1.0);
    if input.is(DEEPSEEK) {
        r.pair_layout = "interleaved";
    }
    r.notes.push(format!(
        "model file mlx_lm/models/{mt}.py{} (mlx_lm/utils.py:200-227)",
        if input.model_type == "mistral" {
            " (MODEL_REMAPPING mistral -> llama, mlx_lm/utils.py:48)"
        } else {
            ""
        }
    ));
    let base_cfg = input
        .transformers
        .as_ref()
        .map(|m| m.config.clone())
        .unwrap_or_else(|_| input.plain.config.clone());
    let (rope_type, base, lost) = surviving(input, mt, &base_cfg, &mut r);
    let a = Args {
        mt,
        dims: base_cfg.rotary_dim(),
        base_cfg,
        base,
        factor: input.sec_f64("factor").unwrap_or(1.0),
    };
    let inv: Vec<f32> = if input.is(&["hunyuan_v1_dense"]) && input.sec_f64("alpha").is_some() {
        hunyuan_alpha(input, &a, &mut r)
    } else {
        match rope_type.as_str() {
            "default" | "linear" => plain(&rope_type, &a, &mut r),
            "dynamic" => dynamic(input, &a, &mut r),
            "llama3" => {
                r.rope_class = "Llama3RoPE".into();
                reciprocal(&llama3::mlx_periods(&llama3_config(input, &a)))
            }
            "yarn" | "deepseek_yarn" => yarn(input, &a, &mut r),
            "longrope" | "su" => su(input, &a, &mut r),
            "proportional" => proportional(input, &a, &mut r),
            other => {
                return Ok(StackRope::unbuildable(
                    Stack::Mlx,
                    input,
                    format!(
                        "mlx-lm cannot build the model: ValueError: Unsupported RoPE type {other} \
                         (rope_utils.py:373)"
                    ),
                    Some("mlx_lm.load fails on this config"),
                ));
            }
        }
    };
    if input.is(DEEPSEEK) && !lost && input.rope_type != "default" {
        deepseek_softmax(input, a.factor, &mut r);
    }
    r.supported = r.reason.is_none();
    r.rope_type = rope_type;
    r.rotary_dim = inv.len() * 2;
    r.inv_freq = inv;
    r.cos_sin_scale = r.attention_factor;
    if r.attention_factor != 1.0 {
        r.attention_factor_applied_to = AppliedTo::CosSin;
    }
    Ok(r)
}

/// DeepSeek's softmax mscale: the square of 0.1 mscale_all_dim ln(factor) + 1.
fn deepseek_softmax(input: &StackInput, factor: f64, r: &mut StackRope) {
    if let Some(m_all) = input.sec_f64("mscale_all_dim")
        && m_all != 0.0
    {
        let s = 0.1 * m_all * factor.ln() + 1.0;
        r.softmax_scale_factor = Some(s * s);
        r.notes.push(
            "DeepSeek: softmax scale q_head_dim^-0.5 * s^2 with s = 0.1 mscale_all_dim ln(factor) + 1 \
             (deepseek_v3.py:101-107)"
                .into(),
        );
    }
}

/// HunYuan's `DynamicNTKAlphaRoPE`: a static base stretched by alpha, passed as periods.
fn hunyuan_alpha(input: &StackInput, a: &Args, r: &mut StackRope) -> Vec<f32> {
    r.rope_class = "DynamicNTKAlphaRoPE".into();
    let b = dynamic_ntk::alpha_base(a.base, input.sec_f64("alpha").unwrap_or(1.0), a.dims);
    r.notes.push(format!(
        "HunYuan: static base theta * alpha^(d/(d-2)) = {b}, passed as periods base^(2i/d) \
         (hunyuan_v1_dense.py:38-59)"
    ));
    reciprocal(&common::pos_freqs_f32(b, a.dims, a.dims / 2))
}

/// `Llama3RoPE`'s config: `original_max_position_embeddings` defaults to 8192 in mlx-lm.
fn llama3_config(input: &StackInput, a: &Args) -> ScheduleConfig {
    let mut c = a.base_cfg.clone();
    if input.sec_f64("original_max_position_embeddings").is_none() {
        c.train_len = 8192;
    }
    c
}

/// The rope type and base that survive the model file's `ModelArgs` (and whether the section
/// was lost on the way), with the reason when that is not what the config asks for.
fn surviving(
    input: &StackInput,
    mt: &str,
    base_cfg: &ScheduleConfig,
    r: &mut StackRope,
) -> (String, f64, bool) {
    let dims = base_cfg.rotary_dim();
    let sliding = input.layer_type.as_deref() == Some("sliding_attention");
    // which section survives ModelArgs.from_dict
    let lost = input.rope_parameters_form && !READS_ROPE_PARAMETERS.contains(&mt);
    let mut rope_type = if lost {
        "default".to_string()
    } else {
        input.rope_type.clone()
    };
    let mut base = base_cfg.base;
    let plain = |base: f64| format!("RoPE: mx.fast.rope(base={base:?}, scale=1.0, dims={dims})");
    if lost {
        base = if sliding {
            input.top_f64("rope_local_base_freq").unwrap_or(10_000.0)
        } else {
            input
                .top_f64("rope_theta")
                .unwrap_or_else(|| default_theta(mt))
        };
        if input.rope_type != "default" {
            r.reason = Some(format!(
                "rope type '{}' asked for; the config's rope section is `rope_parameters`, which \
                 mlx_lm.models.{mt}.ModelArgs does not have: BaseModelArgs.from_dict drops it \
                 silently (mlx_lm/models/base.py:15-21)",
                input.rope_type
            ));
            r.runs_instead = Some(plain(base));
            r.quirk(
                "supported",
                format!(
                    "mlx_lm.models.{mt} reads rope_theta / rope_scaling only; a transformers-5 \
                     rope_parameters section is dropped (mlx_lm/models/base.py:15-21)"
                ),
                format!(
                    "mlx-lm runs plain RoPE (base {base}) instead of '{}', with no warning",
                    input.rope_type
                ),
            );
        } else if base != base_cfg.base {
            r.notes.push(format!(
                "rope_parameters is not read: the ModelArgs default base {base} is used"
            ));
        }
    }
    if mt == "mixtral" && rope_type != "default" {
        r.reason = Some("mlx_lm.models.mixtral never reads rope_scaling (mixtral.py:59-63)".into());
        r.runs_instead = Some(plain(base));
        rope_type = "default".into();
    }
    if mt == "phi3" && !matches!(rope_type.as_str(), "default" | "longrope" | "su" | "linear") {
        r.reason = Some(format!(
            "mlx_lm.models.phi3 keeps rope_scaling only for longrope, su and linear; '{rope_type}' \
             is dropped with a printed warning (phi3.py:41-45)"
        ));
        r.runs_instead = Some(plain(base));
        rope_type = "default".into();
    }
    if sliding && input.is(&["gemma3", "gemma3_text"]) {
        rope_type = "default".into();
    }
    (rope_type, base, lost)
}

/// `nn.RoPE`: default frequencies from mlx's `exp`, a linear factor on the positions.
fn plain(rope_type: &str, a: &Args, r: &mut StackRope) -> Vec<f32> {
    let (base, dims, factor) = (a.base, a.dims, a.factor);
    r.rope_class = "RoPE".into();
    let scale = if rope_type == "linear" {
        (1.0 / factor) as f32
    } else {
        1.0
    };
    let unscaled = default_inv(base, dims);
    r.notes.push(format!(
        "nn.RoPE(dims {dims}, base {base}, scale {scale}): inv_freq = exp(-i logf(base) \
             / (d/2)) in f32, positions times scale (mlx/fast.cpp:454-466)"
    ));
    if scale != 1.0 {
        let folded = unscaled.iter().map(|&w| scale * w).collect();
        r.angles = Angles::ScaledPosition { scale, unscaled };
        folded
    } else {
        unscaled
    }
}

/// `DynamicNTKScalingRoPE`: the base stretched per call by the call's length.
fn dynamic(input: &StackInput, a: &Args, r: &mut StackRope) -> Vec<f32> {
    let (base, dims, factor) = (a.base, a.dims, a.factor);
    r.rope_class = "DynamicNTKScalingRoPE".into();
    let len = input.context.max(input.max_pos());
    let b = dynamic_ntk::vllm_base(base, factor, len, input.max_pos(), dims);
    r.notes.push(format!(
        "dynamic NTK per call: len = max(T + offset, max_position_embeddings) = {len}, \
             base {b} (rope_utils.py:234-271); alpha is not read"
    ));
    default_inv(b, dims)
}

/// `YarnRoPE` (and DeepSeek's): six keys read, the range always floored/ceiled, q and k
/// times the mscale ratio.
fn yarn(input: &StackInput, a: &Args, r: &mut StackRope) -> Vec<f32> {
    let (base, factor, mt, base_cfg) = (a.base, a.factor, a.mt, &a.base_cfg);
    r.rope_class = if mt == "deepseek_v2" {
        "DeepseekV2YarnRotaryEmbedding"
    } else {
        "YarnRoPE"
    }
    .into();
    let mut c: ScheduleConfig = base_cfg.clone();
    c.base = base;
    c.scale = factor;
    c.train_len = input
        .sec_f64("original_max_position_embeddings")
        .map_or(4096, |v| v as u64);
    c.beta_fast = input.sec_f64("beta_fast").unwrap_or(32.0);
    c.beta_slow = input.sec_f64("beta_slow").unwrap_or(1.0);
    let m = input.sec_f64("mscale").unwrap_or(1.0);
    let m_all = input.sec_f64("mscale_all_dim").unwrap_or(0.0);
    r.attention_factor = (get_mscale(factor, m) / get_mscale(factor, m_all)) as f32 as f64;
    r.notes.push(
        "YaRN: only factor, original_max_position_embeddings, beta_fast, beta_slow, \
             mscale, mscale_all_dim are read (rope_utils.py:328-338); the range is always \
             floored/ceiled (:151-152); q and k are multiplied by the mscale ratio"
            .into(),
    );
    if input.section.get("truncate") == Some(&Value::Bool(false)) {
        r.quirk(
            "inv_freq",
            "mlx-lm's YarnRoPE always floors and ceils the correction range; \
                        truncate is not read (rope_utils.py:151-152)",
            "the ramp features rotate at other speeds than with truncate: false",
        );
    }
    if input.sec_f64("attention_factor").is_some() {
        r.quirk(
            "attention_factor",
            "mlx-lm's initialize_rope does not pass YaRN's attention_factor \
                        (rope_utils.py:328-338)",
            "cos and sin carry the mscale ratio instead of the explicit factor",
        );
    }
    reciprocal(&yarn::mlx_periods(&c))
}

/// `SuScaledRoPE`: the long factors at every length.
fn su(input: &StackInput, a: &Args, r: &mut StackRope) -> Vec<f32> {
    let (base, dims) = (a.base, a.dims);
    r.rope_class = "SuScaledRoPE".into();
    r.factor_list = Some("long");
    let original = input
        .top_f64("original_max_position_embeddings")
        .or(input.sec_f64("original_max_position_embeddings"))
        .map_or(4096, |v| v as u64);
    let long = input.sec_list("long_factor").unwrap_or_default();
    let periods: Vec<f32> = common::pos_freqs_f32(base, dims, dims / 2)
        .into_iter()
        .enumerate()
        .map(|(i, p)| long.get(i).copied().unwrap_or(1.0) as f32 * p)
        .collect();
    r.attention_factor = input
        .sec_f64("long_mscale")
        .unwrap_or_else(|| longrope::max_ratio_attention_factor(input.max_pos(), original))
        as f32 as f64;
    r.quirk(
        "factor_list",
        "mlx-lm's SuScaledRoPE uses long_factor at every length; short_factor is \
                    never used (rope_utils.py:49-50)",
        format!(
            "mlx-lm uses the long factors for every sequence, also those shorter than \
                 {original} tokens"
        ),
    );
    if input.sec_f64("factor").is_some() || input.sec_f64("attention_factor").is_some() {
        r.quirk(
            "attention_factor",
            "SuScaledRoPE's scale comes from max/original (rope_utils.py:57-58); \
                        the section's factor and attention_factor are not read",
            "cos and sin carry another temperature than in transformers",
        );
    }
    reciprocal(&periods)
}

/// `ProportionalRoPE` (Gemma 4): the factor on the periods of the rotated pairs.
fn proportional(input: &StackInput, a: &Args, r: &mut StackRope) -> Vec<f32> {
    let (base, factor) = (a.base, a.factor);
    r.rope_class = "ProportionalRoPE".into();
    let head = input.plain.config.dim;
    let rot = crate::rope::methods::proportional::rotating_pairs(&input.plain.config);
    let periods: Vec<f32> = common::pos_freqs_f32(base, head, rot)
        .into_iter()
        .map(|p| factor as f32 * p)
        .collect();
    let mut v = reciprocal(&periods);
    v.resize(head / 2, 0.0);
    v
}
