//! What every command shares: bad-input errors in the CLI's words, range checks of integer
//! options, `--jobs`, and value parsers for the library's named choices (tasks, presets,
//! protocols, scaling), which know nothing of clap themselves.

use super::CliError;
use crate::posgen::{PresetName, Protocol, Scaling, Task};
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use std::path::PathBuf;

/// How many child processes a batch of runs uses (`posgen study`, `probe`, `reproduce`, `lm`).
#[derive(Args, Debug, Clone)]
pub struct JobsArgs {
    /// Runs in parallel, 1..=256 [default: the number of cores].
    #[arg(long, allow_negative_numbers = true)]
    pub jobs: Option<i64>,
}

impl JobsArgs {
    /// The number of runs in parallel.
    pub fn get(&self) -> Result<usize, CliError> {
        jobs(self.jobs)
    }
}

/// Where a batch writes its results, and whether it only rewrites the report.
#[derive(Args, Debug, Clone)]
pub struct BatchOutput {
    /// Write `<out>.json` and `<out>.md`; an existing `<out>.json` is resumed.
    #[arg(long, required = true)]
    pub out: PathBuf,
    /// Run nothing: rewrite `<out>.md` (and the statistics in `<out>.json`) from the runs the
    /// JSON already has, e.g. for a batch that was stopped part-way.
    #[arg(long = "report-only")]
    pub report_only: bool,
}

/// A bad-input error for the option of key `field` (e.g. `stop_every` is `--stop-every`).
pub fn usage(field: &str, msg: String) -> CliError {
    CliError::Usage(format!(
        "invalid {}: {msg}",
        super::schedule_args::flag(field)
    ))
}

/// `v` when it lies in `lo..=hi`, else a bad-input error naming the option of key `field` and
/// the range.
pub fn in_range(field: &str, v: i64, lo: i64, hi: i64) -> Result<i64, CliError> {
    if v < lo || v > hi {
        Err(usage(field, format!("must be in {lo}..={hi} (got {v})")))
    } else {
        Ok(v)
    }
}

/// The `--jobs` value: 1..=256, or the number of cores when not given.
pub fn jobs(j: Option<i64>) -> Result<usize, CliError> {
    match j {
        Some(j) => Ok(in_range("jobs", j, 1, 256)? as usize),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// A value parser for one of `all`, by `name`.
fn choice<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(all.iter().map(|&t| name(t))).map(move |s| {
        *all.iter()
            .find(|&&t| name(t) == s)
            .unwrap_or_else(|| unreachable!("clap checked '{s}'"))
    })
}

/// `--task` values.
pub fn task() -> impl TypedValueParser<Value = Task> {
    choice(&Task::ALL, Task::name)
}

/// `--preset` values.
pub fn preset() -> impl TypedValueParser<Value = PresetName> {
    choice(&PresetName::ALL, PresetName::name)
}

/// `--protocol` values.
pub fn protocol() -> impl TypedValueParser<Value = Protocol> {
    choice(&Protocol::ALL, Protocol::name)
}

/// `--scaling` values.
pub fn scaling() -> impl TypedValueParser<Value = Scaling> {
    choice(&Scaling::ALL, Scaling::name)
}
