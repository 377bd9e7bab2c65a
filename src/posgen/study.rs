//! The paired study behind "does Resonance help?": tasks x the paper's four schedules x seeds,
//! every run of one seed sharing its data, initial weights and batch order, trained to a
//! validation-loss plateau (early stopping with a cap), then summarised with paired 95%
//! confidence intervals (Student t over seeds) and a budget check that doubles the budget on a
//! subset of seeds. This module plans runs and does the statistics; running them (one process
//! per run, in parallel, resumable) is the CLI's job.

use super::data::Protocol;
use super::run_spec::TrainSpec;
use super::sweep::POSGEN_METHODS;
use super::tasks::Task;
use super::{EarlyStop, PresetName, RunResult, Scaling, method_label};
use crate::rope::{ConfigError, Method};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Which budget a run was trained under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Budget {
    /// The study's cap and patience.
    Main,
    /// Twice the cap and twice the patience (the budget check).
    Double,
}

/// What a study runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyConfig {
    /// Hyper-parameter preset of every run.
    pub preset: PresetName,
    /// Tasks.
    pub tasks: Vec<Task>,
    /// Seeds (each seed: same data, weights and batch order for all methods).
    pub seeds: Vec<u64>,
    /// How the splits are drawn.
    pub protocol: Protocol,
    /// Where the scaling applies.
    pub scaling: Scaling,
    /// Step cap of the main budget.
    pub cap: usize,
    /// Early-stopping rule of the main budget.
    pub early_stop: EarlyStop,
    /// The first this-many seeds are also trained with the doubled budget (0: no check).
    pub check_seeds: usize,
}

/// One run to do: its identity and the typed description that reproduces it (the CLI renders
/// it to the recorded command).
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRun {
    /// Task.
    pub task: Task,
    /// Schedule.
    pub method: Method,
    /// Resonance rounding.
    pub resonance: bool,
    /// Seed.
    pub seed: u64,
    /// Budget.
    pub budget: Budget,
    /// The run.
    pub spec: TrainSpec,
}

impl StudyConfig {
    /// Checks the study's own options (runs validate theirs when they start).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tasks.is_empty() {
            return Err(ConfigError::new("tasks", "need at least one task"));
        }
        if self.seeds.is_empty() {
            return Err(ConfigError::new("seeds", "must be in 1..=1000 (got 0)"));
        }
        if self.early_stop.patience == 0 {
            return Err(ConfigError::new(
                "patience",
                "must be in 1..=100000 (got 0)",
            ));
        }
        if self.early_stop.every == 0 {
            return Err(ConfigError::new("stop_every", "must be >= 1 (got 0)"));
        }
        if self.cap == 0 {
            return Err(ConfigError::new("cap", "must be >= 1 (got 0)"));
        }
        if self.check_seeds > self.seeds.len() {
            return Err(ConfigError::new(
                "check_seeds",
                format!(
                    "must be in 0..={} (the number of seeds; got {})",
                    self.seeds.len(),
                    self.check_seeds
                ),
            ));
        }
        Ok(())
    }

    fn spec(&self, task: Task, method: Method, resonance: bool, seed: u64, b: Budget) -> TrainSpec {
        let k = if b == Budget::Double { 2 } else { 1 };
        TrainSpec {
            protocol: Some(self.protocol),
            scaling: Some(self.scaling),
            steps: Some(k * self.cap),
            patience: Some(k * self.early_stop.patience),
            stop_every: Some(self.early_stop.every),
            ..TrainSpec::new(task, method, resonance, self.preset, seed)
        }
    }

    /// Every run of the study, main budget first (seed-major, so early results cover every
    /// method of a seed), then the budget check.
    pub fn plan(&self) -> Vec<PlannedRun> {
        let mut out = Vec::new();
        let check: Vec<u64> = self.seeds.iter().take(self.check_seeds).copied().collect();
        for (budget, seeds) in [(Budget::Main, &self.seeds), (Budget::Double, &check)] {
            for &seed in seeds {
                for &task in &self.tasks {
                    for &(method, resonance) in &POSGEN_METHODS {
                        out.push(PlannedRun {
                            task,
                            method,
                            resonance,
                            seed,
                            budget,
                            spec: self.spec(task, method, resonance, seed, budget),
                        });
                    }
                }
            }
        }
        out
    }
}

