//! The headless command-line interface: clap definitions that build the same config types as
//! the UI and print one JSON document. No math here. The contract is `CLI.md`-stable: names of
//! subcommands, options and JSON fields do not change.

mod config_cmd;
mod posgen_cmds;
mod reproduce_cmd;
mod runner;
mod schedule_cmds;
mod study_cmd;

use crate::rope::{ConfigError, Method, PairLayout, ScheduleConfig, schedule::MAX_EVAL_LEN};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Command line of the `resonance-lab` binary.
#[derive(Parser, Debug)]
#[command(
    name = "resonance-lab",
    version,
    about = "Resonance RoPE lab: with no subcommand opens the GUI; with one, prints JSON"
)]
pub struct Cli {
    /// Subcommand to run headless; none opens the GUI.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// GUI only: render one frame offscreen to this PNG file and exit.
    #[arg(long, value_name = "FILE")]
    pub screenshot: Option<PathBuf>,
}

/// Headless subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Per-feature frequencies, wavelengths, attention factor and critical feature.
    Freqs(ScheduleArgs),
    /// Interpolation gap per feature (docs/gap.md#definition).
    Gap(schedule_cmds::GapArgs),
    /// cos/sin feature values at given positions, from exact phases.
    Features(schedule_cmds::FeaturesArgs),
    /// Benchmarks that print figures as JSON (never asserted in tests).
    Bench(schedule_cmds::BenchArgs),
    /// PosGen benchmark: sample task sequences, train, sweep, bench.
    Posgen(posgen_cmds::PosgenArgs),
    /// Import a Hugging Face config.json: its RoPE schedule, gap summary and Resonance twin.
    Config(config_cmd::ConfigArgs),
}

/// Options shared by every subcommand that builds a RoPE schedule.
#[derive(Args, Debug, Clone)]
pub struct ScheduleArgs {
    /// Frequency schedule.
    #[arg(long, value_enum, default_value_t = Method::Rope)]
    pub method: Method,
    /// Round every wavelength to an integer after the schedule (Resonance RoPE).
    #[arg(long)]
    pub resonance: bool,
    /// Rotary head dimension (even, 2..=1024).
    #[arg(long, default_value_t = 64, allow_negative_numbers = true)]
    pub dim: i64,
    /// RoPE base (> 1).
    #[arg(long, default_value_t = 10000.0, allow_negative_numbers = true)]
    pub base: f64,
    /// Pre-training (original) context length L.
    #[arg(
        long = "train-len",
        default_value_t = 64,
        allow_negative_numbers = true
    )]
    pub train_len: i64,
    /// Evaluation length L' [default: 4 x train-len].
    #[arg(long = "eval-len", allow_negative_numbers = true)]
    pub eval_len: Option<i64>,
    /// Scale factor s >= 1 [default: eval-len / train-len].
    #[arg(long, allow_negative_numbers = true)]
    pub scale: Option<f64>,
    /// YaRN: rotations bounding the extrapolated (high-frequency) band.
    #[arg(
        long = "beta-fast",
        default_value_t = 32.0,
        allow_negative_numbers = true
    )]
    pub beta_fast: f64,
    /// YaRN: rotations bounding the interpolated (low-frequency) band.
    #[arg(
        long = "beta-slow",
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    pub beta_slow: f64,
    /// YaRN without floor/ceil of the correction range.
    #[arg(long = "no-truncate")]
    pub no_truncate: bool,
    /// Llama-3 low-frequency factor.
    #[arg(
        long = "low-freq-factor",
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    pub low_freq_factor: f64,
    /// Llama-3 high-frequency factor.
    #[arg(
        long = "high-freq-factor",
        default_value_t = 4.0,
        allow_negative_numbers = true
    )]
    pub high_freq_factor: f64,
    /// Dynamic NTK: current sequence length [default: eval-len].
    #[arg(long = "seq-len", allow_negative_numbers = true)]
    pub seq_len: Option<i64>,
    /// Pair layout of the rotated coordinates.
    #[arg(long, value_enum, default_value_t = PairLayout::HalfSplit)]
    pub layout: PairLayout,
    /// Fraction of the head dimension that rotates, in (0, 1]: rotary dim = int(dim * factor).
    #[arg(
        long = "partial-rotary-factor",
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    pub partial_rotary_factor: f64,
    /// YaRN: mscale of the attention factor (used together with --mscale-all-dim).
    #[arg(long, allow_negative_numbers = true)]
    pub mscale: Option<f64>,
    /// YaRN: mscale_all_dim of the attention factor (used together with --mscale).
    #[arg(long = "mscale-all-dim", allow_negative_numbers = true)]
    pub mscale_all_dim: Option<f64>,
    /// YaRN / LongRoPE: explicit attention factor (> 0) overriding the computed one.
    #[arg(long = "attention-factor", allow_negative_numbers = true)]
    pub attention_factor: Option<f64>,
    /// LongRoPE: comma-separated per-pair factors up to the original length (rotary dim / 2).
    #[arg(long = "short-factor", allow_hyphen_values = true)]
    pub short_factor: Option<String>,
    /// LongRoPE: comma-separated per-pair factors beyond the original length (rotary dim / 2).
    #[arg(long = "long-factor", allow_hyphen_values = true)]
    pub long_factor: Option<String>,
}

