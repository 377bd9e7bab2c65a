//! The PosGen tab: trains the paper's schedules (RoPE, YaRN, with and without Resonance) live on a
//! chosen task with the `tiny` preset, each run in its own worker (thread or Web Worker, so the
//! runs use several cores and the UI never waits) or time-sliced between frames where no worker
//! can start, and plots the loss curves, validation ID/OOD accuracy and per-position test
//! accuracy with L marked.

use super::commands::CommandSender;
use super::posgen_run::PanelRun;
use super::study_view::{LiveRun, StudyView};
use super::worker::{RunId, RunUpdate, TrainJob};
use crate::posgen::{Preset, PresetName, RunConfig, Task, TrainPhase, method_label};
use crate::rope::Method;
use egui::{Color32, RichText, Ui};
use egui_plot::{Legend, Line, Plot, PlotPoints};
use web_time::Instant;

/// Largest step count the panel offers (the CLI allows more for native runs).
pub const MAX_STEPS: usize = 5_000;

/// Redraw interval while only workers train (they report every 50 ms).
pub const WORKER_REPAINT_S: f64 = 0.25;

/// Per-frame training budget in seconds, shared by the runs that train in place.
pub const FRAME_BUDGET_S: f64 = 0.030;

const COLORS: [Color32; 8] = [
    Color32::from_rgb(52, 120, 220),
    Color32::from_rgb(235, 130, 30),
    Color32::from_rgb(40, 160, 80),
    Color32::from_rgb(200, 50, 60),
    Color32::from_rgb(140, 90, 200),
    Color32::from_rgb(120, 120, 120),
    Color32::from_rgb(20, 170, 170),
    Color32::from_rgb(190, 150, 20),
];

/// State of the PosGen tab.
pub struct PosgenPanel {
    /// Task to train on.
    pub task: Task,
    /// Which of [`Method::ALL`] are selected.
    pub methods: [bool; Method::ALL.len()],
    /// Train the plain schedules.
    pub plain: bool,
    /// Train the Resonance variants.
    pub resonance: bool,
    /// Optimiser steps per run (1..=[`MAX_STEPS`]).
    pub steps: usize,
    /// Seed of data, weights and batch order.
    pub seed: u64,
    /// Training is advancing.
    pub running: bool,
    /// Train each run in a worker (a thread, or a Web Worker in the page) instead of in place
    /// between frames; in-place training is the fallback where no worker can start.
    pub off_thread: bool,
    runs: Vec<PanelRun>,
    message: Option<String>,
    train_seconds: f64,
    next_run: u64,
    updates: CommandSender,
    study: StudyView,
}

impl PosgenPanel {
    /// The tab with the paper's four runs selected; workers report through `updates` (the
    /// app's command queue).
    pub fn new(updates: CommandSender) -> Self {
        PosgenPanel {
            task: Task::Recursive,
            methods: std::array::from_fn(|i| {
                [Method::ROPE, Method::YARN].contains(&Method::ALL[i])
            }),
            plain: true,
            resonance: true,
            steps: Preset::get(PresetName::Tiny).steps,
            seed: 0,
            running: false,
            off_thread: true,
            runs: Vec::new(),
            message: None,
            train_seconds: 0.0,
            next_run: 0,
            study: StudyView::new(updates.clone()),
            updates,
        }
    }

    /// The configured runs: selected methods x selected variants, all on one task and seed.
    pub fn jobs(&self) -> Vec<TrainJob> {
        let mut out = Vec::new();
        for (m, _) in Method::ALL.iter().zip(self.methods).filter(|(_, on)| *on) {
            for (res, on) in [(false, self.plain), (true, self.resonance)] {
                if on {
                    let steps = self.steps.clamp(1, MAX_STEPS);
                    out.push(TrainJob::new(self.task, *m, res, self.seed, steps));
                }
            }
        }
        out
    }

    /// The configurations of [`Self::jobs`].
    pub fn configs(&self) -> Vec<RunConfig> {
        self.jobs().iter().map(TrainJob::config).collect()
    }

