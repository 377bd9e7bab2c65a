//! The compute layer of the app: turns a [`ScheduleConfig`] into plot-ready results through a
//! [`ComputePath`], caches them keyed by configuration, and downsamples long series to screen width.
//!
//! The CPU path uses the exact `rope` functions (the reference for every backend), time-sliced
//! across frames. The GPU path hands the gap to the WGSL kernels ([`super::gpu_link`]): the
//! cache then waits for the app to deliver the GPU's result, and falls back to the CPU path
//! when the GPU fails.

use crate::gpu::{GapBuckets, GpuGap};
use crate::rope::{self, ConfigError, GapAnalysis, GapWorkspace, Schedule, ScheduleConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use web_time::Instant;

/// Where results are computed.
#[derive(Clone, Debug, PartialEq)]
pub enum ComputePath {
    /// The exact CPU path (`rope` module, f64 with exact phases).
    Cpu,
    /// The gap from the WGSL gap kernels on the renderer's device (named here); the rest of the
    /// plots from the CPU path.
    Gpu(String),
}

/// Hands out [`Results::generation`] numbers: one process-wide counter, so no two results
/// (of any side or cache) ever share one, whatever memory they occupy.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// A fresh generation number.
pub fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// Everything the plots need for one configuration; cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Results {
    /// Identifies this computation: everything derived from it (series, textures, GPU tables)
    /// is cached under this number, never under a memory address, which a later result can
    /// reuse.
    pub generation: u64,
    /// The schedule as configured.
    pub schedule: Schedule,
    /// The same configuration with Resonance toggled.
    pub twin: Schedule,
    /// Gap per feature of `schedule`.
    pub gap: GapAnalysis,
    /// Gap per feature of `twin`.
    pub twin_gap: GapAnalysis,
    /// Milliseconds this computation took (for the GPU path: from request to arrival).
    pub compute_ms: f64,
    /// What computed `gap` and `twin_gap`, e.g. `CPU (exact f64 phases)` or `GPU <adapter>`.
    pub gap_backend: String,
    /// The GPU's min/max buckets of every feature's gap curve, of the config and of the twin
    /// (GPU path only; the CPU path derives curves from exact phases).
    pub gap_buckets: Option<Arc<[GapBuckets; 2]>>,
}

impl Results {
    /// The schedule without Resonance rounding (raw) and the one with it (rounded).
    pub fn raw_and_rounded(&self) -> (&Schedule, &Schedule) {
        if self.schedule.config.resonance {
            (&self.twin, &self.schedule)
        } else {
            (&self.schedule, &self.twin)
        }
    }
}

impl ComputePath {
    /// A short label for the status bar.
    pub fn label(&self) -> String {
        match self {
            ComputePath::Cpu => CPU_LABEL.into(),
            ComputePath::Gpu(adapter) => format!("GPU {adapter}"),
        }
    }
}

/// The CPU path's label.
pub const CPU_LABEL: &str = "CPU (exact f64 phases)";

/// Gap analysis of a schedule and its twin in progress: one feature at a time, so a frame can
/// stop after its time budget and continue in the next one.
struct ComputeJob {
    config: ScheduleConfig,
    schedule: Schedule,
    twin: Schedule,
    ws: rope::GapWorkspace,
    done: Vec<(f64, u64)>,
    seconds: f64,
}

impl ComputeJob {
    /// A job for an already validated schedule.
    fn new(schedule: Schedule) -> ComputeJob {
        let twin = schedule.twin();
        ComputeJob {
            config: schedule.config.clone(),
            done: Vec::with_capacity(2 * schedule.num_features()),
            schedule,
            twin,
            ws: rope::GapWorkspace::default(),
            seconds: 0.0,
        }
    }

