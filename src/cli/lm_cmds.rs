//! `lm pretrain | finetune | eval | score | study | reproduce`: the byte-level language model on real
//! text, headless. Each command prints one JSON document; checkpoints are directories
//! ([`crate::lm::Checkpoint`]).

use super::CliError;
use super::common::in_range;
use crate::lm::corpus::{Corpus, CorpusName};
use crate::lm::eval::evaluate;
use crate::lm::preset::{LmPreset, LmPresetName};
use crate::lm::train::{finetune, pretrain};
use crate::lm::{Checkpoint, LmError, RopeSpec};
use crate::rope::Method;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use web_time::Instant;

impl From<LmError> for CliError {
    fn from(e: LmError) -> Self {
        match e {
            LmError::Usage(m) => CliError::Usage(m),
            LmError::Runtime(m) => CliError::Runtime(m),
        }
    }
}

/// Language-model subcommands.
#[derive(Subcommand, Debug)]
pub enum LmCommand {
    /// Pretrain the byte-level model with RoPE (or Resonance RoPE) to a validation plateau.
    Pretrain(PretrainArgs),
    /// The paper's short fine-tune of a pretrained model with a scaled schedule.
    Finetune(FinetuneArgs),
    /// Perplexity, bits per byte and loss per position on the test split at each length.
    Eval(EvalArgs),
    /// Loss per position of one text with RoPE, YaRN and Resonance YaRN zero-shot (what the
    /// Language model tab computes live).
    Score(ScoreArgs),
    /// Training tokens/s of the pretraining step on random bytes (threads: RAYON_NUM_THREADS).
    Bench(BenchArgs),
    /// Paired study: every arm for each seed, 95% intervals; one process per run, resumable.
    Study(super::lm_study_cmd::LmStudyArgs),
    /// Rerun recorded runs of a study from scratch and compare perplexities.
    Reproduce(super::lm_study_cmd::LmReproduceArgs),
}

/// Options of `lm`.
#[derive(Args, Debug)]
pub struct LmArgs {
    #[command(subcommand)]
    pub command: LmCommand,
}

/// `--corpus` values.
pub fn corpus_parser() -> impl TypedValueParser<Value = CorpusName> {
    PossibleValuesParser::new(CorpusName::ALL.map(CorpusName::name))
        .map(|s| CorpusName::from_name(&s).unwrap_or_else(|| unreachable!("clap checked '{s}'")))
}

/// `--preset` values.
pub fn lm_preset_parser() -> impl TypedValueParser<Value = LmPresetName> {
    PossibleValuesParser::new(LmPresetName::ALL.map(LmPresetName::name))
        .map(|s| LmPresetName::from_name(&s).unwrap_or_else(|| unreachable!("clap checked '{s}'")))
}

/// Where the corpus is read from.
#[derive(Args, Debug, Clone)]
pub struct CorpusDir {
    /// Read the corpus from this directory instead of its Debian package's.
    #[arg(long = "corpus-dir")]
    pub corpus_dir: Option<PathBuf>,
}

/// Options of `lm pretrain`.
#[derive(Args, Debug)]
pub struct PretrainArgs {
    /// Corpus.
    #[arg(long, value_parser = corpus_parser())]
    pub corpus: CorpusName,
    /// Settings preset.
    #[arg(long, value_parser = lm_preset_parser(), default_value = "small")]
    pub preset: LmPresetName,
    /// Seed of the initial weights and the window order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Pretrain with Resonance RoPE instead of RoPE.
    #[arg(long)]
    pub resonance: bool,
    /// Budget multiplier of patience and step cap, 1..=8 (2: the convergence check).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub budget: i64,
    /// Validation checks without improvement before stopping, 1..=1000, instead of the
    /// preset's (before the budget multiplier): keeps a run under an earlier rule repeatable.
    #[arg(long, allow_negative_numbers = true)]
    pub patience: Option<i64>,
    /// Step cap, 1..=1000000, instead of the preset's (before the budget multiplier).
    #[arg(long, allow_negative_numbers = true)]
    pub max_steps: Option<i64>,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub dir: CorpusDir,
}

