//! The Language model tab: live scoring of a text with the lab's own model ([`LiveView`]) and
//! the committed real-text studies (`results/lm_study_<corpus>.json`,
//! embedded by `build.rs` without their runs): perplexity per byte against evaluation length
//! for every arm with its 95% band, the loss per position at the longest length (where a
//! schedule breaks past L), and the paired differences with their verdicts. Every number shown
//! is read from the committed files.

use super::commands::CommandSender;
use super::lm_live::LiveView;
use crate::lm::study::{Arm, ArmCurve, ArmSummary, LmComparison, LmStudyResult};
use egui::{Color32, RichText, Ui};
use egui_plot::{
    ColorConflictHandling, Corner, Legend, Line, LineStyle, Plot, PlotPoints, Polygon, VLine,
};

include!(concat!(env!("OUT_DIR"), "/lm_studies.rs"));

/// Colours per arm family: RoPE, zero-shot YaRN, YaRN fine-tuned at L, at s x L.
const FAMILY_COLORS: [Color32; 4] = [
    Color32::from_rgb(120, 120, 120),
    Color32::from_rgb(52, 120, 220),
    Color32::from_rgb(40, 160, 80),
    Color32::from_rgb(200, 50, 60),
];

/// An arm's colour (by family) and line style (Resonance solid, plain dashed).
pub(super) fn arm_style(arm: Arm) -> (Color32, LineStyle) {
    let family = match arm {
        Arm::Rope | Arm::ResonanceRope => 0,
        Arm::YarnZeroShot | Arm::ResonanceYarnZeroShot => 1,
        Arm::YarnFtShort | Arm::ResonanceYarnFtShort => 2,
        Arm::YarnFtLong | Arm::ResonanceYarnFtLong => 3,
    };
    let style = if arm.resonance() {
        LineStyle::Solid
    } else {
        LineStyle::dashed_dense()
    };
    (FAMILY_COLORS[family], style)
}

/// The tab's two sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LmSection {
    /// The committed studies.
    Studies,
    /// A text scored live.
    Live,
}

/// The tab's state: the committed studies, parsed once, which corpus is shown, and the live
/// scoring.
pub struct LmView {
    studies: Vec<(&'static str, &'static str, Result<LmStudyResult, String>)>,
    /// Index of the corpus shown.
    pub selected: usize,
    /// The section shown.
    pub section: LmSection,
    /// The live scoring.
    pub live: LiveView,
}

impl LmView {
    /// The tab showing the committed studies; the live section's weights and worker reports
    /// arrive through `commands`.
    pub fn new(commands: CommandSender) -> Self {
        LmView {
            studies: LM_STUDIES
                .iter()
                .map(|(corpus, path, text)| {
                    let parsed = serde_json::from_str::<LmStudyResult>(text)
                        .map_err(|e| format!("{path}: {e}"));
                    (*corpus, *path, parsed)
                })
                .collect(),
            selected: 0,
            section: LmSection::Studies,
            live: LiveView::new(commands),
        }
    }

