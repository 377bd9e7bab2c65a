//! llama.cpp (ggml-org/llama.cpp@0c1e57098, as vendored by llama-cpp-python 0.3.36): what
//! `convert_hf_to_gguf.py` writes for the config, what the loader and context make of it, and
//! the ggml CPU rope kernel's f32 recurrence. The knob is `n_ctx`, rounded up to 256. Line
//! references are to the vendored tree (docs/stack-notes/llama.cpp.md).

use super::transformers::DEEPSEEK;
use super::{Angles, AppliedTo, GgmlRope, Stack, StackInput, StackRope, logf};
use crate::rope::hf_config::ImportError;
use crate::rope::methods::{dynamic_ntk, llama3, longrope, yarn};

/// The GGUF architecture the converter picks for a model type, and whether its rope mode is
/// NEOX (pairs (i, i + n/2)) rather than NORM (pairs (2i, 2i+1)).
fn arch_of(input: &StackInput) -> (&'static str, bool) {
    match input.model_type.as_str() {
        "qwen2" => ("qwen2", true),
        "qwen3" => ("qwen3", true),
        "qwen3_next" => ("qwen3next", true),
        "gemma3" | "gemma3_text" => ("gemma3", true),
        "gemma4" | "gemma4_text" => ("gemma4", true),
        "phi" => ("phi2", true),
        "phi3" => ("phi3", true),
        "gpt_oss" => ("gpt-oss", true),
        "hunyuan_v1_dense" => ("hunyuan-dense", true),
        "deepseek_v2" | "deepseek_v3" | "kimi_k2" => ("deepseek2", false),
        _ => ("llama", false),
    }
}

/// f32 `get_mscale` of llama-context.cpp: `0.1 * mscale * logf(s) + 1` for s > 1.
fn mscale32(s: f32, m: f32) -> f32 {
    if s <= 1.0 {
        1.0
    } else {
        0.1f32 * m * logf(s) + 1.0f32
    }
}

/// What the loader and context settle on before the kernel runs: ggml's rope arguments, the
/// LongRoPE `rope.scaling.attn_factor` and DeepSeek's `yarn_log_multiplier`.
struct Load {
    g: GgmlRope,
    rope_attn_factor: f32,
    yarn_log_mul: f32,
}

/// llama.cpp's RoPE for the input at `n_ctx` = the context.
pub(super) fn compute(input: &StackInput) -> Result<StackRope, ImportError> {
    let (arch, neox) = arch_of(input);
    let cfg = input
        .transformers
        .as_ref()
        .map(|m| m.config.clone())
        .unwrap_or_else(|_| input.plain.config.clone());
    let rope_type = input.rope_type.as_str();
    let sliding = input.layer_type.as_deref() == Some("sliding_attention");
    let mut r = StackRope::blank(Stack::LlamaCpp, input);
    r.head_dim = input.plain.config.dim;
    r.notes.push(format!(
        "converter: {arch} ({}), rope mode {}",
        input.architecture,
        mode_name(neox)
    ));
    let n_ctx = input.context.div_ceil(256) * 256;
    let factor = input.sec_f64("factor").unwrap_or(1.0);
    let mut l = Load {
        g: GgmlRope {
            n_dims: n_dims(input, &cfg),
            freq_base: cfg.base as f32,
            freq_scale: 1.0,
            ext_factor: 0.0,
            attn_factor: 1.0,
            n_ctx_orig: input.max_pos(),
            beta: (32.0, 1.0),
            corr_dims: (0.0, 0.0),
            freq_factors: None,
        },
        rope_attn_factor: 1.0,
        yarn_log_mul: 0.0,
    };
    match rope_type {
        _ if sliding => {
            r.notes.push(
                "sliding layer: freq_base = rope.freq_base_swa, freq_scale 1 \
                 (src/llama-model.cpp:2329-2335)"
                    .into(),
            );
        }
        "linear" => l.g.freq_scale = 1.0f32 / factor as f32,
        "yarn" | "deepseek_yarn" => yarn(input, &cfg, factor, &mut l, &mut r),
        "longrope" | "su" if arch == "phi3" => longrope(input, &cfg, n_ctx, &mut l, &mut r),
        "llama3" if arch == "llama" => {
            l.g.freq_factors = Some(llama3::llama_cpp_rope_freqs(&cfg));
            r.notes.push(
                "llama3: rope_freqs divisors written by LlamaModel.generate_extra_tensors \
                 (conversion/llama.py:298-326); llama.cpp 8650 (llama3 dropped) is fixed for \
                 LlamaForCausalLM in this version"
                    .into(),
            );
        }
        "proportional" => {
            let rot = crate::rope::methods::proportional::rotating_pairs(&input.plain.config);
            let mut f = vec![1.0f32; rot];
            f.resize(l.g.n_dims / 2, 1e30);
            l.g.freq_factors = Some(f);
            r.notes.push(
                "proportional: rope_freqs = 1 on the rotated pairs, 1e30 past them \
                 (conversion/gemma.py:741-762): those pairs turn by ~1e-32 rad per token, not 0"
                    .into(),
            );
        }
        "dynamic" if arch == "hunyuan-dense" => {
            let alpha = input.sec_f64("alpha").unwrap_or(1.0);
            let b = dynamic_ntk::alpha_base(cfg.base, alpha, input.plain.config.dim) as f32;
            l.g.freq_base = b;
            l.g.n_ctx_orig = 262_144;
            r.notes.push(format!(
                "HunYuan: alpha folded into the base, theta * alpha^(d/(d-2)) = {b}, type \
                 none, context lengths set to 262144 (conversion/hunyuan.py:258-270)"
            ));
        }
        "default" => {}
        other => unconverted(other, neox, &l.g, &mut r),
    }
    Ok(finish(arch, neox, l, r))
}

