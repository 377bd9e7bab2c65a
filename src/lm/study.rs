//! The paired study on real text: for each seed one RoPE-pretrained model and every way of
//! extending it (zero-shot YaRN and Resonance YaRN, and each fine-tuned at L and at s x L), plus
//! Resonance RoPE pretrained from the same initial weights on the same windows. Differences are
//! paired by seed, with Student-t 95% intervals, as in the PosGen study.

use super::preset::LmPresetName;
use crate::posgen::study::{Estimate, estimate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One arm: how a model is trained and extended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arm {
    /// Pretrained with RoPE, evaluated with RoPE.
    Rope,
    /// Pretrained with Resonance RoPE (same initial weights and windows), evaluated with it.
    ResonanceRope,
    /// The RoPE model evaluated with YaRN, no fine-tune.
    YarnZeroShot,
    /// The RoPE model evaluated with Resonance YaRN, no fine-tune.
    ResonanceYarnZeroShot,
    /// Fine-tuned with YaRN at the pretraining length L.
    YarnFtShort,
    /// Fine-tuned with Resonance YaRN at L.
    ResonanceYarnFtShort,
    /// Fine-tuned with YaRN at s x L.
    YarnFtLong,
    /// Fine-tuned with Resonance YaRN at s x L.
    ResonanceYarnFtLong,
}

impl Arm {
    /// Every arm, in report order.
    pub const ALL: [Arm; 8] = [
        Arm::Rope,
        Arm::ResonanceRope,
        Arm::YarnZeroShot,
        Arm::ResonanceYarnZeroShot,
        Arm::YarnFtShort,
        Arm::ResonanceYarnFtShort,
        Arm::YarnFtLong,
        Arm::ResonanceYarnFtLong,
    ];

    /// The name results files use.
    pub fn name(self) -> &'static str {
        match self {
            Arm::Rope => "rope",
            Arm::ResonanceRope => "resonance-rope",
            Arm::YarnZeroShot => "yarn-zero-shot",
            Arm::ResonanceYarnZeroShot => "resonance-yarn-zero-shot",
            Arm::YarnFtShort => "yarn-ft-short",
            Arm::ResonanceYarnFtShort => "resonance-yarn-ft-short",
            Arm::YarnFtLong => "yarn-ft-long",
            Arm::ResonanceYarnFtLong => "resonance-yarn-ft-long",
        }
    }

    /// A label for plots and reports.
    pub fn label(self) -> &'static str {
        match self {
            Arm::Rope => "RoPE",
            Arm::ResonanceRope => "Resonance RoPE",
            Arm::YarnZeroShot => "YaRN zero-shot",
            Arm::ResonanceYarnZeroShot => "Resonance YaRN zero-shot",
            Arm::YarnFtShort => "YaRN FT at L",
            Arm::ResonanceYarnFtShort => "Resonance YaRN FT at L",
            Arm::YarnFtLong => "YaRN FT at sL",
            Arm::ResonanceYarnFtLong => "Resonance YaRN FT at sL",
        }
    }

    /// Whether the arm uses Resonance rounding.
    pub fn resonance(self) -> bool {
        matches!(
            self,
            Arm::ResonanceRope
                | Arm::ResonanceYarnZeroShot
                | Arm::ResonanceYarnFtShort
                | Arm::ResonanceYarnFtLong
        )
    }

    /// Whether the arm's model is the Resonance-RoPE-pretrained one.
    pub fn pretrained_resonance(self) -> bool {
        self == Arm::ResonanceRope
    }

    /// Whether the schedule at evaluation is YaRN.
    pub fn yarn(self) -> bool {
        !matches!(self, Arm::Rope | Arm::ResonanceRope)
    }

    /// Whether the arm fine-tunes, and where: `Some(false)` at L, `Some(true)` at s x L,
    /// `None` for no fine-tune.
    pub fn finetune_long(self) -> Option<bool> {
        match self {
            Arm::YarnFtShort | Arm::ResonanceYarnFtShort => Some(false),
            Arm::YarnFtLong | Arm::ResonanceYarnFtLong => Some(true),
            _ => None,
        }
    }

    /// The pairs the study compares: `(a, b)` for `a - b`.
    pub const PAIRS: [(Arm, Arm); 4] = [
        (Arm::ResonanceRope, Arm::Rope),
        (Arm::ResonanceYarnZeroShot, Arm::YarnZeroShot),
        (Arm::ResonanceYarnFtShort, Arm::YarnFtShort),
        (Arm::ResonanceYarnFtLong, Arm::YarnFtLong),
    ];
}

