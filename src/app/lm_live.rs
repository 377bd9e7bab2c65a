//! The live part of the Language model tab: the lab's own small model (pretrained by
//! `lm pretrain`, shipped in `web/assets/lm-small-prose/`, its weights fetched when the tab is
//! first shown) scores a pasted or dropped text (the project's README by default) with RoPE,
//! YaRN and Resonance YaRN zero-shot, in a worker (a thread natively, a Web Worker in the page)
//! or, where none can start, time-sliced between frames. It shows the loss per position up to
//! s x L and the means below and past L. Every figure is computed here or read from the
//! checkpoint's `meta.json`.

use super::commands::{AppCommand, CommandSender};
use super::lm_view::arm_style;
use super::platform::{self, TrainWorker};
use super::worker::{FromWorker, RunId, ScoreRun, ScoreUpdate, ToWorker, WORKER_SLICE_S};
use crate::lm::live::{
    MAX_LENGTH, TextScoreJob, TextScoreResult, check_length, default_length, live_arms,
};
use crate::lm::preset::LmPresetName;
use crate::lm::study::Arm;
use crate::lm::{CheckpointMeta, LmPreset};
use crate::posgen::study::{Estimate, Verdict};
use egui::{Color32, RichText, Ui};
use egui_plot::{Corner, Legend, Line, Plot, PlotPoints, VLine};

/// Where the page fetches the shipped model's weights (natively: embedded in the binary).
pub const WEIGHTS_URL: &str = "web/assets/lm-small-prose/model.safetensors";

/// The shipped model's description, written by `lm pretrain` next to its weights.
const META_JSON: &str = include_str!("../../web/assets/lm-small-prose/meta.json");

/// The text scored when the tab first opens.
pub const DEFAULT_TEXT: &str = include_str!("../../README.md");

/// Positions per point of the loss curve.
const BIN: usize = 16;

/// Per-frame scoring budget when no worker runs it (seconds).
const FRAME_BUDGET_S: f64 = 0.03;

/// Redraw interval while a worker scores (progress bar).
const WORKER_REPAINT_S: f64 = 0.1;

/// The weights: not asked for, on their way, or here (or why not).
enum Weights {
    Unread,
    Loading,
    Ready(Result<Vec<u8>, String>),
}

/// Who scores the text (a worker is held to keep it alive: dropping it stops it).
enum Engine {
    Worker { _handle: TrainWorker },
    InPlace(Box<ScoreRun>),
}

/// The live scoring's state.
pub struct LiveView {
    meta: Result<CheckpointMeta, String>,
    weights: Weights,
    /// The text to score.
    pub text: String,
    /// Window length in bytes (s x L by default).
    pub length: usize,
    /// Score in a worker (the default); in place between frames otherwise.
    pub off_thread: bool,
    /// Show the scoring's speed (off in snapshot tests: timings vary run to run).
    pub show_timings: bool,
    commands: CommandSender,
    engine: Option<Engine>,
    /// Identifies the current scoring (reports of earlier ones are dropped).
    id: u64,
    /// Score as soon as the weights arrive (the default text, when the tab first opens).
    pending: bool,
    progress: (usize, usize),
    /// The text being (or last) scored.
    scored_text: String,
    /// The last finished scoring.
    pub result: Option<TextScoreResult>,
    /// Whether `result` was computed in a worker (the page API reports it: a fast scoring may
    /// finish before anyone sees it running).
    result_in_worker: bool,
    /// Why the last scoring (or the weights) failed.
    pub error: Option<String>,
}

impl LiveView {
    /// The view with the default text; fetched weights and worker reports arrive through
    /// `commands`.
    pub fn new(commands: CommandSender) -> LiveView {
        let meta: Result<CheckpointMeta, String> = serde_json::from_str(META_JSON)
            .map_err(|e| format!("web/assets/lm-small-prose/meta.json: {e}"));
        LiveView {
            length: default_length(meta.as_ref().map_or(LmPresetName::Small, |m| m.preset)),
            meta,
            weights: Weights::Unread,
            text: DEFAULT_TEXT.to_string(),
            off_thread: true,
            show_timings: true,
            commands,
            engine: None,
            id: 0,
            pending: false,
            progress: (0, 0),
            scored_text: String::new(),
            result: None,
            result_in_worker: false,
            error: None,
        }
    }

    /// The shipped model's preset (from its `meta.json`).
    fn preset(&self) -> Option<LmPresetName> {
        self.meta.as_ref().ok().map(|m| m.preset)
    }

