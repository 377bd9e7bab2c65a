//! `freqs`, `gap`, `features` and `bench`: the schedule subcommands.

use super::{CliError, ScheduleArgs};
use crate::gpu::{GapRequest, GpuCompute, GpuError, Positions, TableLayout};
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
    /// WGSL compute on a headless wgpu device; falls back to the CPU path when unavailable.
    Gpu,
}

/// Acquires a headless GPU, or prints a one-line warning and returns the reason for falling back.
fn acquire_gpu() -> Result<GpuCompute, String> {
    GpuCompute::new_headless_blocking().map_err(|e| {
        let reason = e.to_string();
        eprintln!("warning: {reason}; falling back to the CPU backend");
        reason
    })
}

fn gpu_failed(e: GpuError) -> Result<String, CliError> {
    match e {
        GpuError::InvalidRequest(m) => Err(CliError::Usage(m)),
        e => {
            let reason = e.to_string();
            eprintln!("warning: {reason}; falling back to the CPU backend");
            Ok(reason)
        }
    }
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
    /// GPU vs CPU throughput: a 2^20-position feature table and the gap curves.
    Gpu,
}

fn schedule_header(s: &Schedule) -> Value {
    let c = &s.config;
    json!({
        "method": c.method.name(),
        "resonance": c.resonance,
        "dim": c.dim,
        "rotary_dim": c.rotary_dim(),
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
            "zero_frequency_features": s.zero_frequency_features(),
        }),
    );
    for (k, v) in (s.config.method.def().details)(&s.config) {
        out[k] = v;
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
    let mut fallback = None;
    if args.backend == Backend::Gpu {
        match acquire_gpu() {
            Ok(mut g) => {
                let request = GapRequest {
                    buckets: 0,
                    curves: args.curve_feature.into_iter().collect(),
                };
                match g.gap_blocking(&s, request) {
                    Ok(r) => {
                        let chord: Vec<f64> =
                            r.gap.iter().map(|&v| 2.0 * (v / 2.0).sin()).collect();
                        let mut out = merge(
                            schedule_header(&s),
                            json!({
                                "gap": r.gap,
                                "chord": chord,
                                "worst_position": r.worst_position,
                                "critical_feature": s.critical_feature,
                                "backend": g.adapter_name(),
                            }),
                        );
                        if let Some((f, curve)) = r.curves.first() {
                            out["curve_feature"] = json!(f);
                            out["curve"] = json!(curve);
                        }
                        return Ok(out);
                    }
                    Err(e) => fallback = Some(gpu_failed(e)?),
                }
            }
            Err(reason) => fallback = Some(reason),
        }
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
    if let Some(reason) = fallback {
        out["gpu_fallback_reason"] = json!(reason);
    }
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
    let mut fallback = None;
    if args.backend == Backend::Gpu {
        match acquire_gpu() {
            Ok(mut g) => {
                let list = Positions::from_u64(&positions)
                    .map_err(|e| CliError::Usage(format!("invalid --positions: {e}")))?;
                match g.features_blocking(&s, list, TableLayout::PerFeature) {
                    Ok(t) => {
                        let n = t.num_features;
                        let rows = |v: &[f32]| -> Vec<Vec<f64>> {
                            v.chunks(n.max(1))
                                .map(|r| r.iter().map(|&x| x as f64).collect())
                                .collect()
                        };
                        return Ok(merge(
                            schedule_header(&s),
                            json!({
                                "positions": positions,
                                "cos": rows(&t.cos),
                                "sin": rows(&t.sin),
                                "attention_factor": s.attention_factor,
                                "layout": s.config.layout,
                                "backend": g.adapter_name(),
                            }),
                        ));
                    }
                    Err(e) => fallback = Some(gpu_failed(e)?),
                }
            }
            Err(reason) => fallback = Some(reason),
        }
    }
    let table = rope::feature_table(&s, &positions);
    let n = table.num_features;
    fn rows(v: &[f64], n: usize) -> Vec<&[f64]> {
        v.chunks(n).collect()
    }
    let mut out = merge(
        schedule_header(&s),
        json!({
            "positions": positions,
            "cos": rows(&table.cos, n),
            "sin": rows(&table.sin, n),
            "attention_factor": s.attention_factor,
            "layout": s.config.layout,
            "backend": "cpu",
        }),
    );
    if let Some(reason) = fallback {
        out["gpu_fallback_reason"] = json!(reason);
    }
    Ok(out)
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
    if args.kind == BenchKind::Gpu {
        return bench_gpu(args);
    }
    let mut c = rope::ScheduleConfig::with_lengths(
        rope::Method::ROPE,
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
            // keep the curve observable without timing an extra pass over it
            acc += std::hint::black_box(&curve).last().copied().unwrap_or(0.0);
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

/// Positions of the `bench gpu` feature table.
const BENCH_POSITIONS: u32 = 1 << 20;
/// Positions per request in `bench gpu` (bounds the memory of both paths).
const BENCH_CHUNK: u32 = 1 << 16;

/// Seconds to compute the `bench gpu` table on the GPU, and a checksum of it.
fn time_gpu_table(g: &mut GpuCompute, s: &Schedule) -> Result<(f64, f64), GpuError> {
    let t = Instant::now();
    let mut acc = 0.0f64;
    for start in (0..BENCH_POSITIONS).step_by(BENCH_CHUNK as usize) {
        let pos = Positions::Range {
            start,
            count: BENCH_CHUNK,
            stride: 1,
        };
        let tab = g.features_blocking(s, pos, TableLayout::PerFeature)?;
        acc += tab.cos[tab.cos.len() - 1] as f64;
    }
    Ok((t.elapsed().as_secs_f64(), acc))
}

/// Seconds to compute the `bench gpu` table on the CPU (exact f64 path), and a checksum of it.
fn time_cpu_table(s: &Schedule) -> (f64, f64) {
    let t = Instant::now();
    let mut acc = 0.0f64;
    for start in (0..BENCH_POSITIONS as u64).step_by(BENCH_CHUNK as usize) {
        let pos: Vec<u64> = (start..start + BENCH_CHUNK as u64).collect();
        let tab = rope::feature_table(s, &pos);
        acc += tab.cos[tab.cos.len() - 1];
    }
    (t.elapsed().as_secs_f64(), acc)
}

/// `bench gpu`: features per second of the GPU and CPU paths for a 1,048,576-position table of
/// `dim/2` features and for the gap curves of every feature, and their ratio. GPU figures
/// include upload, dispatch and readback.
fn bench_gpu(args: &BenchArgs) -> Result<Value, CliError> {
    if args.repeats == 0 || args.repeats > 1000 {
        return Err(CliError::Usage(format!(
            "invalid --repeats: must be in 1..=1000 (got {})",
            args.repeats
        )));
    }
    let c = rope::ScheduleConfig::with_lengths(
        rope::Method::ROPE,
        args.dim,
        10000.0,
        args.train_len,
        args.eval_len,
    );
    let s = Schedule::new(&c)?;
    let mut g = GpuCompute::new_headless_blocking()
        .map_err(|e| CliError::Runtime(format!("bench gpu needs an adapter: {e}")))?;
    let nf = s.num_features();
    let runtime = |e: GpuError| CliError::Runtime(e.to_string());
    let (mut gpu_tab, mut cpu_tab, mut gpu_gap, mut cpu_gap) = (vec![], vec![], vec![], vec![]);
    let mut checks = (0.0f64, 0.0f64);
    for _ in 0..args.repeats {
        let (secs, acc) = time_gpu_table(&mut g, &s).map_err(runtime)?;
        gpu_tab.push(secs);
        checks.0 = acc;
        let (secs, acc) = time_cpu_table(&s);
        cpu_tab.push(secs);
        checks.1 = acc;
        let t = Instant::now();
        let r = g.gap_blocking(&s, GapRequest::default()).map_err(runtime)?;
        gpu_gap.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let cpu = rope::gap_analysis(&s);
        cpu_gap.push(t.elapsed().as_secs_f64());
        if cpu.gap != r.gap {
            return Err(CliError::Runtime("GPU and CPU gaps differ".into()));
        }
    }
    let table_features = BENCH_POSITIONS as f64 * nf as f64;
    let gap_features = (c.eval_len - c.train_len) as f64 * nf as f64;
    let (gt, ct) = (median_ms(gpu_tab), median_ms(cpu_tab));
    let (gg, cg) = (median_ms(gpu_gap), median_ms(cpu_gap));
    Ok(json!({
        "bench": "gpu",
        "adapter": g.adapter_name(),
        "dim": c.dim,
        "features": nf,
        "table_positions": BENCH_POSITIONS,
        "train_len": c.train_len,
        "eval_len": c.eval_len,
        "repeats": args.repeats,
        "table_gpu_seconds": gt,
        "table_cpu_seconds": ct,
        "table_gpu_features_per_second": table_features / gt,
        "table_cpu_features_per_second": table_features / ct,
        "table_gpu_over_cpu": ct / gt,
        "gap_gpu_seconds": gg,
        "gap_cpu_seconds": cg,
        "gap_gpu_features_per_second": gap_features / gg,
        "gap_cpu_features_per_second": gap_features / cg,
        "gap_gpu_over_cpu": cg / gg,
        "checksum_gpu": checks.0,
        "checksum_cpu": checks.1,
    }))
}
