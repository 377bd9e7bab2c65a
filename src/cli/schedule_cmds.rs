//! `freqs`, `gap`, `features` and `bench`: the schedule subcommands.

use super::{CliError, ScheduleArgs};
use crate::rope::{self, Schedule};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use std::time::Instant;

/// Largest number of positions one `features` call accepts (the JSON grows with it).
pub const MAX_FEATURE_POSITIONS: usize = 1 << 20;

/// Where a computation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The f64 CPU reference path.
    Cpu,
}

/// Options of `gap`.
#[derive(Args, Debug)]
pub struct GapArgs {
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// Also print the gap curve (radians per OOD position) of this feature.
    #[arg(long = "curve-feature")]
    pub curve_feature: Option<usize>,
}

/// Options of `features`.
#[derive(Args, Debug)]
pub struct FeaturesArgs {
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    /// Comma-separated positions in 0..=4294967295; `A..B` adds the half-open range A..B.
    #[arg(long, required = true, allow_hyphen_values = true)]
    pub positions: String,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
}

/// Options of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to benchmark.
    #[arg(value_enum, default_value_t = BenchKind::Gap)]
    pub kind: BenchKind,
    /// Rotary dimension of the benchmarked schedule.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Training length of the benchmarked schedule.
    #[arg(long = "train-len", default_value_t = 4096)]
    pub train_len: u64,
    /// Evaluation length of the benchmarked schedule.
    #[arg(long = "eval-len", default_value_t = 131072)]
    pub eval_len: u64,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
}

/// Benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchKind {
    /// Gap curves of every feature (sliding-window minimum) vs the brute force it replaces.
    Gap,
}

