//! Feature-table pipeline: cos/sin of every feature at many positions from exact phases
//! (`shaders/features.wgsl`), chunked by rows to respect the device's buffer limits.

use super::context::{GpuContext, GpuError};
use super::readback::{Pending, Reusable, Scopes};
use crate::rope::{PairLayout, Phase, Schedule};

/// WGSL source of the feature-table kernel (shared helpers first).
pub const SHADER: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/features.wgsl")
);

/// Largest output buffer (cos + sin) of one chunk, whatever the device allows.
const MAX_CHUNK_BYTES: u64 = 64 << 20;

/// The positions of a feature table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Positions {
    /// Explicit positions (uploaded chunk by chunk).
    List(Vec<u32>),
    /// `start, start + stride, ...` (`count` positions), generated on the GPU: nothing uploaded.
    Range {
        /// First position.
        start: u32,
        /// Number of positions.
        count: u32,
        /// Step between positions.
        stride: u32,
    },
}

impl Positions {
    /// Explicit positions from u64 values; each must be in `0..=u32::MAX`.
    pub fn from_u64(list: &[u64]) -> Result<Positions, GpuError> {
        list.iter()
            .map(|&p| {
                u32::try_from(p).map_err(|_| {
                    GpuError::InvalidRequest(format!("position {p} is out of range 0..=4294967295"))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Positions::List)
    }

    /// Number of positions.
    pub fn len(&self) -> usize {
        match self {
            Positions::List(v) => v.len(),
            Positions::Range { count, .. } => *count as usize,
        }
    }

    /// True when there are no positions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The position of row `r`.
    pub fn get(&self, r: usize) -> u64 {
        match self {
            Positions::List(v) => v[r] as u64,
            Positions::Range { start, stride, .. } => *start as u64 + r as u64 * *stride as u64,
        }
    }

    fn validate(&self) -> Result<(), GpuError> {
        if let Positions::Range {
            start,
            count,
            stride,
        } = *self
            && count > 0
        {
            let last = start as u64 + (count as u64 - 1) * stride as u64;
            if last > u32::MAX as u64 {
                return Err(GpuError::InvalidRequest(format!(
                    "range ends at {last}, beyond the largest position 4294967295"
                )));
            }
        }
        Ok(())
    }
}

/// How each row of a table is laid out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TableLayout {
    /// d/2 values per row, one per feature (what plots and the CLI use).
    #[default]
    PerFeature,
    /// d values per row, each feature's value at both coordinates it rotates in this pair
    /// layout (ready to multiply a q/k vector: `x * cos + rotate(x) * sin`).
    Expanded(PairLayout),
}

impl TableLayout {
    fn code(self) -> u32 {
        match self {
            TableLayout::PerFeature => 0,
            TableLayout::Expanded(PairLayout::HalfSplit) => 1,
            TableLayout::Expanded(PairLayout::Interleaved) => 2,
        }
    }

    /// Values per row for `num_features` features.
    pub fn width(self, num_features: usize) -> usize {
        match self {
            TableLayout::PerFeature => num_features,
            TableLayout::Expanded(_) => 2 * num_features,
        }
    }
}

/// A cos/sin table computed on the GPU (f32, attention factor applied).
#[derive(Clone, Debug, PartialEq)]
pub struct GpuFeatureTable {
    /// The positions, one per row.
    pub positions: Positions,
    /// Features of the schedule (d/2).
    pub num_features: usize,
    /// Row layout.
    pub layout: TableLayout,
    /// cos values, `positions.len() * layout.width(num_features)`, row-major.
    pub cos: Vec<f32>,
    /// sin values, same shape.
    pub sin: Vec<f32>,
}

impl GpuFeatureTable {
    /// Values per row.
    pub fn width(&self) -> usize {
        self.layout.width(self.num_features)
    }

    /// The cos row of position index `r`.
    pub fn cos_row(&self, r: usize) -> &[f32] {
        let w = self.width();
        &self.cos[r * w..(r + 1) * w]
    }

    /// The sin row of position index `r`.
    pub fn sin_row(&self, r: usize) -> &[f32] {
        let w = self.width();
        &self.sin[r * w..(r + 1) * w]
    }
}

/// Per-feature kernel parameters `(lambda, alpha_lo, alpha_hi, 0)`: `r = p mod lambda`
/// (lambda = 0: no reduction), phase `r * alpha mod 2^64` in 0.64 fixed-point turns.
pub fn phase_words(phase: &Phase) -> [u32; 4] {
    let (lambda, alpha) = match *phase {
        Phase::Integer { lambda } => {
            // round(2^64 / lambda); wraps to 0 for lambda = 1, where r is always 0
            let a = ((1u128 << 64) + lambda as u128 / 2) / lambda as u128;
            let l = if lambda <= u32::MAX as u64 {
                lambda as u32
            } else {
                0 // positions are < 2^32 <= lambda: p mod lambda = p
            };
            (l, a as u64)
        }
        Phase::Fixed { alpha } => (0, alpha),
    };
    [lambda, alpha as u32, (alpha >> 32) as u32, 0]
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FeatureParams {
    rows: u32,
    num_features: u32,
    list: u32,
    range_start: u32,
    range_stride: u32,
    row_offset: u32,
    layout: u32,
    attention: f32,
}

/// The compiled kernel plus buffers kept between calls.
pub struct FeaturePipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    uniform: Reusable,
    phases: Reusable,
    positions: Reusable,
    table: Reusable,
    staging: Reusable,
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// Builds the bind-group layout, pipeline layout and one compute pipeline per entry point.
pub(crate) fn build_pipelines(
    device: &wgpu::Device,
    label: &str,
    source: &str,
    entries: &[wgpu::BindGroupLayoutEntry],
    entry_points: &[&str],
) -> (wgpu::BindGroupLayout, Vec<wgpu::ComputePipeline>) {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries,
    });
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(&bgl)],
        immediate_size: 0,
    });
    let pipelines = entry_points
        .iter()
        .map(|ep| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(ep),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(ep),
                compilation_options: Default::default(),
                cache: None,
            })
        })
        .collect();
    (bgl, pipelines)
}