    /// The corpora of the committed studies.
    pub fn corpora(&self) -> Vec<&'static str> {
        self.studies.iter().map(|s| s.0).collect()
    }

    /// The study shown, when its file parsed.
    pub fn shown(&self) -> Option<&LmStudyResult> {
        self.studies.get(self.selected)?.2.as_ref().ok()
    }

    /// What the tab shows, for the page API and tests.
    pub fn status(&self) -> serde_json::Value {
        let section = match self.section {
            LmSection::Studies => "studies",
            LmSection::Live => "live",
        };
        let Some((corpus, path, study)) = self.studies.get(self.selected) else {
            return serde_json::json!({
                "corpora": self.corpora(),
                "section": section,
                "live": self.live.status(),
            });
        };
        let study = study.as_ref().ok();
        serde_json::json!({
            "section": section,
            "live": self.live.status(),
            "corpora": self.corpora(),
            "corpus": corpus,
            "path": path,
            "finished_runs": study.map(|s| s.finished_runs),
            "planned_runs": study.map(|s| s.planned_runs),
            "lengths": study.map(|s| s.config.lengths.clone()),
            "arms": study.map(|s| s.summary.iter().map(|c| c.arm).collect::<std::collections::BTreeSet<_>>()),
            "verdicts": study.map(|s| s.comparisons.iter().map(|c| serde_json::json!({
                "length": c.length, "a": c.a, "b": c.b, "verdict": c.verdict,
            })).collect::<Vec<_>>()),
        })
    }

    /// The shown study's perplexity per arm and length (mean and 95% interval over seeds) as
    /// a CSV file: `(file name, text)`.
    pub fn csv(&self) -> Option<(String, String)> {
        let (corpus, _, _) = self.studies.get(self.selected)?;
        let study = self.shown()?;
        let mut csv = String::from("corpus,arm,length,seeds,perplexity_mean,ci95_lo,ci95_hi\n");
        for s in &study.summary {
            let [lo, hi] = s.perplexity.ci95.unwrap_or([f64::NAN; 2]);
            csv.push_str(&format!(
                "{corpus},{},{},{},{},{lo},{hi}\n",
                s.arm.name(),
                s.length,
                s.perplexity.n,
                s.perplexity.mean
            ));
        }
        Some((format!("resonance-lab-lm-{corpus}.csv"), csv))
    }

    /// Saves [`LmView::csv`]; returns what happened, for the status bar.
    pub fn export_csv(&self) -> String {
        match self.csv() {
            Some((file, csv)) => super::platform::save_file(&file, "text/csv", csv.as_bytes())
                .unwrap_or_else(|e| format!("CSV export failed: {e}")),
            None => "no committed real-text study to export".into(),
        }
    }

    /// Draws the tab: the section selector, then the section.
    pub fn ui(&mut self, ui: &mut Ui) {
        // the weights come when the tab first opens, so the default text is scored by the
        // time the live section is looked at (and the first frame waits for nothing)
        self.live.shown();
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut self.section, LmSection::Studies, "Committed studies")
                .on_hover_text("perplexity against length per arm, 5 paired seeds per corpus");
            ui.selectable_value(&mut self.section, LmSection::Live, "Score a text")
                .on_hover_text("the lab's own model reads a text with RoPE, YaRN, Resonance YaRN");
        });
        ui.separator();
        match self.section {
            LmSection::Studies => self.studies_ui(ui),
            LmSection::Live => self.live.ui(ui),
        }
    }

    fn studies_ui(&mut self, ui: &mut Ui) {
        if self.studies.is_empty() {
            ui.label("No real-text study is committed (results/lm_study_<corpus>.json).");
            return;
        }
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("Corpus").strong());
            for (i, (corpus, path, _)) in self.studies.iter().enumerate() {
                ui.selectable_value(&mut self.selected, i, corpus_title(corpus))
                    .on_hover_text(format!("read from {path} and its .json"));
            }
        });
        let (_, path, study) = &self.studies[self.selected.min(self.studies.len() - 1)];
        let study = match study {
            Ok(s) => s,
            Err(e) => {
                ui.colored_label(Color32::RED, e.as_str());
                return;
            }
        };
        let c = &study.config;
        ui.label(format!(
            "{} of {} runs, {} paired seeds, byte-level model (preset {}) pretrained at L = {} \
             bytes, YaRN s = {}; perplexity per byte on the test files, mean [95% CI] over \
             seeds ({path}). Lower is better.",
            study.finished_runs,
            study.planned_runs,
            c.seeds,
            c.preset.name(),
            c.train_len,
            c.scale,
        ));
        let h = (ui.available_height() / 2.0 - 60.0).clamp(160.0, 360.0);
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                perplexity_plot(ui, &study.summary, c.train_len, h);
                position_plot(ui, &study.position_curves, c.train_len, c.scale, h);
                comparison_table(ui, &study.comparisons);
                if let Some(b) = &study.budget_check {
                    ui.label(format!(
                        "Budget check: seeds {:?} also ran with patience and step cap doubled; \
                         the largest change of an arm's mean perplexity is {:.2}%, and {} of {} \
                         paired differences change sign ({path}).",
                        b.seeds,
                        b.max_change_percent,
                        b.sign_changes,
                        b.differences.len()
                    ));
                }
            });
    }
}

/// A corpus's selector label.
fn corpus_title(corpus: &str) -> String {
    match corpus {
        "code" => "code (Python 3.11 standard library)".into(),
        "prose" => "prose (Linux 6.1 documentation)".into(),
        other => other.into(),
    }
}

/// The x axis of length plots: log2 of the length, labelled with the length.
fn pow2_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 && (0.0..=30.0).contains(&v) {
        format!("{}", 1u64 << v.round() as u32)
    } else {
        String::new()
    }
}

/// The legend of the arm plots: an arm's line comes first and gives its entry the colour
/// (its band shares the name, so one click hides both).
fn arm_legend(corner: Corner) -> Legend {
    Legend::default()
        .position(corner)
        .color_conflict_handling(ColorConflictHandling::PickFirst)
}

