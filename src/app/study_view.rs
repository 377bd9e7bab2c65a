//! Reference results in the PosGen tab: the committed paired studies (every
//! `results/posgen_study_*.json`, one per protocol and budget, listed by `build.rs`), embedded
//! at build time natively and fetched from the bundle's `studies/` on the web (so the wasm and
//! the first frame carry none of them), parsed on first use.
//! Every number shown is read from those files: per schedule the mean and 95% interval of ID and
//! OOD accuracy, the paired differences with their verdicts, and the per-position accuracy
//! curves with their bands, next to the user's own finished runs, and the budget check (the same
//! comparisons with twice the training budget on the check seeds).

use super::commands::{AppCommand, CommandSender};
use super::platform;
use crate::posgen::RunResult;
use crate::posgen::study::{CellSummary, Comparison, StudyResult, Verdict, counterpart};
use crate::posgen::study_report::{fmt_ci, fmt_signed_ci};
use crate::posgen::{Task, method_label, sweep::POSGEN_METHODS};
use egui::{Color32, RichText, Ui};
use egui_plot::{Legend, Line, LineStyle, Plot, PlotPoints, Polygon, VLine};

/// Where a committed study's trimmed JSON text is.
// Each build constructs one of the two (build.rs chooses by target), so the other is unused.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug)]
pub enum StudySource {
    /// In the binary (native builds).
    Embedded(&'static str),
    /// A file of the web bundle, by URL relative to the page, fetched when first shown.
    Asset(&'static str),
}

// `STUDIES`: every committed `results/posgen_study_*.json` as (selector label, report path,
// source of the JSON text), the text with the runs' per-position curves and validation losses emptied (the
// app reads only the statistics derived from them, which the file also holds).
include!(concat!(env!("OUT_DIR"), "/studies.rs"));

/// Colours of the four schedules, in [`POSGEN_METHODS`] order.
const SCHEDULE_COLORS: [Color32; 4] = [
    Color32::from_rgb(52, 120, 220),
    Color32::from_rgb(235, 130, 30),
    Color32::from_rgb(40, 160, 80),
    Color32::from_rgb(200, 50, 60),
];

/// A user's finished run to draw beside the reference curves.
pub struct LiveRun<'a> {
    /// Legend label.
    pub label: &'a str,
    /// Line colour.
    pub color: Color32,
    /// The run's result (per-position test accuracy).
    pub result: &'a RunResult,
}

/// The report of the study shown first: the clean protocol at the budget whose doubling moves no
/// conclusion (README's answer rests on it). Named by path, so reordering [`STUDIES`] keeps it.
const ANSWER_STUDY: &str = "results/posgen_study_clean_4000.md";

/// One committed study's state in the view.
#[derive(Debug)]
enum Slot {
    /// Not asked for yet.
    Unread,
    /// Its file is being fetched.
    Loading,
    /// Parsed, or why it could not be read.
    Ready(Box<Result<StudyResult, String>>),
}

/// The reference-results section: which study is shown, and the parsed files.
pub struct StudyView {
    /// Index into the committed studies.
    pub selected: usize,
    slots: Vec<Slot>,
    /// Where a fetched study's text is delivered ([`AppCommand::StudyText`]).
    commands: CommandSender,
}

impl StudyView {
    /// The view with the answer study selected; fetched files arrive through `commands`.
    pub fn new(commands: CommandSender) -> Self {
        Self {
            selected: STUDIES
                .iter()
                .position(|(_, path, _)| *path == ANSWER_STUDY)
                .unwrap_or(0),
            slots: STUDIES.iter().map(|_| Slot::Unread).collect(),
            commands,
        }
    }

    /// The committed study at `index`, parsed once; `None` while its file is on its way (the
    /// fetch starts on the first call).
    pub fn study(&mut self, index: usize) -> Option<&Result<StudyResult, String>> {
        let (_, path, source) = STUDIES.get(index)?;
        let slot = self.slots.get_mut(index)?;
        if matches!(slot, Slot::Unread) {
            *slot = match source {
                StudySource::Embedded(text) => Slot::Ready(Box::new(parse(path, text))),
                StudySource::Asset(url) => {
                    let commands = self.commands.clone();
                    platform::fetch_text(url, move |text| {
                        commands.send_and_wake(AppCommand::StudyText { index, text });
                    });
                    Slot::Loading
                }
            };
        }
        match slot {
            Slot::Ready(r) => Some(&**r),
            _ => None,
        }
    }

