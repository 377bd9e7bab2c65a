//! What a run measures: teacher-forced per-token accuracies (ID: target positions `j+k .. L`,
//! OOD: `L .. L'`, per position, and Semi-recursive's stay/advance split), validation points and
//! the finished run's record ([`RunResult`], the `posgen train` JSON document).

use super::data::Protocol;
use super::run_config::EarlyStop;
use super::tasks::TaskSpec;
use serde::{Deserialize, Serialize};

/// Accuracy of a model on an evaluation split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Accuracy {
    /// Fraction correct over target positions `j+k .. L`.
    pub id: f64,
    /// Fraction correct over target positions `L .. L'`.
    pub ood: f64,
    /// Fraction correct at each target position `j+k .. L'`.
    pub per_position: Vec<f64>,
    /// Semi-recursive only: accuracies split by whether the far pointer moves.
    pub stay_advance: Option<StayAdvance>,
}

/// Semi-recursive accuracy split by position kind. At "stay" positions the far pointer does
/// not move and the next token follows from local tokens alone
/// (`x_l = 2 x_{l-1} - x_{l-k-1} mod m`); at "advance" positions it needs the far lookup.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StayAdvance {
    /// ID accuracy at stay positions.
    pub id_stay: f64,
    /// ID accuracy at advance positions.
    pub id_advance: f64,
    /// OOD accuracy at stay positions.
    pub ood_stay: f64,
    /// OOD accuracy at advance positions.
    pub ood_advance: f64,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Tally {
    pub(super) correct: Vec<u64>,
    pub(super) total: Vec<u64>,
}

impl Tally {
    pub(super) fn new(len: usize) -> Self {
        Tally {
            correct: vec![0; len],
            total: vec![0; len],
        }
    }

    /// Pooled accuracy over the positions of `r` that `keep` accepts.
    pub(super) fn frac(&self, r: std::ops::Range<usize>, keep: impl Fn(usize) -> bool) -> f64 {
        let (c, t) = r.filter(|&p| keep(p)).fold((0u64, 0u64), |(c, t), p| {
            (c + self.correct[p], t + self.total[p])
        });
        if t == 0 { 0.0 } else { c as f64 / t as f64 }
    }

    pub(super) fn finish(&self, spec: &TaskSpec, train_len: usize) -> Accuracy {
        let first = spec.num_seeds();
        let len = self.correct.len();
        let (id, ood) = (first..train_len.min(len), train_len.min(len)..len);
        let all = |_| true;
        let stay_advance = (spec.task == super::Task::SemiRecursive).then(|| {
            let stay = |p: usize| !spec.far_advances(p);
            let advance = |p: usize| spec.far_advances(p);
            StayAdvance {
                id_stay: self.frac(id.clone(), stay),
                id_advance: self.frac(id.clone(), advance),
                ood_stay: self.frac(ood.clone(), stay),
                ood_advance: self.frac(ood.clone(), advance),
            }
        });
        Accuracy {
            id: self.frac(id.clone(), all),
            ood: self.frac(ood.clone(), all),
            stay_advance,
            per_position: (first..len)
                .map(|p| {
                    if self.total[p] == 0 {
                        0.0
                    } else {
                        self.correct[p] as f64 / self.total[p] as f64
                    }
                })
                .collect(),
        }
    }
}

/// Validation accuracy at one step of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Optimiser steps taken when evaluated.
    pub step: usize,
    /// Validation ID accuracy.
    pub id_accuracy: f64,
    /// Validation OOD accuracy.
    pub ood_accuracy: f64,
}

/// The outcome of a finished run (the `posgen train` JSON document).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Task name.
    pub task: String,
    /// Modulus of the task.
    pub modulus: u32,
    /// Schedule method name (`rope`, `yarn`, ...).
    pub method: String,
    /// Resonance rounding on.
    pub resonance: bool,
    /// Display label, e.g. `Resonance YaRN`.
    pub label: String,
    /// Preset name.
    pub preset: String,
    /// Where YaRN-style scaling applied: `train` (paper text) or `eval-only` (authors' code).
    pub scaling: String,
    /// Scale factor.
    pub scale: f64,
    /// Run seed.
    pub seed: u64,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Wall-clock seconds of training and testing.
    pub seconds: f64,
    /// Trainable parameters.
    pub parameters: usize,
    /// Transformer blocks.
    #[serde(default)]
    pub layers: usize,
    /// Residual width.
    #[serde(default)]
    pub d_model: usize,
    /// Training length L.
    pub train_len: usize,
    /// Evaluation length L'.
    pub eval_len: usize,
    /// Test ID accuracy (target positions j+k .. L).
    pub id_accuracy: f64,
    /// Test OOD accuracy (target positions L .. L').
    pub ood_accuracy: f64,
    /// First target position of `per_position_accuracy` (j + k; seeds are not scored).
    pub first_target_position: usize,
    /// Test accuracy per target position `j+k .. L'`.
    pub per_position_accuracy: Vec<f64>,
    /// Training loss of every step.
    pub loss_curve: Vec<f32>,
    /// Validation accuracies during training (when enabled).
    pub validation: Vec<EvalPoint>,
    /// How the splits were drawn (`clean` or `authors`).
    #[serde(default = "clean_name")]
    pub protocol: String,
    /// The early-stopping rule, when the run used one (`steps` was then a cap).
    #[serde(default)]
    pub early_stop: Option<EarlyStop>,
    /// Whether the plateau rule ended training before the cap.
    #[serde(default)]
    pub stopped_early: bool,
    /// Step of the weights that were tested (the best validation loss under early stopping;
    /// otherwise the last step).
    #[serde(default)]
    pub best_step: usize,
    /// Validation loss over ID targets at each early-stopping check.
    #[serde(default)]
    pub val_loss: Vec<LossPoint>,
    /// Semi-recursive: test ID accuracy at positions where the far pointer stays put.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_stay_accuracy: Option<f64>,
    /// Semi-recursive: test ID accuracy at positions where the far pointer advances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_advance_accuracy: Option<f64>,
    /// Semi-recursive: test OOD accuracy at stay positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ood_stay_accuracy: Option<f64>,
    /// Semi-recursive: test OOD accuracy at advance positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ood_advance_accuracy: Option<f64>,
}

fn clean_name() -> String {
    Protocol::Clean.name().to_string()
}

/// Validation loss at one early-stopping check.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// Optimiser steps taken.
    pub step: usize,
    /// Mean cross-entropy over the validation split's ID target positions.
    pub loss: f64,
}
