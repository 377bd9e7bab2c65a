//! The study's Markdown report: how the study ran, the answer, the cells with their intervals,
//! the paired comparisons, the budget check and the paper's numbers beside ours. Writing only:
//! every number comes from [`super::study`]'s statistics.

use super::study::{BudgetCheck, CellSummary, Comparison, StudyResult, Verdict, counterpart};
use super::sweep::{PAPER_TABLE1, POSGEN_METHODS};
use super::tasks::Task;
use super::{Scaling, method_label};
use std::fmt::Write as _;

/// `RoPE 5.1, Resonance RoPE 11.4, ...` for a per-schedule list of points.
fn per_schedule_md(v: &[(String, f64)]) -> String {
    v.iter()
        .map(|(m, x)| format!("{m} {x:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns `a - b | n | mean [95% CI] | verdict` of a comparison's table row.
fn comparison_cells(cmp: &Comparison) -> String {
    format!(
        "{} - {} | {} | {} | {}",
        cmp.a,
        cmp.b,
        cmp.n,
        fmt_signed_ci(cmp.mean_diff, cmp.ci95),
        cmp.verdict.words(&cmp.a, &cmp.b)
    )
}

/// `mean [lo, hi]` with one decimal (just the mean without an interval).
pub fn fmt_ci(mean: f64, ci: Option<[f64; 2]>) -> String {
    match ci {
        Some([lo, hi]) => format!("{mean:.1} [{lo:.1}, {hi:.1}]"),
        None => format!("{mean:.1}"),
    }
}

/// `+mean [+lo, +hi]` with one decimal and signs (just the mean without an interval).
pub fn fmt_signed_ci(mean: f64, ci: Option<[f64; 2]>) -> String {
    match ci {
        Some([lo, hi]) => format!("{mean:+.1} [{lo:+.1}, {hi:+.1}]"),
        None => format!("{mean:+.1}"),
    }
}

impl StudyResult {
    /// The markdown report: setup, the answer per comparison, per-cell tables, Semi-recursive
    /// by position kind, the budget check and the paper's numbers for reference.
    pub fn markdown(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# PosGen study: protocol `{}`, scaling `{}`, preset `{}`\n",
            c.protocol.name(),
            c.scaling.name(),
            c.preset.name()
        );
        let _ = writeln!(s, "Command:\n\n```\n{}\n```\n", self.study_command);
        if !self.complete() {
            let _ = writeln!(
                s,
                "**Partial study: {} of {} planned runs.** It was stopped part-way; running the \
                 command above again resumes it and loses no finished run. Intervals below use \
                 the seeds that have finished.\n",
                self.runs.len(),
                self.planned_runs
            );
        }
        let total: f64 = self.runs.iter().map(|r| r.result.seconds).sum();
        let _ = writeln!(
            s,
            "- {} of {} planned runs finished ({:.0} s of training, summed over runs).\n\
             - Seeds {:?}; for each seed every schedule trains on the same data, from the same \
             initial weights, in the same batch order.\n\
             - Data: {}.\n\
             - Budget: up to {} steps; every {} steps the validation loss over ID target \
             positions (positions < L, training schedule) is measured, training stops after {} \
             measurements without improvement, and the best weights are tested. OOD positions \
             never decide when a run stops.\n\
             - Scaling: {}.\n\
             - Intervals: 95% Student-t over seeds; differences are paired by seed. Accuracies \
             in percent, teacher-forced per token on the test split.\n",
            self.runs.len(),
            self.planned_runs,
            total,
            c.seeds,
            self.protocol_note,
            c.cap,
            c.early_stop.every,
            c.early_stop.patience,
            match c.scaling {
                Scaling::Train => "the scaled schedule (s = L'/L = 4) in training and at test",
                Scaling::EvalOnly =>
                    "training with plain RoPE (or plain Resonance RoPE); YaRN only at test, with \
                     the authors' constants s = (L'+1)/(L+1), beta_fast = 2, beta_slow = 1 and \
                     the correction range computed from L'+1",
            }
        );
        self.answer_md(&mut s);
        self.cells_md(&mut s);
        self.comparisons_md(&mut s, "All paired comparisons", &self.comparisons);
        self.budget_md(&mut s);
        self.paper_md(&mut s);
        s
    }

    fn answer_md(&self, s: &mut String) {
        let _ = writeln!(s, "## The answer (OOD accuracy, a - b in points, 95% CI)\n");
        let _ = writeln!(
            s,
            "| task | comparison | n | a - b | verdict |\n|---|---|---|---|---|"
        );
        for cmp in self.comparisons.iter().filter(|x| x.metric == "ood") {
            let _ = writeln!(
                s,
                "| {} | {} |",
                task_title(&cmp.task),
                comparison_cells(cmp)
            );
        }
        s.push('\n');
    }

    fn cells_md(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "## Accuracy per schedule (mean [95% CI] over seeds, %)\n\n\
             | task | schedule | ID | OOD | mean steps | stopped early |\n|---|---|---|---|---|---|"
        );
        let get = |cell: &CellSummary, m: &str| {
            cell.metrics
                .iter()
                .find(|(k, _)| k == m)
                .map_or("-".to_string(), |(_, e)| fmt_ci(e.mean, e.ci95))
        };
        for cell in &self.summary {
            let n = cell.metrics.first().map_or(0, |(_, e)| e.n);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.0} | {}/{} |",
                task_title(&cell.task),
                cell.method,
                get(cell, "id"),
                get(cell, "ood"),
                cell.mean_steps,
                cell.stopped_early,
                n
            );
        }
        let semi: Vec<&CellSummary> = self
            .summary
            .iter()
            .filter(|c| c.task == Task::SemiRecursive.name())
            .collect();
        if !semi.is_empty() {
            let _ = writeln!(
                s,
                "\n### Semi-recursive by position kind\n\n\
                 At \"stay\" positions the far pointer does not move and \
                 x_l = 2 x_(l-1) - x_(l-4) (mod m): a local shortcut. At \"advance\" positions the \
                 token needs the far lookup. A model that learned only the shortcut scores about \
                 100% at stay and 1/m (5.9% for m = 17) at advance positions, 52.9% overall.\n\n\
                 | schedule | ID stay | ID advance | OOD stay | OOD advance |\n|---|---|---|---|---|"
            );
            for cell in semi {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    cell.method,
                    get(cell, "id_stay"),
                    get(cell, "id_advance"),
                    get(cell, "ood_stay"),
                    get(cell, "ood_advance")
                );
            }
        }
        s.push('\n');
    }

    fn comparisons_md(&self, s: &mut String, title: &str, cmps: &[Comparison]) {
        let _ = writeln!(
            s,
            "## {title}\n\n| task | metric | a - b | n | mean diff [95% CI] | verdict |\n\
             |---|---|---|---|---|---|"
        );
        for cmp in cmps {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                task_title(&cmp.task),
                cmp.metric,
                comparison_cells(cmp)
            );
        }
        s.push('\n');
    }

    fn budget_md(&self, s: &mut String) {
        let _ = writeln!(s, "## Budget check: twice the cap and twice the patience\n");
        let Some(b) = &self.budget_check else {
            let _ = writeln!(s, "Not run (no doubled-budget runs in this study).\n");
            return;
        };
        let clear_shifts: Vec<String> = b
            .shifts
            .iter()
            .filter(|c| c.verdict != Verdict::Unclear)
            .map(|c| {
                format!(
                    "{} {} {} - {} ({})",
                    c.task,
                    c.metric,
                    c.a,
                    c.b,
                    fmt_signed_ci(c.mean_diff, c.ci95)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "Seeds {:?} ({} of the study's {}) were also trained with {} steps at most and a \
             patience of {}. Each comparison below is paired by seed on these seeds under both \
             budgets; the shift is (a - b under the doubled budget) - (a - b under the main one), \
             paired by seed, with its 95% Student-t interval.\n\n\
             - Conclusions of the study reversed by the doubled budget (a clear verdict over \
             all seeds, the opposite clear verdict on the check seeds at the doubled budget): \
             {}.\n\
             - Verdicts that change between the budgets on the check seeds: {}.\n\
             - Shifts whose interval excludes 0 (doubling clearly moves the difference): {}.\n\
             - Mean absolute change of a run's OOD accuracy (points): {}. For scale, the \
             standard deviation of OOD accuracy across all seeds at the main budget (points, mean \
             over tasks): {}.\n\n\
             Among {} comparisons on fewer seeds than the study, some verdicts flip by chance \
             at the edge of their intervals, and a verdict clear over all seeds can be unclear \
             on the check seeds for want of seeds alone; a reversal, or a flip that comes with a \
             clear shift, is a real change.\n",
            b.seeds,
            b.seeds.len(),
            self.config.seeds.len(),
            2 * self.config.cap,
            2 * self.config.early_stop.patience,
            if b.reversed.is_empty() {
                "none".to_string()
            } else {
                b.reversed.join("; ")
            },
            if b.changed.is_empty() {
                "none".to_string()
            } else {
                b.changed.join("; ")
            },
            if clear_shifts.is_empty() {
                "none".to_string()
            } else {
                clear_shifts.join("; ")
            },
            per_schedule_md(&b.mean_abs_ood_change),
            if b.ood_seed_sd.is_empty() {
                "not recorded".to_string()
            } else {
                per_schedule_md(&b.ood_seed_sd)
            },
            b.main.len(),
        );
        self.budget_table_md(b, s);
    }

    /// The budget check's table: every comparison on all seeds, on the check seeds under both
    /// budgets, and the shift.
    fn budget_table_md(&self, b: &BudgetCheck, s: &mut String) {
        let _ = writeln!(
            s,
            "| task | metric | a - b | all seeds, main budget | check seeds, main budget | \
             check seeds, doubled budget | shift |\n|---|---|---|---|---|---|---|"
        );
        let cell = |c: Option<&Comparison>| {
            c.map_or("-".into(), |c| {
                format!(
                    "{} ({})",
                    fmt_signed_ci(c.mean_diff, c.ci95),
                    c.verdict.words(&c.a, &c.b)
                )
            })
        };
        for m in &b.main {
            let _ = writeln!(
                s,
                "| {} | {} | {} - {} | {} | {} | {} | {} |",
                task_title(&m.task),
                m.metric,
                m.a,
                m.b,
                cell(counterpart(&self.comparisons, m)),
                cell(Some(m)),
                cell(counterpart(&b.double, m)),
                counterpart(&b.shifts, m)
                    .map_or("-".into(), |c| fmt_signed_ci(c.mean_diff, c.ci95)),
            );
        }
        s.push('\n');
    }

    fn paper_md(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "## Paper Table 1 for reference (OOD %, paper model, 5 seeds, authors' protocol)\n\n\
             | schedule | Recursive | CoT | Semi-recursive |\n|---|---|---|---|"
        );
        for (row, &(m, r)) in POSGEN_METHODS.iter().enumerate() {
            let v = PAPER_TABLE1[row];
            let _ = writeln!(
                s,
                "| {} | {:.2} | {:.2} | {:.2} |",
                method_label(m, r),
                v[0],
                v[1],
                v[2]
            );
        }
    }
}

fn task_title(name: &str) -> &str {
    match Task::from_name(name) {
        Some(t) => t.title(),
        None => name,
    }
}