/// Parses a comma-separated list of numbers for option `field`.
fn number_list(field: &'static str, text: Option<&str>) -> Result<Vec<f64>, ConfigError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|t| {
            t.trim().parse::<f64>().map_err(|_| {
                ConfigError::new(
                    field,
                    format!(
                        "'{}' is not a number; expected comma-separated numbers > 0",
                        t.trim()
                    ),
                )
            })
        })
        .collect()
}

fn non_negative(field: &'static str, v: i64, range: &str) -> Result<u64, ConfigError> {
    u64::try_from(v).map_err(|_| ConfigError::new(field, format!("must be in {range} (got {v})")))
}

impl ScheduleArgs {
    /// Resolves defaults (eval-len, scale, seq-len) and builds the config; validation happens in
    /// [`crate::rope::Schedule::new`].
    pub fn to_config(&self) -> Result<ScheduleConfig, ConfigError> {
        let dim = usize::try_from(self.dim).map_err(|_| {
            ConfigError::new(
                "dim",
                format!("must be even and in 2..=1024 (got {})", self.dim),
            )
        })?;
        let train_len = non_negative("train-len", self.train_len, &format!("1..={MAX_EVAL_LEN}"))?;
        let eval_len = match self.eval_len {
            Some(v) => non_negative("eval-len", v, &format!("train-len..={MAX_EVAL_LEN}"))?,
            None => train_len.saturating_mul(4),
        };
        let scale = self
            .scale
            .unwrap_or(eval_len as f64 / train_len.max(1) as f64);
        let seq_len = match self.seq_len {
            Some(v) => non_negative("seq-len", v, &format!("1..={MAX_EVAL_LEN}"))?,
            None => eval_len,
        };
        let config = ScheduleConfig {
            method: self.method,
            resonance: self.resonance,
            dim,
            base: self.base,
            train_len,
            eval_len,
            scale,
            beta_fast: self.beta_fast,
            beta_slow: self.beta_slow,
            truncate: !self.no_truncate,
            low_freq_factor: self.low_freq_factor,
            high_freq_factor: self.high_freq_factor,
            seq_len,
            layout: self.layout,
            partial_rotary_factor: self.partial_rotary_factor,
            mscale: self.mscale,
            mscale_all_dim: self.mscale_all_dim,
            attention_factor: self.attention_factor,
            short_factor: number_list("short-factor", self.short_factor.as_deref())?,
            long_factor: number_list("long-factor", self.long_factor.as_deref())?,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Why a headless command failed.
#[derive(Debug)]
pub enum CliError {
    /// Bad input: exit code 2.
    Usage(String),
    /// Something failed while running: exit code 1.
    Runtime(String),
    /// The command ran and its check failed: the document is still printed, then the message,
    /// and the exit code is 1 (e.g. `posgen reproduce` when a rerun differs).
    Checked(serde_json::Value, String),
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Usage(e.to_string())
    }
}

impl From<crate::posgen::PosgenError> for CliError {
    fn from(e: crate::posgen::PosgenError) -> Self {
        match e {
            crate::posgen::PosgenError::Config(c) => c.into(),
            crate::posgen::PosgenError::Runtime(m) => CliError::Runtime(m),
        }
    }
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Runtime(_) | CliError::Checked(..) => 1,
        }
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        match self {
            CliError::Usage(m) | CliError::Runtime(m) | CliError::Checked(_, m) => m,
        }
    }
}

/// Runs a headless subcommand and returns its JSON document.
pub fn run(command: &Command) -> Result<serde_json::Value, CliError> {
    match command {
        Command::Freqs(a) => schedule_cmds::freqs(a),
        Command::Gap(a) => schedule_cmds::gap(a),
        Command::Features(a) => schedule_cmds::features(a),
        Command::Bench(a) => schedule_cmds::bench(a),
        Command::Posgen(a) => posgen_cmds::run(a),
        Command::Config(a) => config_cmd::config(a),
    }
}

/// Folds a clap error into one line (clap prints usage and hints on several lines).
pub fn one_line(err: &clap::Error) -> String {
    err.render()
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
        })
        .collect::<Vec<_>>()
        .join(" ")
}
