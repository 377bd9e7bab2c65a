//! Gap pipeline: the gap curve of every feature as a parallel sliding-window minimum over exact
//! integer keys (`shaders/gap.wgsl`), reduced on the GPU to the gap per feature and optional
//! min/max pixel buckets (`shaders/reduce.wgsl`). Features are processed in groups sized to the
//! device's buffer limits.

use super::context::{GpuContext, GpuError};
use super::features::{build_pipelines, storage_entries};
use super::readback::{Pending, Reusable, Scopes, f32s, u32s};
use crate::rope::{Phase, Schedule, phase::TWO_POW_64};
use std::f64::consts::PI;

/// WGSL source of the gap kernels and their reductions (shared helpers first).
pub const SHADER: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/gap.wgsl"),
    include_str!("../../shaders/reduce.wgsl")
);

/// Keys per sub-chunk scanned by one invocation (`CHUNK` in gap.wgsl).
const CHUNK: u64 = 256;
/// Cap on keys held on the device at once (prefix + suffix scans: 16 bytes per key).
const MAX_GROUP_KEYS: u64 = 1 << 23;
/// Largest number of min/max buckets per curve.
pub const MAX_BUCKETS: u32 = 1 << 16;

/// What to read back besides the gap per feature.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GapRequest {
    /// Min/max of every feature's curve over this many buckets of OOD positions (0: none).
    pub buckets: u32,
    /// Features whose whole curve (one f32 per OOD position) is read back.
    pub curves: Vec<usize>,
}

/// Min/max of each feature's gap curve per bucket of OOD positions (plot-ready).
#[derive(Clone, Debug, PartialEq)]
pub struct GapBuckets {
    /// Buckets per feature.
    pub count: usize,
    /// First OOD position of each bucket (`count + 1` entries; the last is eval_len).
    pub edges: Vec<u64>,
    /// Minimum per (feature, bucket), radians, `num_features * count` row-major.
    pub min: Vec<f32>,
    /// Maximum per (feature, bucket), radians.
    pub max: Vec<f32>,
}

/// Gap results of one schedule computed on the GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuGap {
    /// Gap per feature in radians, from the exact maximum key (bit-identical to the CPU).
    pub gap: Vec<f64>,
    /// The maximum key per feature (`||k alpha||` as an integer, see the exact integer keys of docs/gap.md#exact-integer-keys).
    pub max_key: Vec<u64>,
    /// First OOD position where each feature's gap is attained (`train_len` when none).
    pub worst_position: Vec<u64>,
    /// Min/max buckets, when requested.
    pub buckets: Option<GapBuckets>,
    /// Requested full curves: (feature, radians per OOD position L..L'-1).
    pub curves: Vec<(usize, Vec<f32>)>,
}

/// What [`GapJob::plan`] works out for one feature group: which features, what to read back,
/// buffer sizes (bytes) and the grids of the scan, carry, window and bucket passes.
struct GroupPlan {
    first: usize,
    g: usize,
    curves: Vec<usize>,
    params: GapParams,
    write_curve: bool,
    n_keys: u64,
    n_out: u64,
    carries_len: u64,
    grids: [(u32, u32); 4],
    results_off: u64,
    results_len: u64,
    bucket_len: u64,
    curve_len: u64,
    staging_len: u64,
}

