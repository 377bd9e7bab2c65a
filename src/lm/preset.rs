//! The named settings of language-model runs: `small`, the study's model, and `tiny`, for tests
//! and quick looks. Both use the PosGen transformer with a byte vocabulary.

use super::tokens::VOCAB;
use crate::posgen::ModelDims;
use serde::{Deserialize, Serialize};

/// Named settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LmPresetName {
    /// The study's model: trains to a validation plateau in a few minutes on one core.
    Small,
    /// A few seconds: tests and smoke runs.
    Tiny,
}

impl LmPresetName {
    /// Every preset.
    pub const ALL: [LmPresetName; 2] = [LmPresetName::Small, LmPresetName::Tiny];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            LmPresetName::Small => "small",
            LmPresetName::Tiny => "tiny",
        }
    }

    /// The preset of CLI name `s`.
    pub fn from_name(s: &str) -> Option<LmPresetName> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// Model, data and optimisation settings of one preset.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LmPreset {
    /// Which preset.
    pub name: LmPresetName,
    /// Transformer shape (vocabulary 257: bytes and BOS).
    pub dims: ModelDims,
    /// Pretraining length L (tokens per window).
    pub train_len: usize,
    /// Windows per step (fine-tuning at s x L uses batch / s windows: same tokens per step).
    pub batch: usize,
    /// Peak learning rate (AdamW) of pretraining.
    pub lr: f64,
    /// Linear warm-up steps.
    pub warmup: usize,
    /// Steps between validation checks.
    pub check_every: usize,
    /// Checks without improvement before pretraining stops.
    pub patience: usize,
    /// Improvement (nats per byte) a check must make to count.
    pub min_delta: f64,
    /// Step cap of pretraining.
    pub max_steps: usize,
    /// Validation tokens per check (windows of L from the validation split's start).
    pub val_tokens: usize,
    /// Fine-tuning steps (the paper's short fine-tune).
    pub ft_steps: usize,
    /// Fine-tuning learning rate (constant after warm-up).
    pub ft_lr: f64,
    /// Test tokens scored at every evaluation length (the same bytes at each length).
    pub eval_tokens: usize,
    /// RoPE base.
    pub base: f64,
}

impl LmPreset {
    /// The preset's settings.
    pub fn get(name: LmPresetName) -> LmPreset {
        match name {
            LmPresetName::Small => LmPreset {
                name,
                dims: ModelDims {
                    vocab: VOCAB,
                    d_model: 64,
                    n_heads: 2,
                    head_dim: 32,
                    d_ff: 256,
                    n_layers: 2,
                },
                train_len: 128,
                batch: 16,
                lr: 3e-3,
                warmup: 50,
                check_every: 100,
                patience: 12,
                min_delta: 5e-3,
                max_steps: 12_000,
                val_tokens: 16_384,
                ft_steps: 100,
                ft_lr: 5e-4,
                eval_tokens: 32_768,
                base: 10_000.0,
            },
            LmPresetName::Tiny => LmPreset {
                name,
                dims: ModelDims {
                    vocab: VOCAB,
                    d_model: 32,
                    n_heads: 2,
                    head_dim: 16,
                    d_ff: 64,
                    n_layers: 1,
                },
                train_len: 32,
                batch: 8,
                lr: 3e-3,
                warmup: 5,
                check_every: 10,
                patience: 2,
                min_delta: 1e-3,
                max_steps: 200,
                val_tokens: 512,
                ft_steps: 10,
                ft_lr: 1e-3,
                eval_tokens: 1024,
                base: 10_000.0,
            },
        }
    }
}
