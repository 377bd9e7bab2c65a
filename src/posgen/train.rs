//! Presets, the run configuration and a [`Trainer`] that advances in time slices
//! ([`Trainer::step_for`]) so a UI can train between frames; metrics are teacher-forced
//! per-token accuracies (ID: target positions `j+k .. L`, OOD: `L .. L'`) and per position.

use super::data::{Batch, Dataset, Protocol, Split, SplitSizes};
use super::error::PosgenError;
use super::model::{Model, ModelDims, RopeTables, masked_cross_entropy};
use super::optim::{AdamW, ParamsAdamW};
use super::rng::SplitMix64;
use super::tasks::TaskSpec;
use crate::rope::{ConfigError, Method, PairLayout, Schedule, ScheduleConfig};
use candle_core::{D, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use web_time::Instant;

/// Named hyper-parameter sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum PresetName {
    /// Small enough to train in a browser in about a minute.
    Tiny,
    /// The paper's model and schedule (native runs).
    Paper,
}

impl PresetName {
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

/// When YaRN-style scaling applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
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
    if base.method == Method::Yarn {
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
                "d-model",
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
            (Scaling::EvalOnly, false) => self.plain_schedule_config(Method::Rope),
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
                    "stop-every",
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
    let m = match method {
        Method::Rope => "RoPE",
        Method::Pi => "PI",
        Method::Ntk => "NTK",
        Method::DynamicNtk => "Dynamic NTK",
        Method::Yarn => "YaRN",
        Method::Llama3 => "Llama-3",
        Method::Longrope => "LongRoPE",
        Method::Proportional => "Proportional",
    };
    if resonance {
        format!("Resonance {m}")
    } else {
        m.to_string()
    }
}

/// What the trainer is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrainPhase {
    /// Optimiser steps remain.
    Training,
    /// Steps are done; the test split is being scored.
    Testing,
    /// Finished: [`Trainer::result`] is available.
    Done,
}

/// Where a run stands after a slice.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Progress {
    /// Optimiser steps taken.
    pub step: usize,
    /// Steps of the run.
    pub total_steps: usize,
    /// Loss of the latest step (NaN before the first).
    pub last_loss: f32,
    /// Current phase.
    pub phase: TrainPhase,
}

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
struct Tally {
    correct: Vec<u64>,
    total: Vec<u64>,
}

impl Tally {
    fn new(len: usize) -> Self {
        Tally {
            correct: vec![0; len],
            total: vec![0; len],
        }
    }

    /// Pooled accuracy over the positions of `r` that `keep` accepts.
    fn frac(&self, r: std::ops::Range<usize>, keep: impl Fn(usize) -> bool) -> f64 {
        let (c, t) = r.filter(|&p| keep(p)).fold((0u64, 0u64), |(c, t), p| {
            (c + self.correct[p], t + self.total[p])
        });
        if t == 0 { 0.0 } else { c as f64 / t as f64 }
    }

