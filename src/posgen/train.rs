//! Presets, the run configuration and a [`Trainer`] that advances in time slices
//! ([`Trainer::step_for`]) so a UI can train between frames; metrics are teacher-forced
//! per-token accuracies (ID: target positions `j+k .. L`, OOD: `L .. L'`) and per position.

use super::data::{Batch, Dataset, SplitSizes};
use super::model::{Model, ModelDims, RopeTables, masked_cross_entropy};
use super::rng::SplitMix64;
use super::tasks::TaskSpec;
use crate::rope::{ConfigError, Method, PairLayout, Schedule, ScheduleConfig};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};
use web_time::Instant;

/// Named hyper-parameter sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Scaling {
    /// The scaled schedule is used in training and evaluation (the paper's text).
    Train,
    /// Train with plain RoPE (same Resonance flag), scale only at evaluation (the authors' code).
    EvalOnly,
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
        }
    }

    /// The schedule config used for training (`eval = false`) or evaluation.
    pub fn schedule_config(&self, eval: bool) -> ScheduleConfig {
        let s = &self.preset.sizes;
        let method = if self.scaling == Scaling::EvalOnly && !eval {
            Method::Rope
        } else {
            self.method
        };
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

    fn finish(&self, first: usize, train_len: usize) -> Accuracy {
        let frac = |r: std::ops::Range<usize>| {
            let c: u64 = self.correct[r.clone()].iter().sum();
            let t: u64 = self.total[r].iter().sum();
            if t == 0 { 0.0 } else { c as f64 / t as f64 }
        };
        let len = self.correct.len();
        Accuracy {
            id: frac(first..train_len.min(len)),
            ood: frac(train_len.min(len)..len),
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
}

/// Times `steps` optimiser steps of `config` after one untimed warm-up step (allocations);
/// returns (seconds, steps timed). Used by `posgen bench` natively and by the page's benchmark.
pub fn time_steps(mut config: RunConfig, steps: usize) -> Result<(f64, usize), String> {
    config.steps = steps + 1;
    let mut t = Trainer::new(config).map_err(|e| e.to_string())?;
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
) -> Result<Convergence, String> {
    if !(0.0..=1.0).contains(&target) {
        return Err(format!("target accuracy must be in 0..=1 (got {target})"));
    }
    config.eval_every = eval_every.max(1);
    let start = Instant::now();
    let mut t = Trainer::new(config).map_err(|e| e.to_string())?;
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
/// then cosine annealing to `peak/1e4` (PyTorch `OneCycleLR` defaults).
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
}

fn cerr(e: candle_core::Error) -> String {
    e.to_string()
}

impl Trainer {
    /// Validates `config`, generates the data and initialises the model.
    pub fn new(config: RunConfig) -> Result<Trainer, ConfigError> {
        config.validate()?;
        let device = Device::Cpu;
        let p = &config.preset;
        let data = Dataset::generate(config.spec, p.sizes, config.seed)?;
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
            )?;
            Ok((model, opt))
        };
        let (model, opt) = build().map_err(|e| ConfigError::new("preset", cerr(e)))?;
        let train_rope = RopeTables::new(&train_s, p.sizes.train_len);
        let eval_rope = RopeTables::new(&eval_s, p.sizes.eval_len);
        let eval_len = p.sizes.eval_len;
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
    pub fn gradient_magnitudes(&mut self) -> Result<Vec<(String, f64)>, String> {
        let loss = self.train_loss().map_err(cerr)?;
        let grads = loss.backward().map_err(cerr)?;
        self.model
            .named_vars()
            .into_iter()
            .map(|(name, v)| {
                let g = match grads.get(&v) {
                    Some(g) => g
                        .abs()
                        .and_then(|a| a.sum_all())
                        .and_then(|s| s.to_dtype(DType::F64))
                        .and_then(|s| s.to_scalar::<f64>())
                        .map_err(cerr)?,
                    None => 0.0,
                };
                Ok((name, g))
            })
            .collect()
    }

    fn train_step(&mut self) -> candle_core::Result<()> {
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
    ) -> candle_core::Result<()> {
        let split = if eval_test {
            &self.data.test
        } else {
            &self.data.val
        };
        let bos = self.config.spec.modulus;
        let b = Batch::from_split(split, rows, bos, self.config.spec.num_seeds());
        let ids = Tensor::from_vec(b.inputs.clone(), (b.batch, b.len), &self.device)?;
        let logits = self.model.forward(&ids, &self.eval_rope)?;
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
    pub fn evaluate(&self, test: bool) -> Result<Accuracy, String> {
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
            self.score_rows(test, &rows, &mut tally).map_err(cerr)?;
            start += eb;
        }
        let s = &self.config.preset.sizes;
        Ok(tally.finish(self.config.spec.num_seeds(), s.train_len))
    }

    /// Does one unit of work (a training step, a validation pass, or one test batch).
    fn work_unit(&mut self) -> Result<(), String> {
        match self.phase {
            TrainPhase::Training => {
                self.train_step().map_err(cerr)?;
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
                if self.step >= self.config.steps {
                    self.phase = TrainPhase::Testing;
                }
            }
            TrainPhase::Testing => {
                let n = self.data.test.count();
                let eb = self.config.preset.eval_batch.max(1);
                let rows: Vec<usize> = (self.test_row..(self.test_row + eb).min(n)).collect();
                let mut tally = std::mem::take(&mut self.test_tally);
                let r = self.score_rows(true, &rows, &mut tally).map_err(cerr);
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

    fn finish(&mut self) {
        let c = &self.config;
        let s = &c.preset.sizes;
        let acc = self.test_tally.finish(c.spec.num_seeds(), s.train_len);
        self.result = Some(RunResult {
            task: c.spec.task.name().to_string(),
            modulus: c.spec.modulus,
            method: c.method.name().to_string(),
            resonance: c.resonance,
            label: c.method_label(),
            preset: c.preset.name.name().to_string(),
            scaling: c.scaling.name().to_string(),
            scale: c.scale,
            seed: c.seed,
            steps: self.step,
            seconds: self.seconds,
            parameters: self.model.dims.num_params(),
            train_len: s.train_len,
            eval_len: s.eval_len,
            id_accuracy: acc.id,
            ood_accuracy: acc.ood,
            first_target_position: c.spec.num_seeds(),
            per_position_accuracy: acc.per_position,
            loss_curve: self.loss_curve.clone(),
            validation: self.validation.clone(),
        });
        self.phase = TrainPhase::Done;
    }

    /// Works for about `budget_seconds` (at least one unit of work unless done) and returns
    /// the progress; call it once per frame to train without blocking a UI.
    pub fn step_for(&mut self, budget_seconds: f64) -> Result<Progress, String> {
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
    pub fn run(&mut self) -> Result<RunResult, String> {
        while self.phase != TrainPhase::Done {
            self.step_for(f64::INFINITY)?;
        }
        Ok(self.result.clone().expect("done implies a result"))
    }
}