/// Options of `lm finetune`.
#[derive(Args, Debug)]
pub struct FinetuneArgs {
    /// Pretrained checkpoint directory.
    #[arg(long)]
    pub from: PathBuf,
    /// Scaled schedule to fine-tune with.
    #[arg(long, value_parser = super::schedule_args::method_parser(), default_value = "yarn")]
    pub method: Method,
    /// Resonance rounding after the schedule.
    #[arg(long)]
    pub resonance: bool,
    /// Scale factor s, 1..=64.
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true)]
    pub scale: f64,
    /// Fine-tuning window length, 2..=65536 [default: the pretraining length L].
    #[arg(long, allow_negative_numbers = true)]
    pub length: Option<i64>,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub dir: CorpusDir,
}

/// Options of `lm eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Checkpoint directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Comma-separated window lengths, each > 0 [default: L, 2L, 4L, 8L].
    #[arg(long)]
    pub lengths: Option<String>,
    /// Evaluate zero-shot with this schedule instead of the one the model was trained with.
    #[arg(long, value_parser = super::schedule_args::method_parser())]
    pub method: Option<Method>,
    /// With --method: Resonance rounding after the schedule.
    #[arg(long)]
    pub resonance: bool,
    /// With --method: scale factor s, 1..=64 [default: 4].
    #[arg(long, allow_negative_numbers = true)]
    pub scale: Option<f64>,
    /// Test tokens scored at each length [default: the preset's].
    #[arg(long, allow_negative_numbers = true)]
    pub tokens: Option<i64>,
    #[command(flatten)]
    pub dir: CorpusDir,
}

/// Options of `lm score`.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Checkpoint directory [default: the model the page ships, web/assets/lm-small-prose].
    #[arg(long, default_value = "web/assets/lm-small-prose")]
    pub model: PathBuf,
    /// The text file to score (its bytes are the tokens).
    #[arg(long)]
    pub text: PathBuf,
    /// Window length in bytes, 1..=2048 [default: s x L with s = 4].
    #[arg(long, allow_negative_numbers = true)]
    pub length: Option<i64>,
}

/// Options of `lm bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Settings preset.
    #[arg(long, value_parser = lm_preset_parser(), default_value = "small")]
    pub preset: LmPresetName,
    /// Timed training steps, 1..=100000.
    #[arg(long, default_value_t = 20, allow_negative_numbers = true)]
    pub steps: i64,
    /// Untimed steps before them, 0..=1000.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    pub warmup: i64,
}

/// Runs an `lm` subcommand.
pub fn run(a: &LmArgs) -> Result<Value, CliError> {
    match &a.command {
        LmCommand::Pretrain(a) => pretrain_cmd(a),
        LmCommand::Finetune(a) => finetune_cmd(a),
        LmCommand::Eval(a) => eval_cmd(a),
        LmCommand::Score(a) => score_cmd(a),
        LmCommand::Bench(a) => bench_cmd(a),
        LmCommand::Study(a) => super::lm_study_cmd::study(a),
        LmCommand::Reproduce(a) => super::lm_study_cmd::reproduce(a),
    }
}

/// Progress to stderr every `every` steps.
fn progress(label: String, every: usize) -> impl FnMut(usize, f32) {
    move |step, loss| {
        if step % every == 0 {
            eprintln!("{label}: step {step} loss {loss:.4}");
        }
    }
}

fn corpus_summary(c: &Corpus) -> Value {
    json!({
        "name": c.name.name(),
        "root": c.root.display().to_string(),
        "train_files": c.files.train.len(),
        "validation_files": c.files.validation.len(),
        "test_files": c.files.test.len(),
        "train_tokens": c.train.len(),
        "validation_tokens": c.validation.len(),
        "test_tokens": c.test.len(),
    })
}

fn outcome_json(ck: &Checkpoint, tokens_per_second: f64, corpus: &Corpus) -> Value {
    json!({
        "checkpoint": ck.meta,
        "tokens_per_second": tokens_per_second,
        "threads": candle_core::utils::get_num_threads(),
        "corpus": corpus_summary(corpus),
    })
}