    /// Starts fetching the weights the first time the tab is shown, and scores the default
    /// text when they arrive.
    pub fn shown(&mut self) {
        if matches!(self.weights, Weights::Unread) {
            self.weights = Weights::Loading;
            self.pending = true;
            let commands = self.commands.clone();
            platform::fetch_bytes(WEIGHTS_URL, move |bytes| {
                commands.send_and_wake(AppCommand::LmWeights(bytes));
            });
        }
    }

    /// Takes the fetched weights (or why they could not be fetched).
    pub fn weights_arrived(&mut self, bytes: Result<Vec<u8>, String>) {
        if let Err(e) = &bytes {
            self.error = Some(format!("the model's weights did not load: {e}"));
        }
        self.weights = Weights::Ready(bytes);
        if std::mem::take(&mut self.pending) {
            self.start();
        }
    }

    /// Replaces the text (a dropped file) and scores it.
    pub fn set_text(&mut self, text: String) {
        self.text = text;
        self.start();
    }

    /// The window lengths offered: L x 1, 2, 4, 8, 16 (up to [`MAX_LENGTH`]).
    pub fn lengths(&self) -> Vec<usize> {
        let l = self.meta.as_ref().map_or(128, |m| m.length);
        (0..5)
            .map(|k| l << k)
            .filter(|&n| n <= MAX_LENGTH)
            .collect()
    }

    /// Takes the page's `lmScore({text?, length?})`: sets what is given and scores; a length
    /// out of range is refused.
    pub fn score_args(
        &mut self,
        text: Option<String>,
        length: Option<usize>,
    ) -> Result<(), String> {
        if let Some(n) = length {
            check_length(n).map_err(|e| format!("lmScore: length {e}"))?;
            self.length = n;
        }
        if let Some(t) = text {
            self.text = t;
        }
        self.start();
        Ok(())
    }

    /// Scores the current text (restarts a scoring in progress); waits for the weights when
    /// they are on their way.
    pub fn start(&mut self) {
        let weights = match &self.weights {
            Weights::Ready(Ok(w)) => w.clone(),
            Weights::Ready(Err(_)) => return,
            Weights::Unread | Weights::Loading => {
                self.pending = true;
                self.shown();
                return;
            }
        };
        let Some(preset) = self.preset() else {
            self.error = self.meta.as_ref().err().cloned();
            return;
        };
        let job = TextScoreJob {
            text: self.text.clone(),
            weights,
            preset,
            length: self.length,
        };
        self.id += 1;
        self.engine = None;
        self.error = None;
        self.progress = (0, 0);
        self.scored_text.clone_from(&job.text);
        let worker = if self.off_thread {
            let start = ToWorker::Score {
                job: Box::new(job.clone()),
                slice_s: WORKER_SLICE_S,
            };
            let route = |run, message| AppCommand::LmWorker { run, message };
            TrainWorker::spawn(start, RunId(self.id), route, self.commands.clone())
                .inspect_err(|e| log::warn!("scoring in place: no worker ({e})"))
                .ok()
        } else {
            None
        };
        self.engine = match worker {
            Some(w) => Some(Engine::Worker { _handle: w }),
            None => match ScoreRun::new(&job) {
                Ok(run) => Some(Engine::InPlace(Box::new(run))),
                Err(e) => {
                    self.error = Some(e);
                    None
                }
            },
        };
    }

    /// Takes in what the worker of scoring `run` reported (dropped when it is not the current
    /// one).
    pub fn apply(&mut self, run: RunId, message: FromWorker) {
        if run == RunId(self.id) && self.engine.is_some() {
            self.take(message.into_score_update());
        }
    }

    /// Applies a report; its result or error ends the scoring (drops the worker).
    fn take(&mut self, u: ScoreUpdate) {
        if u.total > 0 {
            self.progress = (u.done, u.total);
        }
        if let Some(r) = u.result {
            self.result = Some(r);
            self.result_in_worker = matches!(self.engine, Some(Engine::Worker { .. }));
            self.engine = None;
        }
        if let Some(e) = u.error {
            self.error = Some(e);
            self.engine = None;
        }
    }

    /// A scoring is in progress (or waits for the weights).
    pub fn busy(&self) -> bool {
        self.engine.is_some() || self.pending
    }

    /// The per-frame work: scores in place for one frame's budget when no worker does, and
    /// schedules the next frame while a scoring runs.
    pub fn update(&mut self, ctx: &egui::Context) {
        match &mut self.engine {
            Some(Engine::InPlace(run)) => {
                let u = run.slice(FRAME_BUDGET_S);
                self.take(u);
                ctx.request_repaint();
            }
            Some(Engine::Worker { .. }) => {
                ctx.request_repaint_after(std::time::Duration::from_secs_f64(WORKER_REPAINT_S));
            }
            None => {}
        }
    }

