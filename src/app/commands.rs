//! The one way into the app from outside its frame: the page's JS API and the PosGen training
//! workers send typed [`AppCommand`]s into a queue, and [`super::ResonanceApp::draw`] drains the
//! queue in one place at the start of every frame. Nothing outside the frame mutates app state,
//! so the state a frame draws is the state it publishes.

use super::model_load::ModelLoad;
use super::state::AppState;
use super::worker::{FromWorker, RunId};
use crate::posgen::Task;
use serde::Deserialize;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

/// Arguments of the page's `resonanceLab.posgenTrain({task, steps})`: start the PosGen tab's
/// selected runs on `task` for `steps` optimiser steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PosgenTrainArgs {
    /// The task, by its CLI name (`recursive`, `cot`, `semi-recursive`).
    pub task: Task,
    /// Optimiser steps per run (clamped to the tab's range).
    pub steps: usize,
}

/// Arguments of the page's `resonanceLab.lmScore({text?, length?})`: score a text (the one
/// shown when absent) in windows of `length` bytes (the one chosen when absent).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmScoreArgs {
    /// The text.
    pub text: Option<String>,
    /// Window length in bytes.
    pub length: Option<usize>,
}

/// Something the app should do at the start of its next frame.
#[derive(Clone, Debug)]
pub enum AppCommand {
    /// Replace the view state (the page's `setState`, or a new URL hash).
    SetState(Box<AppState>),
    /// Move or resize the feature-value tab's detail window (its drag, scroll, pinch and keys);
    /// `len` 0 is the default window.
    SetDetail {
        /// First position.
        start: u64,
        /// Length in positions.
        len: u64,
    },
    /// Set the Stacks tab's context (0: the model's `max_position_embeddings`) and whether it
    /// audits the Resonance twin.
    SetStackView {
        /// The context every stack runs at.
        context: u64,
        /// Audit the twin instead of the model.
        twin: bool,
    },
    /// Save a PNG of the whole view (the page's `exportPng`).
    ExportPng,
    /// Import a model config: A becomes the model and B its Resonance twin (the panel, a
    /// dropped file, or the page's `loadConfig`).
    LoadModel(Box<ModelLoad>),
    /// A dropped file could not be read; the message goes next to the model controls.
    ModelLoadFailed(String),
    /// Show the PosGen tab and start its selected runs (the page's `posgenTrain`).
    PosgenTrain(PosgenTrainArgs),
    /// A committed study's file arrived (the web page fetches them when first shown).
    StudyText {
        /// Index of the study in the reference-results list.
        index: usize,
        /// Its text, or why it could not be fetched.
        text: Result<String, String>,
    },
    /// The Language model tab's weights arrived (or why they could not be fetched).
    LmWeights(Result<Vec<u8>, String>),
    /// A text dropped on the Language model tab (score it), or why it could not be read.
    LmText(Result<String, String>),
    /// Show the Language model tab's live section and score (the page's `lmScore`).
    LmScore(LmScoreArgs),
    /// A scoring worker's message (progress, the result, or a failure).
    LmWorker {
        /// The scoring the message belongs to (messages of earlier scorings are dropped).
        run: RunId,
        /// The message.
        message: FromWorker,
    },
    /// A training worker's message: what its run did since its previous update, that it
    /// paused, or that it failed.
    Worker {
        /// The run the message belongs to (messages of runs that were reset are dropped).
        run: RunId,
        /// The message.
        message: FromWorker,
    },
}

impl AppCommand {
    /// The command for a dropped file's bytes (or why they could not be read): a model
    /// load, or a failure when it is not UTF-8 text.
    pub fn from_dropped_file(name: &str, bytes: Result<Vec<u8>, String>) -> AppCommand {
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => return AppCommand::ModelLoadFailed(format!("{name}: cannot read it: {e}")),
        };
        match String::from_utf8(bytes) {
            Ok(text) => AppCommand::LoadModel(Box::new(ModelLoad {
                text,
                fallback_name: name.to_string(),
                layer_type: None,
                origin: format!("dropped file {name}"),
            })),
            Err(_) => AppCommand::ModelLoadFailed(format!(
                "{name}: not a text file (expected a config.json)"
            )),
        }
    }
}

