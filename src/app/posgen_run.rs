//! One run of the PosGen tab. A run trains either in place (time-sliced between frames) or off
//! the UI thread in the platform's `TrainWorker` (a thread natively, a Web Worker in the page, so
//! the tab's runs train in parallel on several cores). Both report through the same protocol:
//! a [`WorkerRun`] turns a [`Trainer`] into [`RunUpdate`]s (JSON across a worker boundary) and
//! the panel shows the [`RunView`] those updates build, so the two paths cannot drift apart.

use super::commands::AppCommand;
use super::commands::CommandSender;
use super::platform::TrainWorker;
use super::worker::{RunId, RunUpdate, ToWorker, TrainJob, WORKER_SLICE_S, WorkerRun};
use crate::posgen::{EvalPoint, Progress, RunConfig, RunResult, TrainPhase};
use egui::Color32;

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
            let start = ToWorker::Start {
                job: job.clone(),
                slice_s: WORKER_SLICE_S,
            };
            let route = |run, message| AppCommand::Worker { run, message };
            match TrainWorker::spawn(start, id, route, updates.clone()) {
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
    use crate::app::worker::{FromWorker, ToWorker, WORKER_SLICE_S, WorkerState};
    use crate::posgen::{Task, Trainer};
    use crate::rope::Method;

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
