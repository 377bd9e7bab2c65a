//! The interpolation (feature) gap (docs/gap.md#definition): for each feature, the worst case over OOD
//! positions n in [L, L') of the smallest circular angle distance to any training position
//! m in [0, L). With k = n - m it is a sliding-window minimum of `||k * alpha||` over
//! `k in (n - L, n]`, computed exactly in O(L') per feature with van Herk / Gil-Werman block
//! minima, streamed through one buffer of L keys.

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
    suffix: Vec<u64>,
}

impl GapWorkspace {
    /// Streams one feature's window minima (exact keys `||k alpha||`, window L) to
    /// `sink(j, minimum)` for the OOD positions `n = first + j < end` (`first >= L`); nothing
    /// when there is none. Only the keys those windows cover are generated: `k` from
    /// `first - L + 1` to `end - 1`.
    fn for_each_window_min(
        &mut self,
        phase: &Phase,
        train_len: u64,
        (first, end): (u64, u64),
        sink: impl FnMut(usize, u64),
    ) {
        let l = train_len;
        if end <= first || l == 0 || first < l {
            return;
        }
        // keys k0 .. end-1, each generator stepping to the next k before returning its key
        let k0 = first - l + 1;
        let n = (end - k0) as usize;
        let w = l as usize;
        match *phase {
            Phase::Integer { lambda } => {
                let mut r = (k0 - 1) % lambda.max(1);
                let keys = move || {
                    r += 1;
                    if r == lambda {
                        r = 0;
                    }
                    r.min(lambda - r)
                };
                stream_window_minima(keys, n, w, &mut self.suffix, sink);
            }
            Phase::Fixed { alpha } => {
                let mut f = (k0 - 1).wrapping_mul(alpha);
                let keys = move || {
                    f = f.wrapping_add(alpha);
                    f.min(f.wrapping_neg())
                };
                stream_window_minima(keys, n, w, &mut self.suffix, sink);
            }
        }
    }

    /// The gap (radians) at each position `n` of `[start, end)`: 0 below L (those positions
    /// are the training range), the exact window minimum from L on, at a cost of
    /// `end - max(start, L) + L` keys whatever L' is, so a detail window at position 2^24
    /// costs what one at L does.
    pub fn curve_range(&mut self, phase: &Phase, train_len: u64, start: u64, end: u64) -> Vec<f64> {
        let to_radians = key_to_radians(phase);
        let first = start.max(train_len).min(end);
        let mut out = vec![0.0; (first - start.min(first)) as usize];
        out.reserve((end - first) as usize);
        self.for_each_window_min(phase, train_len, (first, end), |_, m| {
            out.push(m as f64 * to_radians)
        });
        out
    }

    /// Writes the gap curve of one feature (radians for n = L .. L'-1) into `out`.
    pub fn curve_into(&mut self, phase: &Phase, train_len: u64, eval_len: u64, out: &mut Vec<f64>) {
        let to_radians = key_to_radians(phase);
        out.clear();
        out.reserve(eval_len.saturating_sub(train_len) as usize);
        self.for_each_window_min(phase, train_len, (train_len, eval_len), |_, m| {
            out.push(m as f64 * to_radians)
        });
    }

    /// The gap of one feature (radians) and the first OOD position attaining it (`train_len`
    /// when there is no OOD position or the gap is 0). Integer wavelengths <= L give 0 at once:
    /// every window of L consecutive offsets holds a multiple of the wavelength.
    pub fn max_gap(&mut self, phase: &Phase, train_len: u64, eval_len: u64) -> (f64, u64) {
        if matches!(*phase, Phase::Integer { lambda } if lambda <= train_len) {
            return (0.0, train_len);
        }
        let (mut best, mut at) = (0u64, 0usize);
        self.for_each_window_min(phase, train_len, (train_len, eval_len), |j, m| {
            if m > best {
                best = m;
                at = j;
            }
        });
        (best as f64 * key_to_radians(phase), train_len + at as u64)
    }
}

/// The factor turning an exact distance key of `phase` into radians.
fn key_to_radians(phase: &Phase) -> f64 {
    match *phase {
        Phase::Integer { lambda } => 2.0 * PI / lambda as f64,
        Phase::Fixed { .. } => 2.0 * PI / TWO_POW_64,
    }
}

