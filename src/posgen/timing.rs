//! Timings of training: steps per second, and the time from a cold start to a validation
//! accuracy (what a user clicking Train waits for). Benchmarks print these; tests never assert
//! on them.

use super::error::PosgenError;
use super::run_config::RunConfig;
use super::scoring::EvalPoint;
use super::trainer::{TrainPhase, Trainer};
use crate::rope::ConfigError;
use serde::Serialize;
use web_time::Instant;

/// Times `steps` optimiser steps of `config` after one untimed warm-up step (allocations);
/// returns (seconds, steps timed). Used by `posgen bench` natively and by the page's benchmark.
pub fn time_steps(mut config: RunConfig, steps: usize) -> Result<(f64, usize), PosgenError> {
    config.steps = steps + 1;
    let mut t = Trainer::new(config)?;
    t.step_for(0.0)?;
    let start = Instant::now();
    for _ in 0..steps {
        t.step_for(0.0)?;
    }
    Ok((start.elapsed().as_secs_f64(), t.progress().step - 1))
}

/// How long a run takes, from a cold start (data, model) to a validation ID accuracy: what a
/// user clicking Train waits for. The `posgen bench` figure natively, the page's in the browser.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Convergence {
    /// Task name.
    pub task: String,
    /// Schedule label, e.g. `RoPE`.
    pub label: String,
    /// Validation ID accuracy that counts as converged.
    pub target_id_accuracy: f64,
    /// Validation pass every this many steps.
    pub eval_every: usize,
    /// Whether the target was reached within the run's steps.
    pub reached: bool,
    /// Steps taken when it was reached (all of the run's steps if not).
    pub steps: usize,
    /// Wall-clock seconds from start to that point, validation passes included.
    pub seconds: f64,
    /// Training steps per second over that time.
    pub steps_per_second: f64,
    /// The validation accuracies seen on the way.
    pub validation: Vec<EvalPoint>,
}

/// Validation cadence of the time-to-converge measurements (CLI and page alike).
pub const CONVERGE_EVAL_EVERY: usize = 25;

/// Trains `config` (its `steps` bound the attempt) with a validation pass every `eval_every`
/// steps until the validation ID accuracy reaches `target` (a fraction, in 0..=1).
pub fn time_to_converge(
    mut config: RunConfig,
    target: f64,
    eval_every: usize,
) -> Result<Convergence, PosgenError> {
    if !(0.0..=1.0).contains(&target) {
        return Err(ConfigError::new(
            "converge_target",
            format!("must be in 0..=1 (got {target})"),
        )
        .into());
    }
    config.eval_every = eval_every.max(1);
    let start = Instant::now();
    let mut t = Trainer::new(config)?;
    let mut reached = false;
    while t.progress().phase == TrainPhase::Training && !reached {
        let before = t.validation().len();
        t.step_for(0.0)?;
        reached = t.validation().len() > before
            && t.validation()
                .last()
                .is_some_and(|v| v.id_accuracy >= target);
    }
    let seconds = start.elapsed().as_secs_f64();
    let steps = t.progress().step;
    Ok(Convergence {
        task: t.config().spec.task.name().to_string(),
        label: t.config().method_label(),
        target_id_accuracy: target,
        eval_every: t.config().eval_every,
        reached,
        steps,
        seconds,
        steps_per_second: steps as f64 / seconds,
        validation: t.validation().to_vec(),
    })
}