fn pretrain_cmd(a: &PretrainArgs) -> Result<Value, CliError> {
    let budget = in_range("budget", a.budget, 1, 8)? as usize;
    let corpus = Corpus::load(a.corpus, a.dir.corpus_dir.as_deref())?;
    let mut preset = LmPreset::get(a.preset);
    if let Some(p) = a.patience {
        preset.patience = in_range("patience", p, 1, 1000)? as usize;
    }
    if let Some(m) = a.max_steps {
        preset.max_steps = in_range("max_steps", m, 1, 1_000_000)? as usize;
    }
    let mut report = progress(format!("pretrain {} seed {}", a.corpus.name(), a.seed), 100);
    let (ck, out) = pretrain(
        &preset,
        a.corpus.name(),
        a.seed,
        RopeSpec::rope(a.resonance),
        (&corpus.train, &corpus.validation),
        budget,
        &mut report,
    )?;
    ck.save(&a.out)?;
    Ok(outcome_json(&ck, out.tokens_per_second, &corpus))
}

/// The corpus a checkpoint was trained on.
fn corpus_of(ck: &Checkpoint, dir: &CorpusDir, what: &str) -> Result<Corpus, CliError> {
    let name = CorpusName::from_name(&ck.meta.corpus).ok_or_else(|| {
        CliError::Usage(format!(
            "invalid {what}: unknown corpus `{}` in the checkpoint",
            ck.meta.corpus
        ))
    })?;
    Ok(Corpus::load(name, dir.corpus_dir.as_deref())?)
}

fn scale_arg(s: f64) -> Result<f64, CliError> {
    if s.is_finite() && (1.0..=64.0).contains(&s) {
        Ok(s)
    } else {
        Err(CliError::Usage(format!(
            "invalid --scale: must be in 1..=64 (got {s})"
        )))
    }
}

fn finetune_cmd(a: &FinetuneArgs) -> Result<Value, CliError> {
    let scale = scale_arg(a.scale)?;
    let ck = Checkpoint::load(&a.from, "--from")?;
    let preset = LmPreset::get(ck.meta.preset);
    let length = match a.length {
        Some(l) => in_range("length", l, 2, 65_536)? as usize,
        None => preset.train_len,
    };
    let corpus = corpus_of(&ck, &a.dir, "--from")?;
    let rope = RopeSpec {
        method: a.method.name().into(),
        resonance: a.resonance,
        scale,
    };
    rope.schedule(&preset)?;
    let mut report = progress(format!("finetune {} at {length}", rope.label()), 20);
    let (ck, out) = finetune(
        &preset,
        ck,
        a.from.display().to_string(),
        rope,
        length,
        (&corpus.train, &corpus.validation),
        &mut report,
    )?;
    ck.save(&a.out)?;
    Ok(outcome_json(&ck, out.tokens_per_second, &corpus))
}

/// The lengths of `--lengths`, each > 0.
pub fn parse_lengths(s: &str) -> Result<Vec<usize>, CliError> {
    let bad = |m: String| CliError::Usage(format!("invalid --lengths: {m}"));
    let mut out = Vec::new();
    for part in s.split(',') {
        let v: i64 = part
            .trim()
            .parse()
            .map_err(|_| bad(format!("`{part}` is not an integer")))?;
        if !(1..=65_536).contains(&v) {
            return Err(bad(format!("every length must be in 1..=65536 (got {v})")));
        }
        out.push(v as usize);
    }
    Ok(out)
}

/// The evaluation of `model` as JSON: one score per length, keyed maps of perplexity and bits
/// per byte, and the tokens per second of each length.
pub fn eval_doc(
    ck: &Checkpoint,
    rope: &RopeSpec,
    stream: &[u16],
    lengths: &[usize],
    tokens: usize,
) -> Result<Value, CliError> {
    let preset = LmPreset::get(ck.meta.preset);
    let schedule = rope.schedule(&preset)?;
    let (mut ppl, mut bpb, mut lpp, mut speed) = (
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
    );
    for &length in lengths {
        let start = Instant::now();
        let s = evaluate(&ck.model, &schedule, stream, length, tokens)?;
        let secs = start.elapsed().as_secs_f64();
        speed.insert(length, (s.windows * length) as f64 / secs.max(1e-9));
        ppl.insert(length, s.perplexity);
        bpb.insert(length, s.bits_per_byte);
        lpp.insert(length, s.loss_per_position);
    }
    Ok(json!({
        "rope": rope,
        "rope_label": rope.label(),
        "checkpoint": ck.meta,
        "tokens": tokens,
        "perplexity": ppl,
        "bits_per_byte": bpb,
        "loss_per_position": lpp,
        "tokens_per_second": speed,
        "threads": candle_core::utils::get_num_threads(),
    }))
}

