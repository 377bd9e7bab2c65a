//! GPU compute (wgpu + WGSL, native and WebGPU): RoPE feature tables and interpolation gaps,
//! exact at any position, checked against the f64 CPU path of [`crate::rope`].
//!
//! # Exactness
//! WGSL has no f64 and its `sin`/`cos` are only specified to 2^-11, so the kernels never form
//! `p * theta` in floating point. A feature's phase is exact integer arithmetic: `p mod lambda`
//! for integer wavelengths (Resonance), or `p * alpha mod 2^64` with alpha (turns per token) as
//! a 64-bit fraction in two u32 words, multiplied with 16-bit limbs (`shaders/common.wgsl`).
//! The quadrant comes from the top bits; only a remainder of at most 1/8 turn is converted to
//! f32 and fed to a minimax polynomial. Gap keys `||k alpha||` are the CPU's exact integers, so
//! the gap per feature is bit-identical to [`crate::rope::gap_analysis`].
//!
//! # App-facing API
//! ```ignore
//! // once, in the eframe creation context (share egui's device):
//! let rs = cc.wgpu_render_state.as_ref().unwrap();
//! let mut gpu = GpuCompute::from_device(
//!     rs.device.clone(), rs.queue.clone(), rs.adapter.get_info().name)?;
//! // when a control changes (latest wins: cancel what is queued):
//! gpu.cancel_all();
//! let t_gap = gpu.submit_gap(&schedule, GapRequest { buckets: 800, curves: vec![] })?;
//! let t_tab = gpu.submit_features(&schedule, Positions::Range { start: 0, count: 4096, stride: 1 },
//!                                 TableLayout::PerFeature)?;
//! // every frame, never blocking (on the web results arrive through map_async callbacks):
//! while let Some((ticket, result)) = gpu.poll() {
//!     match result {
//!         Ok(GpuOutput::Gap(g)) => { /* g.gap, g.worst_position, g.buckets (min/max per pixel) */ }
//!         Ok(GpuOutput::Features(t)) => { /* t.cos, t.sin (f32, attention factor applied) */ }
//!         Err(e) => { /* fall back to the CPU path and show e in the status bar */ }
//!     }
//! }
//! if gpu.is_busy() { ctx.request_repaint(); }
//! ```
//! Work is split into chunks that respect `max_storage_buffer_binding_size`,
//! `max_buffer_size` and `max_compute_workgroups_per_dimension`; each `poll` advances at most
//! one chunk, so a frame never waits for the GPU. Errors (no adapter, device lost, out of
//! memory, validation, limits) are a [`GpuError`]; the CLI and tests use the blocking wrappers
//! ([`GpuCompute::features_blocking`], [`GpuCompute::gap_blocking`], native only).

pub mod context;
pub mod features;
pub mod gap;
pub mod readback;

pub use context::{GpuContext, GpuError};
pub use features::{GpuFeatureTable, Positions, TableLayout};
pub use gap::{GapBuckets, GapRequest, GpuGap};

use crate::rope::Schedule;
use features::{FeatureJob, FeaturePipeline};
use gap::{GapJob, GapPipeline};
use readback::Pending;
use std::collections::VecDeque;

/// Identifies one submitted request; [`GpuCompute::poll`] returns it with the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// The result of a request.
#[derive(Clone, Debug, PartialEq)]
pub enum GpuOutput {
    /// A cos/sin table.
    Features(GpuFeatureTable),
    /// Gap per feature, worst positions, and optional curves / buckets.
    Gap(GpuGap),
}

enum GpuJob {
    Features(FeatureJob),
    Gap(GapJob),
}

impl GpuJob {
    fn is_complete(&self) -> bool {
        match self {
            GpuJob::Features(j) => j.is_complete(),
            GpuJob::Gap(j) => j.is_complete(),
        }
    }

    fn absorb(&mut self, bytes: &[u8]) {
        match self {
            GpuJob::Features(j) => j.absorb(bytes),
            GpuJob::Gap(j) => j.absorb(bytes),
        }
    }

    fn finish(self) -> GpuOutput {
        match self {
            GpuJob::Features(j) => GpuOutput::Features(j.finish()),
            GpuJob::Gap(j) => GpuOutput::Gap(j.finish()),
        }
    }
}

