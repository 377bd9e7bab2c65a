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
    let mut out = Vec::new();
    GapWorkspace::default().curve_into(phase, train_len, eval_len, &mut out);
    out
}

/// Reusable buffers for gap computations, so repeated calls (every feature, every slider
/// change) do not allocate and page-fault fresh memory.
#[derive(Clone, Debug, Default)]
pub struct GapWorkspace {
    prefix: Vec<u64>,
    suffix: Vec<u64>,
}

impl GapWorkspace {
    /// Fills the block prefix/suffix minima of one feature's keys `||k alpha||`, k = 1 .. L'-1.
    /// Returns the window minima as an iterator over OOD positions `n = L + j` (empty when
    /// there is none).
    fn window_minima(
        &mut self,
        phase: &Phase,
        train_len: u64,
        eval_len: u64,
    ) -> impl ExactSizeIterator<Item = u64> + '_ {
        let (l, lp) = (train_len as usize, eval_len as usize);
        let n = lp.saturating_sub(1);
        if lp <= l || l == 0 {
            self.prefix.clear();
            self.suffix.clear();
        } else {
            match *phase {
                Phase::Integer { lambda } => {
                    let mut r = 0u64;
                    let keys = move || {
                        r += 1;
                        if r == lambda {
                            r = 0;
                        }
                        r.min(lambda - r)
                    };
                    block_minima(keys, n, l, &mut self.prefix, &mut self.suffix);
                }
                Phase::Fixed { alpha } => {
                    let mut f = 0u64;
                    let keys = move || {
                        f = f.wrapping_add(alpha);
                        f.min(f.wrapping_neg())
                    };
                    block_minima(keys, n, l, &mut self.prefix, &mut self.suffix);
                }
            }
        }
        window_minima(&self.prefix, &self.suffix, l)
    }

    /// Writes the gap curve of one feature (radians for n = L .. L'-1) into `out`.
    pub fn curve_into(&mut self, phase: &Phase, train_len: u64, eval_len: u64, out: &mut Vec<f64>) {
        let to_radians = key_to_radians(phase);
        out.clear();
        out.extend(
            self.window_minima(phase, train_len, eval_len)
                .map(|m| m as f64 * to_radians),
        );
    }

    /// The gap of one feature (radians) and the first OOD position attaining it (`train_len`
    /// when there is no OOD position or the gap is 0). Integer wavelengths <= L give 0 at once
    /// (every window of L consecutive offsets holds a multiple of the wavelength); otherwise the
    /// window minima are streamed block by block without storing the curve.
    pub fn max_gap(&mut self, phase: &Phase, train_len: u64, eval_len: u64) -> (f64, u64) {
        let to_radians = key_to_radians(phase);
        let (l, lp) = (train_len as usize, eval_len as usize);
        let n = lp.saturating_sub(1);
        if lp <= l || l == 0 {
            return (0.0, train_len);
        }
        let (best, at) = match *phase {
            Phase::Integer { lambda } if lambda <= train_len => (0, 0),
            Phase::Integer { lambda } => {
                let mut r = 0u64;
                let keys = move || {
                    r += 1;
                    if r == lambda {
                        r = 0;
                    }
                    r.min(lambda - r)
                };
                max_window_min(keys, n, l, &mut self.suffix)
            }
            Phase::Fixed { alpha } => {
                let mut f = 0u64;
                let keys = move || {
                    f = f.wrapping_add(alpha);
                    f.min(f.wrapping_neg())
                };
                max_window_min(keys, n, l, &mut self.suffix)
            }
        };
        (best as f64 * to_radians, train_len + at as u64)
    }
}

