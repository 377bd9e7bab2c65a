//! `config --stack` and `audit`: what transformers, vLLM, llama.cpp and mlx-lm compute for a
//! config.json, one stack or all four side by side. The models live in [`crate::rope::stacks`];
//! this module only parses options and shapes the JSON.

use super::CliError;
use super::config_cmd::{ConfigArgs, read_input};
use crate::rope::stacks::{self, Audit, Difference, Stack, StackOptions, StackRope};
use crate::rope::{Phase, gap, schedule::MAX_EVAL_LEN};
use clap::Args;
use serde_json::{Value, json};

/// Options of `audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The config.json to read; `-` reads stdin.
    #[arg(value_name = "FILE|-")]
    pub file: String,
    /// The context every stack runs at (transformers' sequence length, vLLM's max_model_len,
    /// llama.cpp's n_ctx, mlx-lm's call length) [default: max_position_embeddings].
    #[arg(long, allow_negative_numbers = true)]
    pub context: Option<i64>,
    /// Layer type of a per-layer `rope_parameters` (default: full_attention, else the first).
    #[arg(long = "layer-type")]
    pub layer_type: Option<String>,
    /// Audit the Resonance twin (every stack's wavelengths rounded to integers).
    #[arg(long)]
    pub resonance: bool,
}

/// The stack of a `--stack` value, or the one-line error naming the valid ones.
pub fn parse_stack(name: &str) -> Result<Stack, CliError> {
    Stack::from_name(name).ok_or_else(|| {
        CliError::Usage(format!(
            "invalid --stack: must be one of {} (got '{name}')",
            Stack::ALL.map(Stack::name).join(", ")
        ))
    })
}

/// `--context`: 1 ..= the longest length the lab analyses.
pub fn parse_context(v: Option<i64>) -> Result<Option<u64>, CliError> {
    v.map(|v| {
        u64::try_from(v)
            .ok()
            .filter(|&u| (1..=MAX_EVAL_LEN).contains(&u))
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "invalid --context: must be in 1..={MAX_EVAL_LEN} (got {v})"
                ))
            })
    })
    .transpose()
}

/// `--positions P,Q,...`: integers in 0..=2^32-1.
pub fn parse_positions(s: &str) -> Result<Vec<u64>, CliError> {
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<u64>()
                .ok()
                .filter(|&v| v <= u32::MAX as u64)
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "invalid --positions: must be integers in 0..={} separated by commas \
                         (got '{}')",
                        u32::MAX,
                        p.trim()
                    ))
                })
        })
        .collect()
}

/// One stack's result as JSON (without cos/sin).
pub fn stack_json(r: &StackRope) -> Value {
    let mut v = json!({
        "stack": r.stack.name(),
        "stack_version": r.stack_version,
        "context": r.context,
        "context_knob": r.stack.context_knob(),
        "supported": r.supported,
        "rope_class": r.rope_class,
        "stack_rope_type": r.rope_type,
        "head_dim": r.head_dim,
        "dim": r.rotary_dim,
        "inv_freq": r.inv_freq,
        "wavelength": r.wavelength().iter().map(|w| w.is_finite().then_some(*w)).collect::<Vec<_>>(),
        "attention_factor": r.attention_factor,
        "attention_factor_applied_to": r.attention_factor_applied_to.as_str(),
        "cos_sin_scale": r.cos_sin_scale,
        "softmax_scale_factor": r.softmax_scale_factor,
        "pair_layout": r.pair_layout,
        "max_positions": r.max_positions,
        "factor_list": r.factor_list,
        "notes": r.notes,
    });
    if !r.supported {
        v["reason"] = json!(r.reason);
        v["runs_instead"] = json!(r.runs_instead);
    }
    v
}

/// cos/sin rows as JSON: per position, per feature (`null` where the stack has no value).
fn cos_sin_json(r: &StackRope, positions: &[u64]) -> (Value, Value) {
    let rows = r.cos_sin(positions);
    let cos = rows
        .iter()
        .map(|x| x.as_ref().map(|x| &x.cos))
        .collect::<Vec<_>>();
    let sin = rows
        .iter()
        .map(|x| x.as_ref().map(|x| &x.sin))
        .collect::<Vec<_>>();
    (json!(cos), json!(sin))
}

/// `config FILE --stack S`: today's document with the stack's frequencies, factor and notes.
pub fn config_stack(args: &ConfigArgs, name: &str) -> Result<Value, CliError> {
    let stack = parse_stack(name)?;
    let context = parse_context(args.context)?;
    let positions = args.positions.as_deref().map(parse_positions).transpose()?;
    let (text, _) = read_input(&args.file)?;
    let opts = StackOptions {
        layer_type: args.layer_type.clone(),
        context,
        resonance: args.resonance,
    };
    let r = stacks::compute(&text, stack, &opts)?;
    // today's document (transformers' reading) where transformers can read the config
    let mut out = match super::config_cmd::config_document(args, context) {
        Ok(v) => v,
        Err(_) if !r.inv_freq.is_empty() || !r.supported => json!({}),
        Err(e) => return Err(e),
    };
    for (k, v) in stack_json(&r).as_object().into_iter().flatten() {
        out[k.as_str()] = v.clone();
    }
    if r.inv_freq.is_empty() {
        out["gap"] = Value::Null;
    } else if let (Some(train), Some(eval)) = (
        out.get("train_len").and_then(Value::as_u64),
        out.get("eval_len").and_then(Value::as_u64),
    ) {
        // the gap of the stack's own frequencies
        let g: Vec<f64> = r
            .inv_freq
            .iter()
            .map(|&w| gap::gap_for_phase(&Phase::from_inv_freq(w), train, eval))
            .collect();
        out["gap"] = json!(g);
    }
    if let Some(p) = positions {
        let (cos, sin) = cos_sin_json(&r, &p);
        out["positions"] = json!(p);
        out["cos"] = cos;
        out["sin"] = sin;
    }
    Ok(out)
}

fn difference_json(d: &Difference) -> Value {
    json!({
        "stacks": d.stacks.map(Stack::name),
        "field": d.field,
        "max_abs": d.max_abs,
        "max_rel": d.max_rel,
        "features": d.features,
        "positions": d.positions,
        "cause": d.cause,
        "effect": d.effect,
        "rounding_only": d.rounding_only,
    })
}

/// The audit document.
pub fn audit_json(a: &Audit, opts: &StackOptions) -> Value {
    let stacks: Vec<Value> = a
        .stacks
        .iter()
        .map(|r| {
            let mut v = stack_json(r);
            let (cos, sin) = cos_sin_json(r, &a.positions);
            v["cos"] = cos;
            v["sin"] = sin;
            v
        })
        .collect();
    json!({
        "context": a.context,
        "layer_type": opts.layer_type,
        "resonance": opts.resonance,
        "positions": a.positions,
        "stacks": stacks,
        "differences": a.differences.iter().map(difference_json).collect::<Vec<_>>(),
        "modelling_differences": a.differences.iter().filter(|d| !d.rounding_only).count(),
    })
}

/// `audit FILE`: every stack side by side and their differences from transformers.
pub fn audit(args: &AuditArgs) -> Result<Value, CliError> {
    let opts = StackOptions {
        layer_type: args.layer_type.clone(),
        context: parse_context(args.context)?,
        resonance: args.resonance,
    };
    let (text, _) = read_input(&args.file)?;
    let a = stacks::audit(&text, &opts)?;
    let mut out = audit_json(&a, &opts);
    out["file"] = json!(args.file);
    Ok(out)
}