/// Which training budget a run had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Budget {
    /// The preset's patience and step cap.
    Main,
    /// Both doubled: the convergence check.
    Doubled,
}

impl Budget {
    /// Both budgets, main first.
    pub const ALL: [Budget; 2] = [Budget::Main, Budget::Doubled];

    /// The name in files and checkpoint directories (as serialized).
    pub fn name(self) -> &'static str {
        match self {
            Budget::Main => "main",
            Budget::Doubled => "doubled",
        }
    }

    /// The `lm pretrain --budget` multiplier of the preset's patience and step cap.
    pub fn multiplier(self) -> usize {
        match self {
            Budget::Main => 1,
            Budget::Doubled => 2,
        }
    }
}

/// The loss at each position of the longest evaluation window, averaged in bins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PositionCurve {
    /// Window length.
    pub length: usize,
    /// Positions per bin.
    pub bin: usize,
    /// Mean loss (nats per byte) of each bin of positions.
    pub loss: Vec<f64>,
}

impl PositionCurve {
    /// `loss` (one value per position) averaged over bins of `bin` positions.
    pub fn binned(loss: &[f64], bin: usize) -> PositionCurve {
        let bin = bin.max(1);
        PositionCurve {
            length: loss.len(),
            bin,
            loss: loss
                .chunks(bin)
                .map(|c| c.iter().sum::<f64>() / c.len() as f64)
                .collect(),
        }
    }
}

/// A finished run of the study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmRun {
    /// The commands that reproduce it from nothing (pretraining included), joined by `&&`.
    pub command: String,
    /// Corpus.
    pub corpus: String,
    /// Seed of the initial weights and the data order.
    pub seed: u64,
    /// Arm.
    pub arm: Arm,
    /// Budget.
    pub budget: Budget,
    /// Pretraining steps (to the validation plateau or the cap).
    pub steps: usize,
    /// Fine-tuning steps (0 for zero-shot arms).
    pub finetune_steps: usize,
    /// Validation loss of the pretrained model at L (nats per byte).
    pub pretrain_val_loss: f64,
    /// Perplexity per byte, keyed by evaluation length.
    pub perplexity: BTreeMap<usize, f64>,
    /// Bits per byte, keyed by evaluation length.
    pub bits_per_byte: BTreeMap<usize, f64>,
    /// Loss per position at the longest length.
    pub loss_per_position: PositionCurve,
    /// Digest of the pretraining windows: every arm built on the same pretrained model shares
    /// it; RoPE and Resonance RoPE draw the same windows in the same order but may stop at
    /// different steps.
    pub data_order: String,
    /// Wall seconds of all its steps (pretraining, fine-tune, evaluation).
    pub seconds: f64,
}

/// A paired difference `a - b` of perplexity at one length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmComparison {
    /// Corpus.
    pub corpus: String,
    /// Evaluation length.
    pub length: usize,
    /// Arm a.
    pub a: Arm,
    /// Arm b.
    pub b: Arm,
    /// Seeds both have.
    pub n: usize,
    /// Mean of perplexity(a) - perplexity(b) over seeds.
    pub mean_diff: f64,
    /// 95% interval of the mean difference (`None` for one seed).
    pub ci95: Option<[f64; 2]>,
    /// Mean of bits per byte (a) - (b).
    pub mean_diff_bits_per_byte: f64,
    /// 95% interval of the bits-per-byte difference.
    pub ci95_bits_per_byte: Option<[f64; 2]>,
    /// Which way the evidence falls: `a lower`, `b lower` or `no clear difference`.
    pub verdict: String,
}

