//! The worker protocol: the messages between the app and a worker (JSON across a Web Worker
//! boundary, a channel to a native thread) that trains a PosGen run or scores a text with the
//! Language model tab's model, and the worker's side of it ([`WorkerState`], [`WorkerRun`],
//! [`ScoreRun`]), which the page's worker script and the native thread both drive. It knows
//! nothing of the panels or of the platform.

use crate::lm::live::{TextScoreJob, TextScoreResult, TextScoring};
use crate::posgen::{EvalPoint, PresetName, RunConfig, RunResult, Task, TrainPhase, Trainer};
use crate::rope::Method;
use serde::{Deserialize, Serialize};

/// Wall-clock slice a worker trains before it reports (bounds pause latency and update rate).
/// Sent to every worker in [`ToWorker::Start`], so the page's worker script holds no constant.
pub const WORKER_SLICE_S: f64 = 0.05;

/// Identifies one run of the PosGen tab; worker updates carry it back to the app, and updates
/// of a run that was reset (its id no longer shown) are dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunId(pub u64);

/// What rebuilds one run's [`RunConfig`]: the tab's runs differ only in these fields, and a
/// worker receives them in [`ToWorker::Start`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainJob {
    /// Task (serialized by its CLI name, e.g. `semi-recursive`).
    pub task: Task,
    /// Schedule method (serialized by its CLI name, e.g. `yarn`).
    pub method: Method,
    /// Resonance rounding on.
    pub resonance: bool,
    /// Seed of data, weights and batch order.
    pub seed: u64,
    /// Optimiser steps.
    pub steps: usize,
    /// Validation pass every this many steps.
    pub eval_every: usize,
}

impl TrainJob {
    /// A run of the `tiny` preset.
    pub fn new(task: Task, method: Method, resonance: bool, seed: u64, steps: usize) -> TrainJob {
        TrainJob {
            task,
            method,
            resonance,
            seed,
            steps,
            eval_every: (steps / 20).max(1),
        }
    }

    /// The run configuration (validated when the run starts).
    pub fn config(&self) -> RunConfig {
        let mut c = RunConfig::new(
            PresetName::Tiny,
            self.task,
            self.method,
            self.resonance,
            self.seed,
        );
        c.steps = self.steps;
        c.eval_every = self.eval_every;
        c
    }
}

/// A message from the app to a training worker (JSON across a Web Worker boundary, a channel
/// to a native thread).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ToWorker {
    /// Build the run of `job` and train it in slices of `slice_s` seconds, reporting after each.
    Start {
        /// The run.
        job: TrainJob,
        /// Seconds of training between two updates.
        slice_s: f64,
    },
    /// Score the text of `job` under each live schedule in slices of `slice_s` seconds,
    /// reporting progress after each and the result at the end.
    Score {
        /// The text and the model's weights.
        job: Box<TextScoreJob>,
        /// Seconds of scoring between two updates.
        slice_s: f64,
    },
    /// Stop training until [`ToWorker::Resume`] (the slice in flight still reports).
    Pause,
    /// Continue training.
    Resume,
}

/// A message from a training worker to the app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FromWorker {
    /// What the run did in one slice.
    Update(Box<RunUpdate>),
    /// The worker handled [`ToWorker::Pause`]: it has reported every step up to `step` and
    /// trains no more until resumed.
    Paused {
        /// Optimiser steps taken.
        step: usize,
    },
    /// What a scoring worker did in one slice.
    Scored(Box<ScoreUpdate>),
    /// The worker could not run at all (its WebAssembly did not load, or a message was bad).
    Failed {
        /// Why.
        error: String,
    },
}

impl FromWorker {
    /// The update the app applies: a failure becomes an update that ends the run.
    pub fn into_update(self) -> RunUpdate {
        match self {
            FromWorker::Update(u) => *u,
            FromWorker::Paused { step } => RunUpdate {
                step,
                ..RunUpdate::default()
            },
            FromWorker::Failed { error } => RunUpdate::failed(error),
            FromWorker::Scored(_) => RunUpdate::failed("a scoring worker reported to a run"),
        }
    }