    /// Works for about `budget_s` (at least one feature); returns the results when finished.
    fn advance(&mut self, budget_s: f64) -> Option<Results> {
        let t0 = Instant::now();
        let n = self.schedule.num_features();
        while self.done.len() < 2 * n {
            let k = self.done.len();
            let s = if k < n { &self.schedule } else { &self.twin };
            let c = &s.config;
            self.done
                .push(self.ws.max_gap(&s.phases[k % n], c.train_len, c.eval_len));
            if t0.elapsed().as_secs_f64() >= budget_s {
                break;
            }
        }
        self.seconds += t0.elapsed().as_secs_f64();
        if self.done.len() < 2 * n {
            return None;
        }
        Some(Results {
            generation: next_generation(),
            gap: GapAnalysis::from_maxima(self.done[..n].iter().copied()),
            twin_gap: GapAnalysis::from_maxima(self.done[n..].iter().copied()),
            schedule: self.schedule.clone(),
            twin: self.twin.clone(),
            compute_ms: self.seconds * 1e3,
            gap_backend: CPU_LABEL.into(),
            gap_buckets: None,
        })
    }
}

/// A computation handed to the GPU: the schedule and twin whose gap the app is to request under
/// `generation`, and when it was handed over.
pub struct GpuPending {
    /// The generation the results will carry (the GPU request's key).
    pub generation: u64,
    /// The configured schedule.
    pub schedule: Schedule,
    /// Its twin.
    pub twin: Schedule,
    started: Instant,
}

/// Results for one configuration plus the last error; recomputes only when the config changes
/// and keeps the last good results when the new config is invalid. Work is time-sliced: a
/// computation that does not fit a frame's budget continues in the next frames while the last
/// good results stay on screen; while it runs, newer configs wait and only the latest runs next.
#[derive(Default)]
pub struct Cache {
    key: Option<ScheduleConfig>,
    good: Option<Arc<Results>>,
    error: Option<ConfigError>,
    job: Option<ComputeJob>,
    /// The GPU path's computation waiting for its gap.
    gpu: Option<GpuPending>,
    /// The latest valid config's schedule, waiting for the running job to finish.
    queued: Option<Schedule>,
    /// How many computations were started (the rest were cache hits or superseded).
    pub computations: u64,
}

impl Cache {
    /// Brings the cache up to date with `config` within `budget_s` seconds of work; returns
    /// true when new results became current this call.
    pub fn update(
        &mut self,
        backend: &ComputePath,
        config: &ScheduleConfig,
        budget_s: f64,
    ) -> bool {
        let on_gpu = matches!(backend, ComputePath::Gpu(_));
        if !on_gpu && let Some(p) = self.gpu.take() {
            // the GPU failed (or went away): its waiting computation runs on the CPU
            self.start(p.schedule);
        }
        if self.key.as_ref() != Some(config) {
            self.key = Some(config.clone());
            // validation is immediate; only valid configs queue (replacing a job not yet begun)
            self.queued = None;
            match Schedule::new(config) {
                Ok(schedule) if on_gpu => {
                    self.error = None;
                    // the latest wins: the app cancels the request of the one it replaces
                    self.gpu = Some(GpuPending {
                        generation: next_generation(),
                        twin: schedule.twin(),
                        schedule,
                        started: Instant::now(),
                    });
                    self.computations += 1;
                }
                Ok(schedule) => {
                    self.error = None;
                    if self.job.as_ref().is_none_or(|j| j.done.is_empty()) {
                        self.start(schedule);
                    } else {
                        self.queued = Some(schedule);
                    }
                }
                Err(e) => self.error = Some(e),
            }
        }
        // a finished job for an older config hands over to the latest one
        let mut fresh = false;
        if let Some(job) = &mut self.job
            && let Some(r) = job.advance(budget_s)
        {
            let done_for = job.config.clone();
            self.job = None;
            self.good = Some(Arc::new(r));
            fresh = true;
            if let Some(latest) = self.queued.take()
                && latest.config != done_for
            {
                self.start(latest);
            }
        }
        fresh
    }

    fn start(&mut self, schedule: Schedule) {
        self.job = Some(ComputeJob::new(schedule));
        self.computations += 1;
    }

    /// True while a computation is in progress (the app keeps repainting).
    pub fn busy(&self) -> bool {
        self.job.is_some() || self.gpu.is_some()
    }

    /// The computation waiting for the GPU's gap, for the app to request.
    pub fn gpu_pending(&self) -> Option<&GpuPending> {
        self.gpu.as_ref()
    }

