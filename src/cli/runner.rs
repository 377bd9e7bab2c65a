//! Runs many `posgen train` processes, `jobs` at a time, for the study and the probe. Each run
//! is a child process of this very binary started with [`RUN_ENV`], so the command a results
//! file records is exactly what ran; after every finished run the caller's `save` rewrites its
//! results file (atomically), so a killed batch resumes from the file and loses no finished run.

use super::CliError;
use super::train_command::{RUN_ENV, command_line};
use crate::posgen::RunResult;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// The results file at `path` when one exists (a batch to resume), `None` when there is none.
pub fn load_finished<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, CliError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str::<T>(&text).map(Some).map_err(|e| {
            CliError::Usage(format!(
                "invalid --out: {} exists but is not a results file to resume ({e}); move it away",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::Runtime(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Writes `value` as pretty JSON to `path` through a temporary file and a rename, so a kill
/// mid-write never leaves a truncated file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Runtime(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", path.display())))
}

/// Writes a batch's results, `<out>.json`, and its report, `<out>.md`; returns both paths.
pub fn write_results<T: Serialize>(
    out: &Path,
    result: &T,
    markdown: &str,
) -> Result<(PathBuf, PathBuf), CliError> {
    let (json_path, md_path) = (out.with_extension("json"), out.with_extension("md"));
    write_json(&json_path, result)?;
    std::fs::write(&md_path, markdown)
        .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", md_path.display())))?;
    Ok((json_path, md_path))
}

/// The error of a batch that stopped on `failure`, saying that its `saved_runs` finished runs
/// are kept for a resume.
pub fn stopped_part_way(failure: Option<String>, saved_runs: usize) -> Result<(), CliError> {
    match failure {
        Some(f) => Err(CliError::Runtime(format!(
            "{f} ({saved_runs} finished runs are saved; run the same command again to resume)"
        ))),
        None => Ok(()),
    }
}

/// Runs `resonance-lab <args>` as a child process and parses the run result(s) it prints (one
/// document, or a list with `--also-eval-method`); loss curves are dropped (results files keep
/// the early-stopping losses, not every step's).
fn run_child(exe: &Path, args: &[String]) -> Result<Vec<RunResult>, String> {
    let out = std::process::Command::new(exe)
        .args(args)
        .env(RUN_ENV.0, RUN_ENV.1)
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", command_line(args)))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").to_string();
        return Err(format!("`{}` failed: {last}", command_line(args)));
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Printed {
        One(Box<RunResult>),
        Many(Vec<RunResult>),
    }
    let printed: Printed = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("`{}` printed no run result: {e}", command_line(args)))?;
    let mut results = match printed {
        Printed::One(r) => vec![*r],
        Printed::Many(v) => v,
    };
    for r in &mut results {
        r.loss_curve = Vec::new();
    }
    Ok(results)
}

/// One line about a finished run.
fn summary(r: &RunResult) -> String {
    format!(
        "{} {} seed {}: ID {:.1}% OOD {:.1}% after {} steps ({:.0}s)",
        r.task,
        r.label,
        r.seed,
        100.0 * r.id_accuracy,
        100.0 * r.ood_accuracy,
        r.steps,
        r.seconds
    )
}

/// Locks a mutex, recovering the data if another worker panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs every `(args, tag)` of `todo`, `jobs` at a time; `record` turns a tag and the results
/// its process printed into finished records, appended to `finished`, after which `save` gets
/// all records so far.
/// Returns the records and the first failure (no new run starts after one; those running
/// finish and are kept). Progress and an ETA go to stderr, prefixed by `label`.
pub fn run_children<T: Send + 'static, R: Send>(
    todo: VecDeque<(Vec<String>, T)>,
    finished: Vec<R>,
    jobs: usize,
    label: &str,
    save: impl Fn(&[R]) -> Result<(), CliError> + Sync,
    record: impl Fn(&T, Vec<RunResult>) -> Result<Vec<R>, String> + Sync,
) -> Result<(Vec<R>, Option<String>), CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Runtime(format!("cannot find this program's path: {e}")))?;
    let total = todo.len();
    let queue = Mutex::new(todo);
    let records = Mutex::new((finished, 0usize));
    let failure = Mutex::new(None::<String>);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                while lock(&failure).is_none() {
                    let Some((args, tag)) = lock(&queue).pop_front() else {
                        return;
                    };
                    let done = run_child(&exe, &args).and_then(|rs| {
                        let lines: Vec<String> = rs.iter().map(summary).collect();
                        Ok((lines, record(&tag, rs)?))
                    });
                    let (lines, new) = match done {
                        Ok(x) => x,
                        Err(e) => {
                            *lock(&failure) = Some(e);
                            return;
                        }
                    };
                    let mut rec = lock(&records);
                    rec.1 += 1;
                    let eta = start.elapsed().as_secs_f64() / rec.1 as f64 * (total - rec.1) as f64;
                    for line in lines {
                        eprintln!(
                            "{label}: [{}/{total}] {line}; ETA {:.0} min",
                            rec.1,
                            eta / 60.0
                        );
                    }
                    rec.0.extend(new);
                    if let Err(e) = save(&rec.0) {
                        *lock(&failure) = Some(e.message().to_string());
                    }
                }
            });
        }
    });
    let (records, _) = records.into_inner().unwrap_or_else(PoisonError::into_inner);
    let failure = failure.into_inner().unwrap_or_else(PoisonError::into_inner);
    Ok((records, failure))
}