    /// Takes the fetched text (or the failure) of study `index`.
    pub fn loaded(&mut self, index: usize, text: Result<String, String>) {
        if let (Some((_, path, _)), Some(slot)) = (STUDIES.get(index), self.slots.get_mut(index)) {
            *slot = Slot::Ready(Box::new(text.and_then(|t| parse(path, &t))));
        }
    }

    /// The report path of the study shown and whether it is ready to read (the page API's
    /// view of the section).
    pub fn shown(&self) -> (&'static str, bool) {
        let i = self.selected.min(STUDIES.len() - 1);
        (
            STUDIES[i].1,
            matches!(self.slots.get(i), Some(Slot::Ready(r)) if r.is_ok()),
        )
    }

    /// Draws the section for `task`, with `live` runs overlaid on the per-position plot.
    pub fn ui(&mut self, ui: &mut Ui, task: Task, live: &[LiveRun<'_>], plot_height: f32) {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("Reference results").strong());
            for (i, (name, path, _)) in STUDIES.iter().enumerate() {
                ui.selectable_value(&mut self.selected, i, *name)
                    .on_hover_text(format!("read from {path} and its .json"));
            }
        });
        let selected = self.selected;
        let path = STUDIES[selected.min(STUDIES.len() - 1)].1;
        let study = match self.study(selected) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                ui.colored_label(Color32::RED, e.as_str());
                return;
            }
            None => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("loading {}", path.replace(".md", ".json")));
                });
                return;
            }
        };
        let c = &study.config;
        ui.label(format!(
            "{} of {} runs, seeds {:?}, {} protocol, {} scaling, up to {} steps (stop after {} \
             checks every {} steps without improvement) ({path}). Mean [95% CI] over seeds.",
            study.runs.len(),
            study.planned_runs,
            c.seeds,
            c.protocol.name(),
            c.scaling.name(),
            c.cap,
            c.early_stop.patience,
            c.early_stop.every,
        ));
        let cells: Vec<&CellSummary> = study
            .summary
            .iter()
            .filter(|c| c.task == task.name())
            .collect();
        if cells.is_empty() {
            ui.label(format!("This study has no {} runs.", task.title()));
            return;
        }
        cell_table(ui, task, &cells);
        comparison_table(ui, task, &study.comparisons);
        budget_check_table(ui, task, study);
        position_plot(ui, task, &cells, live, plot_height);
    }
}

/// Parses a study's text, naming its file when that fails.
fn parse(path: &str, text: &str) -> Result<StudyResult, String> {
    serde_json::from_str::<StudyResult>(text)
        .map_err(|e| format!("{path}: cannot read the committed study ({e})"))
}

fn metric_text(cell: &CellSummary, m: &str) -> String {
    cell.metrics
        .iter()
        .find(|(k, _)| k == m)
        .map_or("-".into(), |(_, e)| fmt_ci(e.mean, e.ci95))
}

fn cell_table(ui: &mut Ui, task: Task, cells: &[&CellSummary]) {
    let semi = task == Task::SemiRecursive;
    let mut heads = vec!["schedule", "ID %", "OOD %", "mean steps"];
    if semi {
        heads.extend(["ID advance %", "OOD advance %"]);
    }
    egui::Grid::new("study-cells")
        .striped(true)
        .num_columns(heads.len())
        .show(ui, |ui| {
            for h in &heads {
                ui.label(RichText::new(*h).strong());
            }
            ui.end_row();
            for cell in cells {
                ui.colored_label(schedule_color(&cell.method), &cell.method);
                ui.label(metric_text(cell, "id"));
                ui.label(metric_text(cell, "ood"));
                ui.label(format!("{:.0}", cell.mean_steps));
                if semi {
                    ui.label(metric_text(cell, "id_advance"));
                    ui.label(metric_text(cell, "ood_advance"));
                }
                ui.end_row();
            }
        });
}

fn comparison_table(ui: &mut Ui, task: Task, cmps: &[Comparison]) {
    let rows: Vec<&Comparison> = cmps
        .iter()
        .filter(|c| c.task == task.name() && c.metric == "ood")
        .collect();
    if rows.is_empty() {
        return;
    }
    egui::Grid::new("study-cmps")
        .striped(true)
        .num_columns(3)
        .show(ui, |ui| {
            for h in [
                "OOD a - b (points)",
                "mean [95% CI], paired by seed",
                "verdict",
            ] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for c in rows {
                ui.label(format!("{} - {}", c.a, c.b));
                ui.label(format!(
                    "{} (n = {})",
                    fmt_signed_ci(c.mean_diff, c.ci95),
                    c.n
                ));
                ui.colored_label(verdict_color(c.verdict), c.verdict.words(&c.a, &c.b));
                ui.end_row();
            }
        });
}