/// Groups runs into child processes: one each, except that under evaluation-only scaling the
/// YaRN and RoPE runs of one (task, seed, Resonance flag, budget) train the very same model, so
/// one process trains it once and tests it with both schedules (its `also_eval_method`). Each
/// run keeps its own description, which reproduces it on its own.
pub fn batches(scaling: Scaling, todo: &[PlannedRun]) -> Vec<(TrainSpec, Vec<PlannedRun>)> {
    let key = |p: &PlannedRun| (p.task, p.seed, p.resonance, p.budget);
    let mut out: Vec<(TrainSpec, Vec<PlannedRun>)> = Vec::new();
    let mut used = vec![false; todo.len()];
    for (i, run) in todo.iter().enumerate() {
        if used[i] {
            continue;
        }
        used[i] = true;
        let want = if run.method == Method::YARN {
            Some(Method::ROPE)
        } else if run.method == Method::ROPE {
            Some(Method::YARN)
        } else {
            None
        };
        let partner = want.filter(|_| scaling == Scaling::EvalOnly).and_then(|m| {
            (0..todo.len()).find(|&j| !used[j] && todo[j].method == m && key(&todo[j]) == key(run))
        });
        match partner {
            Some(j) => {
                used[j] = true;
                // the YaRN run trains and is tested first; RoPE is its second evaluation
                let (yarn, rope) = if run.method == Method::YARN {
                    (run, &todo[j])
                } else {
                    (&todo[j], run)
                };
                let spec = TrainSpec {
                    also_eval_method: Some(Method::ROPE),
                    ..yarn.spec.clone()
                };
                out.push((spec, vec![yarn.clone(), rope.clone()]));
            }
            None => out.push((run.spec.clone(), vec![run.clone()])),
        }
    }
    out
}

/// A finished run as the study records it: the reproducing command, the budget, and the run's
/// result (loss curve dropped to keep the file small; the early-stopping losses stay).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyRun {
    /// The exact command that reproduces this run.
    pub command: String,
    /// Which budget it ran under.
    pub budget: Budget,
    /// The run's result, flattened into this record.
    #[serde(flatten)]
    pub result: RunResult,
}

/// Mean with a 95% interval over seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Number of seeds.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (`None` for one seed).
    pub sd: Option<f64>,
    /// 95% confidence interval `[lo, hi]` of the mean (Student t, n - 1 degrees of freedom;
    /// `None` for one seed).
    pub ci95: Option<[f64; 2]>,
}

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom.
pub fn t_quantile_975(df: usize) -> f64 {
    match StudentsT::new(0.0, 1.0, df as f64) {
        Ok(t) if df > 0 => t.inverse_cdf(0.975),
        _ => f64::NAN,
    }
}

/// Mean and Student-t 95% interval of `v` (no interval for fewer than two values).
pub fn estimate(v: &[f64]) -> Estimate {
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n.max(1) as f64;
    let sd = (n > 1)
        .then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt());
    let ci95 = sd.map(|sd| {
        let half = t_quantile_975(n - 1) * sd / (n as f64).sqrt();
        [mean - half, mean + half]
    });
    Estimate { n, mean, sd, ci95 }
}

/// Which way a paired difference falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The whole interval is above 0: `a` scores higher.
    AHigher,
    /// The whole interval is below 0: `b` scores higher.
    BHigher,
    /// The interval contains 0 (or there are too few seeds to say).
    Unclear,
}

