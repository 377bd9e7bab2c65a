//! NoPE (docs/schedules.md#nope): no positional encoding at all, every frequency 0, so no pair
//! ever rotates and attention sees positions only through the causal mask. The usual baseline
//! of length-generalisation studies; Resonance rounding leaves it unchanged (a zero frequency
//! has an infinite wavelength and stays 0).

use super::common;
use crate::rope::config::{HfKey, Method, MethodDef};

/// NoPE.
pub static DEF: MethodDef = MethodDef {
    id: "nope",
    aliases: &[],
    label: "NoPE",
    summary: "no positional encoding: every frequency 0, nothing rotates (the length-generalisation \
              baseline)",
    transformers_type: None,
    docs_anchor: "schedules.md#nope",
    params: &[],
    full_head: false,
    inv_freq_f32: |c| vec![0.0; c.rotary_dim() / 2],
    inv_freq_f64: |c| vec![0.0; c.rotary_dim() / 2],
    attention_factor: common::unit_attention,
    validate: common::no_checks,
    import: |_, d| Ok(d.original_or_max()),
    hf_train_len: HfKey::Rope("original_max_position_embeddings"),
    details: common::no_details,
};

impl Method {
    /// NoPE.
    pub const NOPE: Method = Method(&DEF);
}

#[cfg(test)]
mod tests {
    use crate::rope::{self, Method, Schedule, ScheduleConfig};

    fn nope(resonance: bool) -> Schedule {
        let c = ScheduleConfig {
            method: Method::NOPE,
            resonance,
            ..ScheduleConfig::with_lengths(Method::NOPE, 64, 1e4, 64, 256)
        };
        Schedule::new(&c).expect("valid")
    }

    #[test]
    fn nothing_rotates_and_resonance_changes_nothing() {
        let (plain, rounded) = (nope(false), nope(true));
        assert_eq!(plain.inv_freq, vec![0.0f32; 32]);
        assert_eq!(rounded.inv_freq, plain.inv_freq);
        assert_eq!(rounded.inv_freq_f64, plain.inv_freq_f64);
        assert_eq!(plain.zero_frequency_features(), (0..32).collect::<Vec<_>>());
        assert_eq!(plain.attention_factor, 1.0);
        // every feature value is cos = 1, sin = 0 at any position, so every gap is 0
        for p in [0u64, 1, 255, 1_000_000, u32::MAX as u64] {
            let (cos, sin) = rope::cos_sin(&plain, p);
            assert!(cos.iter().all(|&v| v == 1.0) && sin.iter().all(|&v| v == 0.0));
        }
        assert!(rope::gap_analysis(&plain).gap.iter().all(|&g| g == 0.0));
    }

    #[test]
    fn the_rotary_dimension_sets_the_feature_count() {
        let c = ScheduleConfig {
            partial_rotary_factor: 0.5,
            ..ScheduleConfig::with_lengths(Method::NOPE, 128, 1e4, 64, 256)
        };
        assert_eq!(Schedule::new(&c).expect("valid").num_features(), 32);
    }
}
