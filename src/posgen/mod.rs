//! PosGen (docs/posgen.md): synthetic train-short-test-long tasks, a small decoder-only
//! transformer whose rotary angles come from a [`crate::rope::Schedule`], time-sliced training
//! and the sweep behind the paper's Table 1. Depends only on `rope`.

pub mod data;
pub mod error;
pub mod fused;
pub mod fused_loss;
pub mod model;
pub mod optim;
pub mod presets;
pub mod probe;
pub mod rng;
pub mod run_config;
pub mod run_spec;
pub mod scoring;
pub mod study;
pub mod study_report;
pub mod sweep;
pub mod tasks;
pub mod timing;
pub mod trainer;

pub use data::{Batch, Dataset, Protocol, Split, SplitSizes};
pub use error::PosgenError;
pub use model::{Model, ModelDims, RopeTables};
pub use presets::{Preset, PresetName};
pub use rng::SplitMix64;
pub use run_config::{
    EVAL_ONLY_BETA_FAST, EVAL_ONLY_BETA_SLOW, EarlyStop, RunConfig, Scaling, eval_only_scale,
    eval_only_schedule, method_label,
};
pub use run_spec::TrainSpec;
pub use scoring::{Accuracy, EvalPoint, LossPoint, RunResult, StayAdvance};
pub use tasks::{Task, TaskSpec};
pub use timing::{CONVERGE_EVAL_EVERY, Convergence, time_steps, time_to_converge};
pub use trainer::{Progress, TrainPhase, Trainer, one_cycle_lr};