    /// The update a scoring view applies: a failure becomes an update that ends the scoring.
    pub fn into_score_update(self) -> ScoreUpdate {
        match self {
            FromWorker::Scored(u) => *u,
            FromWorker::Paused { .. } => ScoreUpdate::default(),
            FromWorker::Failed { error } => ScoreUpdate::failed(error),
            FromWorker::Update(_) => ScoreUpdate::failed("a training worker reported to a scoring"),
        }
    }

    /// Nothing more will come after this message (a failure, or the last update of a job).
    pub fn is_last(&self) -> bool {
        match self {
            FromWorker::Failed { .. } => true,
            FromWorker::Update(u) => u.error.is_some(),
            FromWorker::Scored(u) => u.error.is_some() || u.result.is_some(),
            FromWorker::Paused { .. } => false,
        }
    }
}

/// What a scoring worker reports after each slice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoreUpdate {
    /// Units (windows under one schedule) done.
    pub done: usize,
    /// Units in all.
    pub total: usize,
    /// The result, once, when every unit is done.
    pub result: Option<TextScoreResult>,
    /// An error that ended the scoring.
    pub error: Option<String>,
}

impl ScoreUpdate {
    /// An update that only reports `error`.
    pub fn failed(error: impl Into<String>) -> ScoreUpdate {
        ScoreUpdate {
            error: Some(error.into()),
            ..ScoreUpdate::default()
        }
    }
}

/// A text being scored and whether its end was reported: the scoring side of a worker.
pub struct ScoreRun {
    scoring: TextScoring,
    over: bool,
}

impl ScoreRun {
    /// Loads the model of `job` and prepares its text.
    pub fn new(job: &TextScoreJob) -> Result<ScoreRun, String> {
        Ok(ScoreRun {
            scoring: TextScoring::new(job).map_err(|e| e.to_string())?,
            over: false,
        })
    }

    /// Scores for about `budget_s` seconds (at least one unit) and reports where it stands.
    pub fn slice(&mut self, budget_s: f64) -> ScoreUpdate {
        let error = self.scoring.step_for(budget_s).err().map(|e| e.to_string());
        let (done, total) = self.scoring.progress();
        let result = if error.is_none() {
            self.scoring.result()
        } else {
            None
        };
        self.over = error.is_some() || result.is_some();
        ScoreUpdate {
            done,
            total,
            result,
            error,
        }
    }

    /// The result or an error was reported: nothing more will come.
    pub fn finished(&self) -> bool {
        self.over
    }
}

/// The job a worker runs.
enum Job {
    Train(Box<WorkerRun>),
    Score(Box<ScoreRun>),
}

impl Job {
    fn finished(&self) -> bool {
        match self {
            Job::Train(r) => r.finished(),
            Job::Score(s) => s.finished(),
        }
    }
}

/// A worker's side of the protocol: the job it runs (once started) and whether it should be
/// working now. The page's worker script and the native thread both drive one of these.
#[derive(Default)]
pub struct WorkerState {
    run: Option<Job>,
    slice_s: f64,
    paused: bool,
}

impl WorkerState {
    /// Handles one message; returns what to report at once (a failed start, or the
    /// acknowledgement of a pause).
    pub fn handle(&mut self, message: ToWorker) -> Option<FromWorker> {
        match message {
            ToWorker::Start { job, slice_s } => match WorkerRun::new(&job) {
                Ok(run) => {
                    self.run = Some(Job::Train(Box::new(run)));
                    self.slice_s = slice_s;
                    None
                }
                Err(error) => Some(FromWorker::Failed { error }),
            },
            ToWorker::Score { job, slice_s } => match ScoreRun::new(&job) {
                Ok(run) => {
                    self.run = Some(Job::Score(Box::new(run)));
                    self.slice_s = slice_s;
                    None
                }
                Err(error) => Some(FromWorker::Scored(Box::new(ScoreUpdate::failed(error)))),
            },
            ToWorker::Pause => {
                self.paused = true;
                let step = match &self.run {
                    Some(Job::Train(r)) => r.step(),
                    _ => 0,
                };
                Some(FromWorker::Paused { step })
            }
            ToWorker::Resume => {
                self.paused = false;
                None
            }
        }
    }

