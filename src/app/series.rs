//! Plot-ready series derived from [`Results`] for one selected feature: downsampled feature
//! curves, gap curves, phase-wheel occupancy and the heatmap raster. Computed once per
//! (configuration, feature) and reused every frame; each also exports as CSV.

use super::compute::{Results, downsample_minmax, feature_values};
use crate::gpu::GapBuckets;
use crate::rope::{self, PairLayout, Schedule};
use std::f64::consts::PI;
use std::fmt::Write;
use std::sync::Arc;
use web_time::Instant;

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
    // Angles repeat after an integer wavelength, and a ring stops changing once every bin is
    // hit, so a feature costs at most min(range, wavelength) steps, not L' (2^24 and up).
    let period = match ph {
        rope::Phase::Integer { lambda } => lambda,
        rope::Phase::Fixed { .. } => u64::MAX,
    };
    let fill = |range: std::ops::Range<u64>| {
        let mut hit = vec![false; WHEEL_BINS];
        let mut left = WHEEL_BINS;
        let end = range.end.min(range.start.saturating_add(period));
        for p in range.start..end {
            let b = &mut hit[bin(p)];
            if !*b {
                *b = true;
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
        hit
    };
    let train = fill(0..l);
    let ood = fill(l..lp);
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
    /// [`Results::generation`] of the results this series was derived from.
    pub generation: u64,
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

/// The O(L') pieces of a [`Series`], in the order they are computed: the feature value of the
/// config and of the twin, then the gap curve of each.
const PIECES: usize = 4;

/// Computes piece `k` (see [`PIECES`]) of the series of feature `i`.
fn piece(r: &Results, i: usize, k: usize) -> Vec<[f64; 2]> {
    let sch = if k.is_multiple_of(2) {
        &r.schedule
    } else {
        &r.twin
    };
    let (l, lp) = (sch.config.train_len, sch.config.eval_len);
    if k < 2 {
        return downsample_minmax(0.0, 1.0, &feature_values(sch, i, lp), BUCKETS);
    }
    match &r.gap_buckets {
        // the GPU path: the kernel's min/max per bucket of OOD positions
        Some(b) => bucket_curve(&b[k % 2], i),
        None => downsample_minmax(
            l as f64,
            1.0,
            &rope::gap_curve(&sch.phases[i], l, lp),
            BUCKETS,
        ),
    }
}

impl Series {
    /// Computes the series for `feature` (clamped to range) in one go.
    pub fn new(r: &Results, feature: usize) -> Series {
        let i = feature.min(r.schedule.num_features() - 1);
        let pieces = (0..PIECES).map(|k| piece(r, i, k)).collect();
        Series::assemble(r, i, pieces)
    }

    /// The series from its computed pieces, plus the wheels and the heatmap raster (cheap: at
    /// most [`HEATMAP_COLUMNS`] positions).
    fn assemble(r: &Results, i: usize, pieces: Vec<Vec<[f64; 2]>>) -> Series {
        let s = &r.schedule;
        let t = &r.twin;
        let lp = s.config.eval_len;
        let cols = (lp as usize).clamp(1, HEATMAP_COLUMNS);
        let heat_positions: Vec<u64> = (0..cols as u64).map(|k| k * lp / cols as u64).collect();
        let n = s.num_features();
        let mut heat = vec![0f32; cols * n];
        for (c, &p) in heat_positions.iter().enumerate() {
            for (f, ph) in s.phases.iter().enumerate() {
                heat[f * cols + c] = ph.angle(p).cos() as f32;
            }
        }
        let [curve, twin_curve, gap_curve, twin_gap_curve]: [Vec<[f64; 2]>; PIECES] =
            pieces.try_into().unwrap_or_default();
        Series {
            generation: r.generation,
            feature: i,
            curve,
            twin_curve,
            gap_curve,
            twin_gap_curve,
            wheel: wheel(s, i, r.gap.gap[i], r.gap.worst_position[i]),
            twin_wheel: wheel(t, i, r.twin_gap.gap[i], r.twin_gap.worst_position[i]),
            heat,
            heat_cols: cols,
            heat_positions,
        }
    }
}

/// A [`Series`] computed piece by piece, one O(L') curve at a time, so that a frame can stop
/// after its budget (at L' = 2^20 one piece is a few milliseconds) while the last complete
/// series stays on screen.
pub struct SeriesJob {
    r: Arc<Results>,
    feature: usize,
    pieces: Vec<Vec<[f64; 2]>>,
}

impl SeriesJob {
    /// A job for `feature` (clamped to range) of `r`.
    pub fn new(r: Arc<Results>, feature: usize) -> SeriesJob {
        let feature = feature.min(r.schedule.num_features() - 1);
        SeriesJob {
            r,
            feature,
            pieces: Vec::with_capacity(PIECES),
        }
    }

    /// The (results generation, feature) this job computes.
    pub fn key(&self) -> (u64, usize) {
        (self.r.generation, self.feature)
    }

    /// Works for about `budget_s` (at least one piece); returns the series when complete.
    pub fn advance(&mut self, budget_s: f64) -> Option<Series> {
        let t0 = Instant::now();
        while self.pieces.len() < PIECES {
            self.pieces
                .push(piece(&self.r, self.feature, self.pieces.len()));
            if t0.elapsed().as_secs_f64() >= budget_s {
                break;
            }
        }
        (self.pieces.len() == PIECES)
            .then(|| Series::assemble(&self.r, self.feature, std::mem::take(&mut self.pieces)))
    }
}

/// The gap curve of feature `i` drawn from the GPU's min/max buckets: per bucket its minimum
/// and maximum at the bucket's first position (one point when the bucket is one position).
pub fn bucket_curve(b: &GapBuckets, i: usize) -> Vec<[f64; 2]> {
    let mut out = Vec::with_capacity(2 * b.count);
    for k in 0..b.count {
        let x = b.edges[k] as f64;
        let (lo, hi) = (b.min[i * b.count + k] as f64, b.max[i * b.count + k] as f64);
        out.push([x, lo]);
        if b.edges[k + 1] - b.edges[k] > 1 {
            out.push([x, hi]);
        }
    }
    out
}

/// A human name of a configuration, e.g. "Resonance yarn s=4".
pub fn config_name(s: &Schedule) -> String {
    let c = &s.config;
    let res = if c.resonance { "Resonance " } else { "" };
    format!("{res}{} s={}", c.method, c.scale)
}

/// One vector (all ones) rotated at one position by a schedule in both pair layouts, and which
/// feature rotates each head dimension: what the pair-layout tab draws.
#[derive(Clone, Debug, PartialEq)]
pub struct PairLayouts {
    /// Head dimension d.
    pub dim: usize,
    /// The position of the rotation.
    pub position: u64,
    /// The all-ones vector rotated with half-split pairs.
    pub half_split: Vec<f64>,
    /// The all-ones vector rotated with interleaved pairs.
    pub interleaved: Vec<f64>,
}

impl PairLayouts {
    /// The feature that rotates head dimension `j` under `layout`.
    pub fn feature_of(&self, layout: PairLayout, j: usize) -> usize {
        match layout {
            PairLayout::HalfSplit => j % (self.dim / 2),
            PairLayout::Interleaved => j / 2,
        }
    }

    /// The rotated vector under `layout`.
    pub fn rotated(&self, layout: PairLayout) -> &[f64] {
        match layout {
            PairLayout::HalfSplit => &self.half_split,
            PairLayout::Interleaved => &self.interleaved,
        }
    }
}

/// Rotates the all-ones vector to `position` with `s` in both layouts (exact phases, no
/// attention factor).
pub fn pair_layouts(s: &Schedule, position: u64) -> PairLayouts {
    let (sin, cos): (Vec<f64>, Vec<f64>) = s
        .phases
        .iter()
        .map(|ph| ph.angle(position).sin_cos())
        .unzip();
    let dim = s.config.dim;
    let rotated = |layout| {
        let mut x = vec![1.0; dim];
        rope::features::rotate(&mut x, &cos, &sin, layout);
        x
    };
    PairLayouts {
        dim,
        position,
        half_split: rotated(PairLayout::HalfSplit),
        interleaved: rotated(PairLayout::Interleaved),
    }
}

/// CSV of the pair-layout tab: per head dimension, the feature rotating it and the rotated
/// all-ones vector, in both layouts.
pub fn pairs_csv(p: &PairLayouts) -> String {
    let mut out = format!(
        "head dimension [index],half-split feature [index],interleaved feature [index],\
         half-split rotated at p={0} [1],interleaved rotated at p={0} [1]\n",
        p.position
    );
    for j in 0..p.dim {
        let _ = writeln!(
            out,
            "{j},{},{},{},{}",
            p.feature_of(PairLayout::HalfSplit, j),
            p.feature_of(PairLayout::Interleaved, j),
            p.half_split[j],
            p.interleaved[j]
        );
    }
    out
}

// CSV exports: one header row per file, every column named with its unit in brackets
// (`[tokens]`, `[rad]`, `[1]` for unitless values) so a file explains itself.

/// CSV of the wavelength plot: feature, raw and rounded wavelengths, and whether the feature is
/// pre-critical for the configuration.
pub fn wavelengths_csv(r: &Results) -> String {
    let (raw, rounded) = r.raw_and_rounded();
    let mut out = String::from(
        "feature [index],raw wavelength [tokens],rounded wavelength [tokens],pre-critical [bool]\n",
    );
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
    let mut out = String::from("series [name],angle [rad]\n");
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
    two_series_csv(
        "position [tokens]",
        "cos(angle) x attention factor [1]",
        &s.curve,
        &s.twin_curve,
    )
}

/// CSV of the gap bars: the gap per feature of the config and its twin, as an angle and as a
/// chord (distance of unit vectors).
pub fn gap_csv(r: &Results) -> String {
    let mut out = String::from(
        "feature [index],gap [rad],twin gap [rad],chord [unit circle],twin chord [unit circle]\n",
    );
    for i in 0..r.gap.gap.len() {
        let _ = writeln!(
            out,
            "{i},{},{},{},{}",
            r.gap.gap[i], r.twin_gap.gap[i], r.gap.chord[i], r.twin_gap.chord[i]
        );
    }
    out
}

/// CSV of the gap curve of the selected feature over OOD positions (downsampled as drawn).
pub fn gap_curve_csv(s: &Series) -> String {
    two_series_csv(
        "OOD position [tokens]",
        "gap [rad]",
        &s.gap_curve,
        &s.twin_gap_curve,
    )
}

/// CSV of the heatmap raster: one row per sampled position, one column per feature.
pub fn heatmap_csv(s: &Series, num_features: usize) -> String {
    let mut out = String::from("position [tokens]");
    for f in 0..num_features {
        let _ = write!(out, ",cos(angle) of feature {f} [1]");
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
    let mut out = format!("series [name],{x},{y}\n");
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
    use crate::app::compute::compute_now;
    use crate::rope::{Method, ScheduleConfig};

    fn results(resonance: bool) -> Results {
        compute_now(&ScheduleConfig {
            resonance,
            ..ScheduleConfig::default()
        })
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
        let r = compute_now(&ScheduleConfig {
            method: Method::YARN,
            dim: 128,
            train_len: 4096,
            eval_len: 32768,
            scale: 8.0,
            ..ScheduleConfig::default()
        });
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
    fn pair_layouts_rotate_the_same_pairs_onto_different_coordinates() {
        let r = results(false);
        let p = pair_layouts(&r.schedule, 100);
        let n = 32;
        // feature 3 rotates (3, 35) half-split and (6, 7) interleaved, by the same angle
        assert_eq!((p.feature_of(PairLayout::HalfSplit, 35)), 3);
        assert_eq!((p.feature_of(PairLayout::Interleaved, 7)), 3);
        let a = r.schedule.phases[3].angle(100);
        let (x, y) = (a.cos() - a.sin(), a.sin() + a.cos());
        assert!((p.half_split[3] - x).abs() < 1e-12 && (p.half_split[3 + n] - y).abs() < 1e-12);
        assert!((p.interleaved[6] - x).abs() < 1e-12 && (p.interleaved[7] - y).abs() < 1e-12);
        assert_ne!(p.half_split, p.interleaved);
        // a rotation keeps the length: |x| = sqrt(d)
        let norm: f64 = p.interleaved.iter().map(|v| v * v).sum();
        assert!((norm - 64.0).abs() < 1e-9);
        // at position 0 nothing rotates, in either layout
        let p0 = pair_layouts(&r.schedule, 0);
        assert!(
            p0.half_split
                .iter()
                .chain(&p0.interleaved)
                .all(|v| (v - 1.0).abs() < 1e-12)
        );
        assert_eq!(pairs_csv(&p).lines().count(), 1 + 64);
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
        assert_eq!(gap_csv(&r).lines().count(), 1 + 32);
        assert_eq!(gap_curve_csv(&s).lines().count(), 1 + 2 * 192);
        assert!(wheel_csv(&s).contains("twin_train,"));
        // every column of every header names its unit
        for csv in [
            wavelengths_csv(&r),
            wheel_csv(&s),
            feature_csv(&s),
            gap_csv(&r),
            gap_curve_csv(&s),
            heatmap_csv(&s, 32),
            pairs_csv(&pair_layouts(&r.schedule, 5)),
        ] {
            let header = csv.lines().next().unwrap();
            for col in header.split(',') {
                assert!(
                    col.ends_with(']') && col.contains(" ["),
                    "no unit in '{col}'"
                );
            }
        }
    }
}
