//! What every command shares: bad-input errors in the CLI's words, range checks of integer
//! options, `--jobs`, and value parsers for the library's named choices (tasks, presets,
//! protocols, scaling), which know nothing of clap themselves.

use super::CliError;
use crate::posgen::{PresetName, Protocol, Scaling, Task};
use clap::builder::{PossibleValuesParser, TypedValueParser};

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
