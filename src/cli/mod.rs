//! The headless command-line interface: clap definitions that build the same config types as
//! the UI and print one JSON document. No math here. The contract is `CLI.md`-stable: names of
//! subcommands, options and JSON fields do not change.

mod atomic;
mod common;
mod config_cmd;
mod gguf_patch;
mod lm_cmds;
mod lm_study_cmd;
mod posgen_cmds;
mod reproduce_cmd;
mod runner;
pub mod schedule_args;
mod schedule_cmds;
mod stacks_cmd;
mod study_cmd;
pub mod train_command;

use crate::rope::ConfigError;
use clap::{Parser, Subcommand};
pub use schedule_args::ScheduleArgs;
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
    /// Put a config.json through transformers, vLLM, llama.cpp and mlx-lm and list where they
    /// differ.
    Audit(stacks_cmd::AuditArgs),
    /// Write a Resonance twin into a GGUF as llama.cpp reads it (frequency factors + metadata).
    #[command(name = "gguf-patch")]
    GgufPatch(gguf_patch::GgufPatchArgs),
    /// Byte-level language model on real text: pretrain, fine-tune, evaluate, paired study.
    Lm(lm_cmds::LmArgs),
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
        CliError::Usage(schedule_args::render(&e))
    }
}

impl From<crate::rope::hf_config::ImportError> for CliError {
    fn from(e: crate::rope::hf_config::ImportError) -> Self {
        CliError::Usage(e.render(&|k| schedule_args::flag(k)))
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
        Command::Audit(a) => stacks_cmd::audit(a),
        Command::GgufPatch(a) => gguf_patch::gguf_patch(a),
        Command::Lm(a) => lm_cmds::run(a),
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