/// Every window minimum (window `w`) over `n` keys from `keys()`, in window order, handed to
/// `sink(window_index, minimum)`. van Herk / Gil-Werman, streamed: a window starting in block
/// b (blocks of `w`) has minimum `min(suffix_b[i], prefix_{b+1}[i-1])`, so only block b's
/// suffix minima are kept (one buffer of `w`, overwritten in place by block b+1's keys as they
/// are consumed). O(n) with a cache-resident buffer instead of two arrays of length n.
#[inline]
fn stream_window_minima(
    mut keys: impl FnMut() -> u64,
    n: usize,
    w: usize,
    suffix: &mut Vec<u64>,
    mut sink: impl FnMut(usize, u64),
) {
    if w == 0 || n < w {
        return;
    }
    let windows = n - w + 1;
    suffix.clear();
    suffix.extend((0..w).map(|_| keys()));
    suffix_minima(suffix);
    let (mut consumed, mut start) = (w, 0usize);
    while start < windows {
        sink(start, suffix[0]);
        let len = w.min(n - consumed);
        // windows start+1 .. start+w-1 end in the next block: evaluate while streaming it
        let eval = len.min(w - 1).min(windows - start - 1);
        let mut p = u64::MAX;
        let buf = &mut suffix[..w];
        for j in 0..eval {
            let k = keys();
            p = p.min(k);
            // suffix[j + 1] is read before block b+1's key j overwrites suffix[j]
            sink(start + j + 1, buf[j + 1].min(p));
            buf[j] = k;
        }
        for slot in &mut buf[eval..len] {
            *slot = keys();
        }
        if len < w {
            break;
        }
        suffix_minima(suffix);
        consumed += w;
        start += w;
    }
}

/// In-place suffix minima of a block.
fn suffix_minima(block: &mut [u64]) {
    let mut run = u64::MAX;
    for s in block.iter_mut().rev() {
        run = run.min(*s);
        *s = run;
    }
}

/// Minimum of every window of `w` consecutive keys, for the windows ending at index
/// `w-1 ..= len-1` (the same streamed block algorithm the gap uses, on explicit keys).
#[cfg(test)]
fn sliding_window_min(keys: &[u64], w: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity((keys.len() + 1).saturating_sub(w));
    let mut it = keys.iter().copied();
    stream_window_minima(
        move || it.next().unwrap_or(u64::MAX),
        keys.len(),
        w,
        &mut Vec::new(),
        |_, m| out.push(m),
    );
    out
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
    GapAnalysis::from_maxima(schedule.phases.iter().map(|phase| ws.max_gap(phase, l, lp)))
}

impl GapAnalysis {
    /// Builds the analysis from each feature's `(gap, worst position)` as
    /// [`GapWorkspace::max_gap`] returns them, in feature order.
    pub fn from_maxima(maxima: impl IntoIterator<Item = (f64, u64)>) -> GapAnalysis {
        let (gap, worst_position): (Vec<f64>, Vec<u64>) = maxima.into_iter().unzip();
        let chord = gap.iter().map(|&g| 2.0 * (g / 2.0).sin()).collect();
        GapAnalysis {
            gap,
            chord,
            worst_position,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed block algorithm equals the naive minimum of every window, on many
    /// pseudo-random key sequences of every length up to 200 and window widths up to 40.
    #[test]
    fn sliding_window_min_equals_naive() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..400 {
            let len = 1 + (next() % 200) as usize;
            let w = 1 + (next() % 40) as usize;
            let keys: Vec<u64> = (0..len).map(|_| next() % 50).collect();
            let want: Vec<u64> = if len < w {
                vec![]
            } else {
                keys.windows(w)
                    .map(|win| win.iter().copied().min().unwrap_or(0))
                    .collect()
            };
            assert_eq!(sliding_window_min(&keys, w), want, "{keys:?} w={w}");
        }
    }

    /// A range of the gap curve equals the same slice of the whole curve (0 below L), for
    /// both phase forms, windows straddling L, ending at L', and of one position, and costs
    /// nothing beyond its own keys: a window at 2^40 equals the brute-force minimum over its
    /// L preceding offsets.
    #[test]
    fn curve_range_equals_the_slice_of_the_whole_curve() {
        let phases = [
            Phase::Integer { lambda: 37 },
            Phase::Integer { lambda: 1000 },
            Phase::Fixed {
                alpha: 0x9e37_79b9_7f4a_7c15,
            },
            Phase::Fixed { alpha: 1 << 58 },
        ];
        let (l, lp) = (50u64, 700u64);
        let mut ws = GapWorkspace::default();
        for ph in &phases {
            let whole = gap_curve(ph, l, lp);
            for (start, end) in [
                (0, 10),
                (0, 120),
                (40, 60),
                (50, 51),
                (333, 700),
                (699, 700),
            ] {
                let got = ws.curve_range(ph, l, start, end);
                let want: Vec<f64> = (start..end)
                    .map(|n| if n < l { 0.0 } else { whole[(n - l) as usize] })
                    .collect();
                assert_eq!(got, want, "{ph:?} [{start}, {end})");
            }
        }
        let ph = Phase::Fixed {
            alpha: 0x9e37_79b9_7f4a_7c15,
        };
        let far = 1u64 << 40;
        let got = ws.curve_range(&ph, l, far, far + 3);
        for (j, g) in got.iter().enumerate() {
            let n = far + j as u64;
            let key = |k: u64| {
                let f = k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                f.min(f.wrapping_neg())
            };
            let m = (n - l + 1..=n).map(key).min().unwrap_or(0);
            assert_eq!(*g, m as f64 * key_to_radians(&ph));
        }
    }
}