/// The largest window minimum (window `w`) over `n` keys from `keys()` and the first window
/// index attaining it, streamed: a window starting in block b (blocks of `w`) has minimum
/// `min(suffix_b[i], prefix_{b+1}[i-1])`, so only block b's suffix minima are kept (one buffer of
/// `w`, overwritten in place by block b+1's keys as they are consumed). Same O(n) as
/// [`block_minima`] with a cache-resident buffer instead of two arrays of length n.
fn max_window_min(
    mut keys: impl FnMut() -> u64,
    n: usize,
    w: usize,
    suffix: &mut Vec<u64>,
) -> (u64, usize) {
    if w == 0 || n < w {
        return (0, 0);
    }
    let windows = n - w + 1;
    suffix.clear();
    suffix.extend((0..w).map(|_| keys()));
    suffix_minima(suffix);
    let (mut best, mut at) = (0u64, 0usize);
    let (mut consumed, mut start) = (w, 0usize);
    while start < windows {
        if suffix[0] > best {
            best = suffix[0];
            at = start;
        }
        let len = w.min(n - consumed);
        // windows start+1 .. start+w-1 end in the next block: evaluate while streaming it
        let eval = len.min(w - 1).min(windows - start - 1);
        let mut p = u64::MAX;
        for j in 0..eval {
            let k = keys();
            p = p.min(k);
            let m = suffix[j + 1].min(p);
            if m > best {
                best = m;
                at = start + j + 1;
            }
            suffix[j] = k;
        }
        for slot in &mut suffix[eval..len] {
            *slot = keys();
        }
        if len < w {
            break;
        }
        suffix_minima(suffix);
        consumed += w;
        start += w;
    }
    (best, at)
}

/// In-place suffix minima of a block.
fn suffix_minima(block: &mut [u64]) {
    let mut run = u64::MAX;
    for s in block.iter_mut().rev() {
        run = run.min(*s);
        *s = run;
    }
}

/// The factor turning an exact distance key of `phase` into radians.
fn key_to_radians(phase: &Phase) -> f64 {
    match *phase {
        Phase::Integer { lambda } => 2.0 * PI / lambda as f64,
        Phase::Fixed { .. } => 2.0 * PI / TWO_POW_64,
    }
}

/// van Herk / Gil-Werman block minima of `n` keys drawn from `keys()`, window `w`: keys are
/// generated block by block (blocks of `w`) into per-block prefix minima and suffix minima.
/// O(n) with no branches on the data.
fn block_minima(
    mut keys: impl FnMut() -> u64,
    n: usize,
    w: usize,
    prefix: &mut Vec<u64>,
    suffix: &mut Vec<u64>,
) {
    prefix.resize(n, 0);
    suffix.resize(n, 0);
    for (pb, sb) in prefix.chunks_mut(w).zip(suffix.chunks_mut(w)) {
        let mut run = u64::MAX;
        for (p, s) in pb.iter_mut().zip(sb.iter_mut()) {
            let k = keys();
            *s = k;
            run = run.min(k);
            *p = run;
        }
        let mut run = u64::MAX;
        for s in sb.iter_mut().rev() {
            run = run.min(*s);
            *s = run;
        }
    }
}

/// The window starting at s spans at most two blocks: its minimum is
/// `min(suffix[s], prefix[s + w - 1])`. Empty when there are fewer than `w` keys.
fn window_minima<'a>(
    prefix: &'a [u64],
    suffix: &'a [u64],
    w: usize,
) -> impl ExactSizeIterator<Item = u64> + 'a {
    let count = if w == 0 || suffix.len() < w {
        0
    } else {
        suffix.len() - w + 1
    };
    let tail = prefix.get(w.saturating_sub(1)..).unwrap_or(&[]);
    suffix[..count].iter().zip(tail).map(|(&a, &b)| a.min(b))
}

/// Minimum of every window of `w` consecutive keys, for the windows ending at index
/// `w-1 ..= len-1` (the same block algorithm the gap uses, on explicit keys).
pub fn sliding_window_min(keys: &[u64], w: usize) -> Vec<u64> {
    if w == 0 || keys.len() < w {
        return Vec::new();
    }
    let (mut prefix, mut suffix) = (Vec::new(), Vec::new());
    let mut it = keys.iter().copied();
    block_minima(
        move || it.next().unwrap_or(u64::MAX),
        keys.len(),
        w,
        &mut prefix,
        &mut suffix,
    );
    window_minima(&prefix, &suffix, w).collect()
}

/// Gap of one feature in radians: the maximum of its gap curve (0 when there is no OOD position).
pub fn gap_for_phase(phase: &Phase, train_len: u64, eval_len: u64) -> f64 {
    GapWorkspace::default()
        .max_gap(phase, train_len, eval_len)
        .0
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
    let mut ws = GapWorkspace::default();
    let (gap, worst_position): (Vec<f64>, Vec<u64>) = schedule
        .phases
        .iter()
        .map(|phase| ws.max_gap(phase, l, lp))
        .unzip();
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
