//! Real text (docs/lm.md): a byte-level language model on two corpora from Debian packages,
//! pretrained with RoPE or Resonance RoPE at a short length, then extended with YaRN or
//! Resonance YaRN zero-shot or by a short fine-tune, and scored by perplexity at longer lengths.
//! It reuses the PosGen transformer ([`crate::posgen::Model`]); this module adds the corpora,
//! the training loop on text windows, the checkpoints, the evaluation and the paired study.
//! Depends on `rope` and `posgen`, never on the UI.

pub mod checkpoint;
#[cfg(not(target_arch = "wasm32"))]
pub mod corpus;
pub mod error;
pub mod eval;
pub mod live;
pub mod preset;
pub mod study;
pub mod tokens;
pub mod train;

pub use checkpoint::{Checkpoint, CheckpointMeta, RopeSpec};
pub use error::LmError;
pub use eval::{LengthScore, score_logits};
pub use preset::LmPreset;
pub use tokens::{BOS, VOCAB};
