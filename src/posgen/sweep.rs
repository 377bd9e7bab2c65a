//! Tasks x methods x seeds, summarised like the paper's Table 1 (markdown and JSON).

use super::error::PosgenError;
use super::tasks::Task;
use super::{PresetName, RunConfig, RunResult, Scaling, Trainer, method_label};
use crate::rope::{ConfigError, Method};
use serde::Serialize;

/// The four schedules compared in PosGen: RoPE, Resonance RoPE, YaRN, Resonance YaRN.
pub const POSGEN_METHODS: [(Method, bool); 4] = [
    (Method::ROPE, false),
    (Method::ROPE, true),
    (Method::YARN, false),
    (Method::YARN, true),
];

/// The paper's Table 1 (OOD accuracy %, 5 seeds), rows in [`POSGEN_METHODS`] order, columns
/// in [`Task::ALL`] order; shown next to our numbers for reference.
pub const PAPER_TABLE1: [[f64; 3]; 4] = [
    [65.29, 69.56, 17.96],
    [62.64, 75.25, 29.78],
    [95.93, 98.71, 33.70],
    [98.30, 99.58, 48.46],
];

/// What a sweep runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepConfig {
    /// Preset of every run.
    pub preset: PresetName,
    /// Tasks (columns).
    pub tasks: Vec<Task>,
    /// Seeds per cell.
    pub seeds: Vec<u64>,
    /// Steps per run (`None`: the preset's).
    pub steps: Option<usize>,
    /// Where YaRN scaling applies.
    pub scaling: Scaling,
}

/// Mean and sample standard deviation of one cell.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cell {
    /// Task name.
    pub task: String,
    /// Method label.
    pub method: String,
    /// Mean OOD accuracy in %.
    pub ood_mean: f64,
    /// Sample standard deviation of the OOD accuracy in % (0 with one seed).
    pub ood_std: f64,
    /// Mean ID accuracy in %.
    pub id_mean: f64,
    /// OOD accuracy of each seed in %.
    pub ood_per_seed: Vec<f64>,
}

/// A finished sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepResult {
    /// What ran.
    pub config: SweepConfig,
    /// Table cells, method-major.
    pub cells: Vec<Cell>,
    /// Every run (loss curves and per-position accuracies omitted only if empty).
    pub runs: Vec<RunResult>,
    /// Total seconds of all runs.
    pub seconds: f64,
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// Runs every (task, method, seed) in order; `progress` is called with a line after each run.
pub fn run_sweep(
    config: &SweepConfig,
    mut progress: impl FnMut(&str),
) -> Result<SweepResult, PosgenError> {
    if config.tasks.is_empty() {
        return Err(ConfigError::new("tasks", "need at least one task").into());
    }
    if config.seeds.is_empty() {
        return Err(ConfigError::new("seeds", "need at least one seed").into());
    }
    let total = config.tasks.len() * POSGEN_METHODS.len() * config.seeds.len();
    let mut runs = Vec::with_capacity(total);
    let mut cells = Vec::new();
    let mut seconds = 0.0;
    for &(method, resonance) in &POSGEN_METHODS {
        for &task in &config.tasks {
            let mut ood = Vec::new();
            let mut id = Vec::new();
            for &seed in &config.seeds {
                let mut rc = RunConfig::new(config.preset, task, method, resonance, seed);
                rc.scaling = config.scaling;
                if let Some(s) = config.steps {
                    rc.steps = s;
                }
                let mut trainer = Trainer::new(rc)?;
                let r = trainer.run()?;
                seconds += r.seconds;
                progress(&format!(
                    "[{}/{}] {} {} seed {}: ID {:.1}% OOD {:.1}% final loss {:.3} ({:.1}s)",
                    runs.len() + 1,
                    total,
                    task.name(),
                    r.label,
                    seed,
                    100.0 * r.id_accuracy,
                    100.0 * r.ood_accuracy,
                    r.loss_curve.last().copied().unwrap_or(f32::NAN),
                    r.seconds
                ));
                ood.push(100.0 * r.ood_accuracy);
                id.push(100.0 * r.id_accuracy);
                runs.push(r);
            }
            let (om, os) = mean_std(&ood);
            let (im, _) = mean_std(&id);
            cells.push(Cell {
                task: task.name().to_string(),
                method: method_label(method, resonance),
                ood_mean: om,
                ood_std: os,
                id_mean: im,
                ood_per_seed: ood,
            });
        }
    }
    Ok(SweepResult {
        config: config.clone(),
        cells,
        runs,
        seconds,
    })
}

impl SweepResult {
    fn cell(&self, method: &str, task: Task) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.method == method && c.task == task.name())
    }

    /// The Table-1-shaped markdown: OOD accuracy (mean ± std over seeds), ID accuracy, and the
    /// paper's numbers for reference. `command` is recorded verbatim.
    pub fn markdown(&self, command: &str) -> String {
        let c = &self.config;
        let mut s = String::new();
        s.push_str(&format!(
            "# PosGen sweep, preset `{}`\n\nCommand:\n\n```\n{}\n```\n\n",
            c.preset.name(),
            command
        ));
        let steps = self.runs.first().map(|r| r.steps).unwrap_or(0);
        let scaling = match c.scaling {
            Scaling::Train => {
                "YaRN scaling (s = 4) applied in training and evaluation (paper text)"
            }
            Scaling::EvalOnly => "YaRN scaling (s = 4) applied only at evaluation (authors' code)",
        };
        s.push_str(&format!(
            "Seeds {:?}, {} steps per run, {}; trained on length {}, tested to {}; total {:.0} s.\n\n",
            c.seeds,
            steps,
            scaling,
            self.runs.first().map(|r| r.train_len).unwrap_or(0),
            self.runs.first().map(|r| r.eval_len).unwrap_or(0),
            self.seconds
        ));
        let header = |s: &mut String, title: &str| {
            s.push_str(&format!("## {title}\n\n| method |"));
            for t in &c.tasks {
                s.push_str(&format!(" {} |", t.title()));
            }
            s.push_str("\n|---|");
            for _ in &c.tasks {
                s.push_str("---|");
            }
            s.push('\n');
        };
        header(&mut s, "OOD accuracy % (mean ± std over seeds)");
        for &(m, r) in &POSGEN_METHODS {
            let label = method_label(m, r);
            s.push_str(&format!("| {label} |"));
            for &t in &c.tasks {
                match self.cell(&label, t) {
                    Some(cell) => {
                        s.push_str(&format!(" {:.2} ± {:.2} |", cell.ood_mean, cell.ood_std))
                    }
                    None => s.push_str(" - |"),
                }
            }
            s.push('\n');
        }
        s.push('\n');
        header(&mut s, "ID accuracy % (mean over seeds)");
        for &(m, r) in &POSGEN_METHODS {
            let label = method_label(m, r);
            s.push_str(&format!("| {label} |"));
            for &t in &c.tasks {
                match self.cell(&label, t) {
                    Some(cell) => s.push_str(&format!(" {:.2} |", cell.id_mean)),
                    None => s.push_str(" - |"),
                }
            }
            s.push('\n');
        }
        s.push('\n');
        header(
            &mut s,
            "Paper Table 1 for reference (OOD %, paper preset, 5 seeds)",
        );
        for (row, &(m, r)) in POSGEN_METHODS.iter().enumerate() {
            s.push_str(&format!("| {} |", method_label(m, r)));
            for &t in &c.tasks {
                let col = Task::ALL.iter().position(|&x| x == t).unwrap_or(0);
                s.push_str(&format!(" {:.2} |", PAPER_TABLE1[row][col]));
            }
            s.push('\n');
        }
        s
    }
}
