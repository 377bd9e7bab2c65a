//! High-precision references used to check the exact-phase paths (CPU fixed point and GPU):
//! double-double phases and the naive f32 formula that long-context bugs come from.

use super::{Schedule, phase::Phase, phase::turns_per_token_dd};
use std::f64::consts::PI;

/// Phase in turns, in `[0, 1)`, of a feature with f32 inverse frequency `inv` at position `p`
/// (p < 2^53), computed in double-double arithmetic (about 100 bits): `frac(p * inv / 2pi)`.
pub fn turns_from_inv_freq(inv: f32, p: u64) -> f64 {
    let (ah, al) = turns_per_token_dd(inv as f64);
    let pf = p as f64;
    let x = pf * ah;
    let e = pf.mul_add(ah, -x);
    let t = x.fract() + (e + pf * al);
    t.rem_euclid(1.0)
}

/// Reference phase in turns for feature `i` of `schedule` at position `p`.
pub fn turns(schedule: &Schedule, i: usize, p: u64) -> f64 {
    match schedule.phases[i] {
        Phase::Integer { lambda } => (p % lambda) as f64 / lambda as f64,
        Phase::Fixed { .. } => match &schedule.rounding {
            Some(r) => (p as f64 / r.rounded[i]).rem_euclid(1.0),
            None => turns_from_inv_freq(schedule.inv_freq[i], p),
        },
    }
}

/// Reference `(cos, sin)` of every feature at `p`, attention factor applied.
pub fn cos_sin(schedule: &Schedule, p: u64) -> (Vec<f64>, Vec<f64>) {
    let af = schedule.attention_factor;
    (0..schedule.num_features())
        .map(|i| {
            let (s, c) = (turns(schedule, i, p) * 2.0 * PI).sin_cos();
            (c * af, s * af)
        })
        .unzip()
}
