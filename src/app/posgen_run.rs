//! One run of the PosGen tab. A run trains either in place (time-sliced between frames) or off
//! the UI thread in the platform's `TrainWorker` (a thread natively, a Web Worker in the page, so
//! the tab's runs train in parallel on several cores). Both report through the same protocol:
//! a [`WorkerRun`] turns a [`Trainer`] into [`RunUpdate`]s (JSON across a worker boundary) and
//! the panel shows the [`RunView`] those updates build, so the two paths cannot drift apart.

use super::platform::TrainWorker;
use crate::posgen::{
    EvalPoint, PresetName, Progress, RunConfig, RunResult, Task, TrainPhase, Trainer,
};
use crate::rope::Method;
use egui::Color32;
use serde::{Deserialize, Serialize};

/// Wall-clock slice a worker trains before it reports (bounds pause latency and update rate).
pub const WORKER_SLICE_S: f64 = 0.05;

/// What rebuilds one run's [`RunConfig`]: the tab's runs differ only in these fields, and a
/// worker receives them as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Task, by CLI name (`recursive`, `cot`, `semi-recursive`).
    pub task: String,
    /// Schedule method, by CLI name (`rope`, `yarn`, ...).
    pub method: String,
    /// Resonance rounding on.
    pub resonance: bool,
    /// Seed of data, weights and batch order.
    pub seed: u64,
    /// Optimiser steps.
    pub steps: usize,
    /// Validation pass every this many steps.
    pub eval_every: usize,
}

impl Job {
    /// A run of the `tiny` preset.
    pub fn new(task: Task, method: Method, resonance: bool, seed: u64, steps: usize) -> Job {
        Job {
            task: task.name().to_string(),
            method: method.name().to_string(),
            resonance,
            seed,
            steps,
            eval_every: (steps / 20).max(1),
        }
    }

