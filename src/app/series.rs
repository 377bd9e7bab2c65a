//! Plot-ready series derived from [`Results`] for one selected feature: downsampled feature
//! curves, gap curves, phase-wheel occupancy and the heatmap raster. Computed once per
//! (configuration, feature) and reused every frame; each also exports as CSV.

use super::compute::{Results, downsample_minmax, feature_values};
use crate::rope::{self, Schedule};
use std::f64::consts::PI;
use std::fmt::Write;

/// Buckets used for min/max downsampling (about one per pixel of a wide plot).
pub const BUCKETS: usize = 1200;
/// Angular bins of the phase wheel (0.1 degree each).
pub const WHEEL_BINS: usize = 3600;
/// Most positions (columns) of the heatmap raster.
pub const HEATMAP_COLUMNS: usize = 1024;

/// Angle occupancy of one feature: which angular bins training and OOD positions reach.
#[derive(Clone, Debug, PartialEq)]
pub struct Wheel {
    /// Bin centres (radians) reached by some training position `0..L`.
    pub train: Vec<f64>,
    /// Bin centres reached by some OOD position `L..L'` but by no training position.
    pub ood_new: Vec<f64>,
    /// Bin centres reached by OOD positions that training also reached.
    pub ood_seen: Vec<f64>,
    /// Exact gap of the feature (radians) and the OOD position where it is attained.
    pub gap: f64,
    /// OOD position of the worst gap.
    pub worst_position: u64,
    /// Angle (radians, in [-pi, pi)) at the worst OOD position.
    pub worst_angle: f64,
}

/// Angle occupancy of feature `i` of `s`.
pub fn wheel(s: &Schedule, i: usize, gap: f64, worst_position: u64) -> Wheel {
    let ph = s.phases[i];
    let (l, lp) = (s.config.train_len, s.config.eval_len);
    let bin = |p: u64| ((ph.turns(p) * WHEEL_BINS as f64) as usize).min(WHEEL_BINS - 1);
    let mut train = vec![false; WHEEL_BINS];
    let mut ood = vec![false; WHEEL_BINS];
    for p in 0..l {
        train[bin(p)] = true;
    }
    for p in l..lp {
        ood[bin(p)] = true;
    }
    let centre =
        |k: usize| rope::phase::reduce_turns((k as f64 + 0.5) / WHEEL_BINS as f64) * 2.0 * PI;
    let pick = |f: &dyn Fn(usize) -> bool| (0..WHEEL_BINS).filter(|&k| f(k)).map(centre).collect();
    Wheel {
        train: pick(&|k| train[k]),
        ood_new: pick(&|k| ood[k] && !train[k]),
        ood_seen: pick(&|k| ood[k] && train[k]),
        gap,
        worst_position,
        worst_angle: ph.angle(worst_position),
    }
}

/// Everything the per-feature plots draw for one side (config and its Resonance twin).
#[derive(Clone, Debug)]
pub struct Series {
    /// The selected feature (clamped to the schedule's features).
    pub feature: usize,
    /// cos of the feature over `0..L'` for the config, downsampled.
    pub curve: Vec<[f64; 2]>,
    /// The same for the twin.
    pub twin_curve: Vec<[f64; 2]>,
    /// Gap (radians) over OOD positions `L..L'` for the config, downsampled.
    pub gap_curve: Vec<[f64; 2]>,
    /// The same for the twin.
    pub twin_gap_curve: Vec<[f64; 2]>,
    /// Phase wheel of the config.
    pub wheel: Wheel,
    /// Phase wheel of the twin.
    pub twin_wheel: Wheel,
    /// Heatmap raster of cos(angle): `heat_cols` positions by d/2 features, row-major by feature.
    pub heat: Vec<f32>,
    /// Columns of `heat` (positions sampled evenly over `0..L'`).
    pub heat_cols: usize,
    /// Position of each heatmap column.
    pub heat_positions: Vec<u64>,
}

impl Series {
    /// Computes the series for `feature` (clamped to range).
    pub fn new(r: &Results, feature: usize) -> Series {
        let s = &r.schedule;
        let t = &r.twin;
        let i = feature.min(s.num_features() - 1);
        let (l, lp) = (s.config.train_len, s.config.eval_len);
        let curve =
            |sch: &Schedule| downsample_minmax(0.0, 1.0, &feature_values(sch, i, lp), BUCKETS);
        let gcurve = |sch: &Schedule| {
            downsample_minmax(
                l as f64,
                1.0,
                &rope::gap_curve(&sch.phases[i], l, lp),
                BUCKETS,
            )
        };
        let cols = (lp as usize).clamp(1, HEATMAP_COLUMNS);
        let heat_positions: Vec<u64> = (0..cols as u64).map(|k| k * lp / cols as u64).collect();
        let n = s.num_features();
        let mut heat = vec![0f32; cols * n];
        for (c, &p) in heat_positions.iter().enumerate() {
            for (f, ph) in s.phases.iter().enumerate() {
                heat[f * cols + c] = ph.angle(p).cos() as f32;
            }
        }
        Series {
            feature: i,
            curve: curve(s),
            twin_curve: curve(t),
            gap_curve: gcurve(s),
            twin_gap_curve: gcurve(t),
            wheel: wheel(s, i, r.gap.gap[i], r.gap.worst_position[i]),
            twin_wheel: wheel(t, i, r.twin_gap.gap[i], r.twin_gap.worst_position[i]),
            heat,
            heat_cols: cols,
            heat_positions,
        }
    }
}

/// A human name of a configuration, e.g. "Resonance yarn s=4".
pub fn config_name(s: &Schedule) -> String {
    let c = &s.config;
    let res = if c.resonance { "Resonance " } else { "" };
    format!("{res}{} s={}", c.method, c.scale)
}

