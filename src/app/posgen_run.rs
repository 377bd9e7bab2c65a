//! One run of the PosGen tab. A run trains either in place (time-sliced between frames) or off
//! the UI thread in the platform's `TrainWorker` (a thread natively, a Web Worker in the page, so
//! the tab's runs train in parallel on several cores). Both report through the same protocol:
//! a [`WorkerRun`] turns a [`Trainer`] into [`RunUpdate`]s (JSON across a worker boundary) and
//! the panel shows the [`RunView`] those updates build, so the two paths cannot drift apart.

use super::commands::CommandSender;
use super::platform::TrainWorker;
use crate::posgen::{
    EvalPoint, PresetName, Progress, RunConfig, RunResult, Task, TrainPhase, Trainer,
};
use crate::rope::Method;
use egui::Color32;
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
        }
    }
}

/// A worker's side of the protocol: the run it trains (once started) and whether it should be
/// training now. The page's worker script and the native thread both drive one of these.
#[derive(Default)]
pub struct WorkerState {
    run: Option<WorkerRun>,
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
                    self.run = Some(run);
                    self.slice_s = slice_s;
                    None
                }
                Err(error) => Some(FromWorker::Failed { error }),
            },
            ToWorker::Pause => {
                self.paused = true;
                let step = self.run.as_ref().map_or(0, WorkerRun::step);
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
                error: format!("bad message to the training worker: {e}"),
            }),
        }
    }

    /// Started, not paused and not finished: [`Self::slice`] has work to do.
    pub fn wants_slice(&self) -> bool {
        !self.paused && self.run.as_ref().is_some_and(|r| !r.finished())
    }

    /// The run has finished or failed: nothing more will come.
    pub fn finished(&self) -> bool {
        self.run.as_ref().is_some_and(WorkerRun::finished)
    }

    /// Trains one slice of the length the app sent and reports it.
    pub fn slice(&mut self) -> FromWorker {
        match &mut self.run {
            Some(run) => FromWorker::Update(Box::new(run.slice(self.slice_s))),
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
    /// Identifies the run's worker updates.
    pub id: RunId,
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
    /// Starts `job` in a worker when `off_thread` and the platform can, else in place; a
    /// worker reports through `updates` as [`super::commands::AppCommand::Worker`] messages
    /// tagged with `id`.
    pub fn new(
        job: &TrainJob,
        id: RunId,
        color: Color32,
        off_thread: bool,
        updates: &CommandSender,
    ) -> Result<PanelRun, String> {
        let config = job.config();
        config.validate().map_err(|e| e.to_string())?;
        let worker = if off_thread {
            match TrainWorker::spawn(job, id, updates.clone()) {
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
            id,
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

    /// Trains an in-place run for about `budget_s` (a worker run trains on its own and reports
    /// through the app's command queue).
    pub fn advance(&mut self, budget_s: f64) {
        if let Engine::InPlace(run) = &mut self.engine {
            let u = run.slice(budget_s);
            self.view.apply(u);
        }
    }

    /// Takes in an update its worker reported.
    pub fn apply(&mut self, update: RunUpdate) {
        self.view.apply(update);
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

    fn job(steps: usize) -> TrainJob {
        let mut j = TrainJob::new(Task::Recursive, Method::YARN, true, 5, steps);
        j.eval_every = 2;
        j
    }

    #[test]
    fn messages_round_trip_and_name_what_is_wrong() {
        let start = ToWorker::Start {
            job: job(3),
            slice_s: WORKER_SLICE_S,
        };
        let json = serde_json::to_string(&start).unwrap();
        assert!(json.starts_with(r#"{"type":"start","job":{"task":"recursive","method":"yarn""#));
        assert_eq!(serde_json::from_str::<ToWorker>(&json).unwrap(), start);
        assert_eq!(
            serde_json::to_string(&ToWorker::Pause).unwrap(),
            r#"{"type":"pause"}"#
        );
        let c = job(3).config();
        assert_eq!(
            (c.method, c.resonance, c.seed, c.steps),
            (Method::YARN, true, 5, 3)
        );
        // a bad task name is a parse error naming it, reported as a failed update
        let mut w = WorkerState::default();
        let bad = json.replace("recursive", "nope");
        let Some(FromWorker::Failed { error }) = w.handle_json(&bad) else {
            panic!("a bad job must fail")
        };
        assert!(error.contains("nope"), "{error}");
        assert!(!w.wants_slice());
        // what the page's worker script posts when its WebAssembly cannot load
        let f: FromWorker = serde_json::from_str(r#"{"type":"failed","error":"no wasm"}"#).unwrap();
        assert_eq!(f.into_update().error.as_deref(), Some("no wasm"));
    }

    #[test]
    fn a_worker_state_trains_pauses_and_resumes() {
        let mut w = WorkerState::default();
        assert!(matches!(w.slice(), FromWorker::Failed { .. }));
        let start = ToWorker::Start {
            job: job(2),
            slice_s: 0.0,
        };
        assert_eq!(w.handle(start), None);
        assert!(w.wants_slice());
        assert_eq!(
            w.handle(ToWorker::Pause),
            Some(FromWorker::Paused { step: 0 })
        );
        assert!(!w.wants_slice());
        w.handle(ToWorker::Resume);
        let mut view = RunView::default();
        while w.wants_slice() {
            let json = serde_json::to_string(&w.slice()).unwrap();
            view.apply(
                serde_json::from_str::<FromWorker>(&json)
                    .unwrap()
                    .into_update(),
            );
        }
        assert_eq!(view.step, 2);
        assert_eq!(view.phase, Some(TrainPhase::Done));
        // a job the trainer rejects fails at start with the field named
        let mut w = WorkerState::default();
        let bad = ToWorker::Start {
            job: TrainJob { steps: 0, ..job(2) },
            slice_s: 0.0,
        };
        let Some(FromWorker::Failed { error }) = w.handle(bad) else {
            panic!("zero steps must fail")
        };
        assert!(error.contains("steps"), "{error}");
    }

    #[test]
    fn updates_through_json_rebuild_the_trainers_own_record() {
        let mut direct = Trainer::new(job(5).config()).unwrap();
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