/// The rotated dimensions: the head for proportional RoPE, hidden_size / num_attention_heads
/// for Qwen2, else the config's rotary dims.
fn n_dims(input: &StackInput, cfg: &crate::rope::ScheduleConfig) -> usize {
    if input.is(&["qwen2"])
        && let (Some(h), Some(n)) = (
            input.top_f64("hidden_size"),
            input.top_f64("num_attention_heads"),
        )
    {
        return (h / n) as usize;
    }
    if input.rope_type == "proportional" {
        input.plain.config.dim
    } else {
        cfg.rotary_dim()
    }
}

/// The name of a rope mode.
fn mode_name(neox: bool) -> &'static str {
    if neox {
        "LLAMA_ROPE_TYPE_NEOX"
    } else {
        "LLAMA_ROPE_TYPE_NORM"
    }
}

/// YaRN: ext_factor 1, the attention factor recomputed from the factor (and DeepSeek's
/// `yarn_log_multiplier` round trip).
fn yarn(
    input: &StackInput,
    cfg: &crate::rope::ScheduleConfig,
    factor: f64,
    l: &mut Load,
    r: &mut StackRope,
) {
    let deepseek = input.is(DEEPSEEK);
    l.g.freq_scale = 1.0f32 / factor as f32;
    l.g.ext_factor = 1.0;
    l.g.n_ctx_orig = cfg.train_len;
    if deepseek && let Some(m) = input.sec_f64("mscale_all_dim").filter(|m| *m != 0.0) {
        // stored as 0.1 * mscale_all_dim (conversion/deepseek.py:384-386), divided back
        // on load (src/models/deepseek2.cpp:34-38)
        let stored = (0.1 * m) as f32;
        let yarn_log_mul = stored / 0.1f32;
        l.yarn_log_mul = yarn_log_mul;
        r.notes.push(format!(
            "rope.scaling.yarn_log_multiplier stored as 0.1 x mscale_all_dim = {stored} \
             (conversion/deepseek.py:386) and divided by 0.1 on load = {yarn_log_mul} \
             (src/models/deepseek2.cpp:37)"
        ));
    }
    let fac = 1.0f32 / l.g.freq_scale;
    let ym = l.yarn_log_mul;
    let a = if ym != 0.0 {
        let m = if deepseek && ym != 1.0 { ym } else { 1.0 };
        mscale32(fac, m) / mscale32(fac, ym)
    } else {
        mscale32(fac, 1.0)
    };
    l.g.attn_factor = a * (1.0f32 / (1.0f32 + 0.1f32 * logf(fac)));
    r.notes.push(
        "YaRN: ext_factor 1, beta 32 / 1 whatever the file says (src/llama-hparams.h:159-162); \
         the attention factor recomputed from the factor (src/llama-context.cpp:177-211); \
         the correction range always floored/ceiled (ggml/src/ggml.c:4486-4487)"
            .into(),
    );
    yarn_quirks(input, cfg, deepseek, r);
}

