//! The app's GPU compute link, on eframe's own wgpu device: the interpolation gap of each side
//! (gap per feature of the config and its twin, and min/max buckets of every feature's gap
//! curve) from the WGSL gap kernels, and the heatmap raster from the feature-table kernel. Work
//! is requested asynchronously and polled every frame, so a frame never waits for the GPU.
//! After a GPU error the app falls back to the exact CPU path for good; the reason is kept for
//! the status bar and the self-check.

use super::series::{BUCKETS, Series};
use crate::gpu::{GapRequest, GpuCompute, GpuGap, GpuOutput, Positions, TableLayout, Ticket};
use crate::rope::Schedule;
use std::sync::Arc;

/// The gap of one side's results computed on the GPU: the config's and its twin's.
#[derive(Clone, Debug)]
pub struct GpuGapPair {
    /// [`super::compute::Results::generation`] the gaps belong to.
    pub key: u64,
    /// The configuration's gap (per feature, worst positions, curve buckets).
    pub gap: GpuGap,
    /// The twin's.
    pub twin: GpuGap,
}

/// A gap request in flight: its results' generation, the two tickets and what has arrived.
struct PendingGap {
    key: u64,
    tickets: [Ticket; 2],
    arrived: [Option<GpuGap>; 2],
}

/// A heatmap raster computed on the GPU: cos(angle) per (feature, column), feature-major like
/// [`Series::heat`], attention factor divided out.
#[derive(Clone, Debug)]
pub struct GpuRaster {
    /// [`super::compute::Results::generation`] of the results the raster belongs to.
    pub key: u64,
    /// `num_features * cols` values.
    pub heat: Vec<f32>,
}

/// Gaps and feature tables for the two sides, requested from the GPU and polled without
/// blocking.
pub struct GpuLink {
    gpu: GpuCompute,
    pending: [Option<(u64, Ticket, f64)>; 2],
    raster: [Option<Arc<GpuRaster>>; 2],
    pending_gap: [Option<PendingGap>; 2],
    gap: [Option<Arc<GpuGapPair>>; 2],
    failed: Option<String>,
}

impl GpuLink {
    /// Wraps a compute context (the app builds it on eframe's device).
    pub fn new(gpu: GpuCompute) -> Self {
        GpuLink {
            gpu,
            pending: [None, None],
            raster: [None, None],
            pending_gap: [None, None],
            gap: [None, None],
            failed: None,
        }
    }

    /// Adapter name of the device.
    pub fn adapter_name(&self) -> &str {
        self.gpu.adapter_name()
    }

    /// Whether the adapter is a software rasterizer (slower than the CPU path for the gap).
    pub fn is_software(&self) -> bool {
        self.gpu.is_software()
    }

    /// Why the GPU path stopped, if it did (the app then uses the CPU raster only).
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// True while a request is in flight.
    pub fn busy(&self) -> bool {
        self.failed.is_none()
            && (self.pending.iter().any(Option::is_some)
                || self.pending_gap.iter().any(Option::is_some))
    }

    /// Makes sure side `side` has (or is computing) the gap of `schedule` and its `twin` for
    /// the results of generation `key`; a request for older results of that side is cancelled
    /// (the latest slider value wins).
    pub fn request_gap(&mut self, side: usize, key: u64, schedule: &Schedule, twin: &Schedule) {
        if self.failed.is_some() || self.gap[side].as_ref().is_some_and(|g| g.key == key) {
            return;
        }
        match &self.pending_gap[side] {
            Some(p) if p.key == key => return,
            Some(p) => {
                for t in p.tickets {
                    self.gpu.cancel(t);
                }
            }
            None => {}
        }
        self.pending_gap[side] = None;
        let n_out = schedule.config.eval_len - schedule.config.train_len;
        let request = GapRequest {
            buckets: (BUCKETS as u64).min(n_out) as u32,
            curves: Vec::new(),
        };
        let submitted = self
            .gpu
            .submit_gap(schedule, request.clone())
            .and_then(|a| Ok([a, self.gpu.submit_gap(twin, request)?]));
        match submitted {
            Ok(tickets) => {
                self.pending_gap[side] = Some(PendingGap {
                    key,
                    tickets,
                    arrived: [None, None],
                });
            }
            Err(e) => self.fail(e.to_string()),
        }
    }