/// The paired perplexity and bits-per-byte differences of `runs` (one corpus) under `budget`.
pub fn comparisons(runs: &[LmRun], budget: Budget, lengths: &[usize]) -> Vec<LmComparison> {
    let mut out = Vec::new();
    for &length in lengths {
        for (a, b) in Arm::PAIRS {
            let find = |arm: Arm, seed: u64| {
                runs.iter()
                    .find(|r| r.arm == arm && r.seed == seed && r.budget == budget)
            };
            let (mut dp, mut db) = (Vec::new(), Vec::new());
            let mut corpus = String::new();
            for ra in runs.iter().filter(|r| r.arm == a && r.budget == budget) {
                let Some(rb) = find(b, ra.seed) else { continue };
                let (Some(pa), Some(pb)) = (ra.perplexity.get(&length), rb.perplexity.get(&length))
                else {
                    continue;
                };
                corpus.clone_from(&ra.corpus);
                dp.push(pa - pb);
                let (ba, bb) = (ra.bits_per_byte[&length], rb.bits_per_byte[&length]);
                db.push(ba - bb);
            }
            if dp.is_empty() {
                continue;
            }
            let (e, eb): (Estimate, Estimate) = (estimate(&dp), estimate(&db));
            let verdict = match e.ci95 {
                Some([lo, _]) if lo > 0.0 => format!("{} lower", b.label()),
                Some([_, hi]) if hi < 0.0 => format!("{} lower", a.label()),
                _ => "no clear difference".into(),
            };
            out.push(LmComparison {
                corpus,
                length,
                a,
                b,
                n: e.n,
                mean_diff: e.mean,
                ci95: e.ci95,
                mean_diff_bits_per_byte: eb.mean,
                ci95_bits_per_byte: eb.ci95,
                verdict,
            });
        }
    }
    out
}

/// Per arm and length, the mean perplexity over seeds with its 95% interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    /// Arm.
    pub arm: Arm,
    /// Evaluation length.
    pub length: usize,
    /// Perplexity over seeds.
    pub perplexity: Estimate,
}

/// Summaries of every arm at every length under the main budget.
pub fn summarise(runs: &[LmRun], lengths: &[usize]) -> Vec<ArmSummary> {
    let mut out = Vec::new();
    for arm in Arm::ALL {
        for &length in lengths {
            let v: Vec<f64> = runs
                .iter()
                .filter(|r| r.arm == arm && r.budget == Budget::Main)
                .filter_map(|r| r.perplexity.get(&length).copied())
                .collect();
            if !v.is_empty() {
                out.push(ArmSummary {
                    arm,
                    length,
                    perplexity: estimate(&v),
                });
            }
        }
    }
    out
}

/// Per arm, the loss per position at the longest length: mean over seeds (main budget) of each
/// bin, with its 95% interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmCurve {
    /// Arm.
    pub arm: Arm,
    /// Window length.
    pub length: usize,
    /// Positions per bin.
    pub bin: usize,
    /// Seeds averaged.
    pub n: usize,
    /// Mean loss (nats per byte) of each bin.
    pub mean: Vec<f64>,
    /// 95% interval of each bin's mean (`None` for one seed).
    pub ci95: Vec<Option<[f64; 2]>>,
}

/// The per-arm loss-per-position curves of `runs` (runs whose curves differ in shape from the
/// arm's first are left out).
pub fn position_curves(runs: &[LmRun]) -> Vec<ArmCurve> {
    let mut out = Vec::new();
    for arm in Arm::ALL {
        let rs: Vec<&LmRun> = runs
            .iter()
            .filter(|r| r.arm == arm && r.budget == Budget::Main)
            .collect();
        let Some(first) = rs.first() else { continue };
        let shape = |r: &&LmRun| {
            (
                r.loss_per_position.length,
                r.loss_per_position.bin,
                r.loss_per_position.loss.len(),
            )
        };
        let rs: Vec<&LmRun> = rs
            .iter()
            .copied()
            .filter(|r| shape(r) == shape(first))
            .collect();
        let estimates: Vec<Estimate> = (0..first.loss_per_position.loss.len())
            .map(|i| {
                estimate(
                    &rs.iter()
                        .map(|r| r.loss_per_position.loss[i])
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        out.push(ArmCurve {
            arm,
            length: first.loss_per_position.length,
            bin: first.loss_per_position.bin,
            n: rs.len(),
            mean: estimates.iter().map(|e| e.mean).collect(),
            ci95: estimates.iter().map(|e| e.ci95).collect(),
        });
    }
    out
}

/// The convergence check: on the check seeds, each arm's perplexity under the main and the
/// doubled budget, and each comparison's verdict under both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetCheck {
    /// Seeds run under both budgets.
    pub seeds: Vec<u64>,
    /// `(arm, length, main, doubled, change in percent)` means over the check seeds.
    pub perplexity: Vec<BudgetCell>,
    /// Largest |change| over arms and lengths, percent.
    pub max_change_percent: f64,
    /// Each paired difference on the check seeds under both budgets.
    #[serde(default)]
    pub differences: Vec<BudgetDifference>,
    /// How many of `differences` change sign with the doubled budget.
    #[serde(default)]
    pub sign_changes: usize,
}

/// One paired difference `a - b` of perplexity, mean over the check seeds, under both budgets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetDifference {
    /// Evaluation length.
    pub length: usize,
    /// Arm a.
    pub a: Arm,
    /// Arm b.
    pub b: Arm,
    /// Mean difference, main budget.
    pub main: f64,
    /// Mean difference, doubled budget.
    pub doubled: f64,
}

/// One arm at one length under both budgets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetCell {
    /// Arm.
    pub arm: Arm,
    /// Evaluation length.
    pub length: usize,
    /// Mean perplexity, main budget.
    pub main: f64,
    /// Mean perplexity, doubled budget.
    pub doubled: f64,
    /// 100 x (doubled / main - 1).
    pub change_percent: f64,
}