    fn finish(&self, spec: &TaskSpec, train_len: usize) -> Accuracy {
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

/// Early-stopping bookkeeping of a running trainer.
struct StopState {
    rule: EarlyStop,
    /// Validation sequences cut to L (ID positions only).
    val_id: Split,
    best_loss: f64,
    best_step: usize,
    best_weights: Vec<Tensor>,
    checks_since_best: usize,
    history: Vec<LossPoint>,
    stopped_early: bool,
}

/// Times `steps` optimiser steps of `config` after one untimed warm-up step (allocations);
/// returns (seconds, steps timed). Used by `posgen bench` natively and by the page's benchmark.
pub fn time_steps(mut config: RunConfig, steps: usize) -> Result<(f64, usize), PosgenError> {
    config.steps = steps + 1;
    let mut t = Trainer::new(config)?;
    t.step_for(0.0)?;
    let start = Instant::now();
    for _ in 0..steps {
        t.step_for(0.0)?;
    }
    Ok((start.elapsed().as_secs_f64(), t.progress().step - 1))
}

/// How long a run takes, from a cold start (data, model) to a validation ID accuracy: what a
/// user clicking Train waits for. The `posgen bench` figure natively, the page's in the browser.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Convergence {
    /// Task name.
    pub task: String,
    /// Schedule label, e.g. `RoPE`.
    pub label: String,
    /// Validation ID accuracy that counts as converged.
    pub target_id_accuracy: f64,
    /// Validation pass every this many steps.
    pub eval_every: usize,
    /// Whether the target was reached within the run's steps.
    pub reached: bool,
    /// Steps taken when it was reached (all of the run's steps if not).
    pub steps: usize,
    /// Wall-clock seconds from start to that point, validation passes included.
    pub seconds: f64,
    /// Training steps per second over that time.
    pub steps_per_second: f64,
    /// The validation accuracies seen on the way.
    pub validation: Vec<EvalPoint>,
}

/// Validation cadence of the time-to-converge measurements (CLI and page alike).
pub const CONVERGE_EVAL_EVERY: usize = 25;

/// Trains `config` (its `steps` bound the attempt) with a validation pass every `eval_every`
/// steps until the validation ID accuracy reaches `target` (a fraction, in 0..=1).
pub fn time_to_converge(
    mut config: RunConfig,
    target: f64,
    eval_every: usize,
) -> Result<Convergence, PosgenError> {
    if !(0.0..=1.0).contains(&target) {
        return Err(ConfigError::new(
            "converge-target",
            format!("must be in 0..=1 (got {target})"),
        )
        .into());
    }
    config.eval_every = eval_every.max(1);
    let start = Instant::now();
    let mut t = Trainer::new(config)?;
    let mut reached = false;
    while t.progress().phase == TrainPhase::Training && !reached {
        let before = t.validation().len();
        t.step_for(0.0)?;
        reached = t.validation().len() > before
            && t.validation()
                .last()
                .is_some_and(|v| v.id_accuracy >= target);
    }
    let seconds = start.elapsed().as_secs_f64();
    let steps = t.progress().step;
    Ok(Convergence {
        task: t.config().spec.task.name().to_string(),
        label: t.config().method_label(),
        target_id_accuracy: target,
        eval_every: t.config().eval_every,
        reached,
        steps,
        seconds,
        steps_per_second: steps as f64 / seconds,
        validation: t.validation().to_vec(),
    })
}

/// One-cycle cosine learning rate: cosine warm-up from `peak/25` over the first 30% of steps,
/// then cosine annealing to `peak/25/1e4` (PyTorch `OneCycleLR` defaults).
pub fn one_cycle_lr(step: usize, total: usize, peak: f64) -> f64 {
    let total = total.max(1) as f64;
    let warm = (0.3 * total).max(1.0);
    let start = peak / 25.0;
    let end = start / 1e4;
    let cos_interp =
        |a: f64, b: f64, frac: f64| b + (a - b) * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos());
    let s = step as f64;
    if s < warm {
        cos_interp(start, peak, s / warm)
    } else {
        cos_interp(peak, end, ((s - warm) / (total - warm).max(1.0)).min(1.0))
    }
}

/// A training run that advances in slices.
pub struct Trainer {
    config: RunConfig,
    device: Device,
    model: Model,
    opt: AdamW,
    data: Dataset,
    train_rope: RopeTables,
    eval_rope: RopeTables,
    rng: SplitMix64,
    order: Vec<usize>,
    cursor: usize,
    step: usize,
    loss_curve: Vec<f32>,
    validation: Vec<EvalPoint>,
    phase: TrainPhase,
    test_row: usize,
    test_tally: Tally,
    seconds: f64,
    result: Option<RunResult>,
    stop: Option<StopState>,
}

