//! `config`: import a Hugging Face config.json (file or stdin), print its RoPE schedule and gap
//! summary, and optionally export the Resonance twin. The parsing lives in
//! [`crate::rope::hf_config`]; this module only reads files and shapes the JSON.

use super::{CliError, atomic};
use crate::rope::{self, Schedule, hf_config, hf_export};
use clap::Args;
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Options of `config`.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// The config.json to read; `-` reads stdin.
    #[arg(value_name = "FILE|-")]
    pub file: String,
    /// Layer type of a per-layer `rope_parameters` (default: full_attention, else the first).
    #[arg(long = "layer-type")]
    pub layer_type: Option<String>,
    /// Print the Resonance schedule (every wavelength rounded to an integer).
    #[arg(long)]
    pub resonance: bool,
    /// Current sequence length for dynamic and longrope [default: max_position_embeddings].
    #[arg(long = "seq-len", allow_negative_numbers = true)]
    pub seq_len: Option<i64>,
    /// Evaluation length of the gap summary [default: max(max_position_embeddings, seq-len)].
    #[arg(long = "eval-len", allow_negative_numbers = true)]
    pub eval_len: Option<i64>,
    /// Write the Resonance twin (rounded inv_freq, attention factor, wavelengths) to this file.
    #[arg(long = "export-resonance", value_name = "OUT")]
    pub export_resonance: Option<PathBuf>,
    /// Compute the RoPE as this stack does: transformers, vllm, llama.cpp or mlx.
    #[arg(long, value_name = "STACK")]
    pub stack: Option<String>,
    /// With --stack: the context the stack runs at (its knob: sequence length, max_model_len,
    /// n_ctx) [default: max_position_embeddings].
    #[arg(long, allow_negative_numbers = true)]
    pub context: Option<i64>,
    /// With --stack: add cos and sin at these positions (P,Q,...), as the stack computes them.
    #[arg(long, value_name = "P,Q,...")]
    pub positions: Option<String>,
    /// Form of --export-resonance: `twin` (the lab's twin document) or `hf-config` (the original
    /// config.json with its RoPE section replaced by the twin, for transformers, vLLM, mlx-lm).
    #[arg(long, value_enum, default_value_t = ExportFormat::Twin, requires = "export_resonance")]
    pub format: ExportFormat,
}

/// What `--export-resonance` writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// The twin document (`resonance-lab/resonance-twin`), read by `gguf-patch --twin`.
    Twin,
    /// The original config.json with a LongRoPE section that carries the twin.
    HfConfig,
}

/// The text of FILE (or stdin for `-`) and a fallback name.
pub(super) fn read_input(file: &str) -> Result<(String, String), CliError> {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Usage(format!("invalid FILE '-': cannot read stdin: {e}")))?;
        return Ok((text, "stdin".into()));
    }
    let path = Path::new(file);
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Usage(format!("invalid FILE '{file}': cannot read it: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::Usage(format!("invalid FILE '{file}': not UTF-8 text")))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(file)
        .to_string();
    Ok((text, stem))
}

fn length(field: &'static str, v: Option<i64>) -> Result<Option<u64>, CliError> {
    v.map(|v| {
        u64::try_from(v)
            .ok()
            .filter(|&u| (1..=rope::schedule::MAX_EVAL_LEN).contains(&u))
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "invalid --{field}: must be in 1..={} (got {v})",
                    rope::schedule::MAX_EVAL_LEN
                ))
            })
    })
    .transpose()
}

/// The largest gap over features `range` (0 when the range is empty).
fn max_over(gap: &[f64], range: std::ops::Range<usize>) -> f64 {
    gap[range].iter().copied().fold(0.0, f64::max)
}

/// `config`: the model's schedule as transformers computes it (or its Resonance twin); with
/// `--stack`, as that stack computes it.
pub fn config(args: &ConfigArgs) -> Result<Value, CliError> {
    if let Some(stack) = &args.stack {
        if args.export_resonance.is_some() {
            return Err(CliError::Usage(
                "invalid --export-resonance: not with --stack (the export is one file for every \
                 stack; its output says which stacks load it)"
                    .into(),
            ));
        }
        return super::stacks_cmd::config_stack(args, stack);
    }
    if args.context.is_some() || args.positions.is_some() {
        let flag = if args.context.is_some() {
            "--context"
        } else {
            "--positions"
        };
        return Err(CliError::Usage(format!(
            "invalid {flag}: only with --stack (transformers, vllm, llama.cpp or mlx)"
        )));
    }
    config_document(args, None)
}

