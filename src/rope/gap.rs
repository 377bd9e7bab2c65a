//! The interpolation (feature) gap, SPEC section 4: for each feature, the worst case over OOD
//! positions n in [L, L') of the smallest circular angle distance to any training position
//! m in [0, L). With k = n - m it is a sliding-window minimum of `||k * alpha||` over
//! `k in (n - L, n]`, computed exactly in O(L') per feature with a monotone deque.

use super::{Schedule, phase::Phase, phase::TWO_POW_64};
use serde::Serialize;
use std::f64::consts::PI;

/// Gap curve of one feature: `gap(n)` in radians for n = L .. L'-1 (empty when L' == L).
/// The inner minimum uses the window `k in [n-L+1, n]` of the exact integer keys `||k alpha||`.
pub fn gap_curve(phase: &Phase, train_len: u64, eval_len: u64) -> Vec<f64> {
    let (l, lp) = (train_len as usize, eval_len as usize);
    if lp <= l || l == 0 {
        return Vec::new();
    }
    // keys[j] = ||(j+1) alpha|| for k = j + 1 = 1 .. L'-1
    let (keys, to_radians) = distance_keys(phase, lp - 1);
    sliding_window_min(&keys, l)
        .into_iter()
        .map(|m| m as f64 * to_radians)
        .collect()
}

/// Exact integer keys `||k alpha||` for k = 1 ..= count, and the factor turning a key into radians.
pub fn distance_keys(phase: &Phase, count: usize) -> (Vec<u64>, f64) {
    match *phase {
        Phase::Integer { lambda } => {
            let mut r = 0u64;
            let keys = (0..count)
                .map(|_| {
                    r += 1;
                    if r == lambda {
                        r = 0;
                    }
                    r.min(lambda - r)
                })
                .collect();
            (keys, 2.0 * PI / lambda as f64)
        }
        Phase::Fixed { alpha } => {
            let mut f = 0u64;
            let keys = (0..count)
                .map(|_| {
                    f = f.wrapping_add(alpha);
                    f.min(f.wrapping_neg())
                })
                .collect();
            (keys, 2.0 * PI / TWO_POW_64)
        }
    }
}

/// Minimum of every window of `w` consecutive keys that ends at index `w-1 ..= len-1`
/// (van Herk / Gil-Werman: per-block prefix and suffix minima, O(len), branch-free).
pub fn sliding_window_min(keys: &[u64], w: usize) -> Vec<u64> {
    let n = keys.len();
    if w == 0 || n < w {
        return Vec::new();
    }
    let mut prefix = keys.to_vec();
    let mut suffix = keys.to_vec();
    for block in prefix.chunks_mut(w) {
        for j in 1..block.len() {
            block[j] = block[j].min(block[j - 1]);
        }
    }
    for block in suffix.chunks_mut(w) {
        for j in (0..block.len().saturating_sub(1)).rev() {
            block[j] = block[j].min(block[j + 1]);
        }
    }
    // window [s, s + w - 1] spans at most two blocks: suffix of the first, prefix of the second
    (0..=n - w)
        .map(|s| suffix[s].min(prefix[s + w - 1]))
        .collect()
}

/// Gap of one feature in radians: the maximum of its gap curve (0 when there is no OOD position).
pub fn gap_for_phase(phase: &Phase, train_len: u64, eval_len: u64) -> f64 {
    gap_curve(phase, train_len, eval_len)
        .into_iter()
        .fold(0.0, f64::max)
}

/// Gap per feature plus the OOD position where each feature's gap is attained.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GapAnalysis {
    /// Gap per feature in radians (circular distance, in [0, pi]).
    pub gap: Vec<f64>,
    /// The same as a chord length `2 sin(gap/2)` (distance of unit vectors).
    pub chord: Vec<f64>,
    /// OOD position n at which each feature's gap is attained (first one); `train_len` when none.
    pub worst_position: Vec<u64>,
}

/// Gap per feature for a whole schedule.
pub fn gap_analysis(schedule: &Schedule) -> GapAnalysis {
    let (l, lp) = (schedule.config.train_len, schedule.config.eval_len);
    let mut gap = Vec::with_capacity(schedule.phases.len());
    let mut worst_position = Vec::with_capacity(schedule.phases.len());
    for phase in &schedule.phases {
        let curve = gap_curve(phase, l, lp);
        let (mut best, mut at) = (0.0f64, l);
        for (j, &g) in curve.iter().enumerate() {
            if g > best {
                best = g;
                at = l + j as u64;
            }
        }
        gap.push(best);
        worst_position.push(at);
    }
    let chord = gap.iter().map(|&g| 2.0 * (g / 2.0).sin()).collect();
    GapAnalysis {
        gap,
        chord,
        worst_position,
    }
}

/// Brute-force O(L * L') gap of a feature with angular frequency `theta` (f64 angles), the
/// independent definition used to test the fast algorithm. Only for small lengths.
pub fn gap_brute_force(theta: f64, train_len: u64, eval_len: u64) -> f64 {
    let two_pi = 2.0 * PI;
    let mut worst = 0.0f64;
    for n in train_len..eval_len {
        let a = (n as f64 * theta).rem_euclid(two_pi);
        let mut best = f64::INFINITY;
        for m in 0..train_len {
            let b = (m as f64 * theta).rem_euclid(two_pi);
            let d = (a - b).abs();
            best = best.min(d.min(two_pi - d));
        }
        worst = worst.max(best);
    }
    worst
}