/// Phi-3's LongRoPE: both lists written, one picked for every sequence by `n_ctx`.
fn longrope(
    input: &StackInput,
    cfg: &crate::rope::ScheduleConfig,
    n_ctx: u64,
    l: &mut Load,
    r: &mut StackRope,
) {
    let n_ctx_orig = cfg.train_len;
    l.g.n_ctx_orig = n_ctx_orig;
    l.rope_attn_factor =
        longrope::max_ratio_attention_factor(input.max_pos(), cfg.train_len) as f32;
    let long = n_ctx > n_ctx_orig;
    r.factor_list = Some(if long { "long" } else { "short" });
    let list = if long {
        &cfg.long_factor
    } else {
        &cfg.short_factor
    };
    l.g.freq_factors = Some(list.iter().map(|&v| v as f32).collect::<Vec<f32>>());
    r.notes.push(format!(
        "LongRoPE: rope_factors_long/short written (conversion/phi.py:210-211); n_ctx {} \
         padded to {n_ctx} {} n_ctx_orig {n_ctx_orig} -> the {} list for every sequence \
         (src/llama-model.cpp:2345)",
        input.context,
        if long { ">" } else { "<=" },
        if long { "long" } else { "short" }
    ));
    let effect = if long {
        format!(
            "with -c {} (n_ctx {n_ctx}), every sequence runs the long factors, also a \
             short prompt",
            input.context
        )
    } else {
        format!(
            "with -c {}, every sequence runs the short factors, also past {n_ctx_orig} \
             tokens",
            input.context
        )
    };
    r.quirk(
        "factor_list",
        "llama.cpp picks the LongRoPE list by the allocated context, n_ctx (rounded \
         up to 256) > original (src/llama-model.cpp:2345; llama.cpp 8995, 24823)",
        effect,
    );
    if input.sec_f64("factor").is_some() || input.sec_f64("attention_factor").is_some() {
        r.quirk(
            "attention_factor",
            "the Phi-3 converter writes rope.scaling.attn_factor = sqrt(1 + \
             ln(max/original) / ln(original)); the section's factor and \
             attention_factor are not read (conversion/phi.py:196)",
            "cos and sin carry another temperature than in transformers",
        );
    }
}

/// A rope type the converter writes nothing for: llama.cpp runs plain RoPE.
fn unconverted(other: &str, neox: bool, g: &GgmlRope, r: &mut StackRope) {
    r.reason = Some(format!(
        "rope type '{other}' in the config; the converted GGUF runs 'default' in llama.cpp \
         (rope.scaling.type 'linear' with factor 1: the converter writes nothing for '{other}', \
         conversion/base.py:1487-1489, and the loader knows none, linear, yarn, longrope only, \
         src/llama-model.cpp:1034-1039)"
    ));
    r.runs_instead = Some(format!(
        "ggml_rope_ext(mode {}, freq_base {}, freq_scale 1.0, ext_factor 0.0, factors none)",
        if neox { 2 } else { 0 },
        g.freq_base
    ));
    r.quirk(
        "supported",
        format!(
            "llama.cpp has no '{other}' rope: the converter writes nothing and the loader \
             knows none/linear/yarn/longrope only (src/llama-model.cpp:1034-1039)"
        ),
        format!("llama.cpp runs plain RoPE instead of '{other}', with no warning"),
    );
}