/// Today's `config` document; `context` stands for `--seq-len` when that is not given.
pub(super) fn config_document(args: &ConfigArgs, context: Option<u64>) -> Result<Value, CliError> {
    let opts = hf_config::ImportOptions {
        layer_type: args.layer_type.clone(),
        seq_len: length("seq-len", args.seq_len)?.or(context),
        eval_len: length("eval-len", args.eval_len)?,
    };
    let (text, stem) = read_input(&args.file)?;
    let model = hf_config::parse_config(&text, &stem, &opts)?;
    let mut c = model.config.clone();
    c.resonance = args.resonance;
    let s = Schedule::new(&c)?;
    let analysis = rope::gap_analysis(&s);
    let crit = s.critical_feature;
    let n = s.num_features();
    let worst = (0..n).max_by(|&a, &b| analysis.gap[a].total_cmp(&analysis.gap[b]));
    let mut out = json!({
        "name": model.name,
        "rope_type": model.rope_type,
        "method": c.method.name(),
        "resonance": c.resonance,
        "layer_type": model.layer_type,
        "layer_types": model.layer_types,
        "head_dim": model.head_dim,
        "dim": c.rotary_dim(),
        "partial_rotary_factor": c.partial_rotary_factor,
        "rope_theta": c.base,
        "factor": c.scale,
        "inv_freq": s.inv_freq,
        "wavelength": s.wavelength,
        "attention_factor": s.attention_factor,
        "train_len": c.train_len,
        "eval_len": c.eval_len,
        "seq_len": c.seq_len,
        "max_position_embeddings": model.max_position_embeddings,
        "original_max_position_embeddings": model.original_max_position_embeddings,
        "critical_feature": crit,
        "zero_frequency_features": s.zero_frequency_features(),
        "gap": analysis.gap,
        "gap_summary": {
            "ood_positions": c.eval_len - c.train_len,
            "pre_critical_max": max_over(&analysis.gap, 0..crit),
            "post_critical_max": max_over(&analysis.gap, crit..n),
            "pre_critical_zero": analysis.gap[..crit].iter().filter(|&&g| g == 0.0).count(),
            "worst_feature": worst,
            "worst_position": worst.map(|i| analysis.worst_position[i]),
        },
    });
    for (k, v) in (c.method.def().details)(&c) {
        out[k] = v;
    }
    if let Some(r) = &s.rounding {
        out["rounding"] = serde_json::to_value(r).map_err(|e| CliError::Runtime(e.to_string()))?;
    }
    if let Some(path) = &args.export_resonance {
        export(args.format, path, &text, &model, &opts, &mut out)?;
    }
    Ok(out)
}

/// Writes `--export-resonance` in the chosen format and adds what it wrote to `out`.
fn export(
    format: ExportFormat,
    path: &Path,
    text: &str,
    model: &hf_config::ModelRope,
    opts: &hf_config::ImportOptions,
    out: &mut Value,
) -> Result<(), CliError> {
    let text = match format {
        ExportFormat::Twin => twin_document(text, model)?,
        ExportFormat::HfConfig => {
            let mut twin_config = model.config.clone();
            twin_config.resonance = true;
            let twin = Schedule::new(&twin_config)?;
            let export = hf_export::hf_config_export(text, model, &twin, opts)?;
            out["export_section"] = json!(export.section);
            out["export_factors"] = json!(export.factors);
            out["export_original_max_position_embeddings"] =
                json!(export.original_max_position_embeddings);
            out["export_attention_factor"] = json!(export.attention_factor);
            out["stacks"] = hf_export::stacks_json(&export.stacks);
            export.text
        }
    };
    atomic::write_atomic(path, text.as_bytes()).map_err(|e| {
        CliError::Usage(format!(
            "invalid --export-resonance '{}': cannot write it: {e}",
            path.display()
        ))
    })?;
    out["exported"] = json!(path.display().to_string());
    out["export_format"] = json!(match format {
        ExportFormat::Twin => "twin",
        ExportFormat::HfConfig => "hf-config",
    });
    Ok(())
}

/// The twin document, with what `gguf-patch` checks a GGUF against: the config's `model_type`,
/// `architectures` and the llama.cpp architecture its converter writes.
fn twin_document(text: &str, model: &hf_config::ModelRope) -> Result<String, CliError> {
    let mut doc = hf_config::resonance_twin_export(model)?;
    let root: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let inner = root.get("text_config").filter(|_| {
        ![
            "rope_theta",
            "rope_scaling",
            "rope_parameters",
            "head_dim",
            "hidden_size",
        ]
        .iter()
        .any(|k| root.get(*k).is_some())
    });
    let model_type = inner
        .and_then(|t| t.get("model_type"))
        .or_else(|| root.get("model_type"))
        .and_then(Value::as_str);
    doc["model_type"] = json!(model_type);
    doc["architectures"] = root.get("architectures").cloned().unwrap_or(Value::Null);
    doc["llama_cpp_architecture"] = json!(model_type.and_then(hf_export::llama_cpp_architecture));
    Ok(format!("{doc:#}\n"))
}
