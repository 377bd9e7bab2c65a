//! Native platform primitives: file export into the working directory, dropped files, the
//! bundle files the page fetches (embedded here), and workers (PosGen runs, text scoring) on
//! their own threads.

use crate::app::commands::{AppCommand, CommandSender};
use crate::app::page_api::Published;
use crate::app::worker::{FromWorker, RunId, ToWorker, WorkerState};
use std::sync::mpsc;

/// The bundle's binary assets, embedded in the native build (the page fetches them from its
/// server when first needed): `(URL relative to the page, bytes)`.
const EMBEDDED_ASSETS: &[(&str, &[u8])] = &[(
    crate::app::lm_live::WEIGHTS_URL,
    include_bytes!("../../../web/assets/lm-small-prose/model.safetensors"),
)];

/// Writes an exported file into the current directory; returns a status message.
pub fn save_file(name: &str, _mime: &str, bytes: &[u8]) -> Result<String, String> {
    let path = std::env::current_dir()
        .map_err(|e| e.to_string())?
        .join(name);
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!("saved {}", path.display()))
}

/// Reads a file named by a URL relative to the page: natively, a path relative to the current
/// directory (native builds embed what the page fetches, so nothing calls this today); `done`
/// runs at once.
pub fn fetch_text(url: &str, done: impl FnOnce(Result<String, String>) + 'static) {
    done(std::fs::read_to_string(url).map_err(|e| format!("{url}: {e}")));
}

/// The bytes of a bundle file named by a URL relative to the page: embedded ones, else a path
/// relative to the current directory; `done` runs at once.
pub fn fetch_bytes(url: &str, done: impl FnOnce(Result<Vec<u8>, String>) + 'static) {
    match EMBEDDED_ASSETS.iter().find(|(u, _)| *u == url) {
        Some((_, bytes)) => done(Ok(bytes.to_vec())),
        None => done(std::fs::read(url).map_err(|e| format!("{url}: {e}"))),
    }
}