impl Verdict {
    /// The verdict of a 95% interval of `a - b` (`None`: too few seeds to say).
    pub fn of(ci: Option<[f64; 2]>) -> Verdict {
        match ci {
            Some([lo, _]) if lo > 0.0 => Verdict::AHigher,
            Some([_, hi]) if hi < 0.0 => Verdict::BHigher,
            _ => Verdict::Unclear,
        }
    }

    /// The verdict in words, e.g. `Resonance YaRN higher`.
    pub fn words(self, a: &str, b: &str) -> String {
        match self {
            Verdict::AHigher => format!("{a} higher"),
            Verdict::BHigher => format!("{b} higher"),
            Verdict::Unclear => "no clear difference".into(),
        }
    }
}

/// A paired difference `a - b` over the seeds both have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Task name.
    pub task: String,
    /// The accuracy compared: `ood`, `id`, and on Semi-recursive also `ood_advance`,
    /// `ood_stay`, `id_advance`, `id_stay`.
    pub metric: String,
    /// Label of the first schedule, e.g. `Resonance YaRN`.
    pub a: String,
    /// Label of the second schedule.
    pub b: String,
    /// Seeds with both runs.
    pub n: usize,
    /// Mean of `a - b`, in accuracy points (percent).
    pub mean_diff: f64,
    /// 95% interval of the mean difference (paired Student t over seeds), in points; `None`
    /// with one seed.
    pub ci95: Option<[f64; 2]>,
    /// Which way it falls.
    pub verdict: Verdict,
}

/// The comparisons the study reports: (a, b) as (method, resonance) pairs.
pub const COMPARISONS: [((Method, bool), (Method, bool)); 3] = [
    ((Method::ROPE, true), (Method::ROPE, false)),
    ((Method::YARN, true), (Method::YARN, false)),
    ((Method::YARN, false), (Method::ROPE, false)),
];

/// An accuracy of a run by metric name, in percent; `None` when the run does not have it.
pub fn metric(r: &RunResult, name: &str) -> Option<f64> {
    let v = match name {
        "ood" => Some(r.ood_accuracy),
        "id" => Some(r.id_accuracy),
        "ood_advance" => r.ood_advance_accuracy,
        "ood_stay" => r.ood_stay_accuracy,
        "id_advance" => r.id_advance_accuracy,
        "id_stay" => r.id_stay_accuracy,
        _ => None,
    };
    v.map(|x| 100.0 * x)
}

fn metrics_of(task: Task) -> &'static [&'static str] {
    if task == Task::SemiRecursive {
        &[
            "ood",
            "id",
            "ood_advance",
            "ood_stay",
            "id_advance",
            "id_stay",
        ]
    } else {
        &["ood", "id"]
    }
}

fn runs_of<'a>(
    runs: &'a [StudyRun],
    budget: Budget,
    task: Task,
    (method, resonance): (Method, bool),
) -> impl Iterator<Item = &'a RunResult> + 'a {
    runs.iter()
        .filter(move |r| {
            r.budget == budget
                && r.result.task == task.name()
                && r.result.method == method.name()
                && r.result.resonance == resonance
        })
        .map(|r| &r.result)
}

/// Per seed (of `seeds` when given), the paired difference `a - b` of `metric` in points, from
/// the runs of `budget`; seeds without both runs (or without the metric) are left out.
fn paired_diffs(
    runs: &[StudyRun],
    budget: Budget,
    task: Task,
    metric_name: &str,
    (a, b): ((Method, bool), (Method, bool)),
    seeds: Option<&[u64]>,
) -> Vec<(u64, f64)> {
    runs_of(runs, budget, task, a)
        .filter(|ra| seeds.is_none_or(|s| s.contains(&ra.seed)))
        .filter_map(|ra| {
            let rb = runs_of(runs, budget, task, b).find(|rb| rb.seed == ra.seed)?;
            Some((ra.seed, metric(ra, metric_name)? - metric(rb, metric_name)?))
        })
        .collect()
}