    /// Builds fresh runs for the current selection and starts training.
    pub fn start(&mut self) {
        self.runs.clear();
        self.message = None;
        self.train_seconds = 0.0;
        let jobs = self.jobs();
        if jobs.is_empty() {
            self.message = Some("select at least one method and one variant".into());
            self.running = false;
            return;
        }
        for (k, job) in jobs.iter().enumerate() {
            let id = RunId(self.next_run);
            self.next_run += 1;
            let color = COLORS[k % COLORS.len()];
            match PanelRun::new(job, id, color, self.off_thread, &self.updates) {
                Ok(run) => self.runs.push(run),
                Err(e) => {
                    self.message = Some(format!("{} {}: {e}", job.method, job.task.name()));
                    self.runs.clear();
                    self.running = false;
                    return;
                }
            }
        }
        self.running = true;
    }

    /// Stops advancing (the runs keep their state).
    pub fn pause(&mut self) {
        self.running = false;
        self.runs.iter().for_each(|r| r.set_running(false));
    }

    /// Continues paused runs.
    pub fn resume(&mut self) {
        self.running = self.runs.iter().any(PanelRun::active);
        self.runs.iter().for_each(|r| r.set_running(true));
    }

    /// Drops all runs (workers stop).
    pub fn reset(&mut self) {
        self.runs.clear();
        self.running = false;
        self.message = None;
        self.train_seconds = 0.0;
    }

    /// The runs, in legend order.
    pub fn runs(&self) -> &[PanelRun] {
        &self.runs
    }

    /// Takes in a committed study's fetched text ([`StudyView::loaded`]).
    pub fn study_loaded(&mut self, index: usize, text: Result<String, String>) {
        self.study.loaded(index, text);
    }

    /// Takes in an update a worker reported for run `id` (dropped when that run was reset).
    pub fn apply(&mut self, id: RunId, update: RunUpdate) {
        if let Some(run) = self.runs.iter_mut().find(|r| r.id == id) {
            run.apply(update);
        }
        self.running &= self.runs.iter().any(PanelRun::active);
    }

    /// Advances the runs that train in place, round-robin for about `budget_s` seconds in
    /// total (each gets at least one unit of work); workers train on their own. Returns
    /// whether any run is still active.
    pub fn tick(&mut self, budget_s: f64) -> bool {
        if !self.running {
            return false;
        }
        let t0 = Instant::now();
        let in_place = self
            .runs
            .iter()
            .filter(|r| r.active() && !r.in_worker())
            .count()
            .max(1);
        for run in self.runs.iter_mut().filter(|r| r.active()) {
            run.advance(budget_s / in_place as f64);
        }
        self.train_seconds += t0.elapsed().as_secs_f64();
        self.running = self.runs.iter().any(PanelRun::active);
        self.running
    }

    /// The per-frame work of the tab, whichever tab is shown: trains in-place runs for one
    /// frame's budget and schedules the next frame (at once for in-place runs, a few times a
    /// second while only workers train, leaving the cores to them).
    pub fn update(&mut self, ctx: &egui::Context) {
        if !self.tick(FRAME_BUDGET_S) {
            return;
        }
        if self.runs.iter().any(|r| r.active() && !r.in_worker()) {
            ctx.request_repaint();
        } else {
            ctx.request_repaint_after(std::time::Duration::from_secs_f64(WORKER_REPAINT_S));
        }
    }

    /// The tab's runs as JSON (label, worker, step, phase, latest validation, test result) and
    /// the reference study shown (its report path, whether it has been read): what the page's
    /// `resonanceLab.posgen()` returns.
    pub fn status(&self) -> serde_json::Value {
        let runs: Vec<serde_json::Value> = self
            .runs
            .iter()
            .map(|r| {
                let p = r.progress();
                serde_json::json!({
                    "label": r.label,
                    "in_worker": r.in_worker(),
                    "step": p.step,
                    "total_steps": p.total_steps,
                    "phase": p.phase,
                    "validation": r.validation().last(),
                    "id_accuracy": r.result().map(|x| x.id_accuracy),
                    "ood_accuracy": r.result().map(|x| x.ood_accuracy),
                    "seconds": r.result().map(|x| x.seconds),
                    "error": r.error(),
                })
            })
            .collect();
        let (study, ready) = self.study.shown();
        serde_json::json!({
            "task": self.task.name(),
            "running": self.running,
            "runs": runs,
            "reference_study": { "path": study, "ready": ready },
        })
    }