/// Reads a file dropped on the window and queues `make(name, its bytes or why not)`.
pub fn read_dropped(
    file: egui::DroppedFileHandle,
    make: fn(&str, Result<Vec<u8>, String>) -> AppCommand,
    commands: CommandSender,
) {
    let name = file.path().file_name().map_or_else(
        || "dropped file".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let bytes = file.bytes().map_err(|e| e.to_string());
    commands.send_and_wake(make(&name, bytes));
}

/// A worker on its own thread. The thread takes [`ToWorker`] messages over a channel, works
/// in the slices the start message names and sends each slice's [`FromWorker`] report to the
/// app's command queue; it stops when the job finishes or fails, or when this handle (the
/// sending end) is dropped.
pub struct TrainWorker {
    control: mpsc::Sender<ToWorker>,
}

impl TrainWorker {
    /// Starts a thread on `start` (a [`ToWorker::Start`] or [`ToWorker::Score`]); its reports
    /// go to `updates` as `route(id, report)`.
    pub fn spawn(
        start: ToWorker,
        id: RunId,
        route: fn(RunId, FromWorker) -> AppCommand,
        updates: CommandSender,
    ) -> Result<TrainWorker, String> {
        let (control, inbox) = mpsc::channel();
        let name = match &start {
            ToWorker::Start { job, .. } => format!("posgen {} {}", job.method, job.task.name()),
            _ => "lm scoring".to_string(),
        };
        control
            .send(start)
            .map_err(|e| format!("could not start a worker thread: {e}"))?;
        std::thread::Builder::new()
            .name(name)
            .spawn(move || work_thread(&inbox, id, route, &updates))
            .map_err(|e| format!("could not start a worker thread: {e}"))?;
        Ok(TrainWorker { control })
    }

    /// Pauses (`false`) or resumes training.
    pub fn set_running(&self, running: bool) {
        let m = if running {
            ToWorker::Resume
        } else {
            ToWorker::Pause
        };
        // a thread that has finished is gone; nothing to pause then
        let _ = self.control.send(m);
    }
}

/// The body of a worker thread: messages first, then one slice when there is work; blocks on
/// the channel while paused. Ends when the job ends, the handle or the app is dropped.
fn work_thread(
    inbox: &mpsc::Receiver<ToWorker>,
    id: RunId,
    route: fn(RunId, FromWorker) -> AppCommand,
    updates: &CommandSender,
) {
    let mut state = WorkerState::default();
    let report = |m: FromWorker| {
        let end = m.is_last();
        // a finished scoring is waited on: wake the app (training runs redraw on a schedule)
        let sent = if matches!(m, FromWorker::Scored(_)) {
            updates.send_and_wake(route(id, m))
        } else {
            updates.send(route(id, m))
        };
        sent && !end
    };
    loop {
        let message = if state.wants_slice() {
            match inbox.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        } else {
            match inbox.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        };
        if let Some(m) = message {
            if let Some(reply) = state.handle(m)
                && !report(reply)
            {
                return;
            }
            continue;
        }
        if !report(state.slice()) || state.finished() {
            return;
        }
    }
}

/// Per-frame platform work after the frame published `_published` (nothing natively: eframe
/// persists the state itself).
pub fn after_frame(_published: &Published, _frames: u64, _ctx: &egui::Context) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::commands::CommandQueue;
    use crate::app::posgen_run::RunView;
    use crate::app::worker::{TrainJob, WORKER_SLICE_S};
    use crate::posgen::{Task, TrainPhase};
    use crate::rope::Method;
    use std::time::{Duration, Instant};

    fn spawn(job: &TrainJob, q: &CommandQueue) -> TrainWorker {
        let start = ToWorker::Start {
            job: job.clone(),
            slice_s: WORKER_SLICE_S,
        };
        let route = |run, message| AppCommand::Worker { run, message };
        TrainWorker::spawn(start, RunId(7), route, q.sender()).unwrap()
    }

    /// Applies the queued worker messages to `view`; returns the step of a pause
    /// acknowledgement among them.
    fn drain(q: &CommandQueue, view: &mut RunView) -> Option<usize> {
        let mut paused = None;
        for c in q.drain() {
            if let AppCommand::Worker { run, message } = c {
                assert_eq!(run, RunId(7));
                if let FromWorker::Paused { step } = message {
                    paused = Some(step);
                }
                view.apply(message.into_update());
            }
        }
        paused
    }

    #[test]
    fn a_paused_thread_stops_and_a_resumed_one_finishes() {
        let mut job = TrainJob::new(Task::Cot, Method::ROPE, false, 1, 40);
        job.eval_every = 40;
        let q = CommandQueue::default();
        let w = spawn(&job, &q);
        let mut view = RunView::default();
        let t0 = Instant::now();
        while view.step == 0 && t0.elapsed() < Duration::from_secs(60) {
            drain(&q, &mut view);
            std::thread::sleep(Duration::from_millis(5));
        }
        w.set_running(false);
        // the slice in flight reports, then the pause is acknowledged; nothing comes after it
        let mut ack = None;
        while ack.is_none() && t0.elapsed() < Duration::from_secs(60) {
            ack = drain(&q, &mut view);
            std::thread::sleep(Duration::from_millis(5));
        }
        let paused_at = ack.expect("the pause is acknowledged");
        assert_eq!(
            view.step, paused_at,
            "every step before the pause was reported"
        );
        assert!(paused_at >= 1);
        std::thread::sleep(Duration::from_millis(500));
        drain(&q, &mut view);
        assert_eq!(view.step, paused_at, "a paused worker trained");
        assert!(paused_at < 40, "finished before the pause took effect");
        w.set_running(true);
        while view.phase != Some(TrainPhase::Done) && t0.elapsed() < Duration::from_secs(120) {
            drain(&q, &mut view);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(view.phase, Some(TrainPhase::Done));
        assert_eq!(view.loss_curve.len(), 40);
        assert!(view.result.is_some() && view.error.is_none());
    }

    #[test]
    fn a_bad_job_reports_its_error() {
        let mut job = TrainJob::new(Task::Cot, Method::ROPE, false, 1, 4);
        job.steps = 0;
        let q = CommandQueue::default();
        let _w = spawn(&job, &q);
        let mut view = RunView::default();
        let t0 = Instant::now();
        while view.error.is_none() && t0.elapsed() < Duration::from_secs(10) {
            drain(&q, &mut view);
            std::thread::sleep(Duration::from_millis(5));
        }
        let e = view.error.expect("the error arrives");
        assert!(e.contains("steps"), "{e}");
    }

    #[test]
    fn a_scoring_thread_reports_progress_then_the_result_of_direct_scoring() {
        use crate::lm::live::{TextScoreJob, TextScoring};
        let (tx, rx) = mpsc::channel();
        fetch_bytes(crate::app::lm_live::WEIGHTS_URL, move |w| {
            let _ = tx.send(w);
        });
        let job = TextScoreJob {
            text: "A text the shipped model reads, ".repeat(40),
            weights: rx.recv().unwrap().unwrap(),
            preset: crate::lm::preset::LmPresetName::Small,
            length: 256,
        };
        let q = CommandQueue::default();
        let start = ToWorker::Score {
            job: Box::new(job.clone()),
            slice_s: 0.0,
        };
        let route = |run, message| AppCommand::LmWorker { run, message };
        let _w = TrainWorker::spawn(start, RunId(3), route, q.sender()).unwrap();
        let (mut updates, mut last) = (Vec::new(), None);
        let t0 = Instant::now();
        while last.is_none() && t0.elapsed() < Duration::from_secs(60) {
            for c in q.drain() {
                if let AppCommand::LmWorker { run, message } = c {
                    assert_eq!(run, RunId(3));
                    let end = message.is_last();
                    let u = message.into_score_update();
                    if end {
                        last = Some(u);
                    } else {
                        updates.push(u);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let last = last.expect("the scoring finishes");
        assert_eq!(last.error, None);
        // a zero slice scores one unit at a time: every unit but the last reports progress
        assert_eq!(updates.len() + 1, last.total);
        assert!(updates.iter().enumerate().all(|(i, u)| u.done == i + 1));
        let mut direct = TextScoring::new(&job).unwrap();
        direct.step_for(f64::INFINITY).unwrap();
        let (mut got, mut want) = (last.result.unwrap(), direct.result().unwrap());
        (got.seconds, got.tokens_per_second) = (0.0, 0.0);
        (want.seconds, want.tokens_per_second) = (0.0, 0.0);
        assert_eq!(got, want);
    }
}