impl AppCommand {
    /// The command for a file dropped on the Language model tab: its text to score (invalid
    /// UTF-8 replaced, the model reads bytes), or why it could not be read.
    pub fn from_dropped_text(name: &str, bytes: Result<Vec<u8>, String>) -> AppCommand {
        match bytes {
            Ok(b) => AppCommand::LmText(Ok(String::from_utf8_lossy(&b).into_owned())),
            Err(e) => AppCommand::LmText(Err(format!("{name}: cannot read it: {e}"))),
        }
    }
}

/// The sending end of the app's command queue: cheap to clone, usable from worker threads.
#[derive(Clone, Debug)]
pub struct CommandSender {
    tx: mpsc::Sender<AppCommand>,
    ctx: Arc<OnceLock<egui::Context>>,
}

impl CommandSender {
    /// Queues `command` for the next frame. Returns false when the app is gone (its receiver
    /// was dropped), which tells a worker to stop.
    pub fn send(&self, command: AppCommand) -> bool {
        self.tx.send(command).is_ok()
    }

    /// Queues `command` and asks for a frame soon (for commands a user is waiting on; workers
    /// use [`Self::send`] and the PosGen tab redraws on its own schedule).
    pub fn send_and_wake(&self, command: AppCommand) -> bool {
        let sent = self.send(command);
        if let Some(ctx) = self.ctx.get() {
            ctx.request_repaint();
        }
        sent
    }
}

/// The app's command queue: [`CommandSender`]s go out, the app drains the receiving end.
#[derive(Debug)]
pub struct CommandQueue {
    sender: CommandSender,
    rx: mpsc::Receiver<AppCommand>,
}

impl Default for CommandQueue {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel();
        CommandQueue {
            sender: CommandSender {
                tx,
                ctx: Arc::new(OnceLock::new()),
            },
            rx,
        }
    }
}

impl CommandQueue {
    /// A sender for the page API or a worker.
    pub fn sender(&self) -> CommandSender {
        self.sender.clone()
    }

    /// Remembers the egui context so that [`CommandSender::send_and_wake`] can request a frame
    /// (the first frame calls this; later calls do nothing).
    pub fn attach(&self, ctx: &egui::Context) {
        let _ = self.sender.ctx.set(ctx.clone());
    }

    /// Every command queued so far, oldest first.
    pub fn drain(&self) -> Vec<AppCommand> {
        self.rx.try_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_arrive_in_order_from_any_thread() {
        let q = CommandQueue::default();
        let s = q.sender();
        let t = std::thread::spawn(move || {
            s.send(AppCommand::PosgenTrain(PosgenTrainArgs {
                task: Task::Cot,
                steps: 3,
            }))
        });
        assert!(t.join().unwrap());
        assert!(
            q.sender()
                .send_and_wake(AppCommand::SetState(Box::default()))
        );
        let got = q.drain();
        assert!(matches!(
            got[..],
            [
                AppCommand::PosgenTrain(PosgenTrainArgs {
                    task: Task::Cot,
                    steps: 3
                }),
                AppCommand::SetState(_)
            ]
        ));
        assert!(q.drain().is_empty());
    }

    #[test]
    fn posgen_args_are_typed() {
        let ok: PosgenTrainArgs =
            serde_json::from_str(r#"{"task":"semi-recursive","steps":5}"#).unwrap();
        assert_eq!(ok.task, Task::SemiRecursive);
        let bad = serde_json::from_str::<PosgenTrainArgs>(r#"{"task":"nope","steps":5}"#);
        assert!(bad.unwrap_err().to_string().contains("nope"));
    }

    #[test]
    fn a_sender_knows_when_the_app_is_gone() {
        let q = CommandQueue::default();
        let s = q.sender();
        drop(q);
        assert!(!s.send(AppCommand::SetState(Box::default())));
    }
}
