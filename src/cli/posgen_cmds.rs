//! `posgen sample | train | sweep | bench`: the PosGen benchmark headless.

use super::CliError;
use super::common::{in_range, usage};
use super::train_command::TrainArgs;
use crate::posgen::sweep::{SweepConfig, run_sweep};
use crate::posgen::{
    PresetName, RunConfig, Scaling, SplitMix64, Task, TaskSpec, Trainer, tasks::MAX_MODULUS,
};
use crate::rope::Method;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;
use web_time::Instant;

/// PosGen subcommands.
#[derive(Subcommand, Debug)]
pub enum PosgenCommand {
    /// Generate task sequences (seeds first, no BOS token).
    Sample(SampleArgs),
    /// Train one model and report teacher-forced ID/OOD accuracy.
    Train(super::train_command::TrainArgs),
    /// Tasks x {RoPE, Resonance RoPE, YaRN, Resonance YaRN} x seeds: a Table-1-shaped summary.
    Sweep(SweepArgs),
    /// Training throughput: steps/s of the tiny preset, tokens/s of the paper preset.
    Bench(PosgenBenchArgs),
    /// Paired study: tasks x the paper's four schedules x seeds to a validation plateau, with
    /// 95% confidence intervals; one process per run, in parallel, resumable.
    Study(super::study_cmd::StudyArgs),
    /// Semi-recursive probe: depth x width x budget under each protocol (plain RoPE).
    Probe(super::study_cmd::ProbeArgs),
    /// Rerun recorded runs of a study or probe file from their commands and compare accuracies.
    Reproduce(super::reproduce_cmd::ReproduceArgs),
}

/// Options of `posgen`.
#[derive(Args, Debug)]
pub struct PosgenArgs {
    #[command(subcommand)]
    pub command: PosgenCommand,
}

/// Options of `posgen sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Task.
    #[arg(long, value_parser = super::common::task())]
    pub task: Task,
    /// Tokens per sequence (>= j + k).
    #[arg(long, allow_negative_numbers = true)]
    pub len: i64,
    /// Seed of the random seed tokens.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Modulus (vocabulary 0..M), 2..=1024.
    #[arg(long, default_value_t = 17, allow_negative_numbers = true)]
    pub modulus: i64,
    /// Number of sequences, 1..=10000.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub count: i64,
    /// Far tokens j, 1..=16.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub j: i64,
    /// Near tokens k, 1..=16.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    pub k: i64,
    /// Explicit comma-separated seed tokens (j + k of them) instead of random ones.
    #[arg(long = "seed-tokens")]
    pub seed_tokens: Option<String>,
}

/// Options of `posgen sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Hyper-parameter preset.
    #[arg(long, value_parser = super::common::preset(), default_value = "tiny")]
    pub preset: PresetName,
    /// Number of seeds (0..N), 1..=100.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    pub seeds: i64,
    /// Comma-separated tasks [default: all three].
    #[arg(long, value_parser = super::common::task(), value_delimiter = ',')]
    pub tasks: Vec<Task>,
    /// Optimiser steps per run, >= 1 [default: the preset's].
    #[arg(long, allow_negative_numbers = true)]
    pub steps: Option<i64>,
    /// Where scaling applies.
    #[arg(long, value_parser = super::common::scaling(), default_value = "train")]
    pub scaling: Scaling,
    /// Write `<out>.md` and `<out>.json` (e.g. results/posgen_tiny_sweep).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Options of `posgen bench`.
#[derive(Args, Debug)]
pub struct PosgenBenchArgs {
    /// Timed training steps of the tiny preset.
    #[arg(long = "tiny-steps", default_value_t = 30)]
    pub tiny_steps: usize,
    /// Timed training steps of the paper preset.
    #[arg(long = "paper-steps", default_value_t = 2)]
    pub paper_steps: usize,
    /// Batch size of the paper-preset measurement (the preset trains with 128).
    #[arg(long = "paper-batch", default_value_t = 16)]
    pub paper_batch: usize,
    /// Task of the time-to-converge measurement (tiny preset, plain RoPE, seed 0).
    #[arg(long = "converge-task", value_parser = super::common::task(), default_value = "recursive")]
    pub converge_task: Task,
    /// Validation ID accuracy that counts as converged, in 0..=1 (0 skips the measurement).
    #[arg(long = "converge-target", default_value_t = 0.95)]
    pub converge_target: f64,
    /// Study throughput: this many independent tiny runs (of `--study-steps` steps) as child
    /// processes, one at a time and then one per core (0 skips the measurement).
    #[arg(long = "study-runs", default_value_t = 4)]
    pub study_runs: usize,
    /// Steps of each study-throughput run.
    #[arg(long = "study-steps", default_value_t = 60)]
    pub study_steps: usize,
}

