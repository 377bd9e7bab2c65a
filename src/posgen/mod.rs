//! PosGen (docs/posgen.md): synthetic train-short-test-long tasks, a small decoder-only
//! transformer whose rotary angles come from a [`crate::rope::Schedule`], time-sliced training
//! and the sweep behind the paper's Table 1. Depends only on `rope`.

pub mod data;
pub mod error;
pub mod fused;
pub mod model;
pub mod optim;
pub mod probe;
pub mod rng;
pub mod study;
pub mod sweep;
pub mod tasks;
pub mod train;

pub use data::{Batch, Dataset, Protocol, Split, SplitSizes};
pub use error::PosgenError;
pub use model::{Model, ModelDims, RopeTables};
pub use rng::SplitMix64;
pub use tasks::{Task, TaskSpec};
pub use train::{
    Accuracy, CONVERGE_EVAL_EVERY, Convergence, EarlyStop, EvalPoint, LossPoint, Preset,
    PresetName, Progress, RunConfig, RunResult, Scaling, StayAdvance, TrainPhase, Trainer,
    eval_only_scale, eval_only_schedule, method_label, one_cycle_lr, time_steps, time_to_converge,
};