    /// Delivers the GPU's gap of the config and its twin for generation `key`; returns true
    /// when they completed the waiting computation (a gap for a superseded one is ignored).
    pub fn complete_gpu(&mut self, key: u64, gap: &GpuGap, twin: &GpuGap, adapter: &str) -> bool {
        if self.gpu.as_ref().is_none_or(|p| p.generation != key) {
            return false;
        }
        let Some(p) = self.gpu.take() else {
            return false;
        };
        let analysis = |g: &GpuGap| {
            GapAnalysis::from_maxima(g.gap.iter().copied().zip(g.worst_position.iter().copied()))
        };
        let buckets = match (&gap.buckets, &twin.buckets) {
            (Some(a), Some(b)) => Some(Arc::new([a.clone(), b.clone()])),
            _ => None,
        };
        self.good = Some(Arc::new(Results {
            generation: p.generation,
            gap: analysis(gap),
            twin_gap: analysis(twin),
            schedule: p.schedule,
            twin: p.twin,
            compute_ms: p.started.elapsed().as_secs_f64() * 1e3,
            gap_backend: format!("GPU {adapter}"),
            gap_buckets: buckets,
        }));
        true
    }

    /// The last good results (possibly of an earlier config when the current one is invalid
    /// or still computing).
    pub fn results(&self) -> Option<&Arc<Results>> {
        self.good.as_ref()
    }

    /// The validation error of the current config, if any.
    pub fn error(&self) -> Option<&ConfigError> {
        self.error.as_ref()
    }
}

/// Min/max downsampling: splits `ys` (sampled at x = `x0 + k*dx`) into at most `buckets`
/// buckets and returns, per bucket, its first x with the min and the max so that every
/// extreme of the series is drawn. Series shorter than `2*buckets` come back unchanged.
pub fn downsample_minmax(x0: f64, dx: f64, ys: &[f64], buckets: usize) -> Vec<[f64; 2]> {
    let n = ys.len();
    if buckets == 0 || n <= 2 * buckets {
        return ys
            .iter()
            .enumerate()
            .map(|(k, &y)| [x0 + k as f64 * dx, y])
            .collect();
    }
    let mut out = Vec::with_capacity(2 * buckets);
    for b in 0..buckets {
        let lo = b * n / buckets;
        let hi = ((b + 1) * n / buckets).max(lo + 1);
        let (mut imin, mut imax) = (lo, lo);
        for k in lo..hi {
            if ys[k] < ys[imin] {
                imin = k;
            }
            if ys[k] > ys[imax] {
                imax = k;
            }
        }
        let (first, second) = if imin <= imax {
            (imin, imax)
        } else {
            (imax, imin)
        };
        out.push([x0 + first as f64 * dx, ys[first]]);
        out.push([x0 + second as f64 * dx, ys[second]]);
    }
    out
}

/// The value of feature `i` of `schedule` (cos, attention factor applied) at positions
/// `0..count`, from exact phases.
pub fn feature_values(schedule: &Schedule, i: usize, count: u64) -> Vec<f64> {
    let af = schedule.attention_factor;
    let ph = schedule.phases[i];
    (0..count).map(|p| ph.angle(p).cos() * af).collect()
}

/// Buckets of the detail curve: up to twice this many positions are drawn one by one.
pub const DETAIL_BUCKETS: usize = 1200;

/// The detail window's bounds on its length: at least this many positions ...
pub const DETAIL_MIN: u64 = 16;
/// ... and at most this many, so that every position in it is evaluated exactly each frame.
pub const DETAIL_MAX: u64 = 1 << 16;

/// The feature-value detail window `[start, start + len)` for feature `i`: the requested one
/// clamped to `[0, L')` and to [`DETAIL_MIN`]..=[`DETAIL_MAX`] positions, or (`len` 0) the
/// default, centred on L and eight wavelengths wide (at least [`DETAIL_MIN`]), so that it shows
/// single oscillations where training ends.
pub fn detail_window(schedule: &Schedule, i: usize, start: u64, len: u64) -> (u64, u64) {
    let lp = schedule.config.eval_len.max(1);
    let (start, len) = if len == 0 {
        let w = schedule.wavelength[i];
        let len = if w.is_finite() {
            (8.0 * w).round() as u64
        } else {
            DETAIL_MIN
        };
        let len = len.clamp(DETAIL_MIN, DETAIL_MAX);
        (schedule.config.train_len.saturating_sub(len / 2), len)
    } else {
        (start, len.clamp(DETAIL_MIN, DETAIL_MAX))
    };
    let len = len.min(lp);
    (start.min(lp - len), len)
}