/// A verdict's text colour: green when `a` is higher, red when `b` is, grey when unclear (mid
/// tones, readable on the dark and the light theme).
fn verdict_color(v: Verdict) -> Color32 {
    match v {
        Verdict::AHigher => Color32::from_rgb(60, 170, 90),
        Verdict::BHigher => Color32::from_rgb(225, 85, 75),
        Verdict::Unclear => Color32::GRAY,
    }
}

/// The budget check's OOD rows for `task`: `a - b` on the check seeds under the main and the
/// doubled budget, and the shift between them, so a reader sees whether the verdicts above
/// survive a longer training.
fn budget_check_table(ui: &mut Ui, task: Task, study: &StudyResult) {
    let Some(check) = &study.budget_check else {
        ui.label("No budget check in this study (no runs with a doubled budget).");
        return;
    };
    ui.label(format!(
        "Budget check: seeds {:?} also trained with twice the cap ({} steps) and twice the \
         patience; OOD a - b on those seeds, and the shift (doubled - main) paired by seed.",
        check.seeds,
        2 * study.config.cap
    ));
    egui::Grid::new("study-budget-check")
        .striped(true)
        .num_columns(4)
        .show(ui, |ui| {
            for h in ["OOD a - b", "main budget", "doubled budget", "shift"] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for m in check
                .main
                .iter()
                .filter(|c| c.task == task.name() && c.metric == "ood")
            {
                ui.label(format!("{} - {}", m.a, m.b));
                ui.colored_label(
                    verdict_color(m.verdict),
                    format!("{} (n = {})", fmt_signed_ci(m.mean_diff, m.ci95), m.n),
                );
                match counterpart(&check.double, m) {
                    Some(d) => ui.colored_label(
                        verdict_color(d.verdict),
                        fmt_signed_ci(d.mean_diff, d.ci95),
                    ),
                    None => ui.label("-"),
                };
                ui.label(
                    counterpart(&check.shifts, m)
                        .map_or("-".into(), |c| fmt_signed_ci(c.mean_diff, c.ci95)),
                );
                ui.end_row();
            }
        });
}

/// The colour of a schedule label of the study.
fn schedule_color(label: &str) -> Color32 {
    POSGEN_METHODS
        .iter()
        .position(|&(m, r)| method_label(m, r) == label)
        .map_or(Color32::GRAY, |i| SCHEDULE_COLORS[i])
}