pub(crate) fn storage_entries(
    uniform: u32,
    read_only: &[u32],
    read_write: &[u32],
) -> Vec<wgpu::BindGroupLayoutEntry> {
    let mut v = vec![uniform_entry(uniform)];
    v.extend(read_only.iter().map(|&b| storage_entry(b, true)));
    v.extend(read_write.iter().map(|&b| storage_entry(b, false)));
    v
}

impl FeaturePipeline {
    /// Drops the kept buffers (after an error, when one may still be mapped or in use).
    pub fn reset_buffers(&mut self) {
        for b in [
            &mut self.uniform,
            &mut self.phases,
            &mut self.positions,
            &mut self.table,
            &mut self.staging,
        ] {
            b.forget();
        }
    }

    /// Compiles the kernel on `device`.
    pub fn new(device: &wgpu::Device) -> FeaturePipeline {
        let entries = storage_entries(0, &[1, 2], &[3]);
        let (layout, mut p) = build_pipelines(
            device,
            "feature table",
            SHADER,
            &entries,
            &["feature_table"],
        );
        FeaturePipeline {
            pipeline: p.remove(0),
            layout,
            uniform: Reusable::default(),
            phases: Reusable::default(),
            positions: Reusable::default(),
            table: Reusable::default(),
            staging: Reusable::default(),
        }
    }
}