/// Runs a PosGen subcommand.
pub fn run(args: &PosgenArgs) -> Result<Value, CliError> {
    match &args.command {
        PosgenCommand::Sample(a) => sample(a),
        PosgenCommand::Train(a) => train(a),
        PosgenCommand::Sweep(a) => sweep(a),
        PosgenCommand::Bench(a) => bench(a),
        PosgenCommand::Study(a) => super::study_cmd::study(a),
        PosgenCommand::Probe(a) => super::study_cmd::probe(a),
        PosgenCommand::Reproduce(a) => super::reproduce_cmd::reproduce(a),
    }
}

fn sample(a: &SampleArgs) -> Result<Value, CliError> {
    let modulus = in_range("modulus", a.modulus, 2, MAX_MODULUS as i64)? as u32;
    let j = in_range("j", a.j, 1, 16)? as usize;
    let k = in_range("k", a.k, 1, 16)? as usize;
    let count = in_range("count", a.count, 1, 10_000)? as usize;
    let spec = TaskSpec {
        task: a.task,
        modulus,
        j,
        k,
    };
    let len = in_range("len", a.len, (j + k) as i64, 1 << 20)? as usize;
    let mut rng = SplitMix64::derive(a.seed, "posgen-sample");
    let mut sequences = Vec::with_capacity(count);
    for _ in 0..count {
        let seeds: Vec<u32> = match &a.seed_tokens {
            Some(text) => text
                .split(',')
                .map(|t| {
                    t.trim().parse::<u32>().map_err(|_| {
                        usage(
                            "seed_tokens",
                            format!("must be comma-separated integers in 0..{modulus} (got {t:?})"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            None => (0..j + k)
                .map(|_| rng.below(modulus as u64) as u32)
                .collect(),
        };
        sequences.push(spec.generate(&seeds, len).map_err(|e| {
            if e.field == "seeds" {
                usage(
                    "seed_tokens",
                    e.message_with(&|k| super::schedule_args::flag(k)),
                )
            } else {
                CliError::from(e)
            }
        })?);
    }
    Ok(json!({
        "task": a.task.name(),
        "modulus": modulus,
        "j": j,
        "k": k,
        "sequences": sequences,
    }))
}

fn train(a: &TrainArgs) -> Result<Value, CliError> {
    let spec = a.spec()?;
    let rc = spec.run_config()?;
    let mut trainer = Trainer::new(rc)?;
    let total = trainer.config().steps;
    let mut next_report = 0.0;
    let start = Instant::now();
    loop {
        let p = trainer.step_for(1.0)?;
        let t = start.elapsed().as_secs_f64();
        if t >= next_report {
            eprintln!(
                "posgen train: step {}/{} loss {:.4} ({:.0}s)",
                p.step, total, p.last_loss, t
            );
            next_report = t + 10.0;
        }
        if let Some(r) = trainer.result() {
            let doc = match spec.also_eval_method {
                Some(m) => json!([r, trainer.twin_result(m)?]),
                None => serde_json::to_value(r).map_err(|e| CliError::Runtime(e.to_string()))?,
            };
            return Ok(doc);
        }
    }
}

fn sweep(a: &SweepArgs) -> Result<Value, CliError> {
    let seeds = in_range("seeds", a.seeds, 1, 100)? as u64;
    let steps = match a.steps {
        Some(s) => Some(in_range("steps", s, 1, 10_000_000)? as usize),
        None => None,
    };
    let tasks = if a.tasks.is_empty() {
        Task::ALL.to_vec()
    } else {
        a.tasks.clone()
    };
    let cfg = SweepConfig {
        preset: a.preset,
        tasks,
        seeds: (0..seeds).collect(),
        steps,
        scaling: a.scaling,
    };
    let result = run_sweep(&cfg, |line| eprintln!("posgen sweep: {line}"))?;
    let doc = serde_json::to_value(&result).map_err(|e| CliError::Runtime(e.to_string()))?;
    if let Some(out) = &a.out {
        let command = format!(
            "resonance-lab {}",
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        );
        let md = result.markdown(&command);
        let write = |ext: &str, text: &str| {
            let p = out.with_extension(ext);
            std::fs::write(&p, text)
                .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", p.display())))
        };
        write("md", &md)?;
        write(
            "json",
            &serde_json::to_string_pretty(&doc).map_err(|e| CliError::Runtime(e.to_string()))?,
        )?;
        eprintln!("posgen sweep: wrote {}.md/.json", out.display());
    }
    Ok(doc)
}

fn time_steps(rc: RunConfig, steps: usize) -> Result<(f64, usize), CliError> {
    Ok(crate::posgen::time_steps(rc, steps)?)
}

fn bench(a: &PosgenBenchArgs) -> Result<Value, CliError> {
    if a.tiny_steps == 0 || a.paper_steps == 0 || a.paper_batch == 0 {
        return Err(usage(
            "tiny-steps",
            "--tiny-steps, --paper-steps and --paper-batch must be >= 1".to_string(),
        ));
    }
    if !(0.0..=1.0).contains(&a.converge_target) {
        return Err(usage(
            "converge-target",
            format!("must be in 0..=1 (got {})", a.converge_target),
        ));
    }
    let threads = candle_core::utils::get_num_threads();
    let tiny = RunConfig::new(
        PresetName::Tiny,
        Task::SemiRecursive,
        Method::ROPE,
        false,
        0,
    );
    eprintln!("posgen bench: tiny preset, {} steps", a.tiny_steps);
    let tiny = bench_preset(tiny, a.tiny_steps)?;
    let mut paper = RunConfig::new(
        PresetName::Paper,
        Task::SemiRecursive,
        Method::ROPE,
        false,
        0,
    );
    paper.preset.batch_size = a.paper_batch;
    eprintln!(
        "posgen bench: paper preset, {} steps of batch {}",
        a.paper_steps, a.paper_batch
    );
    let mut paper = bench_preset(paper, a.paper_steps)?;
    let per_step = paper["seconds"].as_f64().unwrap_or(0.0) / a.paper_steps.max(1) as f64;
    paper["seconds_per_paper_step_of_128"] = json!(per_step * 128.0 / a.paper_batch as f64);
    let convergence = if a.converge_target > 0.0 {
        let rc = RunConfig::new(PresetName::Tiny, a.converge_task, Method::ROPE, false, 0);
        eprintln!(
            "posgen bench: tiny preset on {} until validation ID accuracy >= {}",
            a.converge_task.name(),
            a.converge_target
        );
        let c = crate::posgen::time_to_converge(
            rc,
            a.converge_target,
            crate::posgen::CONVERGE_EVAL_EVERY,
        )?;
        serde_json::to_value(c).expect("convergence serializes")
    } else {
        Value::Null
    };
    let study = if a.study_runs > 0 {
        study_throughput(a.study_runs, a.study_steps.max(1))?
    } else {
        Value::Null
    };
    Ok(json!({
        "threads": threads,
        "study_throughput": study,
        "tiny": tiny,
        "paper": paper,
        "tiny_convergence": convergence,
    }))
}

/// Times `steps` optimiser steps of `rc` and reports its size and speed.
fn bench_preset(rc: RunConfig, steps: usize) -> Result<Value, CliError> {
    let tokens = rc.preset.batch_size * rc.preset.sizes.train_len;
    let (parameters, batch_size) = (rc.preset.dims.num_params(), rc.preset.batch_size);
    let (secs, n) = time_steps(rc, steps)?;
    Ok(json!({
        "parameters": parameters,
        "batch_size": batch_size,
        "tokens_per_step": tokens,
        "steps": n,
        "seconds": secs,
        "steps_per_second": n as f64 / secs,
        "tokens_per_second": (n * tokens) as f64 / secs,
    }))
}

/// Seconds to finish `runs` independent tiny runs as the study runs them (child processes, one
/// thread each), with one job and with one job per core: the study's parallel speed-up.
fn study_throughput(runs: usize, steps: usize) -> Result<Value, CliError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let todo = || {
        (0..runs as u64)
            .map(|seed| {
                let args: Vec<String> = [
                    "posgen",
                    "train",
                    "--task",
                    "recursive",
                    "--preset",
                    "tiny",
                    "--steps",
                ]
                .iter()
                .map(|s| s.to_string())
                .chain([steps.to_string(), "--seed".into(), seed.to_string()])
                .collect();
                (args, ())
            })
            .collect()
    };
    let mut seconds = Vec::new();
    for jobs in [1, cores] {
        eprintln!("posgen bench: {runs} study runs of {steps} steps on {jobs} job(s)");
        let start = Instant::now();
        let (done, failure) = super::runner::run_children(
            todo(),
            Vec::new(),
            jobs,
            "posgen bench",
            |_| Ok(()),
            |_, r| Ok(r),
        )?;
        if let Some(f) = failure {
            return Err(CliError::Runtime(f));
        }
        if done.len() != runs {
            return Err(CliError::Runtime(format!(
                "{} of {runs} runs finished",
                done.len()
            )));
        }
        seconds.push(start.elapsed().as_secs_f64());
    }
    Ok(json!({
        "runs": runs,
        "steps_per_run": steps,
        "cores": cores,
        "seconds_one_job": seconds[0],
        "seconds_all_cores": seconds[1],
        "speedup": seconds[0] / seconds[1],
    }))
}