    /// Test results of the finished runs as CSV: one row per run and target position.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "task [name],method [name],resonance [bool],label [name],seed [integer],\
             steps [optimiser steps],ID accuracy [fraction],OOD accuracy [fraction],\
             position [tokens],accuracy [fraction]\n",
        );
        for r in self.runs.iter().filter_map(PanelRun::result) {
            for (k, a) in r.per_position_accuracy.iter().enumerate() {
                s.push_str(&format!(
                    "{},{},{},{},{},{},{:.6},{:.6},{},{:.6}\n",
                    r.task,
                    r.method,
                    r.resonance,
                    r.label,
                    r.seed,
                    r.steps,
                    r.id_accuracy,
                    r.ood_accuracy,
                    r.first_target_position + k,
                    a
                ));
            }
        }
        s
    }

    /// Draws the tab (training advances in [`Self::update`], whichever tab is shown).
    pub fn ui(&mut self, ui: &mut Ui) {
        self.controls(ui);
        ui.separator();
        let h = ((ui.available_height() - 60.0) / 2.5).max(140.0);
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                self.progress_table(ui);
                if self.runs.is_empty() {
                    let d = Preset::get(PresetName::Tiny).dims;
                    let s = Preset::get(PresetName::Tiny).sizes;
                    ui.label(format!(
                        "Choose a task and schedules, then press Train: each run trains the tiny \
                         preset ({} layers, d_model {}, head dim {}) on length {} and is tested \
                         to length {}. Below: the committed reference study for this task.",
                        d.n_layers, d.d_model, d.head_dim, s.train_len, s.eval_len
                    ));
                } else {
                    ui.separator();
                    ui.columns(2, |cols| {
                        self.loss_plot(&mut cols[0], h);
                        self.validation_plot(&mut cols[1], h);
                    });
                }
                ui.separator();
                let live: Vec<LiveRun<'_>> = self
                    .runs
                    .iter()
                    .filter_map(|r| {
                        r.result().map(|result| LiveRun {
                            label: &r.label,
                            color: r.color,
                            result,
                        })
                    })
                    .collect();
                self.study.ui(ui, self.task, &live, h);
            });
    }

    fn controls(&mut self, ui: &mut Ui) {
        let busy = self.running;
        ui.horizontal_wrapped(|ui| {
            ui.add_enabled_ui(!busy, |ui| {
                egui::ComboBox::from_label("task")
                    .selected_text(task_label(self.task))
                    .show_ui(ui, |ui| {
                        for t in Task::ALL {
                            ui.selectable_value(&mut self.task, t, task_label(t));
                        }
                    });
                ui.separator();
                for (m, on) in Method::ALL.iter().zip(self.methods.iter_mut()) {
                    ui.checkbox(on, method_label(*m, false));
                }
                ui.separator();
                ui.checkbox(&mut self.plain, "plain");
                ui.checkbox(&mut self.resonance, "Resonance");
                ui.separator();
                let l = ui.label("steps");
                ui.add(egui::DragValue::new(&mut self.steps).range(1..=MAX_STEPS))
                    .labelled_by(l.id);
                let l = ui.label("seed");
                ui.add(egui::DragValue::new(&mut self.seed).range(0..=u32::MAX as u64))
                    .labelled_by(l.id);
            });
        });
        ui.horizontal(|ui| {
            let n = self.configs().len();
            if ui
                .add_enabled(n > 0 && !busy, egui::Button::new(format!("Train {n} runs")))
                .on_hover_text("start fresh runs of the selected schedules")
                .clicked()
            {
                self.start();
            }
            let can_resume = !busy && self.runs.iter().any(PanelRun::active);
            if busy && ui.button("Pause").clicked() {
                self.pause();
            }
            if can_resume && ui.button("Resume").clicked() {
                self.resume();
            }
            if ui
                .add_enabled(!self.runs.is_empty(), egui::Button::new("Reset"))
                .clicked()
            {
                self.reset();
            }
            let done = self.runs.iter().any(|r| r.result().is_some());
            if ui
                .add_enabled(done, egui::Button::new("Export CSV"))
                .on_hover_text("test accuracy per position of the finished runs")
                .clicked()
            {
                let csv = self.csv();
                self.message = Some(
                    match super::platform::save_file(
                        "resonance-lab-posgen.csv",
                        "text/csv",
                        csv.as_bytes(),
                    ) {
                        Ok(m) => m,
                        Err(e) => format!("CSV export failed: {e}"),
                    },
                );
            }
            if n == 0 {
                ui.colored_label(Color32::RED, "select at least one method and one variant");
            }
            if let Some(m) = &self.message {
                ui.label(m);
            }
        });
    }

    fn progress_table(&self, ui: &mut Ui) {
        if self.runs.is_empty() {
            return;
        }
        egui::Grid::new("posgen-runs")
            .striped(true)
            .num_columns(6)
            .show(ui, |ui| {
                for h in ["run", "progress", "loss", "ID acc", "OOD acc", "steps/s"] {
                    ui.label(RichText::new(h).strong());
                }
                ui.end_row();
                for r in &self.runs {
                    let p = r.progress();
                    ui.colored_label(r.color, &r.label);
                    let frac = p.step as f32 / p.total_steps.max(1) as f32;
                    let text = match (r.error(), p.phase) {
                        (Some(_), _) => "failed".to_string(),
                        (None, TrainPhase::Training) => {
                            format!("step {}/{}", p.step, p.total_steps)
                        }
                        (None, TrainPhase::Testing) => "testing".to_string(),
                        (None, TrainPhase::Done) => "done".to_string(),
                    };
                    ui.add(egui::ProgressBar::new(frac).desired_width(160.0).text(text));
                    if p.last_loss.is_finite() {
                        ui.label(format!("{:.3}", p.last_loss));
                    } else {
                        ui.label("-");
                    }
                    let (id, ood) = match (r.result(), r.validation().last()) {
                        (Some(res), _) => (
                            format!("{:.1}% (test)", 100.0 * res.id_accuracy),
                            format!("{:.1}% (test)", 100.0 * res.ood_accuracy),
                        ),
                        (None, Some(v)) => (
                            format!("{:.1}% (val)", 100.0 * v.id_accuracy),
                            format!("{:.1}% (val)", 100.0 * v.ood_accuracy),
                        ),
                        (None, None) => ("-".into(), "-".into()),
                    };
                    ui.label(id);
                    ui.label(ood);
                    let secs = r.result().map(|res| res.seconds);
                    match secs {
                        Some(s) if s > 0.0 => ui.label(format!("{:.1}", p.step as f64 / s)),
                        _ => ui.label("-"),
                    };
                    ui.end_row();
                    if let Some(e) = r.error() {
                        ui.colored_label(Color32::RED, e);
                        ui.end_row();
                    }
                }
            });
        let chance = 100.0 / self.task_modulus() as f64;
        let workers = self.runs.iter().filter(|r| r.in_worker()).count();
        let where_ = match workers {
            0 => "Runs train in place between frames.".to_string(),
            n if n == self.runs.len() => format!("Runs train in parallel in {n} workers."),
            n => format!("{n} runs train in workers, the others in place between frames."),
        };
        ui.label(format!(
            "Accuracy is teacher-forced per token; chance is {chance:.1}% (modulus {}). \
             ID: target positions before L = 64, OOD: positions 64..256. {where_}",
            self.task_modulus()
        ));
    }

    fn task_modulus(&self) -> u32 {
        self.runs
            .first()
            .map(|r| r.config.spec.modulus)
            .unwrap_or(Preset::get(PresetName::Tiny).modulus)
    }

    fn loss_plot(&self, ui: &mut Ui, h: f32) {
        ui.label("training loss");
        Plot::new("posgen-loss")
            .height(h)
            .legend(Legend::default())
            .x_axis_label("optimiser step")
            .y_axis_label("cross-entropy (nats/token)")
            .show(ui, |p| {
                for r in &self.runs {
                    let pts: Vec<[f64; 2]> = r
                        .loss_curve()
                        .iter()
                        .enumerate()
                        .map(|(i, l)| [(i + 1) as f64, *l as f64])
                        .collect();
                    p.add(Line::new(r.label.clone(), PlotPoints::new(pts)).color(r.color));
                }
            });
    }

    fn validation_plot(&self, ui: &mut Ui, h: f32) {
        ui.label("validation accuracy (solid: OOD, dashed: ID)");
        Plot::new("posgen-val")
            .height(h)
            .legend(Legend::default())
            .x_axis_label("optimiser step")
            .y_axis_label("accuracy (%)")
            .include_y(0.0)
            .include_y(100.0)
            .show(ui, |p| {
                for r in &self.runs {
                    let v = r.validation();
                    let ood: Vec<[f64; 2]> = v
                        .iter()
                        .map(|e| [e.step as f64, 100.0 * e.ood_accuracy])
                        .collect();
                    let id: Vec<[f64; 2]> = v
                        .iter()
                        .map(|e| [e.step as f64, 100.0 * e.id_accuracy])
                        .collect();
                    p.add(
                        Line::new(format!("{} OOD", r.label), PlotPoints::new(ood)).color(r.color),
                    );
                    p.add(
                        Line::new(format!("{} ID", r.label), PlotPoints::new(id))
                            .color(r.color)
                            .style(egui_plot::LineStyle::dashed_dense()),
                    );
                }
            });
    }
}