/// A feature-table request in progress: chunks of rows are computed and read back in turn.
pub struct FeatureJob {
    phases: Vec<[u32; 4]>,
    attention: f32,
    positions: Positions,
    layout: TableLayout,
    rows_per_chunk: usize,
    next_row: usize,
    in_flight_rows: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl FeatureJob {
    /// Validates the request against the device limits and plans the chunks.
    pub fn new(
        ctx: &GpuContext,
        schedule: &Schedule,
        positions: Positions,
        layout: TableLayout,
    ) -> Result<FeatureJob, GpuError> {
        positions.validate()?;
        let nf = schedule.num_features();
        let width = layout.width(nf);
        let row_bytes = 2 * width as u64 * 4;
        let max = ctx.max_binding(MAX_CHUNK_BYTES);
        let rows_per_chunk = (max / row_bytes) as usize;
        if rows_per_chunk == 0 {
            return Err(GpuError::Limits(format!(
                "one row of {width} cos/sin values needs {row_bytes} bytes; the device binds at most {max}"
            )));
        }
        let total = positions.len() * width;
        Ok(FeatureJob {
            phases: schedule.phases.iter().map(phase_words).collect(),
            attention: schedule.attention_factor as f32,
            positions,
            layout,
            rows_per_chunk,
            next_row: 0,
            in_flight_rows: 0,
            cos: Vec::with_capacity(total),
            sin: Vec::with_capacity(total),
        })
    }

    /// Rows per chunk chosen for this device.
    pub fn rows_per_chunk(&self) -> usize {
        self.rows_per_chunk
    }

    /// True when every row has been read back.
    pub fn is_complete(&self) -> bool {
        self.next_row >= self.positions.len() && self.in_flight_rows == 0
    }

    /// The kernel parameters of the chunk of `rows` rows starting at the next row.
    fn params(&self, rows: usize) -> FeatureParams {
        let (list, start, stride) = match &self.positions {
            Positions::List(_) => (1, 0, 0),
            Positions::Range { start, stride, .. } => (0, *start, *stride),
        };
        FeatureParams {
            rows: rows as u32,
            num_features: self.phases.len() as u32,
            list,
            range_start: start,
            range_stride: stride,
            row_offset: self.next_row as u32,
            layout: self.layout.code(),
            attention: self.attention,
        }
    }

    /// Encodes and submits the next chunk; its results arrive through the returned [`Pending`].
    pub fn submit_next(
        &mut self,
        ctx: &GpuContext,
        pipe: &mut FeaturePipeline,
    ) -> Result<Pending, GpuError> {
        ctx.check_lost()?;
        let rows = self
            .rows_per_chunk
            .min(self.positions.len() - self.next_row);
        let nf = self.phases.len();
        let width = self.layout.width(nf);
        let out_bytes = (2 * rows * width * 4) as u64;
        let invocations = (rows * nf) as u64;
        let (gx, gy) = ctx.grid(invocations)?;
        let params = self.params(rows);
        let scopes = Scopes::push(&ctx.device);
        let d = &ctx.device;
        use wgpu::BufferUsages as U;
        let uniform = pipe
            .uniform
            .get(d, "feature params", 32, U::UNIFORM | U::COPY_DST);
        let phases = pipe.phases.get(
            d,
            "feature phases",
            (nf * 16) as u64,
            U::STORAGE | U::COPY_DST,
        );
        let pos_bytes = match &self.positions {
            Positions::List(_) => (rows * 4) as u64,
            Positions::Range { .. } => 4,
        };
        let positions =
            pipe.positions
                .get(d, "feature positions", pos_bytes, U::STORAGE | U::COPY_DST);
        let table = pipe
            .table
            .get(d, "feature table", out_bytes, U::STORAGE | U::COPY_SRC);
        let staging = pipe
            .staging
            .get(d, "feature readback", out_bytes, U::MAP_READ | U::COPY_DST);
        ctx.queue
            .write_buffer(&uniform, 0, bytemuck::bytes_of(&params));
        ctx.queue
            .write_buffer(&phases, 0, bytemuck::cast_slice(&self.phases));
        if let Positions::List(v) = &self.positions {
            ctx.queue.write_buffer(
                &positions,
                0,
                bytemuck::cast_slice(&v[self.next_row..self.next_row + rows]),
            );
        }
        let bind = ctx.bind_all(
            "feature table",
            &pipe.layout,
            &[&uniform, &phases, &positions, &table],
        );
        let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("feature table"),
        });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("feature table"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipe.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        enc.copy_buffer_to_buffer(&table, 0, &staging, 0, out_bytes);
        ctx.queue.submit([enc.finish()]);
        self.next_row += rows;
        self.in_flight_rows = rows;
        Ok(Pending::start(staging, out_bytes, scopes))
    }

    /// Appends the bytes read back for the chunk in flight.
    pub fn absorb(&mut self, bytes: &[u8]) {
        let values = super::readback::f32s(bytes);
        let half = values.len() / 2;
        self.cos.extend_from_slice(&values[..half]);
        self.sin.extend_from_slice(&values[half..]);
        self.in_flight_rows = 0;
    }

    /// The finished table.
    pub fn finish(self) -> GpuFeatureTable {
        GpuFeatureTable {
            num_features: self.phases.len(),
            positions: self.positions,
            layout: self.layout,
            cos: self.cos,
            sin: self.sin,
        }
    }
}
