//! Native platform primitives: file export into the working directory, dropped files, and
//! PosGen runs trained on their own threads.

use crate::app::commands::{AppCommand, CommandSender};
use crate::app::page_api::Published;
use crate::app::worker::{FromWorker, RunId, ToWorker, TrainJob, WORKER_SLICE_S, WorkerState};
use std::sync::mpsc;

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

/// Reads a file dropped on the window and queues its load (or the reason it failed).
pub fn read_dropped(file: egui::DroppedFileHandle, commands: CommandSender) {
    let name = file.path().file_name().map_or_else(
        || "dropped file".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let command = match file.bytes() {
        Ok(bytes) => AppCommand::from_dropped_file(&name, bytes),
        Err(e) => AppCommand::ModelLoadFailed(format!("{name}: cannot read it: {e}")),
    };
    commands.send_and_wake(command);
}

/// A PosGen run training on its own thread. The thread takes [`ToWorker`] messages over a
/// channel, trains in slices of [`WORKER_SLICE_S`] and sends each slice's [`RunUpdate`] to the
/// app's command queue; it stops when the run finishes or fails, or when this handle (the
/// sending end) is dropped.
pub struct TrainWorker {
    control: mpsc::Sender<ToWorker>,
}

impl TrainWorker {
    /// Starts training `job` on a new thread; its updates go to `updates`, tagged with `id`.
    pub fn spawn(job: &TrainJob, id: RunId, updates: CommandSender) -> Result<TrainWorker, String> {
        let (control, inbox) = mpsc::channel();
        let start = ToWorker::Start {
            job: job.clone(),
            slice_s: WORKER_SLICE_S,
        };
        control
            .send(start)
            .map_err(|e| format!("could not start a training thread: {e}"))?;
        std::thread::Builder::new()
            .name(format!("posgen {} {}", job.method, job.task.name()))
            .spawn(move || train_thread(&inbox, id, &updates))
            .map_err(|e| format!("could not start a training thread: {e}"))?;
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

/// The body of a training thread: messages first, then one slice when there is work; blocks
/// on the channel while paused. Ends when the run ends, the handle or the app is dropped.
fn train_thread(inbox: &mpsc::Receiver<ToWorker>, id: RunId, updates: &CommandSender) {
    let mut state = WorkerState::default();
    let report = |m: FromWorker| {
        let end = matches!(&m, FromWorker::Failed { .. })
            || matches!(&m, FromWorker::Update(u) if u.error.is_some());
        let sent = updates.send(AppCommand::Worker {
            run: id,
            message: m,
        });
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
    use crate::posgen::{Task, TrainPhase};
    use crate::rope::Method;
    use std::time::{Duration, Instant};

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
        let w = TrainWorker::spawn(&job, RunId(7), q.sender()).unwrap();
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
        let _w = TrainWorker::spawn(&job, RunId(7), q.sender()).unwrap();
        let mut view = RunView::default();
        let t0 = Instant::now();
        while view.error.is_none() && t0.elapsed() < Duration::from_secs(10) {
            drain(&q, &mut view);
            std::thread::sleep(Duration::from_millis(5));
        }
        let e = view.error.expect("the error arrives");
        assert!(e.contains("steps"), "{e}");
    }
}
