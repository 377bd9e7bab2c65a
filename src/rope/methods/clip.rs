//! Frequency clip (docs/schedules.md#clip): plain RoPE, except that every feature whose
//! wavelength `2π/θ_i` exceeds the training length L stops rotating (frequency 0). Those features
//! never complete a period in training, so the values they take beyond L were never seen; clipped,
//! they take one value at every position. This is the schedule part of HoPE (arXiv 2410.21216)
//! and of FoPE's frequency clipping (arXiv 2412.17739).

use super::common;
use crate::rope::ScheduleConfig;
use crate::rope::config::{HfKey, Method, MethodDef};
use serde_json::json;

/// Whether a feature of f32 frequency `theta` is clipped at training length `train_len`: its
/// wavelength `2π/θ` (evaluated in f64 from the f32 frequency) is longer than L. The f32 value
/// decides for both precisions, so the f32 schedule and its f64 twin clip the same features.
fn clipped(theta: f32, train_len: u64) -> bool {
    std::f64::consts::TAU / theta as f64 > train_len as f64
}

/// The features that rotate no more (ascending).
pub fn clipped_features(c: &ScheduleConfig) -> Vec<usize> {
    common::default_f32(c.base, c.rotary_dim())
        .iter()
        .enumerate()
        .filter(|&(_, &t)| clipped(t, c.train_len))
        .map(|(i, _)| i)
        .collect()
}

fn inv_freq_f32(c: &ScheduleConfig) -> Vec<f32> {
    common::default_f32(c.base, c.rotary_dim())
        .into_iter()
        .map(|t| if clipped(t, c.train_len) { 0.0 } else { t })
        .collect()
}

fn inv_freq_f64(c: &ScheduleConfig) -> Vec<f64> {
    let f32s = common::default_f32(c.base, c.rotary_dim());
    common::default_f64(c.base, c.rotary_dim())
        .into_iter()
        .zip(f32s)
        .map(|(t, t32)| if clipped(t32, c.train_len) { 0.0 } else { t })
        .collect()
}

/// Frequency clip.
pub static DEF: MethodDef = MethodDef {
    id: "clip",
    aliases: &[],
    label: "Frequency clip",
    summary: "plain RoPE with every feature whose wavelength exceeds L set to frequency 0 (the \
              schedule part of HoPE and FoPE)",
    transformers_type: None,
    docs_anchor: "schedules.md#clip",
    params: &[],
    full_head: false,
    inv_freq_f32,
    inv_freq_f64,
    attention_factor: common::unit_attention,
    validate: common::no_checks,
    import: |_, d| Ok(d.original_or_max()),
    hf_train_len: HfKey::Rope("original_max_position_embeddings"),
    details: |c| vec![("clipped_features", json!(clipped_features(c)))],
};

impl Method {
    /// Frequency clip.
    pub const CLIP: Method = Method(&DEF);
}

#[cfg(test)]
mod tests {
    use super::clipped_features;
    use crate::rope::{self, Method, Schedule, ScheduleConfig};
    use std::f64::consts::TAU;

    fn config(method: Method, train_len: u64) -> ScheduleConfig {
        ScheduleConfig::with_lengths(method, 64, 1e4, train_len, 4 * train_len)
    }

    #[test]
    fn features_longer_than_training_stop_and_the_rest_are_plain_rope() {
        let c = config(Method::CLIP, 64);
        let clip = Schedule::new(&c).expect("valid");
        let plain = Schedule::new(&config(Method::ROPE, 64)).expect("valid");
        // hand-derived: θ_i = 10^(-4·2i/64), wavelength 2π·10^(i/8) > 64 ⇔ i > 8·log10(64/2π) =
        // 8.06, so i ≥ 9
        assert_eq!(clipped_features(&c), (9..32).collect::<Vec<_>>());
        assert_eq!(clip.zero_frequency_features(), (9..32).collect::<Vec<_>>());
        for i in 0..32 {
            let (want32, want64) = if i < 9 {
                (plain.inv_freq[i], plain.inv_freq_f64[i])
            } else {
                (0.0, 0.0)
            };
            assert_eq!(clip.inv_freq[i].to_bits(), want32.to_bits(), "feature {i}");
            assert_eq!(clip.inv_freq_f64[i].to_bits(), want64.to_bits(), "feature {i}");
            let w = TAU / plain.inv_freq[i] as f64;
            assert_eq!(w > 64.0, i >= 9, "feature {i}: wavelength {w}");
        }
        assert_eq!(clip.attention_factor, 1.0);
    }

    #[test]
    fn past_training_the_clipped_features_repeat_what_training_saw() {
        let clip = Schedule::new(&config(Method::CLIP, 64)).expect("valid");
        let gaps = rope::gap_analysis(&clip).gap;
        // clipped features take one value everywhere, so their gap is exactly 0
        assert!((9..32).all(|i| gaps[i] == 0.0), "{gaps:?}");
        for p in [64u64, 1000, 1 << 20] {
            let (cos, sin) = rope::cos_sin(&clip, p);
            assert!((9..32).all(|i| cos[i] == 1.0 && sin[i] == 0.0));
        }
    }

    #[test]
    fn a_longer_training_length_clips_fewer_features() {
        let counts: Vec<usize> = [16u64, 64, 256, 4096, 1 << 20]
            .iter()
            .map(|&l| clipped_features(&config(Method::CLIP, l)).len())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
        // every wavelength of b = 1e4, d = 64 is below 2π·1e4 < 2^20: nothing clipped
        assert_eq!(counts[4], 0);
    }

    #[test]
    fn resonance_keeps_clipped_features_at_zero() {
        let c = ScheduleConfig {
            resonance: true,
            ..config(Method::CLIP, 64)
        };
        let s = Schedule::new(&c).expect("valid");
        assert_eq!(s.zero_frequency_features(), (9..32).collect::<Vec<_>>());
        // the rotating features get integer wavelengths, as Resonance RoPE does
        for i in 0..9 {
            let w = TAU / s.inv_freq_f64[i];
            assert!((w - w.round()).abs() < 1e-9, "feature {i}: wavelength {w}");
        }
    }
}