/// A comparison of `a - b` on `task` and `metric_name` from the values `v` (one per seed).
fn comparison_of(
    task: Task,
    metric_name: &str,
    (a, b): ((Method, bool), (Method, bool)),
    v: &[f64],
) -> Comparison {
    let e = estimate(v);
    Comparison {
        task: task.name().into(),
        metric: metric_name.into(),
        a: method_label(a.0, a.1),
        b: method_label(b.0, b.1),
        n: e.n,
        mean_diff: e.mean,
        ci95: e.ci95,
        verdict: Verdict::of(e.ci95),
    }
}

/// Paired comparisons of `runs` (of one budget, restricted to `seeds` when given).
pub fn comparisons(
    runs: &[StudyRun],
    budget: Budget,
    tasks: &[Task],
    seeds: Option<&[u64]>,
) -> Vec<Comparison> {
    let mut out = Vec::new();
    for &task in tasks {
        for &m in metrics_of(task) {
            for &pair in &COMPARISONS {
                let diffs: Vec<f64> = paired_diffs(runs, budget, task, m, pair, seeds)
                    .into_iter()
                    .map(|(_, d)| d)
                    .collect();
                if !diffs.is_empty() {
                    out.push(comparison_of(task, m, pair, &diffs));
                }
            }
        }
    }
    out
}

/// The budget check's comparisons on the check `seeds`, each on exactly the seeds that have
/// both doubled-budget runs of it: `a - b` under the main budget, under the doubled budget, and
/// the shift between them, (a - b doubled) - (a - b main) paired by seed, as a comparison whose
/// `mean_diff` is that shift in points (verdict `a-higher`: doubling clearly raises `a - b`).
fn check_comparisons(runs: &[StudyRun], tasks: &[Task], seeds: &[u64]) -> [Vec<Comparison>; 3] {
    let [mut main, mut double, mut shifts] = [Vec::new(), Vec::new(), Vec::new()];
    for &task in tasks {
        for &m in metrics_of(task) {
            for &pair in &COMPARISONS {
                let (mut vm, mut vd, mut vs) = (Vec::new(), Vec::new(), Vec::new());
                let main_diffs = paired_diffs(runs, Budget::Main, task, m, pair, Some(seeds));
                for (seed, d) in paired_diffs(runs, Budget::Double, task, m, pair, Some(seeds)) {
                    if let Some(&(_, base)) = main_diffs.iter().find(|(s, _)| *s == seed) {
                        vm.push(base);
                        vd.push(d);
                        vs.push(d - base);
                    }
                }
                if !vs.is_empty() {
                    main.push(comparison_of(task, m, pair, &vm));
                    double.push(comparison_of(task, m, pair, &vd));
                    shifts.push(comparison_of(task, m, pair, &vs));
                }
            }
        }
    }
    [main, double, shifts]
}

/// Per task and schedule: estimates of each metric over the seeds of the main budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellSummary {
    /// Task name.
    pub task: String,
    /// Schedule label.
    pub method: String,
    /// Metric name (as in [`Comparison::metric`]) and its estimate in percent.
    pub metrics: Vec<(String, Estimate)>,
    /// Mean optimiser steps trained.
    pub mean_steps: f64,
    /// Runs stopped by the plateau rule before the cap.
    pub stopped_early: usize,
    /// Mean test accuracy per target position (fractions) and the 95% band `[lo, hi]`.
    pub per_position: Vec<[f64; 3]>,
    /// First target position of `per_position`.
    pub first_position: usize,
}

