//! Training on text windows: pretraining from seeded initial weights until the validation loss
//! stops improving (patience, with a step cap), and the short fine-tune of the paper's recipe
//! from a pretrained checkpoint. Windows are drawn at random offsets of the training stream by a
//! generator seeded from the run's seed and stage only, so paired arms (RoPE and Resonance
//! RoPE, YaRN and Resonance YaRN) see the same windows in the same order.

use super::checkpoint::{Checkpoint, CheckpointMeta, RopeSpec, weights};
use super::error::LmError;
use super::eval::evaluate;
use super::preset::LmPreset;
use crate::posgen::fused_loss::loss_and_gradient;
use crate::posgen::optim::{AdamW, ParamsAdamW};
use crate::posgen::{Model, RopeTables, SplitMix64};
use candle_core::{Device, Tensor};
use web_time::Instant;

/// FNV-1a over the window offsets of a run: equal digests mean the same data order.
#[derive(Clone, Copy, Debug)]
pub struct OrderDigest(u64);

impl OrderDigest {
    fn new() -> Self {
        OrderDigest(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, v: u64) {
        for b in v.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The digest as 16 hex digits.
    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// One training stage.
#[derive(Clone, Debug)]
pub struct Stage {
    /// The schedule trained with.
    pub rope: RopeSpec,
    /// Window length.
    pub length: usize,
    /// Windows per step.
    pub batch: usize,
    /// Learning rate after the linear warm-up.
    pub lr: f64,
    /// Warm-up steps.
    pub warmup: usize,
    /// Steps (the cap when `stop` is set).
    pub steps: usize,
    /// Early stopping: check every N steps, patience in checks, minimum improvement.
    pub stop: Option<(usize, usize, f64)>,
    /// Label of the data-order generator (with the seed).
    pub order: String,
}

/// What a stage did.
#[derive(Clone, Debug)]
pub struct StageOutcome {
    /// Steps taken.
    pub steps: usize,
    /// Validation loss at the end (the best weights' when early stopping).
    pub val_loss: f64,
    /// `[step, validation loss]` at each check.
    pub val_curve: Vec<[f64; 2]>,
    /// Digest of the window offsets.
    pub data_order: OrderDigest,
    /// Every window offset, in training order (paired runs' lists agree up to the shorter).
    pub offsets: Vec<usize>,
    /// Wall seconds.
    pub seconds: f64,
    /// Training tokens per second.
    pub tokens_per_second: f64,
}

/// A step's progress: `(step, loss)`.
pub type Report<'a> = &'a mut dyn FnMut(usize, f32);

/// Validation loss of `model` at `length` on `val`, `tokens` tokens from its start.
fn val_loss(
    model: &Model,
    rope: &RopeSpec,
    preset: &LmPreset,
    val: &[u16],
    length: usize,
) -> Result<f64, LmError> {
    let tokens = preset.val_tokens.max(length);
    Ok(evaluate(model, &rope.schedule(preset)?, val, length, tokens)?.mean_loss)
}

fn copy_weights(model: &Model) -> Result<Vec<Tensor>, LmError> {
    Ok(model
        .named_vars()
        .iter()
        .map(|(_, v)| v.as_tensor().copy())
        .collect::<candle_core::Result<_>>()?)
}

/// The input ids `(B, t)` and targets `(B * t)` of the windows of `train` at `offsets`.
fn windows(train: &[u16], offsets: &[usize], t: usize) -> Result<(Tensor, Tensor), LmError> {
    let mut ids = Vec::with_capacity(offsets.len() * t);
    let mut targets = Vec::with_capacity(offsets.len() * t);
    for &o in offsets {
        ids.extend(train[o..o + t].iter().map(|&x| u32::from(x)));
        targets.extend(train[o + 1..=o + t].iter().map(|&x| u32::from(x)));
    }
    Ok((
        Tensor::from_vec(ids, (offsets.len(), t), &Device::Cpu)?,
        Tensor::from_vec(targets, offsets.len() * t, &Device::Cpu)?,
    ))
}

/// The optimiser of every stage: AdamW over `model`'s weights at `lr`, weight decay 0.01.
fn optimizer(model: &Model, lr: f64) -> AdamW {
    let vars = model.named_vars().into_iter().map(|(_, v)| v).collect();
    AdamW::new(
        vars,
        ParamsAdamW {
            lr,
            weight_decay: 0.01,
            ..ParamsAdamW::default()
        },
    )
}

/// One optimiser step on the windows `ids` with `targets`; returns the training loss. With
/// several threads it runs on one of the pool's own threads, as PosGen's steps do: the parallel
/// parts then start on the thread already running and only the others are woken, where a caller
/// outside the pool wakes them all and sleeps until they finish.
fn train_step(
    model: &Model,
    opt: &mut AdamW,
    rope: &RopeTables,
    ids: &Tensor,
    targets: &Tensor,
) -> Result<f32, LmError> {
    #[cfg(not(target_arch = "wasm32"))]
    if rayon::current_thread_index().is_none() && rayon::current_num_threads() > 1 {
        return rayon::scope(|_| train_step(model, opt, rope, ids, targets));
    }
    let (logits, tape) = model.forward_tape(ids, rope)?;
    let (loss, g_logits) = loss_and_gradient(&logits, targets)?;
    opt.step(&tape.backward(&g_logits)?)?;
    Ok(loss)
}

/// Training throughput of `preset`'s pretraining step on random bytes (no corpus needed):
/// `warmup` untimed steps, then `steps` timed ones; returns their wall seconds. The step is
/// the one [`run_stage`] takes (windows of L, the preset's batch, AdamW), without validation.
pub fn bench(preset: &LmPreset, steps: usize, warmup: usize) -> Result<f64, LmError> {
    let mut rng = SplitMix64::derive(0, "lm-bench");
    let model = Model::new(preset.dims, &mut rng, &Device::Cpu)?;
    let t = preset.train_len;
    let stream: Vec<u16> = (0..(1 << 16) + t + 1)
        .map(|_| rng.below(256) as u16)
        .collect();
    let rope = RopeTables::new(&RopeSpec::rope(false).schedule(preset)?, t);
    let mut opt = optimizer(&model, preset.lr);
    let span = (stream.len() - t - 1) as u64;
    let mut start = Instant::now();
    for step in 0..warmup + steps {
        if step == warmup {
            start = Instant::now();
        }
        let offsets: Vec<usize> = (0..preset.batch)
            .map(|_| rng.below(span) as usize)
            .collect();
        let (ids, targets) = windows(&stream, &offsets, t)?;
        train_step(&model, &mut opt, &rope, &ids, &targets)?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Trains `model` for one stage on `train`, checking on `val`.
pub fn run_stage(
    model: &Model,
    preset: &LmPreset,
    stage: &Stage,
    seed: u64,
    (train, val): (&[u16], &[u16]),
    report: Report<'_>,
) -> Result<StageOutcome, LmError> {
    let t = stage.length;
    if train.len() < t + 2 {
        return Err(LmError::Usage(format!(
            "invalid --length: {t} needs more training text than the split's {} tokens",
            train.len()
        )));
    }
    let start = Instant::now();
    let rope = RopeTables::new(&stage.rope.schedule(preset)?, t);
    let vars: Vec<_> = model.named_vars().into_iter().map(|(_, v)| v).collect();
    let mut opt = optimizer(model, stage.lr);
    let mut rng = SplitMix64::derive(seed, &stage.order);
    let mut digest = OrderDigest::new();
    let mut offsets = Vec::new();
    let mut curve = Vec::new();
    let mut best: Option<(f64, Vec<Tensor>)> = None;
    let mut since_best = 0;
    let mut step = 0;
    let span = (train.len() - t - 1) as u64;
    while step < stage.steps {
        let warm = (step + 1) as f64 / stage.warmup.max(1) as f64;
        opt.set_learning_rate(stage.lr * warm.min(1.0));
        let first = offsets.len();
        for _ in 0..stage.batch {
            let o = rng.below(span) as usize;
            digest.add(o as u64);
            offsets.push(o);
        }
        let (ids, targets) = windows(train, &offsets[first..], t)?;
        let loss = train_step(model, &mut opt, &rope, &ids, &targets)?;
        step += 1;
        report(step, loss);
        let Some((every, patience, min_delta)) = stage.stop else {
            continue;
        };
        if step % every == 0 || step == stage.steps {
            let v = val_loss(model, &stage.rope, preset, val, t)?;
            curve.push([step as f64, v]);
            if best.as_ref().is_none_or(|(b, _)| v < b - min_delta) {
                best = Some((v, copy_weights(model)?));
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= patience {
                    break;
                }
            }
        }
    }
    let val_loss = match best {
        Some((v, w)) => {
            for (var, t) in vars.iter().zip(w) {
                var.set(&t)?;
            }
            v
        }
        None => val_loss(model, &stage.rope, preset, val, t)?,
    };
    let seconds = start.elapsed().as_secs_f64();
    Ok(StageOutcome {
        steps: step,
        val_loss,
        val_curve: curve,
        data_order: digest,
        offsets,
        seconds,
        tokens_per_second: (step * stage.batch * t) as f64 / seconds.max(1e-9),
    })
}

/// Pretraining with `rope` (plain or Resonance RoPE) from the seed's initial weights.
pub fn pretrain(
    preset: &LmPreset,
    corpus: &str,
    seed: u64,
    rope: RopeSpec,
    data: (&[u16], &[u16]),
    budget: usize,
    report: Report<'_>,
) -> Result<(Checkpoint, StageOutcome), LmError> {
    let mut init = SplitMix64::derive(seed, "lm-init");
    let model = Model::new(preset.dims, &mut init, &Device::Cpu)?;
    let stage = Stage {
        rope: rope.clone(),
        length: preset.train_len,
        batch: preset.batch,
        lr: preset.lr,
        warmup: preset.warmup,
        steps: preset.max_steps * budget,
        stop: Some((
            preset.check_every,
            preset.patience * budget,
            preset.min_delta,
        )),
        order: "lm-order-pretrain".into(),
    };
    let out = run_stage(&model, preset, &stage, seed, data, report)?;
    let meta = CheckpointMeta {
        preset: preset.name,
        corpus: corpus.into(),
        seed,
        stage: "pretrain".into(),
        rope,
        length: stage.length,
        steps: out.steps,
        val_loss: out.val_loss,
        parent: None,
        data_order: out.data_order.hex(),
        seconds: out.seconds,
        val_curve: out.val_curve.clone(),
    };
    Ok((Checkpoint { meta, model }, out))
}

/// The paper's short fine-tune: `from`'s weights trained `preset.ft_steps` steps with `rope`
/// at `length` (the batch shrinks with the length so every step sees the same tokens).
pub fn finetune(
    preset: &LmPreset,
    from: Checkpoint,
    parent: String,
    rope: RopeSpec,
    length: usize,
    data: (&[u16], &[u16]),
    report: Report<'_>,
) -> Result<(Checkpoint, StageOutcome), LmError> {
    let batch = (preset.batch * preset.train_len / length).max(1);
    let stage = Stage {
        rope: rope.clone(),
        length,
        batch,
        lr: preset.ft_lr,
        warmup: (preset.ft_steps / 10).max(1),
        steps: preset.ft_steps,
        stop: None,
        order: format!("lm-order-finetune-{length}"),
    };
    let model = from.model;
    let out = run_stage(&model, preset, &stage, from.meta.seed, data, report)?;
    let meta = CheckpointMeta {
        stage: "finetune".into(),
        rope,
        length,
        steps: out.steps,
        val_loss: out.val_loss,
        parent: Some(parent),
        data_order: out.data_order.hex(),
        seconds: out.seconds,
        val_curve: Vec::new(),
        ..from.meta
    };
    Ok((Checkpoint { meta, model }, out))
}

/// Whether two models hold the same weights bit for bit.
pub fn same_weights(a: &Model, b: &Model) -> Result<bool, LmError> {
    let (wa, wb) = (weights(a), weights(b));
    for (name, ta) in &wa {
        let Some(tb) = wb.get(name) else {
            return Ok(false);
        };
        let va = ta.flatten_all()?.to_vec1::<f32>()?;
        let vb = tb.flatten_all()?.to_vec1::<f32>()?;
        if va.len() != vb.len() || va.iter().zip(&vb).any(|(x, y)| x.to_bits() != y.to_bits()) {
            return Ok(false);
        }
    }
    Ok(wa.len() == wb.len())
}