    /// The run configuration; unknown names are an error.
    pub fn config(&self) -> Result<RunConfig, String> {
        let task =
            Task::from_name(&self.task).ok_or_else(|| format!("unknown task '{}'", self.task))?;
        let method = Method::from_name(&self.method)
            .ok_or_else(|| format!("unknown method '{}'", self.method))?;
        let mut c = RunConfig::new(PresetName::Tiny, task, method, self.resonance, self.seed);
        c.steps = self.steps;
        c.eval_every = self.eval_every;
        Ok(c)
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
    pub fn new(job: &Job) -> Result<WorkerRun, String> {
        let trainer = Trainer::new(job.config()?).map_err(|e| e.to_string())?;
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

    /// Done or failed: nothing more will come.
    pub fn finished(&self) -> bool {
        self.failed || self.trainer.progress().phase == TrainPhase::Done
    }
}

/// What the panel shows of a run: the sum of its updates.
#[derive(Clone, Debug, Default)]
pub struct RunView {
    /// Optimiser steps taken.
    pub step: usize,
    /// Phase (training until told otherwise).
    pub phase: Option<TrainPhase>,
    /// Training loss of every step so far.
    pub loss_curve: Vec<f32>,
    /// Validation points so far.
    pub validation: Vec<EvalPoint>,
    /// The finished result, with the full loss curve.
    pub result: Option<RunResult>,
    /// What ended the run early.
    pub error: Option<String>,
}

impl RunView {
    /// Adds an update.
    pub fn apply(&mut self, u: RunUpdate) {
        self.step = self.step.max(u.step);
        if u.phase.is_some() {
            self.phase = u.phase;
        }
        self.loss_curve
            .extend(u.losses.into_iter().map(|l| l.unwrap_or(f32::NAN)));
        self.validation.extend(u.validation);
        if let Some(mut r) = u.result {
            r.loss_curve = self.loss_curve.clone();
            self.result = Some(r);
        }
        if u.error.is_some() {
            self.error = u.error;
        }
    }
}

enum Engine {
    InPlace(Box<WorkerRun>),
    Worker(TrainWorker),
}

/// One run of the tab: its settings, who trains it and what it has reported.
pub struct PanelRun {
    /// Display label, e.g. `Resonance YaRN`.
    pub label: String,
    /// The run's configuration.
    pub config: RunConfig,
    /// Plot colour.
    pub color: Color32,
    engine: Engine,
    view: RunView,
}

impl PanelRun {
    /// Starts `job` in a worker when `off_thread` and the platform can, else in place.
    pub fn new(job: &Job, color: Color32, off_thread: bool) -> Result<PanelRun, String> {
        let config = job.config()?;
        config.validate().map_err(|e| e.to_string())?;
        let worker = if off_thread {
            match TrainWorker::spawn(job) {
                Ok(w) => Some(w),
                Err(e) => {
                    log::warn!("training in place: no worker ({e})");
                    None
                }
            }
        } else {
            None
        };
        let engine = match worker {
            Some(w) => Engine::Worker(w),
            None => Engine::InPlace(Box::new(WorkerRun::new(job)?)),
        };
        Ok(PanelRun {
            label: config.method_label(),
            config,
            color,
            engine,
            view: RunView::default(),
        })
    }

    /// Whether a worker trains this run.
    pub fn in_worker(&self) -> bool {
        matches!(self.engine, Engine::Worker(_))
    }

    /// Where the run stands.
    pub fn progress(&self) -> Progress {
        Progress {
            step: self.view.step,
            total_steps: self.config.steps,
            last_loss: self.view.loss_curve.last().copied().unwrap_or(f32::NAN),
            phase: self.view.phase.unwrap_or(TrainPhase::Training),
        }
    }

    /// Training losses so far.
    pub fn loss_curve(&self) -> &[f32] {
        &self.view.loss_curve
    }

    /// Validation accuracies so far.
    pub fn validation(&self) -> &[EvalPoint] {
        &self.view.validation
    }

    /// The finished result.
    pub fn result(&self) -> Option<&RunResult> {
        self.view.result.as_ref()
    }

    /// What stopped the run early.
    pub fn error(&self) -> Option<&str> {
        self.view.error.as_deref()
    }

    /// Neither finished nor failed.
    pub fn active(&self) -> bool {
        self.view.error.is_none() && self.progress().phase != TrainPhase::Done
    }

    /// In place: trains for about `budget_s`; in a worker: takes in what it has reported.
    pub fn advance(&mut self, budget_s: f64) {
        match &mut self.engine {
            Engine::InPlace(run) => {
                let u = run.slice(budget_s);
                self.view.apply(u);
            }
            Engine::Worker(w) => {
                for u in w.updates() {
                    self.view.apply(u);
                }
            }
        }
    }

    /// Pauses or resumes a worker (an in-place run only advances when asked).
    pub fn set_running(&self, running: bool) {
        if let Engine::Worker(w) = &self.engine {
            w.set_running(running);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(steps: usize) -> Job {
        let mut j = Job::new(Task::Recursive, Method::Yarn, true, 5, steps);
        j.eval_every = 2;
        j
    }

    #[test]
    fn job_round_trips_and_rejects_unknown_names() {
        let j = job(3);
        let back: Job = serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
        assert_eq!(back, j);
        let c = j.config().unwrap();
        assert_eq!(
            (c.method, c.resonance, c.seed, c.steps),
            (Method::Yarn, true, 5, 3)
        );
        let bad = Job {
            method: "nope".into(),
            ..job(3)
        };
        assert_eq!(bad.config().unwrap_err(), "unknown method 'nope'");
    }

    #[test]
    fn updates_through_json_rebuild_the_trainers_own_record() {
        let mut direct = Trainer::new(job(5).config().unwrap()).unwrap();
        let expected = direct.run().unwrap();
        let mut worker = WorkerRun::new(&job(5)).unwrap();
        let mut view = RunView::default();
        let mut slices = 0;
        while !worker.finished() {
            let u = worker.slice(0.0);
            let json = serde_json::to_string(&u).unwrap();
            view.apply(serde_json::from_str(&json).unwrap());
            slices += 1;
        }
        assert!(slices > 5, "one unit of work per zero-budget slice");
        assert_eq!(view.step, 5);
        assert_eq!(view.phase, Some(TrainPhase::Done));
        assert_eq!(view.loss_curve, expected.loss_curve);
        assert_eq!(view.validation, expected.validation);
        let got = view.result.unwrap();
        assert_eq!(got.per_position_accuracy, expected.per_position_accuracy);
        assert_eq!(got.loss_curve, expected.loss_curve);
        // nothing is reported twice
        assert_eq!(worker.slice(0.0).result, None);
    }

    #[test]
    fn a_non_finite_loss_survives_json() {
        let mut v = RunView::default();
        let u = RunUpdate {
            losses: vec![Some(1.5), None],
            ..RunUpdate::default()
        };
        v.apply(serde_json::from_str(&serde_json::to_string(&u).unwrap()).unwrap());
        assert_eq!(v.loss_curve[0], 1.5);
        assert!(v.loss_curve[1].is_nan());
        // what a worker script sends when it cannot start
        v.apply(serde_json::from_str(r#"{"error":"no wasm"}"#).unwrap());
        assert_eq!(v.error.as_deref(), Some("no wasm"));
        assert_eq!(v.loss_curve.len(), 2);
    }
}