/// The exact feature value (cos of the exact phase, times the attention factor) at every
/// position of the window, reduced to the min and max per bucket when there are more than
/// `2 * DETAIL_BUCKETS` positions (so every extreme is kept).
pub fn detail_curve(schedule: &Schedule, i: usize, start: u64, len: u64) -> Vec<[f64; 2]> {
    let af = schedule.attention_factor;
    let ph = schedule.phases[i];
    let ys: Vec<f64> = (start..start + len)
        .map(|p| ph.angle(p).cos() * af)
        .collect();
    downsample_minmax(start as f64, 1.0, &ys, DETAIL_BUCKETS)
}

/// The exact gap of feature `i` (radians; 0 in the training range) at every position of the
/// window, reduced like [`detail_curve`]: a window anywhere up to L' costs its own length plus
/// L keys.
pub fn detail_gap_curve(schedule: &Schedule, i: usize, start: u64, len: u64) -> Vec<[f64; 2]> {
    let ys = GapWorkspace::default().curve_range(
        &schedule.phases[i],
        schedule.config.train_len,
        start,
        start + len,
    );
    downsample_minmax(start as f64, 1.0, &ys, DETAIL_BUCKETS)
}

/// Sign changes between consecutive points of a curve (the zero crossings a plot shows).
pub fn zero_crossings(curve: &[[f64; 2]]) -> usize {
    curve
        .windows(2)
        .filter(|w| (w[0][1] < 0.0) != (w[1][1] < 0.0))
        .count()
}