/// The budget check of `runs`, when some seeds ran under both budgets.
pub fn budget_check(runs: &[LmRun], lengths: &[usize]) -> Option<BudgetCheck> {
    let mut seeds: Vec<u64> = runs
        .iter()
        .filter(|r| r.budget == Budget::Doubled)
        .map(|r| r.seed)
        .collect();
    seeds.sort_unstable();
    seeds.dedup();
    if seeds.is_empty() {
        return None;
    }
    let mut cells = Vec::new();
    for arm in Arm::ALL {
        for &length in lengths {
            let mean = |budget: Budget| {
                let v: Vec<f64> = runs
                    .iter()
                    .filter(|r| r.arm == arm && r.budget == budget && seeds.contains(&r.seed))
                    .filter_map(|r| r.perplexity.get(&length).copied())
                    .collect();
                (v.len() == seeds.len()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            };
            if let (Some(main), Some(doubled)) = (mean(Budget::Main), mean(Budget::Doubled)) {
                cells.push(BudgetCell {
                    arm,
                    length,
                    main,
                    doubled,
                    change_percent: 100.0 * (doubled / main - 1.0),
                });
            }
        }
    }
    let max_change_percent = cells
        .iter()
        .map(|c| c.change_percent.abs())
        .fold(0.0, f64::max);
    let on_check: Vec<LmRun> = runs
        .iter()
        .filter(|r| seeds.contains(&r.seed))
        .cloned()
        .collect();
    let doubled = comparisons(&on_check, Budget::Doubled, lengths);
    let differences: Vec<BudgetDifference> = comparisons(&on_check, Budget::Main, lengths)
        .into_iter()
        .filter_map(|m| {
            let d = doubled
                .iter()
                .find(|d| d.length == m.length && d.a == m.a && d.b == m.b)?;
            Some(BudgetDifference {
                length: m.length,
                a: m.a,
                b: m.b,
                main: m.mean_diff,
                doubled: d.mean_diff,
            })
        })
        .collect();
    let sign_changes = differences
        .iter()
        .filter(|d| d.main * d.doubled < 0.0)
        .count();
    Some(BudgetCheck {
        seeds,
        perplexity: cells,
        max_change_percent,
        differences,
        sign_changes,
    })
}

/// The relative paths of each part of a corpus, sorted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitFiles {
    /// Training files.
    pub train: Vec<String>,
    /// Validation files.
    pub validation: Vec<String>,
    /// Test files.
    pub test: Vec<String>,
}

/// What a study runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmStudyConfig {
    /// Corpus.
    pub corpus: String,
    /// Preset.
    pub preset: LmPresetName,
    /// Seeds 0..seeds.
    pub seeds: u64,
    /// Seeds also run under the doubled budget.
    pub budget_check_seeds: u64,
    /// Evaluation lengths.
    pub lengths: Vec<usize>,
    /// YaRN scale factor.
    pub scale: usize,
    /// Pretraining length L.
    pub train_len: usize,
    /// The preset's stopping rule: pretraining stops after `patience` validation checks, one
    /// every `check_every` steps, without an improvement of `min_delta` nats per byte, or at
    /// `max_steps` (the doubled budget doubles patience and cap). Recorded so that a study run
    /// under another rule is never resumed into this one (0 in files that predate it).
    #[serde(default)]
    pub patience: usize,
    /// Steps between validation checks.
    #[serde(default)]
    pub check_every: usize,
    /// Improvement a check must make (nats per byte).
    #[serde(default)]
    pub min_delta: f64,
    /// Step cap of pretraining.
    #[serde(default)]
    pub max_steps: usize,
    /// Where checkpoints are kept (not committed).
    pub work_dir: String,
    /// `--corpus-dir` when one was given.
    pub corpus_dir: Option<String>,
}