/// Display name of a task as in the paper's table.
pub fn task_label(t: Task) -> &'static str {
    match t {
        Task::Recursive => "Recursive",
        Task::Cot => "CoT",
        Task::SemiRecursive => "Semi-recursive",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::commands::CommandQueue;

    fn small(steps: usize) -> PosgenPanel {
        let mut p = PosgenPanel::new(CommandQueue::default().sender());
        p.steps = steps;
        p.off_thread = false;
        p
    }

    #[test]
    fn default_selection_is_the_papers_four_runs() {
        let labels: Vec<String> = small(3)
            .configs()
            .iter()
            .map(|c| c.method_label())
            .collect();
        assert_eq!(labels, ["RoPE", "Resonance RoPE", "YaRN", "Resonance YaRN"]);
    }

    #[test]
    fn empty_selection_cannot_start() {
        let mut p = small(3);
        p.plain = false;
        p.resonance = false;
        p.start();
        assert!(!p.running);
        assert!(p.runs().is_empty());
    }

    #[test]
    fn train_pause_resume_reset_and_csv() {
        let mut p = small(2);
        p.methods = std::array::from_fn(|i| i == 0);
        p.resonance = false;
        p.start();
        assert!(p.running);
        assert_eq!(p.runs().len(), 1);
        // one tick does at least one unit of work
        p.tick(0.0);
        assert!(p.runs()[0].progress().step >= 1);
        p.pause();
        let step = p.runs()[0].progress().step;
        assert!(!p.tick(1.0), "paused panel must not train");
        assert_eq!(p.runs()[0].progress().step, step);
        p.resume();
        for _ in 0..10_000 {
            if !p.tick(1.0) {
                break;
            }
        }
        let r = p.runs()[0].result().expect("finished");
        assert_eq!(r.steps, 2);
        let csv = p.csv();
        // header + one row per scored position 4..256 (j + k = 4 seeds of the default task)
        assert_eq!(csv.lines().count(), 1 + r.per_position_accuracy.len());
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .starts_with("recursive,rope,false,RoPE,0,2,")
        );
        p.reset();
        assert!(p.runs().is_empty() && !p.running);
    }
}