/// Summaries of every (task, schedule) cell of the main budget.
pub fn summarise(runs: &[StudyRun], tasks: &[Task]) -> Vec<CellSummary> {
    let mut out = Vec::new();
    for &task in tasks {
        for &mr in &POSGEN_METHODS {
            let rs: Vec<&RunResult> = runs_of(runs, Budget::Main, task, mr).collect();
            if rs.is_empty() {
                continue;
            }
            let metrics = metrics_of(task)
                .iter()
                .filter_map(|&m| {
                    let v: Vec<f64> = rs.iter().filter_map(|r| metric(r, m)).collect();
                    (!v.is_empty()).then(|| (m.to_string(), estimate(&v)))
                })
                .collect();
            let len = rs
                .iter()
                .map(|r| r.per_position_accuracy.len())
                .min()
                .unwrap_or(0);
            let per_position = (0..len)
                .map(|p| {
                    let e = estimate(
                        &rs.iter()
                            .map(|r| r.per_position_accuracy[p])
                            .collect::<Vec<_>>(),
                    );
                    let [lo, hi] = e.ci95.unwrap_or([e.mean, e.mean]);
                    [e.mean, lo.max(0.0), hi.min(1.0)]
                })
                .collect();
            out.push(CellSummary {
                task: task.name().into(),
                method: method_label(mr.0, mr.1),
                metrics,
                mean_steps: rs.iter().map(|r| r.steps as f64).sum::<f64>() / rs.len() as f64,
                stopped_early: rs.iter().filter(|r| r.stopped_early).count(),
                per_position,
                first_position: rs[0].first_target_position,
            });
        }
    }
    out
}

/// The budget check: the same comparisons on the check seeds under both budgets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetCheck {
    /// Seeds trained under both budgets.
    pub seeds: Vec<u64>,
    /// Comparisons on those seeds under the main budget (each on the seeds that have both of
    /// its doubled runs).
    pub main: Vec<Comparison>,
    /// The same under the doubled budget, on the same seeds.
    pub double: Vec<Comparison>,
    /// Comparisons whose verdict differs between the budgets (`task metric a - b`).
    pub changed: Vec<String>,
    /// Conclusions the doubled budget reverses: comparisons with a clear verdict over all seeds
    /// at the main budget whose verdict on the check seeds at the doubled budget is clear the
    /// other way (`task metric a - b`).
    #[serde(default)]
    pub reversed: Vec<String>,
    /// Mean absolute change of OOD accuracy (points) from main to double, per schedule.
    pub mean_abs_ood_change: Vec<(String, f64)>,
    /// For scale: the standard deviation of OOD accuracy across all seeds at the main budget
    /// (points), averaged over tasks, per schedule. A budget change that moves runs by about
    /// this much adds noise of the size the seeds already have.
    #[serde(default)]
    pub ood_seed_sd: Vec<(String, f64)>,
    /// Per comparison, the change of `a - b` from the main to the doubled budget, paired by
    /// check seed: `mean_diff` is the mean shift in points, `ci95` its Student-t interval, and
    /// the verdict whether the shift is clear (`a-higher`: doubling raises `a - b`).
    #[serde(default)]
    pub shifts: Vec<Comparison>,
}

