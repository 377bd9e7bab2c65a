//! The parity self-check the page and the tests read: the raster a heatmap draws (from the GPU
//! kernel or the CPU path) and the gap, against the independent f64 reference.

use super::compute::Results;
use super::series::Series;
use serde::Serialize;

/// Result of the parity self-check: the compute backend against the f64 reference.
#[derive(Clone, Debug, Serialize)]
pub struct SelfCheck {
    /// [`Results::generation`] of the results checked (side A's as of that frame).
    pub generation: u64,
    /// Which backend was checked.
    pub backend: String,
    /// What it was compared against.
    pub reference: String,
    /// Values compared.
    pub values: usize,
    /// Largest absolute difference.
    pub max_abs_err: f64,
    /// Whether `max_abs_err` is within tolerance (1e-6 for the CPU raster, which is stored as
    /// f32; 2e-6 for the GPU kernel), and `gap_max_abs_err` within [`GAP_TOLERANCE`].
    pub ok: bool,
    /// What computed the gap plot's data (`GPU <adapter>` or the CPU path).
    pub gap_backend: String,
    /// Why the gap is on the CPU, when it is (e.g. WebGL2 has no compute shaders).
    pub gap_cpu_reason: Option<String>,
    /// Gap values compared with the f64 reference (gap per feature of sampled features; on the
    /// GPU also the min/max buckets of the selected feature's curve).
    pub gap_values: usize,
    /// Largest absolute difference of those gap values (radians).
    pub gap_max_abs_err: f64,
}

/// Allowed gap error (radians): the gap per feature is exact (bit-identical integer keys); the
/// GPU's curve buckets are f32.
pub const GAP_TOLERANCE: f64 = 1e-6;

impl SelfCheck {
    /// Adds the gap's check: the gap per feature of up to five features (four spread over the
    /// schedule and the selected one) against the f64 reference `GapWorkspace::max_gap`, and,
    /// when the GPU computed it, the min/max of every bucket of the selected feature's curve
    /// against the exact f64 curve.
    pub fn with_gap(self, r: &Results, s: &Series) -> SelfCheck {
        let sch = &r.schedule;
        let (l, lp) = (sch.config.train_len, sch.config.eval_len);
        let n = sch.num_features();
        let mut features: Vec<usize> = (0..4).map(|k| k * (n - 1) / 3).collect();
        features.push(s.feature);
        features.dedup();
        let mut ws = crate::rope::GapWorkspace::default();
        let mut err = 0f64;
        let mut values = 0;
        for &f in &features {
            let (want, _) = ws.max_gap(&sch.phases[f], l, lp);
            err = err.max((r.gap.gap[f] - want).abs());
            values += 1;
        }
        if let Some(b) = &r.gap_buckets {
            let b = &b[0];
            let curve = crate::rope::gap_curve(&sch.phases[s.feature], l, lp);
            for k in 0..b.count {
                let part = &curve[(b.edges[k] - l) as usize..(b.edges[k + 1] - l) as usize];
                let lo = part.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = part.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let at = s.feature * b.count + k;
                err = err
                    .max((b.min[at] as f64 - lo).abs())
                    .max((b.max[at] as f64 - hi).abs());
                values += 2;
            }
        }
        SelfCheck {
            ok: self.ok && err <= GAP_TOLERANCE,
            gap_backend: r.gap_backend.clone(),
            gap_cpu_reason: None,
            gap_values: values,
            gap_max_abs_err: err,
            ..self
        }
    }
}

/// Compares a heatmap raster the app draws (`heat`, feature-major like [`Series::heat`], from
/// `backend`) with `rope::reference::cos_sin` (the independent f64 reference) at every sampled
/// position; `tol` is the allowed error of cos before the attention factor.
pub fn self_check(backend: &str, heat: &[f32], tol: f64, r: &Results, s: &Series) -> SelfCheck {
    let n = r.schedule.num_features();
    let af = r.schedule.attention_factor;
    let mut max_err = 0f64;
    let mut values = 0;
    for (c, &p) in s.heat_positions.iter().enumerate() {
        let (cos, _) = crate::rope::reference::cos_sin(&r.schedule, p);
        for (f, want) in cos.iter().enumerate().take(n) {
            let got = heat[f * s.heat_cols + c] as f64 * af;
            max_err = max_err.max((got - want).abs());
            values += 1;
        }
    }
    let tol = tol * af.max(1.0);
    SelfCheck {
        generation: r.generation,
        backend: backend.to_string(),
        reference: "rope::reference::cos_sin (f64)".into(),
        values,
        max_abs_err: max_err,
        ok: max_err <= tol && values > 0,
        gap_backend: String::new(),
        gap_cpu_reason: None,
        gap_values: 0,
        gap_max_abs_err: 0.0,
    }
}