/// Per-feature kernel parameters (the `GapPhase` struct of gap.wgsl) and the factor turning a
/// key into radians.
pub fn gap_phase_words(phase: &Phase) -> ([u32; 8], f64) {
    match *phase {
        Phase::Integer { lambda } => {
            let to_rad = 2.0 * PI / lambda as f64;
            // key indices are < 2^24 < lambda / 2 when lambda >= 2^32: key = k
            let l = if lambda <= u32::MAX as u64 {
                lambda as u32
            } else {
                0
            };
            ([0, l, 0, 0, (to_rad as f32).to_bits(), 0, 0, 0], to_rad)
        }
        Phase::Fixed { alpha } => {
            let to_rad = 2.0 * PI / TWO_POW_64;
            (
                [
                    1,
                    0,
                    alpha as u32,
                    (alpha >> 32) as u32,
                    (to_rad as f32).to_bits(),
                    0,
                    0,
                    0,
                ],
                to_rad,
            )
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GapParams {
    n_keys: u32,
    window: u32,
    n_out: u32,
    features: u32,
    chunks_per_block: u32,
    blocks: u32,
    partials: u32,
    buckets: u32,
    write_curve: u32,
    pad: [u32; 3],
}

const ENTRY_POINTS: [&str; 5] = [
    "chunk_scan",
    "block_carry",
    "window",
    "reduce_max",
    "bucket_min_max",
];

/// The compiled gap kernels plus buffers kept between calls.
pub struct GapPipeline {
    pipelines: Vec<wgpu::ComputePipeline>,
    layout: wgpu::BindGroupLayout,
    buffers: [Reusable; 9],
}

impl GapPipeline {
    /// Drops the kept buffers (after an error, when one may still be mapped or in use).
    pub fn reset_buffers(&mut self) {
        self.buffers.iter_mut().for_each(Reusable::forget);
    }

    /// Compiles the kernels on `device`.
    pub fn new(device: &wgpu::Device) -> GapPipeline {
        let entries = storage_entries(0, &[1], &[2, 3, 4, 5, 6, 7]);
        let (layout, pipelines) = build_pipelines(device, "gap", SHADER, &entries, &ENTRY_POINTS);
        GapPipeline {
            pipelines,
            layout,
            buffers: Default::default(),
        }
    }
}

/// A gap request in progress: groups of features are computed and read back in turn.
pub struct GapJob {
    phases: Vec<([u32; 8], f64)>,
    train_len: u64,
    eval_len: u64,
    request: GapRequest,
    buckets: u32,
    group: usize,
    next_feature: usize,
    in_flight: Option<(usize, usize, Vec<usize>)>,
    result: GpuGap,
}

impl GapJob {
    /// Validates the request against the device limits and plans the feature groups.
    pub fn new(
        ctx: &GpuContext,
        schedule: &Schedule,
        request: GapRequest,
    ) -> Result<GapJob, GpuError> {
        let nf = schedule.num_features();
        if let Some(&f) = request.curves.iter().find(|&&f| f >= nf) {
            return Err(GpuError::InvalidRequest(format!(
                "curve feature {f} is out of range 0..{nf}"
            )));
        }
        if request.buckets > MAX_BUCKETS {
            return Err(GpuError::InvalidRequest(format!(
                "buckets must be in 0..={MAX_BUCKETS} (got {})",
                request.buckets
            )));
        }
        let (l, lp) = (schedule.config.train_len, schedule.config.eval_len);
        if l == 0 || lp > u32::MAX as u64 {
            return Err(GpuError::InvalidRequest(format!(
                "train_len must be >= 1 and eval_len < 2^32 (got {l}, {lp})"
            )));
        }
        let n_keys = lp.saturating_sub(1);
        let n_out = lp.saturating_sub(l);
        let buckets = (request.buckets as u64).min(n_out) as u32;
        let max = ctx.max_binding(u64::MAX);
        let per_feature = (n_keys * 8).max(n_out * 4).max(buckets as u64 * 8);
        let group = if n_out == 0 {
            nf.max(1)
        } else {
            if per_feature > max {
                return Err(GpuError::Limits(format!(
                    "eval_len {lp} needs {per_feature} bytes per feature in one binding; the device allows {max}"
                )));
            }
            (max / per_feature)
                .min(MAX_GROUP_KEYS / n_keys.max(1))
                .clamp(1, nf as u64) as usize
        };
        let result = GpuGap {
            gap: vec![0.0; nf],
            max_key: vec![0; nf],
            worst_position: vec![l; nf],
            buckets: (buckets > 0).then(|| GapBuckets {
                count: buckets as usize,
                edges: bucket_edges(l, n_out, buckets),
                min: vec![0.0; nf * buckets as usize],
                max: vec![0.0; nf * buckets as usize],
            }),
            curves: Vec::new(),
        };
        Ok(GapJob {
            phases: schedule.phases.iter().map(gap_phase_words).collect(),
            train_len: l,
            eval_len: lp,
            request,
            buckets,
            group,
            next_feature: if n_out == 0 { nf } else { 0 },
            in_flight: None,
            result,
        })
    }

    /// True when every group has been read back.
    pub fn is_complete(&self) -> bool {
        self.next_feature >= self.phases.len() && self.in_flight.is_none()
    }

    /// Sizes, kernel parameters and dispatch grids of the next feature group.
    fn plan(&self, ctx: &GpuContext) -> Result<GroupPlan, GpuError> {
        let first = self.next_feature;
        let g = self.group.min(self.phases.len() - first);
        let n_keys = self.eval_len - 1;
        let w = self.train_len;
        let n_out = self.eval_len - self.train_len;
        let cpb = w.div_ceil(CHUNK);
        let blocks = n_keys.div_ceil(w);
        let partials = n_out.div_ceil(256);
        let curves: Vec<usize> = self
            .request
            .curves
            .iter()
            .copied()
            .filter(|&f| f >= first && f < first + g)
            .collect();
        let write_curve = self.buckets > 0 || !curves.is_empty();
        let gu = g as u64;
        let params = GapParams {
            n_keys: n_keys as u32,
            window: w as u32,
            n_out: n_out as u32,
            features: g as u32,
            chunks_per_block: cpb as u32,
            blocks: blocks as u32,
            partials: partials as u32,
            buckets: self.buckets,
            write_curve: write_curve as u32,
            pad: [0; 3],
        };
        let carries_len = gu * blocks * cpb * 2 * 8;
        let max = ctx.max_binding(u64::MAX);
        if carries_len > max {
            return Err(GpuError::Limits(format!(
                "scan carries need {carries_len} bytes; the device binds at most {max}"
            )));
        }
        let grid_scan = ctx.grid(gu * blocks * cpb)?;
        let grid_carry = ctx.grid(gu * blocks)?;
        let grid_window = ctx.grid(gu * partials * 256)?;
        let grid_buckets = ctx.grid(gu * self.buckets as u64)?;
        let results_off = gu * partials * 16;
        let results_len = gu * 16;
        let bucket_len = gu * self.buckets as u64 * 8;
        let curve_len = n_out * 4;
        let staging_len = results_len + bucket_len + curves.len() as u64 * curve_len;

        Ok(GroupPlan {
            first,
            g,
            curves,
            params,
            write_curve,
            n_keys,
            n_out,
            carries_len,
            grids: [grid_scan, grid_carry, grid_window, grid_buckets],
            results_off,
            results_len,
            bucket_len,
            curve_len,
            staging_len,
        })
    }

    /// Encodes and submits the passes of the next feature group.
    pub fn submit_next(
        &mut self,
        ctx: &GpuContext,
        pipe: &mut GapPipeline,
    ) -> Result<Pending, GpuError> {
        ctx.check_lost()?;
        let p = self.plan(ctx)?;
        let gu = p.g as u64;
        let scopes = Scopes::push(&ctx.device);
        let d = &ctx.device;
        use wgpu::BufferUsages as U;
        let words: Vec<u32> = self.phases[p.first..p.first + p.g]
            .iter()
            .flat_map(|(w, _)| *w)
            .collect();
        let [
            b_uni,
            b_ph,
            b_pre,
            b_suf,
            b_car,
            b_curve,
            b_max,
            b_buck,
            b_stage,
        ] = &mut pipe.buffers;
        let uniform = b_uni.get(d, "gap params", 48, U::UNIFORM | U::COPY_DST);
        let phases = b_ph.get(d, "gap phases", gu * 32, U::STORAGE | U::COPY_DST);
        let prefix = b_pre.get(d, "gap prefix", gu * p.n_keys * 8, U::STORAGE);
        let suffix = b_suf.get(d, "gap suffix", gu * p.n_keys * 8, U::STORAGE);
        let carries = b_car.get(d, "gap carries", p.carries_len, U::STORAGE);
        let curve_bytes = if p.write_curve { gu * p.n_out * 4 } else { 4 };
        let curve = b_curve.get(d, "gap curve", curve_bytes, U::STORAGE | U::COPY_SRC);
        let maxima_len = p.results_off + p.results_len;
        let maxima = b_max.get(d, "gap maxima", maxima_len, U::STORAGE | U::COPY_SRC);
        let buckets = b_buck.get(d, "gap buckets", p.bucket_len, U::STORAGE | U::COPY_SRC);
        let staging = b_stage.get(d, "gap readback", p.staging_len, U::MAP_READ | U::COPY_DST);
        ctx.queue
            .write_buffer(&uniform, 0, bytemuck::bytes_of(&p.params));
        ctx.queue
            .write_buffer(&phases, 0, bytemuck::cast_slice(&words));
        let bind = ctx.bind_all(
            "gap",
            &pipe.layout,
            &[
                &uniform, &phases, &prefix, &suffix, &carries, &curve, &maxima, &buckets,
            ],
        );
        let mut enc =
            d.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gap") });
        self.encode_passes(&mut enc, pipe, &bind, &p);
        enc.copy_buffer_to_buffer(&maxima, p.results_off, &staging, 0, p.results_len);
        if p.bucket_len > 0 {
            enc.copy_buffer_to_buffer(&buckets, 0, &staging, p.results_len, p.bucket_len);
        }
        for (j, &f) in p.curves.iter().enumerate() {
            enc.copy_buffer_to_buffer(
                &curve,
                (f - p.first) as u64 * p.curve_len,
                &staging,
                p.results_len + p.bucket_len + j as u64 * p.curve_len,
                p.curve_len,
            );
        }
        ctx.queue.submit([enc.finish()]);
        self.next_feature += p.g;
        self.in_flight = Some((p.first, p.g, p.curves));
        Ok(Pending::start(staging, p.staging_len, scopes))
    }

    /// The compute passes of one group: scan, carries, sliding window, maxima, and the min/max
    /// buckets when requested.
    fn encode_passes(
        &self,
        enc: &mut wgpu::CommandEncoder,
        pipe: &GapPipeline,
        bind: &wgpu::BindGroup,
        p: &GroupPlan,
    ) {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("gap"),
            timestamp_writes: None,
        });
        pass.set_bind_group(0, bind, &[]);
        let mut dispatch = |i: usize, (x, y): (u32, u32)| {
            pass.set_pipeline(&pipe.pipelines[i]);
            pass.dispatch_workgroups(x, y, 1);
        };
        let [scan, carry, window, buckets] = p.grids;
        dispatch(0, scan);
        dispatch(1, carry);
        dispatch(2, window);
        dispatch(3, (p.g as u32, 1));
        if self.buckets > 0 {
            dispatch(4, buckets);
        }
    }

    /// Stores the results read back for the group in flight.
    pub fn absorb(&mut self, bytes: &[u8]) {
        let Some((first, g, curves)) = self.in_flight.take() else {
            return;
        };
        let words = u32s(&bytes[..g * 16]);
        for j in 0..g {
            let f = first + j;
            let key = words[4 * j] as u64 | (words[4 * j + 1] as u64) << 32;
            let s = words[4 * j + 2] as u64;
            self.result.max_key[f] = key;
            self.result.gap[f] = key as f64 * self.phases[f].1;
            self.result.worst_position[f] = if key == 0 {
                self.train_len
            } else {
                self.train_len + s
            };
        }
        let mut off = g * 16;
        if let Some(b) = &mut self.result.buckets {
            let n = g * b.count * 8;
            let v = f32s(&bytes[off..off + n]);
            for j in 0..g * b.count {
                b.min[first * b.count + j] = v[2 * j];
                b.max[first * b.count + j] = v[2 * j + 1];
            }
            off += n;
        }
        let n_out = (self.eval_len - self.train_len) as usize;
        for f in curves {
            self.result
                .curves
                .push((f, f32s(&bytes[off..off + n_out * 4])));
            off += n_out * 4;
        }
    }

    /// The finished results (requested curves in the order asked).
    pub fn finish(mut self) -> GpuGap {
        let order = &self.request.curves;
        self.result
            .curves
            .sort_by_key(|(f, _)| order.iter().position(|o| o == f));
        self.result
    }
}

/// Bucket edges: `count + 1` OOD positions splitting `n_out` as evenly as the kernel does.
pub fn bucket_edges(train_len: u64, n_out: u64, count: u32) -> Vec<u64> {
    let c = count as u64;
    if c == 0 {
        return Vec::new();
    }
    let (size, extra) = (n_out / c, n_out % c);
    (0..=c)
        .map(|b| train_len + b * size + b.min(extra))
        .collect()
}
