//! PosGen (SPEC.md section 6): synthetic train-short-test-long tasks, a small decoder-only
//! transformer whose rotary angles come from a [`crate::rope::Schedule`], time-sliced training
//! and the sweep behind the paper's Table 1. Depends only on `rope`.

pub mod data;
pub mod fused;
pub mod model;
pub mod rng;
pub mod sweep;
pub mod tasks;
pub mod train;

pub use data::{Batch, Dataset, Split, SplitSizes};
pub use model::{Model, ModelDims, RopeTables};
pub use rng::SplitMix64;
pub use tasks::{Task, TaskSpec};
pub use train::{
    Accuracy, CONVERGE_EVAL_EVERY, Convergence, EvalPoint, Preset, PresetName, Progress, RunConfig,
    RunResult, Scaling, TrainPhase, Trainer, method_label, one_cycle_lr, time_steps,
    time_to_converge,
};
