//! `posgen study` and `posgen probe`. The study runs a [`StudyConfig`]'s plan through [`super::runner`] (one `posgen train`
//! process per run, `--jobs` at a time, `<out>.json` rewritten after every finished run so that
//! a killed study resumes without losing one), then writes the markdown report.

use super::CliError;
use super::common::{BatchOutput, JobsArgs, in_range, usage};
use super::runner::{load_finished, run_children, stopped_part_way, write_json, write_results};
use super::train_command::{command, train_args};
use crate::posgen::RunResult;
use crate::posgen::probe::{ProbeConfig, ProbeResult, ProbeRun};
use crate::posgen::study::{PlannedRun, StudyConfig, StudyResult, StudyRun, batches};
use crate::posgen::{EarlyStop, PresetName, Protocol, Scaling, Task};
use clap::Args;
use serde_json::{Value, json};
use std::collections::VecDeque;

/// Options of `posgen study`.
#[derive(Args, Debug)]
pub struct StudyArgs {
    /// Comma-separated tasks [default: all three].
    #[arg(long, value_parser = super::common::task(), value_delimiter = ',')]
    pub tasks: Vec<Task>,
    /// Number of seeds (0..N), 1..=1000.
    #[arg(long, default_value_t = 10, allow_negative_numbers = true)]
    pub seeds: i64,
    /// How the splits are drawn.
    #[arg(long, value_parser = super::common::protocol(), default_value = "clean")]
    pub protocol: Protocol,
    /// Where the scaling applies.
    #[arg(long, value_parser = super::common::scaling(), default_value = "train")]
    pub scaling: Scaling,
    /// Hyper-parameter preset.
    #[arg(long, value_parser = super::common::preset(), default_value = "tiny")]
    pub preset: PresetName,
    /// Step cap of each run, 1..=10000000.
    #[arg(long, default_value_t = 3000, allow_negative_numbers = true)]
    pub steps: i64,
    /// Early-stopping checks without improvement before a run stops, 1..=100000.
    #[arg(long, default_value_t = 8, allow_negative_numbers = true)]
    pub patience: i64,
    /// Steps between early-stopping checks, 1..=10000000.
    #[arg(
        long = "stop-every",
        default_value_t = 50,
        allow_negative_numbers = true
    )]
    pub stop_every: i64,
    /// Seeds (the first ones) also trained with twice the cap and patience, 0..=seeds.
    #[arg(
        long = "check-seeds",
        default_value_t = 3,
        allow_negative_numbers = true
    )]
    pub check_seeds: i64,
    /// Parallel runs.
    #[command(flatten)]
    pub jobs: JobsArgs,
    /// Results and report.
    #[command(flatten)]
    pub output: BatchOutput,
}

impl StudyArgs {
    fn config(&self) -> Result<StudyConfig, CliError> {
        let seeds = in_range("seeds", self.seeds, 1, 1000)? as u64;
        let config = StudyConfig {
            preset: self.preset,
            tasks: if self.tasks.is_empty() {
                Task::ALL.to_vec()
            } else {
                self.tasks.clone()
            },
            seeds: (0..seeds).collect(),
            protocol: self.protocol,
            scaling: self.scaling,
            cap: in_range("steps", self.steps, 1, 10_000_000)? as usize,
            early_stop: EarlyStop {
                patience: in_range("patience", self.patience, 1, 100_000)? as usize,
                every: in_range("stop_every", self.stop_every, 1, 10_000_000)? as usize,
            },
            check_seeds: in_range("check_seeds", self.check_seeds, 0, seeds as i64)? as usize,
        };
        config.validate()?;
        Ok(config)
    }
}

/// The study's records of one process's results: one per planned run, matched by schedule.
fn record(planned: &[PlannedRun], results: Vec<RunResult>) -> Result<Vec<StudyRun>, String> {
    if planned.len() != results.len() {
        return Err(format!(
            "expected {} results from `{}`, got {}",
            planned.len(),
            command(&planned[0].spec),
            results.len()
        ));
    }
    planned
        .iter()
        .zip(results)
        .map(|(p, result)| {
            if result.method != p.method.name() || result.resonance != p.resonance {
                return Err(format!(
                    "`{}` reported a {} run",
                    command(&p.spec),
                    result.label
                ));
            }
            Ok(StudyRun {
                command: command(&p.spec),
                budget: p.budget,
                result,
            })
        })
        .collect()
}

