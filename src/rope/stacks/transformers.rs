//! transformers 5.24.0: the lab's importer and schedules (1 ulp from transformers' own f32
//! values), plus the model-file quirks around them: DeepSeek's interleaved pairs and softmax
//! mscale, HunYuan's static `ntk_alpha`, and rope types transformers cannot build.

use super::{AppliedTo, Stack, StackInput, StackRope};
use crate::rope::hf_config::ImportError;
use crate::rope::methods::{dynamic_ntk, get_mscale, longrope};
use crate::rope::{Method, Schedule};

/// The DeepSeek model types (MLA, interleaved pairs, softmax mscale).
pub(super) const DEEPSEEK: &[&str] = &["deepseek_v2", "deepseek_v3", "kimi_k2"];

/// transformers' RoPE for the input at its context (the current sequence length).
pub(super) fn compute(input: &StackInput) -> Result<StackRope, ImportError> {
    let model = match &input.transformers {
        Ok(m) => m,
        Err(e) => {
            return Ok(StackRope::unbuildable(
                Stack::Transformers,
                input,
                format!(
                    "transformers cannot build the model: {} (ROPE_INIT_FUNCTIONS has no such type, \
                     modeling_rope_utils.py:669; <Model>RotaryEmbedding(config) raises KeyError)",
                    e.message
                ),
                None,
            ));
        }
    };
    let mut c = model.config.clone();
    let mut notes = vec![format!(
        "rope type '{}' read by transformers' RotaryEmbeddingConfigMixin (modeling_rope_utils.py:775)",
        model.rope_type
    )];
    let hunyuan_alpha = input.is(&["hunyuan_v1_dense"]) && model.rope_type == "dynamic";
    if hunyuan_alpha && let Some(alpha) = input.sec_f64("alpha") {
        c.base = dynamic_ntk::alpha_base(c.base, alpha, c.dim);
        c.method = Method::ROPE;
        notes.push(format!(
            "HunYuan renames dynamic + alpha to the static ntk_alpha: base = theta * alpha^(d/(d-2)) \
             = {} (models/hunyuan_v1_dense/modeling_hunyuan_v1_dense.py:301, :355)",
            c.base
        ));
    }
    let sched = Schedule::new(&c)
        .map_err(|e| ImportError::new("(rope)", e.message_with(&|k| k.to_string())))?;
    let deepseek = input.is(DEEPSEEK);
    let softmax = if deepseek && model.rope_type != "default" {
        match c.mscale_all_dim {
            Some(m) if m != 0.0 => {
                notes.push(
                    "DeepSeek multiplies the softmax scale by get_mscale(factor, mscale_all_dim)^2 \
                     (models/deepseek_v3/modeling_deepseek_v3.py:268-273)"
                        .into(),
                );
                get_mscale(c.scale, m).powi(2)
            }
            _ => 1.0,
        }
    } else {
        1.0
    };
    let factor_list = (c.method == Method::LONGROPE).then(|| {
        if longrope::uses_long_factors(&c) {
            "long"
        } else {
            "short"
        }
    });
    if let Some(list) = factor_list {
        notes.push(format!(
            "LongRoPE: the {list} factors at sequence length {} (long when the length exceeds the \
             original {}; chosen per forward, modeling_rope_utils.py:79)",
            input.context, c.train_len
        ));
    }
    let mut r = StackRope::blank(Stack::Transformers, input);
    r.rope_class = format!("{}RotaryEmbedding", class_prefix(&input.model_type));
    r.rope_type = model.rope_type.clone();
    r.head_dim = model.head_dim;
    r.rotary_dim = 2 * sched.inv_freq.len();
    r.attention_factor = sched.attention_factor;
    r.attention_factor_applied_to = AppliedTo::CosSin;
    r.cos_sin_scale = sched.attention_factor;
    r.softmax_scale_factor = Some(softmax);
    if deepseek {
        r.pair_layout = "interleaved";
    }
    r.factor_list = factor_list;
    r.inv_freq = sched.inv_freq;
    r.notes = notes;
    Ok(r)
}

/// The model class prefix transformers uses for a model type (`llama` -> `Llama`).
fn class_prefix(model_type: &str) -> String {
    model_type
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}