impl Trainer {
    /// Validates `config`, generates the data and initialises the model.
    pub fn new(config: RunConfig) -> Result<Trainer, PosgenError> {
        config.validate()?;
        let device = Device::Cpu;
        let p = &config.preset;
        let sizes = config.sizes();
        let data = Dataset::generate_with(config.protocol, config.spec, sizes, config.seed)?;
        let train_s = Schedule::new(&config.schedule_config(false))?;
        let eval_s = Schedule::new(&config.schedule_config(true))?;
        let mut dims = p.dims;
        dims.vocab = config.spec.modulus as usize + 1;
        let build = || -> candle_core::Result<_> {
            let mut init = SplitMix64::derive(config.seed, "posgen-init");
            let model = Model::new(dims, &mut init, &device)?;
            let vars = model.named_vars().into_iter().map(|(_, v)| v).collect();
            let opt = AdamW::new(
                vars,
                ParamsAdamW {
                    lr: one_cycle_lr(0, config.steps, p.lr),
                    weight_decay: p.weight_decay,
                    ..ParamsAdamW::default()
                },
            );
            Ok((model, opt))
        };
        let (model, opt) = build()?;
        let train_rope = RopeTables::new(&train_s, sizes.train_len);
        let eval_rope = RopeTables::new(&eval_s, sizes.eval_len);
        let eval_len = sizes.eval_len;
        let stop = config.early_stop.map(|rule| StopState {
            rule,
            val_id: data.val.truncated(sizes.train_len),
            best_loss: f64::INFINITY,
            best_step: 0,
            best_weights: Vec::new(),
            checks_since_best: 0,
            history: Vec::new(),
            stopped_early: false,
        });
        Ok(Trainer {
            rng: SplitMix64::derive(config.seed, "posgen-order"),
            order: Vec::new(),
            cursor: 0,
            step: 0,
            loss_curve: Vec::with_capacity(config.steps),
            validation: Vec::new(),
            phase: TrainPhase::Training,
            test_row: 0,
            test_tally: Tally::new(eval_len),
            seconds: 0.0,
            result: None,
            stop,
            config,
            device,
            model,
            opt,
            data,
            train_rope,
            eval_rope,
        })
    }

    /// The run's configuration.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The model being trained (its weights are the run's current parameters).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The generated splits.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// Training losses so far.
    pub fn loss_curve(&self) -> &[f32] {
        &self.loss_curve
    }

    /// Validation accuracies so far.
    pub fn validation(&self) -> &[EvalPoint] {
        &self.validation
    }

    /// The result once the phase is [`TrainPhase::Done`].
    pub fn result(&self) -> Option<&RunResult> {
        self.result.as_ref()
    }

    /// Current progress.
    pub fn progress(&self) -> Progress {
        Progress {
            step: self.step,
            total_steps: self.config.steps,
            last_loss: self.loss_curve.last().copied().unwrap_or(f32::NAN),
            phase: self.phase,
        }
    }

    fn next_rows(&mut self) -> Vec<usize> {
        let bs = self.config.preset.batch_size.min(self.data.train.count());
        let mut rows = Vec::with_capacity(bs);
        while rows.len() < bs {
            if self.cursor >= self.order.len() {
                self.order = (0..self.data.train.count()).collect();
                self.rng.shuffle(&mut self.order);
                self.cursor = 0;
            }
            rows.push(self.order[self.cursor]);
            self.cursor += 1;
        }
        rows
    }

    fn batch_tensors(&self, b: &Batch) -> candle_core::Result<(Tensor, Tensor, usize)> {
        let vocab = self.model.dims.vocab;
        let ids = Tensor::from_vec(b.inputs.clone(), (b.batch, b.len), &self.device)?;
        let mut w = vec![0f32; b.batch * b.len * vocab];
        let mut count = 0;
        for (r, &t) in b.targets.iter().enumerate() {
            if r % b.len >= b.first_scored {
                w[r * vocab + t as usize] = 1.0;
                count += 1;
            }
        }
        let w = Tensor::from_vec(w, (b.batch * b.len, vocab), &self.device)?;
        Ok((ids, w, count))
    }

    /// Loss of the next training batch (advances the batch order).
    fn train_loss(&mut self) -> candle_core::Result<Tensor> {
        let rows = self.next_rows();
        let bos = self.config.spec.modulus;
        let b = Batch::from_split(&self.data.train, &rows, bos, self.config.spec.num_seeds());
        let (ids, w, count) = self.batch_tensors(&b)?;
        let logits = self.model.forward(&ids, &self.train_rope)?;
        masked_cross_entropy(&logits, &w, count)
    }

