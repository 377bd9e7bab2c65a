//! Everything that defines one PosGen run ([`RunConfig`]): task, schedule, where scaling
//! applies (in training, or only at evaluation as the authors' code), preset, seed, budget and
//! early stopping, and the schedules a run trains and evaluates with.

use super::data::{Protocol, SplitSizes};
use super::presets::{Preset, PresetName};
use super::tasks::TaskSpec;
use crate::rope::{ConfigError, Method, PairLayout, Schedule, ScheduleConfig};
use serde::{Deserialize, Serialize};

/// When YaRN-style scaling applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scaling {
    /// The scaled schedule is used in training and evaluation (the paper's text).
    Train,
    /// Train with plain RoPE (same Resonance flag), scale only at evaluation, with the authors'
    /// constants ([`eval_only_schedule`]).
    EvalOnly,
}

/// The authors' evaluation-time scale `(L' + 1) / (L + 1)`: their sequences carry a BOS token.
pub fn eval_only_scale(train_len: usize, eval_len: usize) -> f64 {
    (eval_len as f64 + 1.0) / (train_len as f64 + 1.0)
}

/// YaRN `beta_fast` of the authors' evaluation-only scaling.
pub const EVAL_ONLY_BETA_FAST: f64 = 2.0;
/// YaRN `beta_slow` of the authors' evaluation-only scaling.
pub const EVAL_ONLY_BETA_SLOW: f64 = 1.0;

/// The schedule the authors' code evaluates with: `method` at scale `(L'+1)/(L+1)`; for YaRN
/// `beta_fast = 2`, `beta_slow = 1` and the correction range computed from `L' + 1` (their
/// "original length" argument) instead of L; the attention factor is YaRN's `0.1 ln s + 1`.
pub fn eval_only_schedule(
    base: ScheduleConfig,
    train_len: usize,
    eval_len: usize,
) -> ScheduleConfig {
    let scale = eval_only_scale(train_len, eval_len);
    if base.method == Method::YARN {
        let len = eval_len as u64 + 1;
        ScheduleConfig {
            scale,
            beta_fast: EVAL_ONLY_BETA_FAST,
            beta_slow: EVAL_ONLY_BETA_SLOW,
            train_len: len,
            eval_len: len,
            seq_len: len,
            ..base
        }
    } else {
        ScheduleConfig { scale, ..base }
    }
}

/// Early stopping: every `every` steps the validation loss over ID target positions is
/// measured with the training schedule; training stops once it has not improved for
/// `patience` measurements in a row, and the best weights are restored before testing.
/// OOD positions never influence when a run stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlyStop {
    /// Measurements without improvement before stopping (>= 1).
    pub patience: usize,
    /// Steps between measurements (>= 1).
    pub every: usize,
}

impl Scaling {
    /// Every choice.
    pub const ALL: [Scaling; 2] = [Scaling::Train, Scaling::EvalOnly];

    /// The JSON / CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Scaling::Train => "train",
            Scaling::EvalOnly => "eval-only",
        }
    }
}

/// Everything that defines one training run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunConfig {
    /// Task generator (modulus, j, k).
    pub spec: TaskSpec,
    /// Positional frequency schedule.
    pub method: Method,
    /// Resonance rounding on top of the schedule.
    pub resonance: bool,
    /// Scale factor of scaling methods (PosGen: 4 = L'/L).
    pub scale: f64,
    /// Where the scaling applies.
    pub scaling: Scaling,
    /// Hyper-parameters.
    pub preset: Preset,
    /// Seed of data, initial weights and batch order.
    pub seed: u64,
    /// Optimiser steps.
    pub steps: usize,
    /// Evaluate the validation split every this many steps (0: never).
    pub eval_every: usize,
    /// How the splits are drawn.
    pub protocol: Protocol,
    /// Stop early on a validation-loss plateau (`steps` is then the cap); `None`: fixed steps.
    pub early_stop: Option<EarlyStop>,
}

