//! A training run as a study or probe plans it: [`TrainSpec`], the typed description that the
//! CLI renders into the recorded `command` of a results file and parses back to rerun it. Each
//! optional field is `None` when the run uses the default, so a description says exactly what
//! its command line says, no more.

use super::data::Protocol;
use super::presets::PresetName;
use super::run_config::{EarlyStop, RunConfig, Scaling};
use super::tasks::{MAX_MODULUS, Task};
use crate::rope::error::Part;
use crate::rope::{ConfigError, Method};

/// Steps between early-stopping checks when a run does not say.
pub const DEFAULT_STOP_EVERY: usize = 50;

/// One `posgen train` run: what it trains and how.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSpec {
    /// Task.
    pub task: Task,
    /// Schedule.
    pub method: Method,
    /// Resonance rounding after the schedule.
    pub resonance: bool,
    /// Hyper-parameter preset.
    pub preset: PresetName,
    /// Seed of data, weights and batch order.
    pub seed: u64,
    /// How the splits are drawn (`None`: clean).
    pub protocol: Option<Protocol>,
    /// Where scaling applies (`None`: in training).
    pub scaling: Option<Scaling>,
    /// Modulus of the task (`None`: the preset's).
    pub modulus: Option<u32>,
    /// Transformer blocks (`None`: the preset's).
    pub layers: Option<usize>,
    /// Residual width (`None`: the preset's).
    pub d_model: Option<usize>,
    /// Optimiser steps, or the cap under early stopping (`None`: the preset's).
    pub steps: Option<usize>,
    /// Early-stopping patience in checks (`None`: fixed steps).
    pub patience: Option<usize>,
    /// Steps between early-stopping checks (`None`: [`DEFAULT_STOP_EVERY`]).
    pub stop_every: Option<usize>,
    /// Validation pass every this many steps (`None`: never).
    pub eval_every: Option<usize>,
    /// Also test the trained model with this schedule (evaluation-only scaling pairs).
    pub also_eval_method: Option<Method>,
}

impl TrainSpec {
    /// A run with every optional setting at its default.
    pub fn new(task: Task, method: Method, resonance: bool, preset: PresetName, seed: u64) -> Self {
        TrainSpec {
            task,
            method,
            resonance,
            preset,
            seed,
            protocol: None,
            scaling: None,
            modulus: None,
            layers: None,
            d_model: None,
            steps: None,
            patience: None,
            stop_every: None,
            eval_every: None,
            also_eval_method: None,
        }
    }

    /// The run's configuration; errors name the field by key.
    pub fn run_config(&self) -> Result<RunConfig, ConfigError> {
        let mut rc = RunConfig::new(
            self.preset,
            self.task,
            self.method,
            self.resonance,
            self.seed,
        );
        if let Some(s) = self.steps {
            rc.steps = s;
        }
        if let Some(m) = self.modulus {
            if !(2..=MAX_MODULUS).contains(&m) {
                return Err(ConfigError::new(
                    "modulus",
                    format!("must be in 2..={MAX_MODULUS} (got {m})"),
                ));
            }
            rc.spec.modulus = m;
        }
        rc.scaling = self.scaling.unwrap_or(Scaling::Train);
        rc.eval_every = self.eval_every.unwrap_or(0);
        rc.protocol = self.protocol.unwrap_or(Protocol::Clean);
        let every = self.stop_every.unwrap_or(DEFAULT_STOP_EVERY);
        if let Some(patience) = self.patience {
            rc.early_stop = Some(EarlyStop { patience, every });
        }
        if self.layers.is_some() || self.d_model.is_some() {
            let layers = self.layers.unwrap_or(rc.preset.dims.n_layers);
            let width = self.d_model.unwrap_or(rc.preset.dims.d_model);
            rc = rc.with_shape(layers, width)?;
        }
        if let Some(m) = self.also_eval_method {
            let twin = RunConfig {
                method: m,
                ..rc.clone()
            };
            if rc.eval_every > 0 || twin.schedule_config(false) != rc.schedule_config(false) {
                return Err(ConfigError::with_parts(
                    "also_eval_method",
                    vec![
                        Part::Text("needs a method that trains exactly like ".into()),
                        Part::Field("method"),
                        Part::Text(format!(
                            " {} (evaluation-only scaling) and no ",
                            rc.method.name()
                        )),
                        Part::Field("eval_every"),
                    ],
                ));
            }
        }
        rc.validate()?;
        Ok(rc)
    }
}