fn position_plot(ui: &mut Ui, task: Task, cells: &[&CellSummary], live: &[LiveRun<'_>], h: f32) {
    ui.label(format!(
        "{}: test accuracy per target position, study mean with 95% band; your finished runs dashed",
        task.title()
    ));
    let train_len = live
        .first()
        .map(|r| r.result.train_len)
        .or_else(|| cells.first().map(|c| c.first_position + 60))
        .unwrap_or(64) as f64;
    Plot::new("study-pos")
        .height(h)
        .legend(Legend::default())
        .x_axis_label("target position (tokens)")
        .y_axis_label("accuracy (%)")
        .include_y(0.0)
        .include_y(100.0)
        .show(ui, |p| {
            p.add(VLine::new(format!("L = {train_len}"), train_len).color(Color32::DARK_GREEN));
            for cell in cells {
                let color = schedule_color(&cell.method);
                let x = |k: usize| (cell.first_position + k) as f64;
                // the band as one convex quad per position step (a plot polygon is filled as
                // a convex shape, so one outline around the whole band would not draw right)
                let pp = &cell.per_position;
                for k in 1..pp.len() {
                    let quad = vec![
                        [x(k - 1), 100.0 * pp[k - 1][2]],
                        [x(k), 100.0 * pp[k][2]],
                        [x(k), 100.0 * pp[k][1]],
                        [x(k - 1), 100.0 * pp[k - 1][1]],
                    ];
                    p.add(
                        Polygon::new(format!("{} (study)", cell.method), PlotPoints::new(quad))
                            .fill_color(color.gamma_multiply(0.15))
                            .stroke(egui::Stroke::NONE),
                    );
                }
                let mean: Vec<[f64; 2]> = cell
                    .per_position
                    .iter()
                    .enumerate()
                    .map(|(k, v)| [x(k), 100.0 * v[0]])
                    .collect();
                p.add(
                    Line::new(format!("{} (study)", cell.method), PlotPoints::new(mean))
                        .color(color),
                );
            }
            for r in live {
                let pts: Vec<[f64; 2]> = r
                    .result
                    .per_position_accuracy
                    .iter()
                    .enumerate()
                    .map(|(k, a)| [(r.result.first_target_position + k) as f64, 100.0 * a])
                    .collect();
                p.add(
                    Line::new(format!("{} (yours)", r.label), PlotPoints::new(pts))
                        .color(r.color)
                        .style(LineStyle::dashed_dense()),
                );
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `build.rs` lists every committed study exactly once, clean protocol first and budgets
    /// ascending, and each label names its file's own protocol and step cap.
    #[test]
    fn every_committed_study_is_listed_once_in_protocol_then_budget_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/results");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().into_string().ok())
            .filter(|n| n.starts_with("posgen_study_") && n.ends_with(".json"))
            .map(|n| format!("results/{}", n.replace(".json", ".md")))
            .collect();
        let mut listed: Vec<String> = STUDIES.iter().map(|(_, p, _)| p.to_string()).collect();
        let order: Vec<(bool, usize)> = STUDIES
            .iter()
            .map(|(label, path, _)| {
                let json = format!(
                    "{}/{}",
                    env!("CARGO_MANIFEST_DIR"),
                    path.replace(".md", ".json")
                );
                let s: StudyResult =
                    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
                let c = &s.config;
                let authors = c.protocol == crate::posgen::data::Protocol::Authors;
                let name = if authors { "authors'" } else { "clean" };
                assert_eq!(*label, format!("{name}, {} steps", c.cap), "{path}");
                (authors, c.cap)
            })
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        on_disk.sort();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn committed_studies_parse_and_agree_with_their_runs() {
        let mut v = StudyView::new(crate::app::commands::CommandQueue::default().sender());
        for (i, (_, md_path, _)) in STUDIES.iter().enumerate() {
            let shown = match v.study(i) {
                Some(Ok(s)) => s.clone(),
                other => panic!("study {i}: {other:?}"),
            };
            // the full committed file, runs and all
            let json_path = format!(
                "{}/{}",
                env!("CARGO_MANIFEST_DIR"),
                md_path.replace(".md", ".json")
            );
            let text = std::fs::read_to_string(&json_path).unwrap();
            let s: StudyResult = serde_json::from_str(&text).unwrap();
            assert!(!s.runs.is_empty());
            // The embedded copy shows the committed statistics and counts the same runs.
            assert_eq!(shown.summary, s.summary);
            assert_eq!(shown.comparisons, s.comparisons);
            assert_eq!(shown.budget_check, s.budget_check);
            assert_eq!(
                (shown.runs.len(), shown.planned_runs),
                (s.runs.len(), s.planned_runs)
            );
            assert!(
                shown
                    .runs
                    .iter()
                    .all(|r| r.result.per_position_accuracy.is_empty())
            );
            // The summaries shown are the statistics of the runs in the same file (to 1e-9:
            // serde_json's default float parser may differ from the printed value in the last
            // bit).
            let again = StudyResult::new(s.config.clone(), s.study_command.clone(), s.runs.clone());
            assert_eq!(again.comparisons.len(), s.comparisons.len());
            let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
            for (a, b) in again.comparisons.iter().zip(&s.comparisons) {
                assert_eq!(
                    (&a.task, &a.metric, &a.a, &a.b, a.n),
                    (&b.task, &b.metric, &b.a, &b.b, b.n)
                );
                assert_eq!(a.verdict, b.verdict);
                assert!(close(a.mean_diff, b.mean_diff), "{a:?} vs {b:?}");
                let (x, y) = (a.ci95.unwrap_or_default(), b.ci95.unwrap_or_default());
                assert!(close(x[0], y[0]) && close(x[1], y[1]), "{a:?} vs {b:?}");
            }
            // the budget check shown is the one its runs give
            assert_eq!(
                again.budget_check.as_ref().map(|b| (&b.seeds, &b.changed)),
                s.budget_check.as_ref().map(|b| (&b.seeds, &b.changed))
            );
            assert_eq!(again.summary.len(), s.summary.len());
            for (a, b) in again.summary.iter().zip(&s.summary) {
                assert_eq!(
                    (&a.task, &a.method, a.stopped_early),
                    (&b.task, &b.method, b.stopped_early)
                );
                for (p, q) in a.per_position.iter().zip(&b.per_position) {
                    assert!(p.iter().zip(q).all(|(x, y)| close(*x, *y)));
                }
            }
        }
    }
}