    /// The GPU gap of `side` if it belongs to the results of generation `key`.
    pub fn gap(&self, side: usize, key: u64) -> Option<Arc<GpuGapPair>> {
        if self.failed.is_some() {
            return None;
        }
        self.gap[side].clone().filter(|g| g.key == key)
    }

    /// Files a gap that arrived for `ticket` (the config's or the twin's of one side).
    fn absorb_gap(&mut self, ticket: Ticket, gap: GpuGap) -> bool {
        for side in 0..2 {
            let Some(p) = &mut self.pending_gap[side] else {
                continue;
            };
            let Some(k) = p.tickets.iter().position(|&t| t == ticket) else {
                continue;
            };
            p.arrived[k] = Some(gap);
            if let [Some(_), Some(_)] = &p.arrived
                && let Some(PendingGap {
                    key,
                    arrived: [Some(gap), Some(twin)],
                    ..
                }) = self.pending_gap[side].take()
            {
                self.gap[side] = Some(Arc::new(GpuGapPair { key, gap, twin }));
                return true;
            }
            return false;
        }
        false
    }

    /// Makes sure side `side` has (or is computing) the table for the results of generation
    /// `key` (its heatmap positions are those of `series`); a request for older results of that
    /// side is cancelled (the latest slider value wins).
    pub fn request(&mut self, side: usize, key: u64, schedule: &Schedule, series: &Series) {
        if self.failed.is_some() || self.raster[side].as_ref().is_some_and(|r| r.key == key) {
            return;
        }
        match self.pending[side] {
            Some((k, _, _)) if k == key => return,
            Some((_, t, _)) => self.gpu.cancel(t),
            None => {}
        }
        self.pending[side] = None;
        let submitted = Positions::from_u64(&series.heat_positions).and_then(|p| {
            self.gpu
                .submit_features(schedule, p, TableLayout::PerFeature)
        });
        match submitted {
            Ok(t) => self.pending[side] = Some((key, t, schedule.attention_factor)),
            Err(e) => self.fail(e.to_string()),
        }
    }

    /// Advances the GPU work; returns true when a new raster or gap arrived.
    pub fn poll(&mut self) -> bool {
        let mut arrived = false;
        while self.failed.is_none()
            && let Some((ticket, out)) = self.gpu.poll()
        {
            match out {
                Ok(GpuOutput::Features(t)) => {
                    let Some(side) =
                        (0..2).find(|&s| self.pending[s].is_some_and(|p| p.1 == ticket))
                    else {
                        continue;
                    };
                    let Some((key, _, af)) = self.pending[side].take() else {
                        continue;
                    };
                    let (rows, n) = (t.positions.len(), t.num_features);
                    let mut heat = vec![0f32; rows * n];
                    for r in 0..rows {
                        for (f, v) in t.cos_row(r).iter().enumerate() {
                            heat[f * rows + r] = (*v as f64 / af) as f32;
                        }
                    }
                    self.raster[side] = Some(Arc::new(GpuRaster { key, heat }));
                    arrived = true;
                }
                Ok(GpuOutput::Gap(g)) => arrived |= self.absorb_gap(ticket, g),
                Err(e) => self.fail(e.to_string()),
            }
        }
        arrived
    }

    /// The GPU raster of `side` if it belongs to the results of generation `key`.
    pub fn raster(&self, side: usize, key: u64) -> Option<Arc<GpuRaster>> {
        if self.failed.is_some() {
            return None;
        }
        self.raster[side].clone().filter(|r| r.key == key)
    }

    fn fail(&mut self, reason: String) {
        log::warn!("GPU compute disabled, using the CPU path: {reason}");
        self.gpu.cancel_all();
        self.pending = [None, None];
        self.raster = [None, None];
        self.pending_gap = [None, None];
        self.gap = [None, None];
        self.failed = Some(reason);
    }
}