    /// Per-parameter sum of absolute gradients of one training batch's loss (no update).
    #[cfg(test)]
    fn gradient_magnitudes(&mut self) -> Result<Vec<(String, f64)>, PosgenError> {
        let loss = self.train_loss()?;
        let grads = loss.backward()?;
        self.model
            .named_vars()
            .into_iter()
            .map(|(name, v)| {
                let g = match grads.get(&v) {
                    Some(g) => g
                        .abs()
                        .and_then(|a| a.sum_all())
                        .and_then(|s| s.to_dtype(candle_core::DType::F64))
                        .and_then(|s| s.to_scalar::<f64>())?,
                    None => 0.0,
                };
                Ok((name, g))
            })
            .collect()
    }

    fn train_step(&mut self) -> candle_core::Result<()> {
        // With several threads, the step runs on one of the pool's own threads: its parallel
        // parts then start on the thread that is already running, and only the other threads
        // are woken, where a caller outside the pool wakes them all and sleeps until they finish.
        #[cfg(not(target_arch = "wasm32"))]
        if rayon::current_thread_index().is_none() && rayon::current_num_threads() > 1 {
            return rayon::scope(|_| self.train_step());
        }
        let lr = one_cycle_lr(self.step, self.config.steps, self.config.preset.lr);
        self.opt.set_learning_rate(lr);
        let loss = self.train_loss()?;
        self.opt.backward_step(&loss)?;
        self.loss_curve.push(loss.to_scalar::<f32>()?);
        self.step += 1;
        Ok(())
    }

    fn score_rows(
        &self,
        eval_test: bool,
        rows: &[usize],
        tally: &mut Tally,
        rope: &RopeTables,
    ) -> candle_core::Result<()> {
        let split = if eval_test {
            &self.data.test
        } else {
            &self.data.val
        };
        let bos = self.config.spec.modulus;
        let b = Batch::from_split(split, rows, bos, self.config.spec.num_seeds());
        let ids = Tensor::from_vec(b.inputs.clone(), (b.batch, b.len), &self.device)?;
        let logits = self.model.forward(&ids, rope)?;
        let pred: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
        for (r, (&p, &t)) in pred.iter().zip(&b.targets).enumerate() {
            let pos = r % b.len;
            if pos >= b.first_scored {
                tally.total[pos] += 1;
                tally.correct[pos] += (p == t) as u64;
            }
        }
        Ok(())
    }

    /// Scores a whole evaluation split (validation or test) with the evaluation schedule.
    pub fn evaluate(&self, test: bool) -> Result<Accuracy, PosgenError> {
        self.evaluate_with(test, &self.eval_rope)
    }

    /// Scores a whole evaluation split with the rotary tables `rope`.
    fn evaluate_with(&self, test: bool, rope: &RopeTables) -> Result<Accuracy, PosgenError> {
        let split = if test {
            &self.data.test
        } else {
            &self.data.val
        };
        let mut tally = Tally::new(split.len);
        let eb = self.config.preset.eval_batch.max(1);
        let n = split.count();
        let mut start = 0;
        while start < n {
            let rows: Vec<usize> = (start..(start + eb).min(n)).collect();
            self.score_rows(test, &rows, &mut tally, rope)?;
            start += eb;
        }
        Ok(tally.finish(&self.config.spec, self.config.sizes().train_len))
    }

    /// Does one unit of work (a training step, a validation pass, or one test batch).
    fn work_unit(&mut self) -> Result<(), PosgenError> {
        match self.phase {
            TrainPhase::Training => {
                self.train_step()?;
                let every = self.config.eval_every;
                if every > 0 && (self.step.is_multiple_of(every) || self.step == self.config.steps)
                {
                    let acc = self.evaluate(false)?;
                    self.validation.push(EvalPoint {
                        step: self.step,
                        id_accuracy: acc.id,
                        ood_accuracy: acc.ood,
                    });
                }
                let plateau = self.early_stop_check()?;
                if plateau || self.step >= self.config.steps {
                    self.restore_best()?;
                    self.phase = TrainPhase::Testing;
                }
            }
            TrainPhase::Testing => {
                let n = self.data.test.count();
                let eb = self.config.preset.eval_batch.max(1);
                let rows: Vec<usize> = (self.test_row..(self.test_row + eb).min(n)).collect();
                let mut tally = std::mem::take(&mut self.test_tally);
                let r = self.score_rows(true, &rows, &mut tally, &self.eval_rope);
                self.test_tally = tally;
                r?;
                self.test_row += rows.len();
                if self.test_row >= n {
                    self.finish();
                }
            }
            TrainPhase::Done => {}
        }
        Ok(())
    }

