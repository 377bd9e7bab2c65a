//! The named hyper-parameter sets of PosGen runs: the paper's model and a tiny one that trains
//! in a browser in about a minute.

use super::data::SplitSizes;
use super::model::ModelDims;
use serde::{Deserialize, Serialize};

/// Named hyper-parameter sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PresetName {
    /// Small enough to train in a browser in about a minute.
    Tiny,
    /// The paper's model and schedule (native runs).
    Paper,
}

impl PresetName {
    /// Every preset.
    pub const ALL: [PresetName; 2] = [PresetName::Tiny, PresetName::Paper];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            PresetName::Tiny => "tiny",
            PresetName::Paper => "paper",
        }
    }
}

/// Model, data and optimisation settings of one preset.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Preset {
    /// Which preset.
    pub name: PresetName,
    /// Transformer shape (vocab is set from the modulus).
    pub dims: ModelDims,
    /// Modulus of the tasks.
    pub modulus: u32,
    /// Sequences per training step.
    pub batch_size: usize,
    /// Peak learning rate of the one-cycle schedule.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Training steps by default.
    pub steps: usize,
    /// Split sizes and lengths.
    pub sizes: SplitSizes,
    /// Sequences per evaluation batch.
    pub eval_batch: usize,
    /// RoPE base.
    pub base: f64,
}

impl Preset {
    /// The preset's settings.
    pub fn get(name: PresetName) -> Preset {
        match name {
            PresetName::Paper => {
                let dims = ModelDims {
                    vocab: 18,
                    d_model: 512,
                    n_heads: 8,
                    head_dim: 64,
                    d_ff: 2048,
                    n_layers: 2,
                };
                let sizes = SplitSizes {
                    train: 10_000,
                    val: 1_000,
                    test: 1_000,
                    train_len: 64,
                    eval_len: 256,
                };
                Preset {
                    name,
                    dims,
                    modulus: 17,
                    batch_size: 128,
                    lr: 2e-4,
                    weight_decay: 0.01,
                    // 150 epochs of 10k sequences in batches of 128 (last batch partial).
                    steps: 150 * sizes.train.div_ceil(128),
                    sizes,
                    eval_batch: 16,
                    base: 10_000.0,
                }
            }
            PresetName::Tiny => {
                let dims = ModelDims {
                    vocab: 18,
                    d_model: 64,
                    n_heads: 2,
                    head_dim: 32,
                    d_ff: 128,
                    n_layers: 2,
                };
                Preset {
                    name,
                    dims,
                    modulus: 17,
                    batch_size: 32,
                    lr: 3e-3,
                    weight_decay: 0.01,
                    steps: 400,
                    sizes: SplitSizes {
                        train: 4_000,
                        val: 32,
                        test: 64,
                        train_len: 64,
                        eval_len: 256,
                    },
                    eval_batch: 16,
                    base: 10_000.0,
                }
            }
        }
    }
}