/// Computes `config` in one go (no time slicing): what tests compare the sliced path with.
#[cfg(test)]
pub(crate) fn compute_now(config: &ScheduleConfig) -> Results {
    let mut c = Cache::default();
    c.update(&ComputePath::Cpu, config, f64::INFINITY);
    c.results().expect("a valid config").as_ref().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detail_window_is_exact_and_bounded_up_to_l_prime_2_pow_24() {
        use crate::rope::Method;
        // a 1M-position config (L = 2^16, L' = 2^20) and the largest L' the lab draws (2^24)
        for lp in [1u64 << 20, 1 << 24] {
            let c = ScheduleConfig::with_lengths(Method::YARN, 128, 5e5, 1 << 16, lp);
            let s = Schedule::new(&c).expect("valid");
            for i in [0, 20, 40, 63] {
                let (start, len) = detail_window(&s, i, 0, 0);
                assert!((DETAIL_MIN..=DETAIL_MAX).contains(&len), "{lp} {i}: {len}");
                assert!(start + len <= lp);
                if s.wavelength[i] * 8.0 < DETAIL_MAX as f64 {
                    assert!(start < c.train_len && start + len > c.train_len, "around L");
                }
                // at the very end of L', every position evaluated: as many points as positions
                let (st, n) = detail_window(&s, i, lp, 1000);
                assert_eq!((st, n), (lp - 1000, 1000));
                let curve = detail_curve(&s, i, st, n);
                assert_eq!(curve.len(), 1000);
                let exact = (n - 1) as f64 * f64::from(s.inv_freq[i]) / std::f64::consts::PI;
                let crossings = zero_crossings(&curve) as f64;
                assert!(
                    (crossings - exact).abs() <= 1.0,
                    "{lp} {i}: {crossings} vs {exact}"
                );
                // each point is the exact phase's cosine at its integer position
                let p = curve[500][0] as u64;
                let want = s.phases[i].angle(p).cos() * s.attention_factor;
                assert_eq!(curve[500][1], want);
            }
            // too long a request is cut to the maximum, too short one raised to the minimum
            assert_eq!(detail_window(&s, 0, 0, u64::MAX).1, DETAIL_MAX);
            assert_eq!(detail_window(&s, 0, 0, 1).1, DETAIL_MIN);
        }
    }

    #[test]
    fn downsample_keeps_every_extreme() {
        let ys: Vec<f64> = (0..10_000).map(|k| ((k as f64) * 0.37).sin()).collect();
        let d = downsample_minmax(0.0, 1.0, &ys, 100);
        assert_eq!(d.len(), 200);
        let max = ys.iter().cloned().fold(f64::MIN, f64::max);
        let min = ys.iter().cloned().fold(f64::MAX, f64::min);
        assert_eq!(d.iter().map(|p| p[1]).fold(f64::MIN, f64::max), max);
        assert_eq!(d.iter().map(|p| p[1]).fold(f64::MAX, f64::min), min);
        // x stays sorted and every point is a real sample
        assert!(d.windows(2).all(|w| w[0][0] <= w[1][0]));
        assert!(d.iter().all(|p| ys[p[0] as usize] == p[1]));
    }

    #[test]
    fn short_series_pass_through() {
        let d = downsample_minmax(10.0, 2.0, &[1.0, 2.0, 3.0], 100);
        assert_eq!(d, vec![[10.0, 1.0], [12.0, 2.0], [14.0, 3.0]]);
    }

    #[test]
    fn cache_recomputes_only_on_change_and_keeps_last_good() {
        let mut c = Cache::default();
        let cfg = ScheduleConfig::default();
        assert!(c.update(&ComputePath::Cpu, &cfg, f64::INFINITY));
        assert!(!c.update(&ComputePath::Cpu, &cfg, f64::INFINITY));
        assert_eq!(c.computations, 1);
        let bad = ScheduleConfig {
            eval_len: 10,
            ..cfg.clone()
        };
        assert!(!c.update(&ComputePath::Cpu, &bad, f64::INFINITY));
        assert_eq!(c.error().unwrap().field, "eval_len");
        assert_eq!(c.results().unwrap().schedule.config, cfg);
        assert!(!c.busy());
    }

    /// With a zero budget every call does one feature: the results arrive after 2 * d/2 calls,
    /// equal the one-shot computation exactly, and configs that arrive meanwhile are skipped
    /// except the latest.
    #[test]
    fn time_sliced_computation_equals_one_shot_and_latest_wins() {
        let mut c = Cache::default();
        let a = ScheduleConfig::default();
        let n = Schedule::new(&a).unwrap().num_features();
        for k in 1..2 * n {
            assert!(
                !c.update(&ComputePath::Cpu, &a, 0.0),
                "finished early at call {k}"
            );
            assert!(c.busy() && c.results().is_none());
        }
        assert!(c.update(&ComputePath::Cpu, &a, 0.0));
        let s = Schedule::new(&a).unwrap();
        let (want, want_twin) = (rope::gap_analysis(&s), rope::gap_analysis(&s.twin()));
        let got = c.results().unwrap();
        assert_eq!(got.gap.gap, want.gap);
        assert_eq!(got.gap.worst_position, want.worst_position);
        assert_eq!(got.twin_gap.gap, want_twin.gap);
        // b starts; c and d arrive while b runs: only d runs after b
        let cfg = |scale: f64| ScheduleConfig { scale, ..a.clone() };
        let (b, cc, d) = (cfg(2.0), cfg(3.0), cfg(5.0));
        c.update(&ComputePath::Cpu, &b, 0.0);
        c.update(&ComputePath::Cpu, &cc, 0.0);
        c.update(&ComputePath::Cpu, &d, 0.0);
        let mut finished = Vec::new();
        for _ in 0..10 * n {
            if c.update(&ComputePath::Cpu, &d, 0.0) {
                finished.push(c.results().unwrap().schedule.config.scale);
            }
        }
        assert_eq!(finished, vec![2.0, 5.0]);
        assert_eq!(c.computations, 3);
        assert!(!c.busy());
    }

    #[test]
    fn twin_has_resonance_toggled_and_zero_precritical_gap() {
        let r = compute_now(&ScheduleConfig::default());
        let (raw, rounded) = r.raw_and_rounded();
        assert!(!raw.config.resonance && rounded.config.resonance);
        // docs/gap.md#worked-example: RoPE feature 3 gap 0.128 rad at d=64 L=64 L'=256; Resonance < 1e-12
        assert!((r.gap.gap[3] - 0.128).abs() < 1e-3, "{}", r.gap.gap[3]);
        assert!(r.twin_gap.gap[..9].iter().all(|&g| g < 1e-12));
    }
}
