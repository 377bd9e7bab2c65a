//! The app's GPU compute link: the heatmap raster of each side comes from the WGSL feature-table
//! kernel on eframe's own wgpu device, requested asynchronously and polled every frame so a
//! frame never waits for the GPU. Until a table arrives (and for good after a GPU error) the
//! exact CPU raster is shown; the reason for a fallback is kept for the status bar.

use super::series::Series;
use crate::gpu::{GpuCompute, GpuOutput, Positions, TableLayout, Ticket};
use crate::rope::Schedule;
use std::sync::Arc;

/// A heatmap raster computed on the GPU: cos(angle) per (feature, column), feature-major like
/// [`Series::heat`], attention factor divided out.
#[derive(Clone, Debug)]
pub struct GpuRaster {
    /// [`super::compute::Results::generation`] of the results the raster belongs to.
    pub key: u64,
    /// `num_features * cols` values.
    pub heat: Vec<f32>,
}

/// Feature tables for the two sides, requested from the GPU and polled without blocking.
pub struct GpuHeat {
    gpu: GpuCompute,
    pending: [Option<(u64, Ticket, f64)>; 2],
    raster: [Option<Arc<GpuRaster>>; 2],
    failed: Option<String>,
}

impl GpuHeat {
    /// Wraps a compute context (the app builds it on eframe's device).
    pub fn new(gpu: GpuCompute) -> Self {
        GpuHeat {
            gpu,
            pending: [None, None],
            raster: [None, None],
            failed: None,
        }
    }

    /// Adapter name of the device.
    pub fn adapter_name(&self) -> &str {
        self.gpu.adapter_name()
    }

    /// Why the GPU path stopped, if it did (the app then uses the CPU raster only).
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// True while a request is in flight.
    pub fn busy(&self) -> bool {
        self.failed.is_none() && self.pending.iter().any(Option::is_some)
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

    /// Advances the GPU work; returns true when a new raster arrived.
    pub fn poll(&mut self) -> bool {
        let mut arrived = false;
        while self.failed.is_none()
            && let Some((ticket, out)) = self.gpu.poll()
        {
            let Some(side) = (0..2).find(|&s| self.pending[s].is_some_and(|p| p.1 == ticket))
            else {
                continue;
            };
            let (key, _, af) = self.pending[side].take().expect("found above");
            match out {
                Ok(GpuOutput::Features(t)) => {
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
                Ok(GpuOutput::Gap(_)) => {}
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
        self.failed = Some(reason);
    }
}