    /// Mean cross-entropy of the validation split's ID targets under the training schedule.
    fn val_id_loss(&self, val_id: &Split) -> candle_core::Result<f64> {
        let bos = self.config.spec.modulus;
        let chunk = self
            .config
            .preset
            .batch_size
            .max(self.config.preset.eval_batch)
            .max(1);
        let (mut sum, mut count) = (0.0, 0usize);
        let n = val_id.count();
        for start in (0..n).step_by(chunk) {
            let rows: Vec<usize> = (start..(start + chunk).min(n)).collect();
            let b = Batch::from_split(val_id, &rows, bos, self.config.spec.num_seeds());
            let (ids, w, c) = self.batch_tensors(&b)?;
            let logits = self.model.forward(&ids, &self.train_rope)?;
            let loss = masked_cross_entropy(&logits, &w, c)?.to_scalar::<f32>()?;
            sum += loss as f64 * c as f64;
            count += c;
        }
        Ok(if count == 0 { 0.0 } else { sum / count as f64 })
    }

    /// At each check step measures the ID validation loss, keeps the best weights, and says
    /// whether the plateau rule has run out of patience. Always false without early stopping.
    fn early_stop_check(&mut self) -> candle_core::Result<bool> {
        let Some(stop) = &self.stop else {
            return Ok(false);
        };
        if !(self.step.is_multiple_of(stop.rule.every) || self.step >= self.config.steps) {
            return Ok(false);
        }
        let loss = self.val_id_loss(&stop.val_id)?;
        let improved = loss < stop.best_loss;
        let weights = if improved {
            self.model
                .named_vars()
                .iter()
                .map(|(_, v)| v.as_tensor().copy())
                .collect::<candle_core::Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let (step, cap) = (self.step, self.config.steps);
        let Some(stop) = self.stop.as_mut() else {
            return Ok(false);
        };
        stop.history.push(LossPoint { step, loss });
        if improved {
            stop.best_loss = loss;
            stop.best_step = step;
            stop.best_weights = weights;
            stop.checks_since_best = 0;
        } else {
            stop.checks_since_best += 1;
        }
        let plateau = stop.checks_since_best >= stop.rule.patience;
        stop.stopped_early = plateau && step < cap;
        Ok(plateau)
    }

    /// Puts back the weights of the best early-stopping check (no-op without early stopping).
    fn restore_best(&mut self) -> candle_core::Result<()> {
        let Some(stop) = &self.stop else {
            return Ok(());
        };
        let vars: Vec<Var> = self
            .model
            .named_vars()
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        if stop.best_weights.len() == vars.len() {
            for (v, w) in vars.iter().zip(&stop.best_weights) {
                v.set(w)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) {
        let acc = self
            .test_tally
            .finish(&self.config.spec, self.config.sizes().train_len);
        self.result = Some(self.result_of(&self.config, acc));
        self.phase = TrainPhase::Done;
    }

    /// The run's result for `c` (this run's config, or a twin that differs only at
    /// evaluation) with test accuracy `acc`.
    fn result_of(&self, c: &RunConfig, acc: Accuracy) -> RunResult {
        let s = c.sizes();
        RunResult {
            task: c.spec.task.name().to_string(),
            modulus: c.spec.modulus,
            method: c.method.name().to_string(),
            resonance: c.resonance,
            label: c.method_label(),
            preset: c.preset.name.name().to_string(),
            scaling: c.scaling.name().to_string(),
            scale: c.effective_scale(),
            seed: c.seed,
            steps: self.step,
            seconds: self.seconds,
            parameters: self.model.dims.num_params(),
            layers: self.model.dims.n_layers,
            d_model: self.model.dims.d_model,
            train_len: s.train_len,
            eval_len: s.eval_len,
            id_accuracy: acc.id,
            ood_accuracy: acc.ood,
            first_target_position: c.spec.num_seeds(),
            per_position_accuracy: acc.per_position,
            loss_curve: self.loss_curve.clone(),
            validation: self.validation.clone(),
            protocol: c.protocol.name().to_string(),
            early_stop: c.early_stop,
            stopped_early: self.stop.as_ref().is_some_and(|s| s.stopped_early),
            best_step: self.stop.as_ref().map_or(self.step, |s| s.best_step),
            val_loss: self.stop.as_ref().map_or(Vec::new(), |s| s.history.clone()),
            id_stay_accuracy: acc.stay_advance.map(|x| x.id_stay),
            id_advance_accuracy: acc.stay_advance.map(|x| x.id_advance),
            ood_stay_accuracy: acc.stay_advance.map(|x| x.ood_stay),
            ood_advance_accuracy: acc.stay_advance.map(|x| x.ood_advance),
        }
    }

    /// The result this finished run would have had with `method` at evaluation instead: for
    /// [`Scaling::EvalOnly`], where the schedules train identically (plain RoPE), so one
    /// training serves RoPE and YaRN alike. Errors when the training would differ.
    pub fn twin_result(&self, method: Method) -> Result<RunResult, PosgenError> {
        let Some(own) = &self.result else {
            return Err(PosgenError::Runtime("the run has not finished".into()));
        };
        let twin = RunConfig {
            method,
            ..self.config.clone()
        };
        if self.config.eval_every > 0 {
            return Err(ConfigError::new(
                "also-eval-method",
                "cannot be combined with --eval-every (validation passes use one evaluation schedule)",
            )
            .into());
        }
        if twin.schedule_config(false) != self.config.schedule_config(false) {
            return Err(ConfigError::new(
                "also-eval-method",
                format!(
                    "{} trains differently from {}: only evaluation-only scaling shares a training",
                    method.name(),
                    self.config.method.name()
                ),
            )
            .into());
        }
        let start = Instant::now();
        let s = twin.sizes();
        let rope = RopeTables::new(&Schedule::new(&twin.schedule_config(true))?, s.eval_len);
        let acc = self.evaluate_with(true, &rope)?;
        let mut r = self.result_of(&twin, acc);
        r.seconds = own.seconds + start.elapsed().as_secs_f64();
        Ok(r)
    }

    /// Works for about `budget_seconds` (at least one unit of work unless done) and returns
    /// the progress; call it once per frame to train without blocking a UI.
    pub fn step_for(&mut self, budget_seconds: f64) -> Result<Progress, PosgenError> {
        let start = Instant::now();
        while self.phase != TrainPhase::Done {
            let t0 = Instant::now();
            self.work_unit()?;
            self.seconds += t0.elapsed().as_secs_f64();
            if let Some(r) = self.result.as_mut() {
                r.seconds = self.seconds;
            }
            if start.elapsed().as_secs_f64() >= budget_seconds {
                break;
            }
        }
        Ok(self.progress())
    }

    /// Runs to the end and returns the result.
    pub fn run(&mut self) -> Result<RunResult, PosgenError> {
        while self.phase != TrainPhase::Done {
            self.step_for(f64::INFINITY)?;
        }
        self.result
            .clone()
            .ok_or_else(|| PosgenError::Runtime("the run finished without a result".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posgen::Task;

    /// Every parameter of the model receives a finite, non-zero gradient from one batch.
    #[test]
    fn every_parameter_gets_a_gradient() {
        let mut rc = RunConfig::new(PresetName::Tiny, Task::Recursive, Method::Yarn, true, 3);
        rc.steps = 1;
        rc.preset.sizes.train = 256;
        rc.preset.sizes.val = 8;
        rc.preset.sizes.test = 8;
        rc.preset.batch_size = 16;
        rc.spec.modulus = 5;
        let mut t = Trainer::new(rc).expect("a valid run");
        let g = t.gradient_magnitudes().expect("gradients");
        assert!(g.len() >= 4);
        for (name, v) in g {
            assert!(v.is_finite() && v > 0.0, "{name} has gradient {v}");
        }
    }
}