fn band(p: &mut egui_plot::PlotUi<'_>, name: &str, color: Color32, pts: &[(f64, [f64; 2])]) {
    // one convex quad per step (a plot polygon is filled as a convex shape)
    for w in pts.windows(2) {
        let (x0, [lo0, hi0]) = w[0];
        let (x1, [lo1, hi1]) = w[1];
        let quad = vec![[x0, hi0], [x1, hi1], [x1, lo1], [x0, lo0]];
        p.add(
            Polygon::new(name, PlotPoints::new(quad))
                .fill_color(color.gamma_multiply(0.15))
                .stroke(egui::Stroke::NONE),
        );
    }
}

fn perplexity_plot(ui: &mut Ui, summary: &[ArmSummary], train_len: usize, h: f32) {
    ui.label("Perplexity per byte against evaluation length, each arm's mean with its 95% band");
    Plot::new("lm-ppl")
        .height(h)
        .legend(arm_legend(Corner::LeftTop))
        .x_axis_label("evaluation length (bytes, log scale)")
        .y_axis_label("perplexity per byte")
        .x_axis_formatter(|m, _| pow2_label(m.value))
        .show(ui, |p| {
            let l = (train_len as f64).log2();
            p.add(VLine::new(format!("L = {train_len}"), l).color(Color32::DARK_GREEN));
            for arm in Arm::ALL {
                let cells: Vec<&ArmSummary> = summary.iter().filter(|s| s.arm == arm).collect();
                if cells.is_empty() {
                    continue;
                }
                let (color, style) = arm_style(arm);
                let x = |s: &ArmSummary| (s.length as f64).log2();
                let bands: Vec<(f64, [f64; 2])> = cells
                    .iter()
                    .filter_map(|s| Some((x(s), s.perplexity.ci95?)))
                    .collect();
                let pts: Vec<[f64; 2]> = cells.iter().map(|s| [x(s), s.perplexity.mean]).collect();
                // the line first: the legend takes an arm's colour from its first item
                p.add(
                    Line::new(arm.label(), PlotPoints::new(pts))
                        .color(color)
                        .style(style),
                );
                band(p, arm.label(), color, &bands);
            }
        });
}

fn position_plot(ui: &mut Ui, curves: &[ArmCurve], train_len: usize, scale: usize, h: f32) {
    let Some(first) = curves.first() else {
        return;
    };
    ui.label(format!(
        "Loss per position in windows of {} bytes (mean of {}-position bins over seeds, 95% band)",
        first.length, first.bin
    ));
    Plot::new("lm-pos")
        .height(h)
        .legend(arm_legend(Corner::RightBottom))
        .x_axis_label("position in the window (bytes)")
        .y_axis_label("loss (nats per byte)")
        .show(ui, |p| {
            p.add(
                VLine::new(format!("L = {train_len}"), train_len as f64).color(Color32::DARK_GREEN),
            );
            let sl = (scale * train_len) as f64;
            p.add(VLine::new(format!("sL = {sl}"), sl).color(Color32::from_rgb(190, 140, 40)));
            for c in curves {
                let (color, style) = arm_style(c.arm);
                let x = |k: usize| ((k as f64) + 0.5) * c.bin as f64;
                let bands: Vec<(f64, [f64; 2])> = c
                    .ci95
                    .iter()
                    .enumerate()
                    .filter_map(|(k, ci)| Some((x(k), (*ci)?)))
                    .collect();
                let pts: Vec<[f64; 2]> =
                    c.mean.iter().enumerate().map(|(k, m)| [x(k), *m]).collect();
                p.add(
                    Line::new(c.arm.label(), PlotPoints::new(pts))
                        .color(color)
                        .style(style),
                );
                band(p, c.arm.label(), color, &bands);
            }
        });
}

/// A verdict's colour: green when the Resonance arm (a) is lower, red when the plain one is.
fn verdict_color(c: &LmComparison) -> Color32 {
    match c.ci95 {
        Some([_, hi]) if hi < 0.0 => Color32::from_rgb(40, 160, 80),
        Some([lo, _]) if lo > 0.0 => Color32::from_rgb(200, 60, 60),
        _ => Color32::GRAY,
    }
}

fn comparison_table(ui: &mut Ui, cmps: &[LmComparison]) {
    ui.label(RichText::new("Paired differences a - b of perplexity, by seed").strong());
    egui::Grid::new("lm-cmps")
        .striped(true)
        .num_columns(4)
        .show(ui, |ui| {
            for h in ["length", "a - b", "mean [95% CI]", "verdict"] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for c in cmps {
                ui.label(c.length.to_string());
                ui.label(format!("{} - {}", c.a.label(), c.b.label()));
                let ci = c
                    .ci95
                    .map_or(String::new(), |[lo, hi]| format!(" [{lo:+.3}, {hi:+.3}]"));
                ui.label(format!("{:+.3}{ci} (n = {})", c.mean_diff, c.n));
                ui.colored_label(verdict_color(c), &c.verdict);
                ui.end_row();
            }
        });
}