    /// What the live scoring shows, for the page API and tests.
    pub fn status(&self) -> serde_json::Value {
        let weights = match &self.weights {
            Weights::Unread => "unread".to_string(),
            Weights::Loading => "loading".to_string(),
            Weights::Ready(Ok(w)) => format!("{} bytes", w.len()),
            Weights::Ready(Err(e)) => format!("failed: {e}"),
        };
        let r = self.result.as_ref();
        serde_json::json!({
            "weights": weights,
            "busy": self.busy(),
            "in_worker": matches!(self.engine, Some(Engine::Worker { .. })),
            "progress": [self.progress.0, self.progress.1],
            "text_bytes": self.text.len(),
            "length": self.length,
            "error": self.error,
            "result": r.map(|r| serde_json::json!({
                "in_worker": self.result_in_worker,
                "length": r.length,
                "windows": r.windows,
                "text_bytes": r.text_bytes,
                "targets": r.targets,
                "tokens_per_second": r.tokens_per_second,
                "arms": r.arms.iter().map(|a| serde_json::json!({
                    "label": a.label,
                    "loss": a.loss,
                    "loss_within": a.loss_within,
                    "loss_beyond": a.loss_beyond,
                })).collect::<Vec<_>>(),
                "resonance_minus_yarn_beyond": r.resonance_minus_yarn_beyond,
            })),
        })
    }

    /// Draws the live section.
    pub fn ui(&mut self, ui: &mut Ui) {
        self.shown();
        self.model_line(ui);
        self.actions_row(ui);
        self.window_row(ui);
        if let Some((done, total)) = self.engine.is_some().then_some(self.progress) {
            let frac = if total > 0 {
                done as f32 / total as f32
            } else {
                0.0
            };
            ui.add(
                egui::ProgressBar::new(frac)
                    .show_percentage()
                    .text(format!("scoring {done} of {total} windows x schedules")),
            );
        } else if self.pending {
            ui.label("loading the model's weights...");
        }
        if let Some(e) = &self.error {
            ui.colored_label(Color32::RED, e.as_str());
        }
        let label = ui.label("Text to score:");
        egui::ScrollArea::vertical()
            .id_salt("lm-live-text")
            .max_height(90.0)
            .show(ui, |ui| {
                ui.add(
                    egui::TextEdit::multiline(&mut self.text)
                        .desired_width(f32::INFINITY)
                        .desired_rows(4)
                        .font(egui::TextStyle::Monospace),
                )
                .labelled_by(label.id);
            });
        if let Some(r) = &self.result {
            let h = (ui.available_height() - 150.0).clamp(160.0, 360.0);
            live_plot(ui, r, h);
            live_table(ui, r, self.show_timings);
        }
    }

    /// Score, back to the README, and the text's size.
    fn actions_row(&mut self, ui: &mut Ui) {
        ui.horizontal_wrapped(|ui| {
            let busy = self.engine.is_some();
            let scored_now = self.result.is_some() && self.text == self.scored_text;
            let label = if busy {
                "Restart scoring"
            } else {
                "Score the text"
            };
            if ui
                .add_enabled(!self.text.is_empty(), egui::Button::new(label))
                .on_hover_text("RoPE, YaRN and Resonance YaRN, zero-shot, on the text below")
                .clicked()
            {
                self.start();
            }
            if ui
                .add_enabled(
                    self.text != DEFAULT_TEXT,
                    egui::Button::new("Use the README"),
                )
                .on_hover_text("put the project's README back as the text")
                .clicked()
            {
                self.text = DEFAULT_TEXT.to_string();
                self.start();
            }
            ui.label(format!(
                "{} bytes{}; paste a text here or drop a file on the window",
                self.text.len(),
                if scored_now || busy {
                    ""
                } else {
                    " (not scored yet)"
                }
            ));
        });
    }