/// Compares verdicts under the main and the doubled budget on the check seeds.
pub fn budget_check(runs: &[StudyRun], config: &StudyConfig) -> Option<BudgetCheck> {
    let seeds: Vec<u64> = config
        .seeds
        .iter()
        .take(config.check_seeds)
        .copied()
        .collect();
    // while a study runs, only the check seeds with doubled runs so far
    let seeds: Vec<u64> = seeds
        .into_iter()
        .filter(|&s| {
            runs.iter()
                .any(|r| r.budget == Budget::Double && r.result.seed == s)
        })
        .collect();
    if seeds.is_empty() {
        return None;
    }
    let [main, double, shifts] = check_comparisons(runs, &config.tasks, &seeds);
    let changed = main
        .iter()
        .filter_map(|m| {
            let d = counterpart(&double, m)?;
            (d.verdict != m.verdict).then(|| format!("{} {} {} - {}", m.task, m.metric, m.a, m.b))
        })
        .collect();
    let all_seeds = comparisons(runs, Budget::Main, &config.tasks, None);
    let reversed = all_seeds
        .iter()
        .filter_map(|m| {
            let d = counterpart(&double, m)?;
            let opposite = matches!(
                (m.verdict, d.verdict),
                (Verdict::AHigher, Verdict::BHigher) | (Verdict::BHigher, Verdict::AHigher)
            );
            opposite.then(|| format!("{} {} {} - {}", m.task, m.metric, m.a, m.b))
        })
        .collect();
    // every run's change between the budgets, over all tasks
    let mean_abs_ood_change = mean_per_schedule(|mr| {
        config
            .tasks
            .iter()
            .flat_map(|&t| {
                runs_of(runs, Budget::Double, t, mr).filter_map(move |d| {
                    let m = runs_of(runs, Budget::Main, t, mr).find(|m| m.seed == d.seed)?;
                    Some(100.0 * (d.ood_accuracy - m.ood_accuracy).abs())
                })
            })
            .collect()
    });
    // one standard deviation across seeds per task
    let ood_seed_sd = mean_per_schedule(|mr| {
        config
            .tasks
            .iter()
            .filter_map(|&t| {
                let v: Vec<f64> = runs_of(runs, Budget::Main, t, mr)
                    .map(|r| 100.0 * r.ood_accuracy)
                    .collect();
                estimate(&v).sd
            })
            .collect()
    });
    Some(BudgetCheck {
        seeds,
        main,
        double,
        changed,
        reversed,
        mean_abs_ood_change,
        ood_seed_sd,
        shifts,
    })
}

/// The comparison in `cmps` of the same task, metric and schedules as `m` (e.g. the doubled
/// budget's counterpart of a main-budget comparison).
pub fn counterpart<'a>(cmps: &'a [Comparison], m: &Comparison) -> Option<&'a Comparison> {
    cmps.iter()
        .find(|d| d.task == m.task && d.metric == m.metric && d.a == m.a && d.b == m.b)
}

/// A study's results file: what ran, every run, and the statistics derived from them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyResult {
    /// What the study runs.
    pub config: StudyConfig,
    /// The command that produced the study.
    pub study_command: String,
    /// What the protocol's validation and test splits measure.
    pub protocol_note: String,
    /// Every finished run.
    pub runs: Vec<StudyRun>,
    /// Paired comparisons under the main budget over all seeds.
    pub comparisons: Vec<Comparison>,
    /// Per (task, schedule) estimates and per-position curves with bands.
    pub summary: Vec<CellSummary>,
    /// Verdicts under the main and the doubled budget on the check seeds.
    pub budget_check: Option<BudgetCheck>,
    /// Runs planned in all (the study is complete when `runs` has them all).
    pub planned_runs: usize,
}

impl StudyResult {
    /// Derives comparisons, summaries and the budget check from `runs`.
    pub fn new(config: StudyConfig, study_command: String, runs: Vec<StudyRun>) -> StudyResult {
        let planned_runs = config.plan().len();
        StudyResult {
            comparisons: comparisons(&runs, Budget::Main, &config.tasks, None),
            summary: summarise(&runs, &config.tasks),
            budget_check: budget_check(&runs, &config),
            protocol_note: config.protocol.caveat().into(),
            study_command,
            planned_runs,
            runs,
            config,
        }
    }

    /// Whether every planned run has finished.
    pub fn complete(&self) -> bool {
        self.runs.len() >= self.planned_runs
    }
}

/// Per schedule (labelled), the mean of the values `values` gives for it (0 when none).
pub(super) fn mean_per_schedule(values: impl Fn((Method, bool)) -> Vec<f64>) -> Vec<(String, f64)> {
    POSGEN_METHODS
        .iter()
        .map(|&mr| {
            let v = values(mr);
            let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
            (method_label(mr.0, mr.1), mean)
        })
        .collect()
}
