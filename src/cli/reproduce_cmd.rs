//! `posgen reproduce`: reruns recorded runs of a committed study or probe from the `command` each
//! run carries and compares the accuracies, so anyone can check that a results file is what its
//! commands produce. The cheapest runs (fewest training steps) go first, since a whole study is
//! hours of training; `--all` reruns every one.

use super::CliError;
use super::common::{JobsArgs, in_range};
use super::runner::run_children;
use super::train_command::{parse_command, train_args};
use crate::posgen::RunResult;
use crate::posgen::probe::ProbeRun;
use clap::Args;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::path::PathBuf;

/// Options of `posgen reproduce`.
#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// A study or probe results file (`results/posgen_study_*.json`, `results/posgen_probe*.json`).
    pub file: PathBuf,
    /// How many runs to rerun, the cheapest first (fewest recorded steps), 1..=the file's runs.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    pub runs: i64,
    /// Rerun every run of the file (overrides `--runs`).
    #[arg(long)]
    pub all: bool,
    /// Largest accepted difference of any accuracy (a fraction: 0.01 is one point), 0..=1.
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub tolerance: f64,
    /// Parallel runs.
    #[command(flatten)]
    pub jobs: JobsArgs,
}

/// The accuracies a rerun is compared on (the Semi-recursive split where the run has it).
fn accuracies(r: &RunResult) -> Vec<(&'static str, f64)> {
    let mut v = vec![
        ("id_accuracy", r.id_accuracy),
        ("ood_accuracy", r.ood_accuracy),
    ];
    for (name, x) in [
        ("id_stay_accuracy", r.id_stay_accuracy),
        ("id_advance_accuracy", r.id_advance_accuracy),
        ("ood_stay_accuracy", r.ood_stay_accuracy),
        ("ood_advance_accuracy", r.ood_advance_accuracy),
    ] {
        if let Some(x) = x {
            v.push((name, x));
        }
    }
    v
}

/// The runs recorded in a study or probe file.
fn load(file: &str) -> Result<Vec<ProbeRun>, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("invalid FILE: cannot read {file} ({e})")))?;
    #[derive(serde::Deserialize)]
    struct Recorded {
        runs: Vec<ProbeRun>,
    }
    let runs = serde_json::from_str::<Recorded>(&text)
        .map_err(|e| {
            CliError::Usage(format!(
                "invalid FILE: {file} is not a study or probe results file ({e})"
            ))
        })?
        .runs;
    if runs.is_empty() {
        return Err(CliError::Usage(format!("invalid FILE: {file} has no runs")));
    }
    Ok(runs)
}

/// One rerun against its record: every accuracy's recorded and new value and their difference
/// (an accuracy the rerun lacks counts as 1, the largest possible), and the largest difference.
fn compare(recorded: &ProbeRun, again: &RunResult) -> (Value, f64) {
    let old = &recorded.result;
    let new_acc = accuracies(again);
    let mut worst = 0.0f64;
    let compared: serde_json::Map<String, Value> = accuracies(old)
        .into_iter()
        .map(|(name, was)| {
            let now = new_acc.iter().find(|(n, _)| *n == name).map(|(_, x)| *x);
            let diff = now.map_or(1.0, |x| (x - was).abs());
            worst = worst.max(diff);
            (
                name.to_string(),
                json!({ "recorded": was, "again": now, "abs_diff": diff }),
            )
        })
        .collect();
    let doc = json!({
        "command": recorded.command,
        "steps": { "recorded": old.steps, "again": again.steps },
        "accuracies": compared,
        "max_abs_diff": worst,
    });
    (doc, worst)
}

/// Runs `posgen reproduce`. The document lists every rerun with its recorded and new accuracies;
/// when any differs by more than the tolerance, the error carries the whole document.
pub fn reproduce(a: &ReproduceArgs) -> Result<Value, CliError> {
    let file = a.file.display().to_string();
    let recorded = load(&file)?;
    if !(0.0..=1.0).contains(&a.tolerance) {
        return Err(CliError::Usage(format!(
            "invalid --tolerance: {} (expected 0..=1, a fraction of tokens)",
            a.tolerance
        )));
    }
    let count = if a.all {
        recorded.len()
    } else {
        in_range("runs", a.runs, 1, recorded.len() as i64)? as usize
    };
    let jobs = a.jobs.get()?;
    let mut order: Vec<usize> = (0..recorded.len()).collect();
    order.sort_by_key(|&i| recorded[i].result.steps);
    order.truncate(count);
    let mut todo = VecDeque::new();
    for &i in &order {
        let spec = parse_command(&recorded[i].command).ok_or_else(|| {
            CliError::Usage(format!(
                "invalid FILE: run {i} of {file} has no `posgen train` command: {}",
                recorded[i].command
            ))
        })?;
        todo.push_back((train_args(&spec), i));
    }
    let (mut again, failure) = run_children(
        todo,
        Vec::new(),
        jobs,
        "posgen reproduce",
        |_| Ok(()),
        |&i, results| match results.as_slice() {
            [r] => Ok(vec![(i, r.clone())]),
            _ => Err(format!(
                "`{}` printed {} results",
                recorded[i].command,
                results.len()
            )),
        },
    )?;
    if let Some(f) = failure {
        return Err(CliError::Runtime(f));
    }
    again.sort_by_key(|(i, _)| order.iter().position(|j| j == i));
    let mut worst = 0.0f64;
    let mut outside = 0;
    let mut runs = Vec::new();
    for (i, new) in &again {
        let (mut doc, run_worst) = compare(&recorded[*i], new);
        doc["within_tolerance"] = json!(run_worst <= a.tolerance);
        outside += usize::from(run_worst > a.tolerance);
        worst = worst.max(run_worst);
        runs.push(doc);
    }
    let rerun = runs.len();
    let doc = json!({
        "file": file,
        "runs_in_file": recorded.len(),
        "rerun": rerun,
        "tolerance": a.tolerance,
        "max_abs_diff": worst,
        "reproduced": outside == 0,
        "runs": runs,
    });
    if outside > 0 {
        let msg = format!(
            "{outside} of {rerun} rerun runs differ from {file} by more than {} (largest: {worst})",
            a.tolerance
        );
        return Err(CliError::Checked(doc, msg));
    }
    Ok(doc)
}