    /// The window lengths; choosing one rescores the text.
    fn window_row(&mut self, ui: &mut Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.label("window:");
            for n in self.lengths() {
                let l = self.meta.as_ref().map_or(n, |m| m.length);
                if ui
                    .selectable_label(self.length == n, format!("{n} bytes ({}L)", n / l.max(1)))
                    .on_hover_text("score the text in windows of this length (rescores it)")
                    .clicked()
                    && self.length != n
                {
                    self.length = n;
                    self.start();
                }
            }
        });
    }

    fn model_line(&self, ui: &mut Ui) {
        match &self.meta {
            Ok(m) => {
                let p = LmPreset::get(m.preset);
                let size = match &self.weights {
                    Weights::Ready(Ok(w)) => format!(", weights {} bytes", w.len()),
                    _ => String::new(),
                };
                ui.label(format!(
                    "The lab's own model: preset {} ({} layers, d_model {}), pretrained with {} \
                     at L = {} bytes on the {} corpus, seed {}, {} steps, validation loss {:.3} \
                     nats per byte (web/assets/lm-small-prose/meta.json{size}). YaRN's scaled \
                     range ends at {} bytes; at most {} windows per schedule, from the text's \
                     start.",
                    m.preset.name(),
                    p.dims.n_layers,
                    p.dims.d_model,
                    m.rope.label(),
                    m.length,
                    m.corpus,
                    m.seed,
                    m.steps,
                    m.val_loss,
                    (crate::lm::live::LIVE_SCALE * m.length as f64) as usize,
                    crate::lm::live::MAX_WINDOWS,
                ));
            }
            Err(e) => {
                ui.colored_label(Color32::RED, e.as_str());
            }
        }
    }
}

fn live_plot(ui: &mut Ui, r: &TextScoreResult, h: f32) {
    ui.label(format!(
        "Loss per position on this text ({} windows of {} bytes, {BIN}-position bins), zero-shot",
        r.windows, r.length
    ));
    Plot::new("lm-live")
        .height(h)
        .legend(Legend::default().position(Corner::LeftTop))
        .x_axis_label("position in the window (bytes)")
        .y_axis_label("loss (nats per byte)")
        .show(ui, |p| {
            p.add(
                VLine::new(format!("L = {}", r.train_len), r.train_len as f64)
                    .color(Color32::DARK_GREEN),
            );
            for a in &r.arms {
                let pts: Vec<[f64; 2]> = a
                    .loss_per_position
                    .chunks(BIN)
                    .enumerate()
                    .map(|(i, c)| {
                        let x = (i * BIN) as f64 + c.len() as f64 / 2.0;
                        [x, c.iter().sum::<f64>() / c.len() as f64]
                    })
                    .collect();
                // the committed studies' zero-shot arms: same colours and line styles
                let arm = match (a.rope.method == "yarn", a.rope.resonance) {
                    (false, false) => Arm::Rope,
                    (false, true) => Arm::ResonanceRope,
                    (true, false) => Arm::YarnZeroShot,
                    (true, true) => Arm::ResonanceYarnZeroShot,
                };
                let (color, style) = arm_style(arm);
                p.add(
                    Line::new(a.label.as_str(), PlotPoints::new(pts))
                        .color(color)
                        .style(style),
                );
            }
        });
}

/// `mean [lo, hi]` of an estimate.
fn fmt_estimate(e: &Estimate) -> String {
    match e.ci95 {
        Some([lo, hi]) => format!("{:+.3} [{lo:+.3}, {hi:+.3}]", e.mean),
        None => format!("{:+.3}", e.mean),
    }
}

fn live_table(ui: &mut Ui, r: &TextScoreResult, timings: bool) {
    let l = r.train_len;
    egui::Grid::new("lm-live-table")
        .striped(true)
        .num_columns(4)
        .show(ui, |ui| {
            for h in [
                "schedule".to_string(),
                format!("loss < {l}"),
                format!("loss {l}..{}", r.length),
                "perplexity past L".to_string(),
            ] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            for a in &r.arms {
                ui.label(a.label.as_str());
                ui.label(cell(a.loss_within));
                ui.label(cell(a.loss_beyond));
                ui.label(cell(a.loss_beyond.map(f64::exp)));
                ui.end_row();
            }
        });
    let arms = live_arms();
    let verdict = match &r.resonance_minus_yarn_beyond {
        Some(d) => {
            let words = match Verdict::of(d.ci95) {
                Verdict::BHigher => format!("{} lower", arms[2].label()),
                Verdict::AHigher => format!("{} lower", arms[1].label()),
                Verdict::Unclear => "no clear difference".to_string(),
            };
            format!(
                "{} - {} past L, paired by window: {} nats per byte (95% CI over {} windows of \
                 one text, not independent samples): {words}.",
                arms[2].label(),
                arms[1].label(),
                fmt_estimate(d),
                d.n
            )
        }
        None => format!("The text is not longer than L = {l} bytes: nothing past L to compare."),
    };
    ui.label(verdict);
    if timings {
        ui.label(format!(
            "Scored {} targets per schedule in {:.2} s: {:.0} tokens/s through the model here.",
            r.targets, r.seconds, r.tokens_per_second
        ));
    }
}