fn schedule_header(s: &Schedule) -> Value {
    let c = &s.config;
    json!({
        "method": c.method.name(),
        "resonance": c.resonance,
        "dim": c.dim,
        "base": c.base,
        "scale": c.scale,
        "train_len": c.train_len,
        "eval_len": c.eval_len,
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

/// `freqs`: the schedule itself.
pub fn freqs(args: &ScheduleArgs) -> Result<Value, CliError> {
    let s = Schedule::new(&args.to_config()?)?;
    let mut out = merge(
        schedule_header(&s),
        json!({
            "inv_freq": s.inv_freq,
            "wavelength": s.wavelength,
            "attention_factor": s.attention_factor,
            "critical_feature": s.critical_feature,
            "inv_freq_f64": s.inv_freq_f64,
            "wavelength_f64": s.wavelength_f64,
        }),
    );
    if s.config.method == rope::Method::Yarn {
        let (low, high) = rope::schedule::yarn_correction_range(&s.config);
        out["yarn_correction_range"] = json!([low, high]);
    }
    if let Some(r) = &s.rounding {
        out["rounding"] = serde_json::to_value(r).map_err(|e| CliError::Runtime(e.to_string()))?;
    }
    Ok(out)
}

/// `gap`: gap per feature.
pub fn gap(args: &GapArgs) -> Result<Value, CliError> {
    let s = Schedule::new(&args.schedule.to_config()?)?;
    if let Some(f) = args.curve_feature
        && f >= s.num_features()
    {
        return Err(CliError::Usage(format!(
            "invalid --curve-feature: must be in 0..{} (got {f})",
            s.num_features()
        )));
    }
    let analysis = rope::gap_analysis(&s);
    let mut out = merge(
        schedule_header(&s),
        json!({
            "gap": analysis.gap,
            "chord": analysis.chord,
            "worst_position": analysis.worst_position,
            "critical_feature": s.critical_feature,
            "backend": "cpu",
        }),
    );
    if let Some(f) = args.curve_feature {
        out["curve_feature"] = json!(f);
        out["curve"] = json!(rope::gap_curve(
            &s.phases[f],
            s.config.train_len,
            s.config.eval_len
        ));
    }
    Ok(out)
}

/// Parses `--positions`: comma-separated integers and `A..B` ranges, each in 0..=u32::MAX.
pub fn parse_positions(text: &str) -> Result<Vec<u64>, CliError> {
    let bad = |m: String| CliError::Usage(format!("invalid --positions: {m}"));
    let parse_one = |t: &str| -> Result<u64, CliError> {
        let v: u64 = t.trim().parse().map_err(|_| {
            bad(format!(
                "'{}' is not an integer in 0..=4294967295",
                t.trim()
            ))
        })?;
        if v > u32::MAX as u64 {
            return Err(bad(format!("{v} is out of range 0..=4294967295")));
        }
        Ok(v)
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        if part.trim().is_empty() {
            return Err(bad("empty entry; expected e.g. 0,1,4096 or 0..1024".into()));
        }
        if let Some((a, b)) = part.split_once("..") {
            let (a, b) = (parse_one(a)?, parse_one(b)?);
            if b < a {
                return Err(bad(format!("range {a}..{b} is reversed")));
            }
            if out.len() as u64 + (b - a) > MAX_FEATURE_POSITIONS as u64 {
                return Err(bad(format!(
                    "at most {MAX_FEATURE_POSITIONS} positions per call"
                )));
            }
            out.extend(a..b);
        } else {
            out.push(parse_one(part)?);
        }
        if out.len() > MAX_FEATURE_POSITIONS {
            return Err(bad(format!(
                "at most {MAX_FEATURE_POSITIONS} positions per call"
            )));
        }
    }
    if out.is_empty() {
        return Err(bad("no positions given".into()));
    }
    Ok(out)
}

/// `features`: cos/sin rows at the requested positions.
pub fn features(args: &FeaturesArgs) -> Result<Value, CliError> {
    let s = Schedule::new(&args.schedule.to_config()?)?;
    let positions = parse_positions(&args.positions)?;
    let table = rope::feature_table(&s, &positions);
    let n = table.num_features;
    fn rows(v: &[f64], n: usize) -> Vec<&[f64]> {
        v.chunks(n).collect()
    }
    Ok(merge(
        schedule_header(&s),
        json!({
            "positions": positions,
            "cos": rows(&table.cos, n),
            "sin": rows(&table.sin, n),
            "attention_factor": s.attention_factor,
            "layout": s.config.layout,
            "backend": "cpu",
        }),
    ))
}

/// CPU time of the calling thread in milliseconds: unlike wall time it does not grow when other
/// processes compete for the cores, so figures from a shared machine stay comparable.
pub fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 * 1e-6
}

fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// `bench gap`: the O(L') sliding-window gap of every feature vs the O(L*L') brute force
/// (the brute force is timed on a sample of OOD positions and extrapolated linearly). Times are
/// thread CPU time, plus the wall time of the fast path.
pub fn bench(args: &BenchArgs) -> Result<Value, CliError> {
    let BenchKind::Gap = args.kind;
    let mut c = rope::ScheduleConfig::with_lengths(
        rope::Method::Rope,
        args.dim,
        10000.0,
        args.train_len,
        args.eval_len,
    );
    c.scale = 1.0;
    let s = Schedule::new(&c)?;
    if args.repeats == 0 || args.repeats > 1000 {
        return Err(CliError::Usage(format!(
            "invalid --repeats: must be in 1..=1000 (got {})",
            args.repeats
        )));
    }
    let mut fast = Vec::new();
    let mut fast_cpu = Vec::new();
    let mut checksum = 0.0;
    let mut ws = rope::GapWorkspace::default();
    let mut curve = Vec::new();
    for _ in 0..args.repeats {
        let t = Instant::now();
        let cpu = thread_cpu_ms();
        let mut acc = 0.0;
        for ph in &s.phases {
            ws.curve_into(ph, c.train_len, c.eval_len, &mut curve);
            acc += curve.iter().sum::<f64>();
        }
        fast.push(t.elapsed().as_secs_f64() * 1e3);
        fast_cpu.push(thread_cpu_ms() - cpu);
        checksum = acc;
    }
    // brute force on a sample of OOD positions of one feature, extrapolated
    let sample = 64u64.min(c.eval_len - c.train_len).max(1);
    let theta = s.inv_freq[0] as f64;
    let cpu = thread_cpu_ms();
    let _ = std::hint::black_box(rope::gap::gap_brute_force(
        theta,
        c.train_len,
        c.train_len + sample,
    ));
    let per_position_ms = (thread_cpu_ms() - cpu) / sample as f64;
    let brute_ms = per_position_ms * (c.eval_len - c.train_len) as f64 * s.num_features() as f64;
    let fast_ms = median_ms(fast);
    let fast_cpu_ms = median_ms(fast_cpu);
    Ok(json!({
        "bench": "gap",
        "dim": c.dim,
        "train_len": c.train_len,
        "eval_len": c.eval_len,
        "features": s.num_features(),
        "threads": 1,
        "sliding_window_ms_median": fast_ms,
        "sliding_window_cpu_ms_median": fast_cpu_ms,
        "brute_force_cpu_ms_extrapolated": brute_ms,
        "brute_force_sampled_positions": sample,
        "speedup": brute_ms / fast_cpu_ms,
        "checksum": checksum,
    }))
}
