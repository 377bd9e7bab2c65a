//! Feature values (cos, sin of each feature's angle) at any position, from exact phases, and
//! the rotation of a d-dimensional vector in either pair layout.

use super::{PairLayout, Schedule};

/// `cos` and `sin` of every feature at position `p`, each multiplied by the attention factor.
pub fn cos_sin(schedule: &Schedule, p: u64) -> (Vec<f64>, Vec<f64>) {
    let af = schedule.attention_factor;
    schedule
        .phases
        .iter()
        .map(|ph| {
            let (s, c) = ph.angle(p).sin_cos();
            (c * af, s * af)
        })
        .unzip()
}

/// Row-major cos/sin table: row r holds the d/2 features at `positions[r]`.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureTable {
    /// The positions, one per row.
    pub positions: Vec<u64>,
    /// Features per row (d/2).
    pub num_features: usize,
    /// cos values (attention factor applied), `positions.len() * num_features`.
    pub cos: Vec<f64>,
    /// sin values (attention factor applied), same shape as `cos`.
    pub sin: Vec<f64>,
}

impl FeatureTable {
    /// The cos row of position index `r`.
    pub fn cos_row(&self, r: usize) -> &[f64] {
        &self.cos[r * self.num_features..(r + 1) * self.num_features]
    }

    /// The sin row of position index `r`.
    pub fn sin_row(&self, r: usize) -> &[f64] {
        &self.sin[r * self.num_features..(r + 1) * self.num_features]
    }
}

/// The CPU (f64 reference) feature table for `positions`.
pub fn feature_table(schedule: &Schedule, positions: &[u64]) -> FeatureTable {
    let n = schedule.num_features();
    let mut cos = Vec::with_capacity(positions.len() * n);
    let mut sin = Vec::with_capacity(positions.len() * n);
    for &p in positions {
        let (c, s) = cos_sin(schedule, p);
        cos.extend(c);
        sin.extend(s);
    }
    FeatureTable {
        positions: positions.to_vec(),
        num_features: n,
        cos,
        sin,
    }
}

/// Rotates the d-dimensional vector `x` in place by the per-feature `cos`/`sin`, pairing
/// coordinates as `layout` says: `(a, b) -> (a cos - b sin, a sin + b cos)`. With fewer features
/// than d/2 (partial rotary) only the first `2 * cos.len()` coordinates rotate, paired within that
/// block, and the rest pass through, as transformers applies `partial_rotary_factor`.
pub fn rotate(x: &mut [f64], cos: &[f64], sin: &[f64], layout: PairLayout) {
    let dim = (2 * cos.len().min(sin.len())).min(x.len() / 2 * 2);
    for i in 0..dim / 2 {
        let (a, b) = layout.pair(i, dim);
        let (xa, xb) = (x[a], x[b]);
        x[a] = xa * cos[i] - xb * sin[i];
        x[b] = xa * sin[i] + xb * cos[i];
    }
}
