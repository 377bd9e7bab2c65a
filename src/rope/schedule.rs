//! Defaults, validation and evaluation of a [`ScheduleConfig`], all read from the registry:
//! every parameter's own range ([`crate::rope::config::Param`]) is checked whatever the method,
//! so switching the method never reveals a bad value; then the selected method's own checks;
//! then its formula ([`crate::rope::methods`]).

pub use super::config::{MAX_DIM, MAX_EVAL_LEN, Method, PairLayout, ScheduleConfig};
pub use super::error::ConfigError;
use super::methods::all_params;
pub use super::methods::{get_mscale, yarn_correction_range};
use super::params::DERIVE_ORDER;

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            method: Method::ROPE,
            resonance: false,
            dim: 64,
            base: 10000.0,
            train_len: 64,
            eval_len: 256,
            scale: 4.0,
            beta_fast: 32.0,
            beta_slow: 1.0,
            truncate: true,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            seq_len: 256,
            layout: PairLayout::HalfSplit,
            partial_rotary_factor: 1.0,
            mscale: None,
            mscale_all_dim: None,
            attention_factor: None,
            short_factor: Vec::new(),
            long_factor: Vec::new(),
        }
    }
}

impl Default for Method {
    fn default() -> Self {
        Method::ROPE
    }
}

impl ScheduleConfig {
    /// A config with `eval_len = 4 * train_len`, `scale = eval_len / train_len`, `seq_len = eval_len`.
    pub fn with_lengths(
        method: Method,
        dim: usize,
        base: f64,
        train_len: u64,
        eval_len: u64,
    ) -> Self {
        ScheduleConfig {
            method,
            dim,
            base,
            train_len,
            eval_len,
            scale: eval_len as f64 / train_len.max(1) as f64,
            seq_len: eval_len,
            ..ScheduleConfig::default()
        }
    }

    /// Fills the fields a caller left out with their derived defaults (L' = 4 L, s = L'/L,
    /// l = L'), in dependency order; `given` says which keys the caller set.
    pub fn derive_defaults(&mut self, given: &dyn Fn(&str) -> bool) {
        for p in DERIVE_ORDER {
            if let Some(derive) = p.derive
                && !given(p.key)
            {
                derive(self);
            }
        }
    }

    /// Checks every field; the error names the offending field by key and its valid range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let pairs = self.rotary_dim() / 2;
        for p in all_params() {
            p.check(&(p.get)(self), Some(pairs))?;
            if let Some(relation) = p.relation {
                relation(self)?;
            }
        }
        (self.method.def().validate)(self)
    }
}

/// Per-feature frequencies of one schedule before Resonance rounding.
#[derive(Clone, Debug, PartialEq)]
pub struct Frequencies {
    /// f32 inverse frequencies with transformers' operation order.
    pub inv_freq_f32: Vec<f32>,
    /// The same formula evaluated in f64.
    pub inv_freq_f64: Vec<f64>,
    /// Multiplier on both cos and sin (YaRN temperature; 1 otherwise).
    pub attention_factor: f64,
}

/// The method's schedule for `c`, which must be valid.
pub fn method_freqs(c: &ScheduleConfig) -> Frequencies {
    let d = c.method.def();
    Frequencies {
        inv_freq_f32: (d.inv_freq_f32)(c),
        inv_freq_f64: (d.inv_freq_f64)(c),
        attention_factor: (d.attention_factor)(c),
    }
}
