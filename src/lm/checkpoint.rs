//! Checkpoints: a directory with `model.safetensors` (the weights, by the names of
//! [`Model::named_vars`]) and `meta.json` (what was trained, how, from what). Each file is
//! written to a temporary name and renamed, and `meta.json` goes last, so a directory with a
//! `meta.json` always holds a whole checkpoint, even after a kill.

use super::error::LmError;
use super::preset::{LmPreset, LmPresetName};
use crate::posgen::{Model, SplitMix64};
use crate::rope::{Method, PairLayout, Schedule, ScheduleConfig};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The rotary schedule a model is run with: a method of the registry, Resonance rounding, and
/// the scale factor over the pretraining length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RopeSpec {
    /// Registry name of the method (`rope`, `yarn`, ...).
    pub method: String,
    /// Resonance rounding after the schedule.
    pub resonance: bool,
    /// Scale factor s (1 for plain RoPE).
    pub scale: f64,
}

impl RopeSpec {
    /// Plain RoPE, or Resonance RoPE.
    pub fn rope(resonance: bool) -> RopeSpec {
        RopeSpec {
            method: Method::ROPE.name().into(),
            resonance,
            scale: 1.0,
        }
    }

    /// The schedule for a model of `preset` (head dimension, base, pretraining length L;
    /// the scaled length is s x L).
    pub fn schedule(&self, preset: &LmPreset) -> Result<Schedule, LmError> {
        let method = Method::from_name(&self.method).ok_or_else(|| {
            LmError::Usage(format!("invalid --method: unknown `{}`", self.method))
        })?;
        let l = preset.train_len as u64;
        let eval_len = ((self.scale * l as f64).round() as u64).max(l);
        Ok(Schedule::new(&ScheduleConfig {
            method,
            resonance: self.resonance,
            dim: preset.dims.head_dim,
            base: preset.base,
            train_len: l,
            eval_len,
            scale: self.scale,
            seq_len: eval_len,
            layout: PairLayout::Interleaved,
            ..ScheduleConfig::default()
        })?)
    }

    /// A label such as `Resonance YaRN s=4`.
    pub fn label(&self) -> String {
        let m = Method::from_name(&self.method).map_or(self.method.as_str(), |m| m.def().label);
        let r = if self.resonance { "Resonance " } else { "" };
        if self.scale == 1.0 {
            format!("{r}{m}")
        } else {
            format!("{r}{m} s={}", self.scale)
        }
    }
}

/// What a checkpoint holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Preset of the model.
    pub preset: LmPresetName,
    /// Corpus trained on.
    pub corpus: String,
    /// Seed of the initial weights and the data order.
    pub seed: u64,
    /// `pretrain` or `finetune`.
    pub stage: String,
    /// The schedule it was (last) trained with.
    pub rope: RopeSpec,
    /// Window length of its (last) training.
    pub length: usize,
    /// Optimiser steps of its (last) training stage.
    pub steps: usize,
    /// Validation loss (nats per byte) at the end, at `length`.
    pub val_loss: f64,
    /// The checkpoint it was fine-tuned from.
    pub parent: Option<String>,
    /// FNV-1a digest of every window offset it was trained on (equal digests: equal data order;
    /// paired runs that stop at different steps differ here, though the shorter one's windows
    /// are the first ones of the longer).
    pub data_order: String,
    /// Wall seconds of its training stage.
    pub seconds: f64,
    /// Validation losses at each check of pretraining: `[step, loss]`.
    pub val_curve: Vec<[f64; 2]>,
}

/// A model with its description.
pub struct Checkpoint {
    /// What it is.
    pub meta: CheckpointMeta,
    /// Its weights.
    pub model: Model,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> LmError {
    LmError::Runtime(format!("cannot write {}: {e}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LmError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| io_err(path, e))
}

/// The weights of `model`, by name.
pub fn weights(model: &Model) -> HashMap<String, Tensor> {
    model
        .named_vars()
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().clone()))
        .collect()
}

/// Overwrites `model`'s weights with `tensors`; a missing name or another shape is bad input
/// (a checkpoint of another preset).
pub fn set_weights(
    model: &Model,
    tensors: &HashMap<String, Tensor>,
    what: &str,
) -> Result<(), LmError> {
    for (name, var) in model.named_vars() {
        let t = tensors.get(&name).ok_or_else(|| {
            LmError::Usage(format!(
                "invalid {what}: the checkpoint has no weight `{name}`"
            ))
        })?;
        if t.dims() != var.dims() {
            return Err(LmError::Usage(format!(
                "invalid {what}: weight `{name}` is {:?}, the preset's model needs {:?} (a \
                 checkpoint of another preset?)",
                t.dims(),
                var.dims()
            )));
        }
        var.set(t)?;
    }
    Ok(())
}

impl Checkpoint {
    /// Writes the checkpoint into directory `dir` (created when missing).
    pub fn save(&self, dir: &Path) -> Result<(), LmError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let meta_path = dir.join("meta.json");
        // an old meta.json must not vouch for new weights while they are written
        let _ = std::fs::remove_file(&meta_path);
        let weights_path = dir.join("model.safetensors");
        let tmp = weights_path.with_extension("tmp");
        candle_core::safetensors::save(&weights(&self.model), &tmp).map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, &weights_path).map_err(|e| io_err(&weights_path, e))?;
        let text = serde_json::to_string_pretty(&self.meta).map_err(|e| io_err(&meta_path, e))?;
        write_atomic(&meta_path, text.as_bytes())
    }

    /// Reads the checkpoint in `dir`; `what` names the option in errors (e.g. `--from`).
    pub fn load(dir: &Path, what: &str) -> Result<Checkpoint, LmError> {
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| {
            LmError::Usage(format!(
                "invalid {what}: {} is not a checkpoint ({e})",
                dir.display()
            ))
        })?;
        let meta: CheckpointMeta = serde_json::from_str(&text)
            .map_err(|e| LmError::Usage(format!("invalid {what}: {}: {e}", meta_path.display())))?;
        let data = std::fs::read(dir.join("model.safetensors")).map_err(|e| {
            LmError::Usage(format!(
                "invalid {what}: no weights in {}: {e}",
                dir.display()
            ))
        })?;
        let model = load_model(&data, meta.preset, what)?;
        Ok(Checkpoint { meta, model })
    }
}

/// A model of `preset` with the weights of safetensors bytes `data`.
pub fn load_model(data: &[u8], preset: LmPresetName, what: &str) -> Result<Model, LmError> {
    let tensors = candle_core::safetensors::load_buffer(data, &Device::Cpu)
        .map_err(|e| LmError::Usage(format!("invalid {what}: unreadable weights: {e}")))?;
    let p = LmPreset::get(preset);
    let mut rng = SplitMix64::derive(0, "lm-load");
    let model = Model::new(p.dims, &mut rng, &Device::Cpu)?;
    set_weights(&model, &tensors, what)?;
    Ok(model)
}