/// CSV of the wavelength plot: feature, raw and rounded wavelengths (tokens), and whether the
/// feature is pre-critical for the configuration.
pub fn wavelengths_csv(r: &Results) -> String {
    let (raw, rounded) = r.raw_and_rounded();
    let mut out =
        String::from("feature,raw_wavelength_tokens,rounded_wavelength_tokens,pre_critical\n");
    for i in 0..raw.num_features() {
        let _ = writeln!(
            out,
            "{i},{},{},{}",
            raw.wavelength[i],
            rounded.wavelength[i],
            i < r.schedule.critical_feature
        );
    }
    out
}

/// CSV of the phase wheel: every occupied angular bin and who reaches it.
pub fn wheel_csv(s: &Series) -> String {
    let mut out = String::from("series,angle_rad\n");
    for (name, w) in [("config", &s.wheel), ("twin", &s.twin_wheel)] {
        for (kind, v) in [
            ("train", &w.train),
            ("ood_new", &w.ood_new),
            ("ood_seen", &w.ood_seen),
        ] {
            for a in v {
                let _ = writeln!(out, "{name}_{kind},{a}");
            }
        }
    }
    out
}

/// CSV of the feature-value plot (downsampled as drawn).
pub fn feature_csv(s: &Series) -> String {
    two_series_csv("position", "cos", &s.curve, &s.twin_curve)
}

/// CSV of the gap plot: per-feature gaps, then the gap curve of the selected feature.
pub fn gap_csv(r: &Results, s: &Series) -> String {
    let mut out = String::from("feature,gap_rad,twin_gap_rad,chord,twin_chord\n");
    for i in 0..r.gap.gap.len() {
        let _ = writeln!(
            out,
            "{i},{},{},{},{}",
            r.gap.gap[i], r.twin_gap.gap[i], r.gap.chord[i], r.twin_gap.chord[i]
        );
    }
    out.push('\n');
    out.push_str(&two_series_csv(
        "ood_position",
        "gap_rad",
        &s.gap_curve,
        &s.twin_gap_curve,
    ));
    out
}

/// CSV of the heatmap raster.
pub fn heatmap_csv(s: &Series, num_features: usize) -> String {
    let mut out = String::from("position");
    for f in 0..num_features {
        let _ = write!(out, ",f{f}");
    }
    out.push('\n');
    for (c, p) in s.heat_positions.iter().enumerate() {
        let _ = write!(out, "{p}");
        for f in 0..num_features {
            let _ = write!(out, ",{}", s.heat[f * s.heat_cols + c]);
        }
        out.push('\n');
    }
    out
}

fn two_series_csv(x: &str, y: &str, a: &[[f64; 2]], b: &[[f64; 2]]) -> String {
    let mut out = format!("series,{x},{y}\n");
    for (name, v) in [("config", a), ("twin", b)] {
        for p in v {
            let _ = writeln!(out, "{name},{},{}", p[0], p[1]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::compute::Backend;
    use crate::rope::{Method, ScheduleConfig};

    fn results(resonance: bool) -> Results {
        Backend::Cpu
            .compute(&ScheduleConfig {
                resonance,
                ..ScheduleConfig::default()
            })
            .unwrap()
    }

    #[test]
    fn resonance_closes_the_wheel_for_precritical_features() {
        // feature 3 (wavelength 14.9 -> 15 when rounded) is pre-critical at L=64
        let s = Series::new(&results(false), 3);
        assert!(
            !s.wheel.ood_new.is_empty(),
            "RoPE reaches new angles out of distribution"
        );
        assert!(
            s.twin_wheel.ood_new.is_empty(),
            "Resonance: every OOD angle was seen in training"
        );
        assert_eq!(
            s.twin_wheel.train.len(),
            15,
            "one angle per token of the integer wavelength"
        );
        assert!(s.twin_wheel.gap < 1e-12);
    }

    #[test]
    fn series_shapes_follow_config() {
        let r = Backend::Cpu
            .compute(&ScheduleConfig {
                method: Method::Yarn,
                dim: 128,
                train_len: 4096,
                eval_len: 32768,
                scale: 8.0,
                ..ScheduleConfig::default()
            })
            .unwrap();
        let s = Series::new(&r, 500);
        assert_eq!(s.feature, 63, "feature clamps to d/2-1");
        assert_eq!(s.curve.len(), 2 * BUCKETS);
        assert_eq!(s.heat_cols, HEATMAP_COLUMNS);
        assert_eq!(s.heat.len(), HEATMAP_COLUMNS * 64);
        // first gap-curve point sits at n = L
        assert_eq!(s.gap_curve[0][0], 4096.0);
        // heatmap entries are cos of the exact angle
        let p = s.heat_positions[7];
        let want = r.schedule.phases[5].angle(p).cos() as f32;
        assert_eq!(s.heat[5 * s.heat_cols + 7], want);
    }

    #[test]
    fn csv_exports_have_one_row_per_item() {
        let r = results(false);
        let s = Series::new(&r, 2);
        assert_eq!(wavelengths_csv(&r).lines().count(), 1 + 32);
        assert!(
            wavelengths_csv(&r)
                .lines()
                .nth(1)
                .unwrap()
                .starts_with("0,6.28318")
        );
        assert_eq!(heatmap_csv(&s, 32).lines().count(), 1 + 256);
        assert_eq!(feature_csv(&s).lines().count(), 1 + 2 * 256);
        assert!(gap_csv(&r, &s).starts_with("feature,gap_rad"));
        assert!(wheel_csv(&s).contains("twin_train,"));
    }
}