struct Active {
    ticket: Ticket,
    job: GpuJob,
    pending: Option<Pending>,
    canceled: bool,
}

/// Feature-table and gap pipelines on one device, built once, with buffers reused across calls
/// and a queue of requests advanced by [`GpuCompute::poll`].
pub struct GpuCompute {
    ctx: GpuContext,
    features: FeaturePipeline,
    gap: GapPipeline,
    queue: VecDeque<(Ticket, GpuJob)>,
    active: Option<Active>,
    done: VecDeque<(Ticket, Result<GpuOutput, GpuError>)>,
    next_ticket: u64,
}

impl GpuCompute {
    /// Builds the pipelines on an existing context.
    pub fn new(ctx: GpuContext) -> Result<GpuCompute, GpuError> {
        let (features, gap) =
            readback::scoped(&ctx, |d| (FeaturePipeline::new(d), GapPipeline::new(d)))?;
        Ok(GpuCompute {
            ctx,
            features,
            gap,
            queue: VecDeque::new(),
            active: None,
            done: VecDeque::new(),
            next_ticket: 0,
        })
    }

    /// Shares a device someone else owns (the app passes eframe's device, queue and adapter
    /// name).
    pub fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter_name: String,
    ) -> Result<GpuCompute, GpuError> {
        GpuCompute::new(GpuContext::from_device(device, queue, adapter_name))
    }

    /// Acquires a headless device of its own (see [`GpuContext::new_headless`]).
    pub async fn new_headless() -> Result<GpuCompute, GpuError> {
        GpuCompute::new(GpuContext::new_headless().await?)
    }

    /// Blocking [`GpuCompute::new_headless`] for the CLI and tests (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_headless_blocking() -> Result<GpuCompute, GpuError> {
        GpuCompute::new(GpuContext::new_headless_blocking()?)
    }

    /// The device context.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The adapter name (what the CLI reports as `backend`).
    pub fn adapter_name(&self) -> &str {
        &self.ctx.adapter_name
    }

    /// Whether the adapter is a software rasterizer on the CPU (see [`GpuContext::software`]).
    pub fn is_software(&self) -> bool {
        self.ctx.software
    }

    /// Marks the adapter as a software rasterizer (or not), for devices made by someone else
    /// ([`GpuCompute::from_device`] cannot tell).
    pub fn set_software(&mut self, software: bool) {
        self.ctx.software = software;
    }

    fn enqueue(&mut self, job: GpuJob) -> Ticket {
        let t = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.queue.push_back((t, job));
        self.pump();
        t
    }

    /// Queues a cos/sin table of `schedule` at `positions`. Fails at once for invalid requests
    /// (positions beyond 2^32-1, rows larger than a binding) or a lost device.
    pub fn submit_features(
        &mut self,
        schedule: &Schedule,
        positions: Positions,
        layout: TableLayout,
    ) -> Result<Ticket, GpuError> {
        self.ctx.check_lost()?;
        let job = FeatureJob::new(&self.ctx, schedule, positions, layout)?;
        Ok(self.enqueue(GpuJob::Features(job)))
    }

    /// Queues the gap analysis of `schedule` (gap per feature plus what `request` asks for).
    pub fn submit_gap(
        &mut self,
        schedule: &Schedule,
        request: GapRequest,
    ) -> Result<Ticket, GpuError> {
        self.ctx.check_lost()?;
        let job = GapJob::new(&self.ctx, schedule, request)?;
        Ok(self.enqueue(GpuJob::Gap(job)))
    }

    /// Drops a queued request; a request whose chunk is on the GPU finishes that chunk and is
    /// then discarded. Its ticket is never returned by [`GpuCompute::poll`].
    pub fn cancel(&mut self, ticket: Ticket) {
        self.queue.retain(|(t, _)| *t != ticket);
        self.done.retain(|(t, _)| *t != ticket);
        if let Some(a) = &mut self.active
            && a.ticket == ticket
        {
            a.canceled = true;
        }
    }

    /// Cancels every request (the latest control value supersedes them).
    pub fn cancel_all(&mut self) {
        let tickets: Vec<Ticket> = self
            .queue
            .iter()
            .map(|(t, _)| *t)
            .chain(self.active.as_ref().map(|a| a.ticket))
            .chain(self.done.iter().map(|(t, _)| *t))
            .collect();
        for t in tickets {
            self.cancel(t);
        }
    }

    /// True while any request is queued, on the GPU, or finished but not yet polled.
    pub fn is_busy(&self) -> bool {
        self.active.is_some() || !self.queue.is_empty() || !self.done.is_empty()
    }

    /// Non-blocking: advances the work (at most one chunk is submitted per call) and returns a
    /// finished request, if any. Call it every frame until it returns `None`.
    pub fn poll(&mut self) -> Option<(Ticket, Result<GpuOutput, GpuError>)> {
        // native: runs map callbacks that are due; web: a no-op (the browser runs them)
        let _ = self.ctx.device.poll(wgpu::PollType::Poll);
        self.pump();
        self.done.pop_front()
    }

    fn fail(&mut self, ticket: Ticket, canceled: bool, e: GpuError) {
        self.features.reset_buffers();
        self.gap.reset_buffers();
        if !canceled {
            self.done.push_back((ticket, Err(e)));
        }
    }

    /// Advances the active request as far as possible without waiting.
    fn pump(&mut self) {
        loop {
            if self.active.is_none() {
                let Some((ticket, job)) = self.queue.pop_front() else {
                    return;
                };
                self.active = Some(Active {
                    ticket,
                    job,
                    pending: None,
                    canceled: false,
                });
            }
            let mut a = self.active.take().expect("set above");
            if let Some(p) = &mut a.pending {
                match p.try_take(&self.ctx) {
                    Ok(None) => {
                        self.active = Some(a);
                        return;
                    }
                    Ok(Some(bytes)) => {
                        a.pending = None;
                        a.job.absorb(&bytes);
                    }
                    Err(e) => {
                        self.fail(a.ticket, a.canceled, e);
                        continue;
                    }
                }
            }
            if a.canceled {
                continue;
            }
            if a.job.is_complete() {
                self.done.push_back((a.ticket, Ok(a.job.finish())));
                continue;
            }
            let submitted = match &mut a.job {
                GpuJob::Features(j) => j.submit_next(&self.ctx, &mut self.features),
                GpuJob::Gap(j) => j.submit_next(&self.ctx, &mut self.gap),
            };
            match submitted {
                Ok(p) => {
                    a.pending = Some(p);
                    self.active = Some(a);
                    return;
                }
                Err(e) => self.fail(a.ticket, false, e),
            }
        }
    }

    /// Blocks until `ticket` has finished (native only); other finished requests stay queued
    /// for [`GpuCompute::poll`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait(&mut self, ticket: Ticket) -> Result<GpuOutput, GpuError> {
        loop {
            self.pump();
            if let Some(i) = self.done.iter().position(|(t, _)| *t == ticket) {
                return self.done.remove(i).expect("index found above").1;
            }
            let known = self.active.as_ref().is_some_and(|a| a.ticket == ticket)
                || self.queue.iter().any(|(t, _)| *t == ticket);
            if !known {
                return Err(GpuError::InvalidRequest(format!(
                    "ticket {} is not pending (canceled or already returned)",
                    ticket.0
                )));
            }
            if let Err(e) = self.ctx.device.poll(wgpu::PollType::wait_indefinitely()) {
                self.ctx.check_lost()?;
                return Err(GpuError::DeviceLost(e.to_string()));
            }
        }
    }

    /// Computes a cos/sin table and waits for it (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn features_blocking(
        &mut self,
        schedule: &Schedule,
        positions: Positions,
        layout: TableLayout,
    ) -> Result<GpuFeatureTable, GpuError> {
        let t = self.submit_features(schedule, positions, layout)?;
        match self.wait(t)? {
            GpuOutput::Features(table) => Ok(table),
            GpuOutput::Gap(_) => unreachable!("a feature ticket yields a feature table"),
        }
    }

    /// Computes the gap analysis and waits for it (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn gap_blocking(
        &mut self,
        schedule: &Schedule,
        request: GapRequest,
    ) -> Result<GpuGap, GpuError> {
        let t = self.submit_gap(schedule, request)?;
        match self.wait(t)? {
            GpuOutput::Gap(g) => Ok(g),
            GpuOutput::Features(_) => unreachable!("a gap ticket yields a gap result"),
        }
    }
}