impl RunConfig {
    /// A run of `preset` on `task` with the preset's defaults and scale L'/L.
    pub fn new(
        preset: PresetName,
        task: super::Task,
        method: Method,
        resonance: bool,
        seed: u64,
    ) -> Self {
        let p = Preset::get(preset);
        RunConfig {
            spec: TaskSpec {
                modulus: p.modulus,
                ..TaskSpec::paper(task)
            },
            method,
            resonance,
            scale: p.sizes.eval_len as f64 / p.sizes.train_len as f64,
            scaling: Scaling::Train,
            preset: p,
            seed,
            steps: p.steps,
            eval_every: 0,
            protocol: Protocol::Clean,
            early_stop: None,
        }
    }

    /// The same run with `layers` transformer blocks of width `d_model`: heads of the preset's
    /// head dimension (`d_model / head_dim` of them) and a feed-forward width of `2 d_model`.
    pub fn with_shape(mut self, layers: usize, d_model: usize) -> Result<Self, ConfigError> {
        let dh = self.preset.dims.head_dim;
        if layers == 0 || layers > 64 {
            return Err(ConfigError::new(
                "layers",
                format!("must be in 1..=64 (got {layers})"),
            ));
        }
        if d_model < dh || d_model > 4096 || !d_model.is_multiple_of(dh) {
            return Err(ConfigError::new(
                "d_model",
                format!(
                    "must be a multiple of the head dimension {dh} in {dh}..=4096 (got {d_model})"
                ),
            ));
        }
        let dims = &mut self.preset.dims;
        dims.n_layers = layers;
        dims.d_model = d_model;
        dims.n_heads = d_model / dh;
        dims.d_ff = 2 * d_model;
        Ok(self)
    }

    /// The split sizes of this run (the protocol may override the preset's counts).
    pub fn sizes(&self) -> SplitSizes {
        self.protocol.sizes(self.preset.sizes)
    }

    /// The schedule config used for training (`eval = false`) or evaluation. With
    /// [`Scaling::EvalOnly`] training uses plain RoPE and evaluation [`eval_only_schedule`].
    pub fn schedule_config(&self, eval: bool) -> ScheduleConfig {
        let s = &self.preset.sizes;
        let base = self.plain_schedule_config(self.method);
        match (self.scaling, eval) {
            (Scaling::Train, _) => base,
            (Scaling::EvalOnly, false) => self.plain_schedule_config(Method::ROPE),
            (Scaling::EvalOnly, true) => eval_only_schedule(base, s.train_len, s.eval_len),
        }
    }

    /// The scale factor the evaluation schedule uses.
    pub fn effective_scale(&self) -> f64 {
        self.schedule_config(true).scale
    }

    fn plain_schedule_config(&self, method: Method) -> ScheduleConfig {
        let s = &self.preset.sizes;
        ScheduleConfig {
            method,
            resonance: self.resonance,
            dim: self.preset.dims.head_dim,
            base: self.preset.base,
            train_len: s.train_len as u64,
            eval_len: s.eval_len as u64,
            scale: self.scale,
            seq_len: s.eval_len as u64,
            layout: PairLayout::Interleaved,
            ..ScheduleConfig::default()
        }
    }

    /// Checks everything a run needs; errors name the option and its range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.spec.validate()?;
        if self.steps == 0 || self.steps > 10_000_000 {
            return Err(ConfigError::new(
                "steps",
                format!("must be in 1..=10000000 (got {})", self.steps),
            ));
        }
        if let Some(e) = self.early_stop {
            if e.patience == 0 || e.patience > 100_000 {
                return Err(ConfigError::new(
                    "patience",
                    format!("must be in 1..=100000 (got {})", e.patience),
                ));
            }
            if e.every == 0 || e.every > 10_000_000 {
                return Err(ConfigError::new(
                    "stop_every",
                    format!("must be in 1..=10000000 (got {})", e.every),
                ));
            }
        }
        Schedule::new(&self.schedule_config(false))?;
        Schedule::new(&self.schedule_config(true))?;
        Ok(())
    }

    /// A short label such as `Resonance YaRN`.
    pub fn method_label(&self) -> String {
        method_label(self.method, self.resonance)
    }
}

/// Display name of a schedule, e.g. `Resonance YaRN`.
pub fn method_label(method: Method, resonance: bool) -> String {
    let m = method.def().label;
    if resonance {
        format!("Resonance {m}")
    } else {
        m.to_string()
    }
}