/// A study's results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmStudyResult {
    /// What it runs.
    pub config: LmStudyConfig,
    /// The command that produced it.
    pub study_command: String,
    /// The files of each split.
    #[serde(default)]
    pub splits: SplitFiles,
    /// Tokens of each split.
    pub split_tokens: BTreeMap<String, usize>,
    /// Every finished run.
    #[serde(default)]
    pub runs: Vec<LmRun>,
    /// Paired perplexity differences, main budget, all seeds.
    pub comparisons: Vec<LmComparison>,
    /// The same on the budget-check seeds under the doubled budget.
    pub comparisons_doubled: Vec<LmComparison>,
    /// Per arm and length: perplexity over seeds.
    pub summary: Vec<ArmSummary>,
    /// Main against doubled budget.
    pub budget_check: Option<BudgetCheck>,
    /// Per arm: loss per position at the longest length, mean over seeds with 95% bands.
    #[serde(default)]
    pub position_curves: Vec<ArmCurve>,
    /// Runs finished (kept when a copy drops `runs`).
    #[serde(default)]
    pub finished_runs: usize,
    /// Runs planned.
    pub planned_runs: usize,
}

impl LmStudyResult {
    /// Sorts the runs and derives every statistic from them.
    pub fn derive(mut self) -> LmStudyResult {
        let l = &self.config.lengths;
        self.runs
            .sort_by_key(|r| (r.budget, r.seed, Arm::ALL.iter().position(|&a| a == r.arm)));
        self.comparisons = comparisons(&self.runs, Budget::Main, l);
        self.comparisons_doubled = comparisons(&self.runs, Budget::Doubled, l);
        self.summary = summarise(&self.runs, l);
        self.budget_check = budget_check(&self.runs, l);
        self.position_curves = position_curves(&self.runs);
        self.finished_runs = self.runs.len();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(arm: Arm, seed: u64, ppl: f64) -> LmRun {
        LmRun {
            command: String::new(),
            corpus: "code".into(),
            seed,
            arm,
            budget: Budget::Main,
            steps: 1,
            finetune_steps: 0,
            pretrain_val_loss: 1.0,
            perplexity: BTreeMap::from([(8, ppl)]),
            bits_per_byte: BTreeMap::from([(8, ppl.ln() / std::f64::consts::LN_2)]),
            loss_per_position: PositionCurve::binned(&[1.0], 1),
            data_order: String::new(),
            seconds: 1.0,
        }
    }

    #[test]
    fn paired_differences_match_a_hand_computation() {
        // diffs -1, -2, -3: mean -2, sd 1, t(2) = 4.302653 -> half-width 2.484138
        let mut runs = Vec::new();
        for (s, (a, b)) in [(3.0, 4.0), (3.0, 5.0), (3.0, 6.0)].into_iter().enumerate() {
            runs.push(run(Arm::ResonanceRope, s as u64, a));
            runs.push(run(Arm::Rope, s as u64, b));
        }
        let c = comparisons(&runs, Budget::Main, &[8]);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].a, c[0].b, c[0].n), (Arm::ResonanceRope, Arm::Rope, 3));
        assert!((c[0].mean_diff + 2.0).abs() < 1e-12);
        let [lo, hi] = c[0].ci95.unwrap_or([f64::NAN; 2]);
        assert!((hi - lo - 2.0 * 4.302_652_73 / 3f64.sqrt()).abs() < 1e-6);
        assert_eq!(c[0].verdict, "no clear difference");
    }

    #[test]
    fn binned_curve_keeps_the_mean() {
        let v: Vec<f64> = (0..12).map(f64::from).collect();
        let c = PositionCurve::binned(&v, 4);
        assert_eq!(c.loss, vec![1.5, 5.5, 9.5]);
        assert_eq!(c.length, 12);
    }
}