    /// Handles one message as JSON (the page's worker script); a bad message is reported.
    pub fn handle_json(&mut self, json: &str) -> Option<FromWorker> {
        match serde_json::from_str::<ToWorker>(json) {
            Ok(m) => self.handle(m),
            Err(e) => Some(FromWorker::Failed {
                error: format!("bad message to the worker: {e}"),
            }),
        }
    }

    /// Started, not paused and not finished: [`Self::slice`] has work to do.
    pub fn wants_slice(&self) -> bool {
        !self.paused && self.run.as_ref().is_some_and(|r| !r.finished())
    }

    /// The job has finished or failed: nothing more will come.
    pub fn finished(&self) -> bool {
        self.run.as_ref().is_some_and(Job::finished)
    }

    /// Works one slice of the length the app sent and reports it.
    pub fn slice(&mut self) -> FromWorker {
        match &mut self.run {
            Some(Job::Train(run)) => FromWorker::Update(Box::new(run.slice(self.slice_s))),
            Some(Job::Score(run)) => FromWorker::Scored(Box::new(run.slice(self.slice_s))),
            None => FromWorker::Failed {
                error: "no run started".into(),
            },
        }
    }
}

/// Everything new in a run since its previous update.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunUpdate {
    /// Optimiser steps taken.
    pub step: usize,
    /// Phase after the slice (absent: unchanged).
    pub phase: Option<TrainPhase>,
    /// New training losses (`null` for a non-finite loss: JSON has no NaN).
    pub losses: Vec<Option<f32>>,
    /// New validation points.
    pub validation: Vec<EvalPoint>,
    /// The result, once, when the run finishes (its loss curve left empty: the view has it).
    pub result: Option<RunResult>,
    /// An error that ended the run.
    pub error: Option<String>,
}

impl RunUpdate {
    /// An update that only reports `error`.
    pub fn failed(error: impl Into<String>) -> RunUpdate {
        RunUpdate {
            error: Some(error.into()),
            ..RunUpdate::default()
        }
    }
}

/// A trainer and what it has reported so far: the worker's side of the protocol.
pub struct WorkerRun {
    trainer: Trainer,
    losses_sent: usize,
    validation_sent: usize,
    result_sent: bool,
    failed: bool,
}

impl WorkerRun {
    /// Builds the run of `job` (validates it, generates data, initialises the model).
    pub fn new(job: &TrainJob) -> Result<WorkerRun, String> {
        let trainer = Trainer::new(job.config()).map_err(|e| e.to_string())?;
        Ok(WorkerRun {
            trainer,
            losses_sent: 0,
            validation_sent: 0,
            result_sent: false,
            failed: false,
        })
    }

    /// Trains for about `budget_s` seconds (at least one unit of work) and reports what is new.
    pub fn slice(&mut self, budget_s: f64) -> RunUpdate {
        let error = self.trainer.step_for(budget_s).err().map(|e| e.to_string());
        self.failed |= error.is_some();
        let t = &self.trainer;
        let losses = t.loss_curve()[self.losses_sent..]
            .iter()
            .map(|l| l.is_finite().then_some(*l))
            .collect();
        let validation = t.validation()[self.validation_sent..].to_vec();
        self.losses_sent = t.loss_curve().len();
        self.validation_sent = t.validation().len();
        let result = match t.result() {
            Some(r) if !self.result_sent => {
                self.result_sent = true;
                Some(RunResult {
                    loss_curve: Vec::new(),
                    ..r.clone()
                })
            }
            _ => None,
        };
        RunUpdate {
            step: t.progress().step,
            phase: Some(t.progress().phase),
            losses,
            validation,
            result,
            error,
        }
    }

    /// Optimiser steps taken.
    pub fn step(&self) -> usize {
        self.trainer.progress().step
    }

    /// Done or failed: nothing more will come.
    pub fn finished(&self) -> bool {
        self.failed || self.trainer.progress().phase == TrainPhase::Done
    }
}