fn eval_cmd(a: &EvalArgs) -> Result<Value, CliError> {
    let ck = Checkpoint::load(&a.model, "--model")?;
    let preset = LmPreset::get(ck.meta.preset);
    let l = preset.train_len;
    let lengths = match &a.lengths {
        Some(s) => parse_lengths(s)?,
        None => vec![l, 2 * l, 4 * l, 8 * l],
    };
    let tokens = match a.tokens {
        Some(t) => in_range("tokens", t, 1, 1 << 30)? as usize,
        None => preset.eval_tokens,
    };
    let rope = match a.method {
        Some(m) => RopeSpec {
            method: m.name().into(),
            resonance: a.resonance,
            scale: scale_arg(a.scale.unwrap_or(4.0))?,
        },
        None if a.resonance || a.scale.is_some() => {
            return Err(CliError::Usage(
                "invalid --resonance/--scale: they need --method (without it the model's own \
                 schedule is used)"
                    .into(),
            ));
        }
        None => ck.meta.rope.clone(),
    };
    let corpus = corpus_of(&ck, &a.dir, "--model")?;
    eval_doc(&ck, &rope, &corpus.test, &lengths, tokens)
}

fn bench_cmd(a: &BenchArgs) -> Result<Value, CliError> {
    let steps = in_range("steps", a.steps, 1, 100_000)? as usize;
    let warmup = in_range("warmup", a.warmup, 0, 1000)? as usize;
    let preset = LmPreset::get(a.preset);
    eprintln!(
        "lm bench: preset {}, {warmup} + {steps} steps of {} x {}",
        a.preset.name(),
        preset.batch,
        preset.train_len
    );
    let seconds = crate::lm::train::bench(&preset, steps, warmup)?;
    let tokens = preset.batch * preset.train_len;
    Ok(json!({
        "preset": a.preset.name(),
        "parameters": preset.dims.num_params(),
        "batch_size": preset.batch,
        "length": preset.train_len,
        "tokens_per_step": tokens,
        "steps": steps,
        "warmup_steps": warmup,
        "seconds": seconds,
        "steps_per_second": steps as f64 / seconds,
        "tokens_per_second": (steps * tokens) as f64 / seconds,
        "threads": candle_core::utils::get_num_threads(),
    }))
}

fn score_cmd(a: &ScoreArgs) -> Result<Value, CliError> {
    let ck = Checkpoint::load(&a.model, "--model")?;
    let bytes = std::fs::read(&a.text)
        .map_err(|e| CliError::Usage(format!("invalid --text: {}: {e}", a.text.display())))?;
    let weights = std::fs::read(a.model.join("model.safetensors"))
        .map_err(|e| CliError::Runtime(format!("{}: {e}", a.model.display())))?;
    let length = match a.length {
        Some(n) => in_range("length", n, 1, crate::lm::live::MAX_LENGTH as i64)? as usize,
        None => crate::lm::live::default_length(ck.meta.preset),
    };
    let job = crate::lm::live::TextScoreJob {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        weights,
        preset: ck.meta.preset,
        length,
    };
    let mut scoring = crate::lm::live::TextScoring::new(&job)?;
    scoring.step_for(f64::INFINITY)?;
    let result = scoring
        .result()
        .ok_or_else(|| CliError::Runtime("the scoring did not finish".into()))?;
    Ok(json!({
        "command": "lm score",
        "model": a.model.display().to_string(),
        "text": a.text.display().to_string(),
        "checkpoint": ck.meta,
        "threads": candle_core::utils::get_num_threads(),
        "result": result,
    }))
}

/// Whether `dir` holds a whole checkpoint.
pub fn is_checkpoint(dir: &Path) -> bool {
    dir.join("meta.json").is_file()
}