/// The kernel's values from the settled arguments, and DeepSeek 2's softmax scale.
fn finish(arch: &str, neox: bool, l: Load, mut r: StackRope) -> StackRope {
    let mut g = l.g;
    g.attn_factor *= l.rope_attn_factor;
    g.corr_dims = yarn::ggml_corr_dims(g.n_dims, g.n_ctx_orig, g.freq_base, 32.0, 1.0);
    let (inv, mscale) = g.angles(1.0);
    let softmax = if arch == "deepseek2" {
        let fs = 1.0f32 / g.freq_scale;
        let org = g.attn_factor * (1.0f32 + 0.1f32 * logf(fs));
        let ms = org * (1.0f32 + 0.1f32 * l.yarn_log_mul * logf(fs));
        if l.yarn_log_mul == 0.0 && g.ext_factor != 0.0 {
            r.quirk(
                "softmax_scale_factor",
                "DeepSeek 2 without yarn_log_multiplier: the rope factor 0.1 ln s + 1 goes \
                 on cos/sin and its square again on the softmax scale \
                 (src/llama-context.cpp:203, src/models/deepseek2.cpp:439-443)",
                "the YaRN temperature is applied twice: attention logits sharper than \
                 in transformers",
            );
        }
        (ms * ms) as f64
    } else {
        1.0
    };
    r.notes.push(format!(
        "ggml_rope_ext(n_dims {}, freq_base {}, freq_scale {}, ext_factor {}, attn_factor {}, \
         n_ctx_orig {}, corr_dims {:?}); the kernel forms the angle by theta *= powf(base, \
         -2/n_dims) from theta = p (ggml/src/ggml-cpu/ops.cpp:6216), inv_freq is its angle at \
         p = 1",
        g.n_dims, g.freq_base, g.freq_scale, g.ext_factor, g.attn_factor, g.n_ctx_orig, g.corr_dims
    ));
    r.supported = r.reason.is_none();
    r.rope_class = format!(
        "ggml_rope_ext mode {} ({})",
        if neox { 2 } else { 0 },
        mode_name(neox)
    );
    r.rotary_dim = g.n_dims;
    r.inv_freq = inv;
    r.attention_factor = mscale as f64;
    if mscale != 1.0 {
        r.attention_factor_applied_to = AppliedTo::CosSin;
    }
    r.cos_sin_scale = mscale as f64;
    r.softmax_scale_factor = Some(softmax);
    r.pair_layout = if neox { "half-split" } else { "interleaved" };
    r.angles = Angles::Ggml(g);
    r
}

/// The YaRN keys llama.cpp loses on the way (converter or loader).
fn yarn_quirks(
    input: &StackInput,
    cfg: &crate::rope::ScheduleConfig,
    deepseek: bool,
    r: &mut StackRope,
) {
    if !cfg.truncate {
        r.quirk(
            "inv_freq",
            "ggml_rope_yarn_corr_dims always floors and ceils the correction range; \
                    truncate is never written (ggml/src/ggml.c:4486-4487)",
            "the ramp features rotate at other speeds than with truncate: false",
        );
    }
    if input.sec_f64("attention_factor").is_some() {
        r.quirk(
            "attention_factor",
            "rope.scaling.yarn_attn_factor is written but read by Grok only, and the \
                    context recomputes the factor from the scale (src/llama-context.cpp:177-211)",
            "the explicit attention_factor is ignored: cos/sin carry 0.1 ln s + 1",
        );
    }
    let has_m = input.sec_f64("mscale").is_some();
    let has_all = input.sec_f64("mscale_all_dim").is_some();
    if (has_m || has_all) && !deepseek {
        r.quirk(
            "attention_factor",
            "mscale / mscale_all_dim are not converted outside DeepSeek \
                    (conversion/base.py:1483 commented out)",
            "cos/sin carry 0.1 ln s + 1 instead of the mscale ratio",
        );
    }
    if deepseek && has_m && has_all && input.sec_f64("mscale") != input.sec_f64("mscale_all_dim") {
        r.quirk(
            "attention_factor",
            "the context assumes mscale == 1 and DeepSeek 2 sets it to mscale_all_dim \
                    (src/llama-context.cpp:186-195)",
            "cos/sin factor 1 instead of get_mscale(s, mscale)/get_mscale(s, mscale_all_dim)",
        );
    }
    if deepseek && has_all {
        r.quirk(
            "softmax_scale_factor",
            "yarn_log_multiplier is stored x0.1 by the converter (conversion/deepseek.py:386) \
                    and divided by 0.1 on load (src/models/deepseek2.cpp:37): the net softmax \
                    factor equals transformers'",
            "none beyond f32 rounding",
        );
    }
}
