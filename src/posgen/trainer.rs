//! The [`Trainer`]: one PosGen run that advances in time slices ([`Trainer::step_for`]) so a UI
//! can train between frames, with a one-cycle learning rate, early stopping on the validation
//! loss over ID positions, and scoring of the test split.

use super::data::{Batch, Dataset, Split};
use super::error::PosgenError;
use super::model::{Model, RopeTables, masked_cross_entropy};
use super::optim::{AdamW, ParamsAdamW};
use super::rng::SplitMix64;
use super::run_config::{EarlyStop, RunConfig};
use super::scoring::{Accuracy, EvalPoint, LossPoint, RunResult, Tally};
use crate::rope::{ConfigError, Method, Schedule};
use candle_core::backprop::GradStore;
use candle_core::{D, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use web_time::Instant;

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

    /// Loss of the next training batch (advances the batch order) and the gradient of every
    /// weight, through the model's tape (candle's backward pass for the loss alone).
    fn train_grads(&mut self) -> candle_core::Result<(f32, GradStore)> {
        let rows = self.next_rows();
        let bos = self.config.spec.modulus;
        let b = Batch::from_split(&self.data.train, &rows, bos, self.config.spec.num_seeds());
        let (ids, w, count) = self.batch_tensors(&b)?;
        let (logits, tape) = self.model.forward_tape(&ids, &self.train_rope)?;
        let lv = Var::from_tensor(&logits)?;
        let loss = masked_cross_entropy(lv.as_tensor(), &w, count)?;
        let g_logits = loss
            .backward()?
            .remove(lv.as_tensor())
            .ok_or_else(|| candle_core::Error::Msg("loss: no gradient for the logits".into()))?;
        Ok((loss.to_scalar::<f32>()?, tape.backward(&g_logits)?))
    }

    /// Per-parameter sum of absolute gradients of one training batch's loss (no update).
    #[cfg(test)]
    fn gradient_magnitudes(&mut self) -> Result<Vec<(String, f64)>, PosgenError> {
        let (_, grads) = self.train_grads()?;
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
        let (loss, grads) = self.train_grads()?;
        self.opt.step(&grads)?;
        self.loss_curve.push(loss);
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
                "also_eval_method",
                "cannot be combined with --eval-every (validation passes use one evaluation schedule)",
            )
            .into());
        }
        if twin.schedule_config(false) != self.config.schedule_config(false) {
            return Err(ConfigError::new(
                "also_eval_method",
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
    use crate::posgen::{PresetName, Task};

    /// Every parameter of the model receives a finite, non-zero gradient from one batch.
    #[test]
    fn every_parameter_gets_a_gradient() {
        let mut rc = RunConfig::new(PresetName::Tiny, Task::Recursive, Method::YARN, true, 3);
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