/// Runs `posgen study`.
pub fn study(a: &StudyArgs) -> Result<Value, CliError> {
    let config = a.config()?;
    let jobs = a.jobs.get()?;
    let json_path = a.output.out.with_extension("json");
    let study_command = this_command().replace(" --report-only", "");
    let plan = config.plan();
    let mut finished = load_finished::<StudyResult>(&json_path)?.map_or(Vec::new(), |r| r.runs);
    finished.retain(|r| plan.iter().any(|p| command(&p.spec) == r.command));
    let todo: VecDeque<PlannedRun> = plan
        .iter()
        .filter(|p| !finished.iter().any(|r| r.command == command(&p.spec)))
        .cloned()
        .collect();
    eprintln!(
        "posgen study: {} runs planned, {} already in {}, {} to run on {} jobs",
        plan.len(),
        finished.len(),
        json_path.display(),
        todo.len(),
        jobs
    );
    let save = |runs: &[StudyRun]| -> Result<(), CliError> {
        let result = StudyResult::new(config.clone(), study_command.clone(), runs.to_vec());
        write_json(&json_path, &result)
    };
    let mut todo: Vec<PlannedRun> = todo.into_iter().collect();
    if a.output.report_only {
        todo.clear();
    }
    let todo = batches(config.scaling, &todo)
        .into_iter()
        .map(|(spec, runs)| (train_args(&spec), runs))
        .collect();
    let (runs, failure) = run_children(todo, finished, jobs, "posgen study", save, |p, rs| {
        record(p, rs)
    })?;
    let result = StudyResult::new(config.clone(), study_command.clone(), runs);
    let (json_path, md_path) = write_results(&a.output.out, &result, &result.markdown())?;
    eprintln!(
        "posgen study: wrote {} and {}",
        json_path.display(),
        md_path.display()
    );
    stopped_part_way(failure, result.runs.len())?;
    Ok(json!({
        "json": json_path,
        "md": md_path,
        "runs": result.runs.len(),
        "planned_runs": result.planned_runs,
        "complete": result.complete(),
        "comparisons": result.comparisons,
    }))
}

/// Options of `posgen probe`.
#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Task.
    #[arg(long, value_parser = super::common::task(), default_value = "semi-recursive")]
    pub task: Task,
    /// Comma-separated depths (transformer blocks).
    #[arg(long, value_delimiter = ',', default_values_t = [2, 4, 6])]
    pub depths: Vec<usize>,
    /// Comma-separated widths (d_model, multiples of the head dimension).
    #[arg(long, value_delimiter = ',', default_values_t = [64, 128, 256])]
    pub widths: Vec<usize>,
    /// Comma-separated training budgets in steps.
    #[arg(long, value_delimiter = ',', default_values_t = [1000])]
    pub budgets: Vec<usize>,
    /// Comma-separated protocols.
    #[arg(long, value_parser = super::common::protocol(), value_delimiter = ',', default_values = ["clean", "authors"])]
    pub protocols: Vec<Protocol>,
    /// Preset whose recipe the shapes vary.
    #[arg(long, value_parser = super::common::preset(), default_value = "tiny")]
    pub preset: PresetName,
    /// Seed of every run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Parallel runs.
    #[command(flatten)]
    pub jobs: JobsArgs,
    /// Results and report.
    #[command(flatten)]
    pub output: BatchOutput,
}

fn this_command() -> String {
    format!(
        "resonance-lab {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    )
}

/// Runs `posgen probe`.
pub fn probe(a: &ProbeArgs) -> Result<Value, CliError> {
    let empty = |field: &str, v: &[usize]| -> Result<(), CliError> {
        if v.is_empty() || v.contains(&0) {
            Err(usage(
                field,
                format!("must be a comma-separated list of numbers >= 1 (got {v:?})"),
            ))
        } else {
            Ok(())
        }
    };
    empty("depths", &a.depths)?;
    empty("widths", &a.widths)?;
    empty("budgets", &a.budgets)?;
    let config = ProbeConfig {
        task: a.task,
        preset: a.preset,
        depths: a.depths.clone(),
        widths: a.widths.clone(),
        budgets: a.budgets.clone(),
        protocols: a.protocols.clone(),
        seed: a.seed,
    };
    // Shapes are validated by a dry configuration of each, before anything runs.
    for &d in &config.depths {
        for &w in &config.widths {
            crate::posgen::RunConfig::new(a.preset, a.task, crate::rope::Method::ROPE, false, 0)
                .with_shape(d, w)?;
        }
    }
    let jobs = a.jobs.get()?;
    let json_path = a.output.out.with_extension("json");
    let study_command = this_command().replace(" --report-only", "");
    let plan: Vec<String> = config.plan().iter().map(command).collect();
    let mut finished = load_finished::<ProbeResult>(&json_path)?.map_or(Vec::new(), |r| r.runs);
    finished.retain(|r| plan.contains(&r.command));
    let todo: VecDeque<(Vec<String>, String)> = config
        .plan()
        .iter()
        .filter(|p| !a.output.report_only && !finished.iter().any(|r| r.command == command(p)))
        .map(|p| (train_args(p), command(p)))
        .collect();
    eprintln!(
        "posgen probe: {} runs planned, {} already done, {} to run on {jobs} jobs",
        plan.len(),
        finished.len(),
        todo.len()
    );
    let result_of = |runs: Vec<ProbeRun>| ProbeResult {
        config: config.clone(),
        probe_command: study_command.clone(),
        runs,
        planned_runs: plan.len(),
    };
    let save = |runs: &[ProbeRun]| write_json(&json_path, &result_of(runs.to_vec()));
    let (runs, failure) = run_children(todo, finished, jobs, "posgen probe", save, |cmd, rs| {
        Ok(rs
            .into_iter()
            .map(|result| ProbeRun {
                command: cmd.clone(),
                result,
            })
            .collect())
    })?;
    let result = result_of(runs);
    let (json_path, md_path) = write_results(&a.output.out, &result, &result.markdown())?;
    stopped_part_way(failure, result.runs.len())?;
    Ok(json!({ "json": json_path, "md": md_path, "runs": result.runs.len() }))
}
