//! The visualizer: an eframe/egui app (native and web) that shows why a RoPE schedule does or
//! does not generalise to longer contexts, with and without Resonance rounding.
//!
//! `state` is the serializable view (URL hash / storage), `compute` turns configurations into
//! results through a backend, `series` derives plot data, `tabs` (one file per plot tab) and the
//! panels draw. This root keeps the frame loop; beside it, `self_check` (parity against the f64
//! reference) and `page_api` (what the page's JS API reads).
//!
//! Layers, each using only those below it: `state`, `worker` (the training-worker protocol),
//! `model_load`, then `commands` (the queue and the messages it carries), then `platform` (the
//! machine: files, workers, page upkeep), then the panels and tabs, then this root; the entry
//! points `native` and `web` start the app and use everything.

pub mod commands;
pub mod compute;
pub mod controls;
pub mod export;
pub mod gpu_link;
pub mod lm_live;
pub mod lm_view;
pub mod model_load;
pub mod model_panel;
pub mod models;
pub mod page_api;
pub mod platform;
pub mod posgen_panel;
pub mod posgen_run;
pub mod self_check;
pub mod series;
pub mod stacks_view;
pub mod state;
pub mod study_view;
pub mod tabs;
pub mod worker;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
pub mod web;

use crate::gpu::GpuCompute;
use commands::{AppCommand, CommandQueue, CommandSender};
use compute::{Cache, ComputePath, Results};
use egui::{Color32, RichText, Ui};
pub use page_api::Published;
pub use self_check::{GAP_TOLERANCE, SelfCheck, self_check};
use series::Series;
use state::{AppState, Tab};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use web_time::Instant;

/// Seconds of schedule/gap computation per frame, for both sides together (A first, B gets
/// what A leaves); longer computations continue in the next frames (the last good plot stays
/// up), so dragging a slider never stalls a frame.
pub const FRAME_COMPUTE_BUDGET_S: f64 = 0.008;

/// Below this width (points, i.e. CSS pixels on the web) the app uses its narrow layout: the
/// controls fold behind a button, the tabs become a drop-down menu, plots take the full width.
pub const NARROW_WIDTH: f32 = 600.0;

/// Minimum height of buttons and sliders in the narrow layout, so that a finger can hit them.
pub const TOUCH_TARGET: f32 = 36.0;

/// Storage key of the app state (native persistence).
pub const STORAGE_KEY: &str = "resonance-lab-state";

/// Which raster a heatmap texture or self-check was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RasterSource {
    /// The exact CPU raster of the series.
    Cpu,
    /// The WGSL kernel's raster.
    Gpu,
}

/// One side's view (A or B): its results cache and what is derived from the current results,
/// each cached under the results' generation number.
struct SideView {
    cache: Cache,
    /// The last complete results and series, drawn until the next pair is complete.
    shown: Option<(Arc<Results>, Arc<Series>)>,
    /// The series being computed for the cache's latest results.
    job: Option<series::SeriesJob>,
    texture: Option<((u64, RasterSource), egui::TextureHandle)>,
}

impl SideView {
    fn new() -> Self {
        SideView {
            cache: Cache::default(),
            shown: None,
            job: None,
            texture: None,
        }
    }

    /// True while the results or their series are being computed.
    fn busy(&self) -> bool {
        self.cache.busy() || self.job.is_some()
    }

    /// The results and series to draw: the cache's latest results with their series for
    /// `feature` once complete (advanced within `budget_s`), until then the last complete pair.
    fn current(&mut self, feature: usize, budget_s: f64) -> Option<(Arc<Results>, Arc<Series>)> {
        if let Some(r) = self.cache.results().cloned() {
            self.series_of(r, feature, budget_s);
        }
        self.shown.clone()
    }

    /// Advances the series of `feature` for `r`, keyed by (results generation, feature).
    fn series_of(&mut self, r: Arc<Results>, feature: usize, budget_s: f64) {
        let key = (r.generation, feature.min(r.schedule.num_features() - 1));
        if self.shown.as_ref().map(|(r, s)| (r.generation, s.feature)) == Some(key) {
            return;
        }
        if self.job.as_ref().map(series::SeriesJob::key) != Some(key) {
            self.job = Some(series::SeriesJob::new(r.clone(), feature));
        }
        if let Some(job) = &mut self.job
            && let Some(s) = job.advance(budget_s)
        {
            self.shown = Some((r, Arc::new(s)));
            self.job = None;
        }
    }

    /// The heatmap texture: from the GPU raster when one is current, else the CPU raster.
    fn texture(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        s: &Series,
        gpu: Option<&gpu_link::GpuRaster>,
        n: usize,
    ) -> egui::TextureHandle {
        let gpu = gpu.filter(|g| g.key == s.generation);
        let source = gpu.map_or(RasterSource::Cpu, |_| RasterSource::Gpu);
        let key = (s.generation, source);
        match &self.texture {
            Some((k, t)) if *k == key => t.clone(),
            _ => {
                let heat = gpu.map_or(&s.heat[..], |g| &g.heat[..]);
                let img = tabs::heatmap::heatmap_image(heat, s.heat_cols, n);
                let t = ctx.load_texture(name, img, egui::TextureOptions::NEAREST);
                self.texture = Some((key, t.clone()));
                t
            }
        }
    }
}

/// What one frame computed for both sides, handed to the panels that draw it.
struct Frame {
    a: Option<(Arc<Results>, Arc<Series>)>,
    b: Option<(Arc<Results>, Arc<Series>)>,
    rasters: [Option<Arc<gpu_link::GpuRaster>>; 2],
    errors: [Option<crate::rope::ConfigError>; 2],
    busy: bool,
    /// d/2 of A's last good results (before the first, the configured d/2).
    num_features: usize,
    compute_label: String,
}

/// The visualizer app.
pub struct ResonanceApp {
    /// The view state (URL hash / storage).
    pub state: AppState,
    render_backend: String,
    sides: [SideView; 2],
    message: Option<String>,
    screenshot: Arc<Mutex<Option<Arc<egui::ColorImage>>>>,
    frames: u64,
    last_frame_ms: f64,
    /// Show compute and frame times in the status bar (off for reproducible snapshots).
    pub show_timings: bool,
    /// Shared with the page's JS API on the web; read by tests natively.
    pub published: Rc<RefCell<Published>>,
    /// The PosGen tab (live training).
    pub posgen: posgen_panel::PosgenPanel,
    /// The model section (config.json import and the twin's export).
    pub model: model_panel::ModelPanel,
    /// The Stacks tab (the loaded model in transformers, vLLM, llama.cpp and mlx-lm).
    stacks: stacks_view::StacksView,
    /// The Language model tab (the committed real-text studies and a text scored live).
    pub lm: lm_view::LmView,
    /// GPU gaps and feature tables on the renderer's device; `None` on WebGL2 / no device.
    gpu: Option<gpu_link::GpuLink>,
    /// Why there is no GPU compute (WebGL2, no adapter, ...), for the status bar and self-check.
    gpu_unavailable: Option<String>,
    commands: CommandQueue,
    self_check: Option<((u64, RasterSource), SelfCheck)>,
    /// The last frame was narrower than [`NARROW_WIDTH`].
    narrow: bool,
    /// In the narrow layout: the controls are shown instead of the plots.
    pub controls_open: bool,
    /// The status bar's full text is open below its line.
    status_open: bool,
    /// Height of the status bar in the last frame, in points (published for the tests).
    status_height: f32,
}

impl ResonanceApp {
    /// A new app showing `state`; `render_backend` names the renderer (adapter or web API).
    pub fn new(state: AppState, render_backend: impl Into<String>) -> Self {
        let commands = CommandQueue::default();
        ResonanceApp {
            state,
            render_backend: render_backend.into(),
            sides: [SideView::new(), SideView::new()],
            message: None,
            screenshot: Arc::new(Mutex::new(None)),
            frames: 0,
            last_frame_ms: 0.0,
            show_timings: true,
            published: Rc::new(RefCell::new(Published::default())),
            posgen: posgen_panel::PosgenPanel::new(commands.sender()),
            model: model_panel::ModelPanel::default(),
            stacks: stacks_view::StacksView::default(),
            lm: lm_view::LmView::new(commands.sender()),
            gpu: None,
            gpu_unavailable: Some("no GPU compute device was given".into()),
            commands,
            self_check: None,
            narrow: false,
            controls_open: false,
            status_open: false,
            status_height: 0.0,
        }
    }

    /// Builds the app from eframe's creation context: restores storage (native) and names the
    /// wgpu adapter the page or window renders with.
    pub fn from_creation_context(
        cc: &eframe::CreationContext<'_>,
        state: Option<AppState>,
    ) -> Self {
        let state = state
            .or_else(|| cc.storage.and_then(|s| eframe::get_value(s, STORAGE_KEY)))
            .unwrap_or_default();
        let render = cc
            .wgpu_render_state
            .as_ref()
            .map(|rs| render_backend_label(&rs.adapter.get_info()))
            .unwrap_or_else(|| "unknown renderer".into());
        let mut app = ResonanceApp::new(state, render);
        // WebGL2 (and GL natively) has no compute shaders: those keep the CPU path.
        let gpu = match cc.wgpu_render_state.as_ref() {
            None => Err("the renderer is not wgpu".to_string()),
            Some(rs) if rs.adapter.get_info().backend == wgpu::Backend::Gl => {
                Err("the renderer is WebGL2/GL, which has no compute shaders".to_string())
            }
            Some(rs) => {
                let info = rs.adapter.get_info();
                let name = render_backend_label(&info);
                GpuCompute::from_device(rs.device.clone(), rs.queue.clone(), name)
                    .map(|mut g| {
                        g.set_software(info.device_type == wgpu::DeviceType::Cpu);
                        g
                    })
                    .map_err(|e| format!("GPU compute unavailable: {e}"))
            }
        };
        match gpu {
            Ok(g) => app.with_gpu(g),
            Err(reason) => {
                log::warn!("using the CPU path: {reason}");
                app.gpu_unavailable = Some(reason);
                app
            }
        }
    }

    /// Computes the gap and the heatmap tables with `gpu` (the CPU path stays the fallback
    /// and the reference).
    pub fn with_gpu(mut self, gpu: GpuCompute) -> Self {
        self.gpu = Some(gpu_link::GpuLink::new(gpu));
        self.gpu_unavailable = None;
        self
    }

    /// Where the gap is computed now: on the GPU while its link works and the choice allows
    /// it, else on the CPU.
    fn gap_path(&self) -> ComputePath {
        match &self.gpu {
            Some(g) if self.cpu_reason().is_none() => {
                ComputePath::Gpu(g.adapter_name().to_string())
            }
            _ => ComputePath::Cpu,
        }
    }

    /// Why the gap is on the CPU, when it is.
    pub fn cpu_reason(&self) -> Option<String> {
        use state::GapCompute;
        match (&self.gpu, self.state.gap_compute) {
            (None, _) => self.gpu_unavailable.clone(),
            (Some(g), _) if g.failed().is_some() => {
                g.failed().map(|e| format!("the GPU failed: {e}"))
            }
            (Some(_), GapCompute::Cpu) => Some("the CPU was chosen for the gap".into()),
            (Some(g), GapCompute::Auto) if g.is_software() => Some(format!(
                "the {} adapter is a software rasterizer, slower than the CPU path; choose GPU \
                 to use it anyway",
                g.adapter_name()
            )),
            (Some(_), _) => None,
        }
    }

    /// A sender into the app's command queue (the page API uses one; the next frame applies
    /// what it sends).
    pub fn command_sender(&self) -> CommandSender {
        self.commands.sender()
    }

    /// What computes the plots, for the status bar and the page: the gap and the heatmap on
    /// the GPU when it works (the curves and wheel always on the exact CPU path), else all on
    /// the CPU with the reason.
    pub fn compute_label(&self) -> String {
        let cpu = compute::CPU_LABEL;
        let heat_gpu = self.gpu.as_ref().filter(|g| g.failed().is_none());
        match (self.gap_path(), self.cpu_reason(), heat_gpu) {
            (ComputePath::Gpu(a), _, _) => {
                format!("GPU {a} (gap, heatmap) + {cpu} (curves, wheel)")
            }
            (ComputePath::Cpu, why, Some(g)) => format!(
                "GPU {} (heatmap) + {cpu} (gap{}, curves, wheel)",
                g.adapter_name(),
                why.map(|w| format!(": {w}")).unwrap_or_default()
            ),
            (ComputePath::Cpu, Some(why), None) => format!("{cpu} ({why})"),
            (ComputePath::Cpu, None, None) => cpu.to_string(),
        }
    }

    /// True while a computation is still running: either side's time-sliced tables, or the
    /// Language model tab's scoring of a text.
    pub fn busy(&self) -> bool {
        self.sides.iter().any(SideView::busy) || self.lm.live.busy()
    }

    /// Number of computations run for side A and B (cache misses).
    pub fn computations(&self) -> [u64; 2] {
        [
            self.sides[0].cache.computations,
            self.sides[1].cache.computations,
        ]
    }

    /// Last good results of side A (B when `b`).
    pub fn results(&self, b: bool) -> Option<Arc<Results>> {
        self.sides[usize::from(b)].cache.results().cloned()
    }

    /// The parity self-check of side A's raster as of the last frame: the GPU raster against
    /// the f64 reference once the GPU path's table has arrived, else the CPU raster. It only
    /// reads what the frame computed (the check runs when a new raster appears).
    pub fn self_check(&self) -> Option<SelfCheck> {
        self.self_check.as_ref().map(|(_, c)| c.clone())
    }

    /// Draws the whole app into `ui` (also used by tests and the offscreen screenshot). This is
    /// the app's per-frame update: it first applies the queued commands, then advances
    /// computation and training, then draws, then publishes what it drew.
    pub fn draw(&mut self, ui: &mut Ui) {
        let t0 = Instant::now();
        self.frames += 1;
        self.commands.attach(ui.ctx());
        self.take_dropped_files(ui.ctx());
        self.run_commands(ui.ctx());
        self.model.sync(&self.state);
        self.take_screenshot();
        self.posgen.update(ui.ctx());
        self.lm.live.update(ui.ctx());
        let frame = self.compute(ui.ctx());
        self.narrow = ui.available_width() < NARROW_WIDTH;
        self.status_bar(ui, &frame);
        if self.narrow {
            self.narrow_bar(ui, &frame);
            self.narrow_central(ui, &frame);
        } else {
            self.controls_panel(ui, &frame);
            self.central_panel(ui, &frame);
        }
        if let Some((r, _)) = &frame.a {
            // keep the feature in range after d changes
            self.state.feature = self.state.feature.min(r.schedule.num_features() - 1);
        }
        self.update_self_check(&frame);
        let ctx = ui.ctx().clone();
        self.publish(&ctx, &frame);
        self.last_frame_ms = t0.elapsed().as_secs_f64() * 1e3;
    }

    /// Applies every queued command, in order (the only place outside input handling that
    /// changes app state).
    fn run_commands(&mut self, ctx: &egui::Context) {
        for c in self.commands.drain() {
            match c {
                AppCommand::SetState(s) => self.state = *s,
                AppCommand::SetDetail { start, len } => {
                    self.state.detail_start = start;
                    self.state.detail_len = len;
                }
                AppCommand::LoadModel(load) => {
                    let (Ok(m) | Err(m)) = self.model.load(&mut self.state, &load);
                    self.message = Some(m);
                }
                AppCommand::ModelLoadFailed(m) => {
                    self.model.error = Some(m.clone());
                    self.message = Some(m);
                }
                AppCommand::ExportPng => self.request_png(ctx),
                AppCommand::PosgenTrain(args) => {
                    let panel = &mut self.posgen;
                    panel.task = args.task;
                    panel.steps = args.steps.clamp(1, posgen_panel::MAX_STEPS);
                    panel.start();
                    self.state.tab = Tab::PosGen;
                }
                AppCommand::Worker { run, message } => {
                    self.posgen.apply(run, message.into_update());
                }
                AppCommand::LmWorker { run, message } => self.lm.live.apply(run, message),
                AppCommand::LmWeights(bytes) => self.lm.live.weights_arrived(bytes),
                AppCommand::LmText(Ok(text)) => {
                    self.state.tab = Tab::LanguageModel;
                    self.lm.section = lm_view::LmSection::Live;
                    self.lm.live.set_text(text);
                }
                AppCommand::LmText(Err(e)) => self.message = Some(e),
                AppCommand::LmScore(args) => {
                    self.state.tab = Tab::LanguageModel;
                    self.lm.section = lm_view::LmSection::Live;
                    if let Err(e) = self.lm.live.score_args(args.text, args.length) {
                        self.message = Some(e);
                    }
                }
                AppCommand::StudyText { index, text } => self.posgen.study_loaded(index, text),
                AppCommand::SetStackView { context, twin } => {
                    self.state.stack_context = context;
                    self.state.stack_twin = twin;
                }
            }
        }
    }

    /// Advances both sides' computations and the GPU tables by one frame's budget.
    fn compute(&mut self, ctx: &egui::Context) -> Frame {
        let compute_label = self.compute_label();
        let path = self.gap_path();
        let st = &self.state;
        let [sa, sb] = &mut self.sides;
        let t0 = Instant::now();
        sa.cache.update(&path, &st.a, FRAME_COMPUTE_BUDGET_S);
        if st.compare {
            // every job advances by at least one feature, so B progresses even after A used up
            // the frame's budget
            let left = FRAME_COMPUTE_BUDGET_S - t0.elapsed().as_secs_f64();
            sb.cache.update(&path, &st.b, left.max(0.0));
        }
        self.gap_on_gpu();
        let st = &self.state;
        let [sa, sb] = &mut self.sides;
        let left = || (FRAME_COMPUTE_BUDGET_S - t0.elapsed().as_secs_f64()).max(0.0);
        let a = sa.current(st.feature, left());
        let b = if st.compare {
            sb.current(st.feature, left())
        } else {
            None
        };
        let busy = sa.busy() || sb.busy();
        if busy {
            ctx.request_repaint();
        }
        let mut rasters: [Option<Arc<gpu_link::GpuRaster>>; 2] = [None, None];
        if let Some(g) = &mut self.gpu {
            g.poll();
            for (i, side) in [&a, &b].into_iter().enumerate() {
                if let Some((r, s)) = side {
                    g.request(i, r.generation, &r.schedule, s);
                    rasters[i] = g.raster(i, r.generation);
                }
            }
            if g.busy() {
                ctx.request_repaint();
            }
        }
        let num_features = a
            .as_ref()
            .map(|(r, _)| r.schedule.num_features())
            .unwrap_or((st.a.dim / 2).max(1));
        Frame {
            errors: [sa.cache.error().cloned(), sb.cache.error().cloned()],
            a,
            b,
            rasters,
            busy,
            num_features,
            compute_label,
        }
    }

    /// Where the data of the plot on screen (side A) was computed, for the status bar.
    fn plot_source(&self, f: &Frame) -> Option<String> {
        let (r, _) = f.a.as_ref()?;
        let raster_on_gpu = f.rasters[0].as_ref().is_some_and(|g| g.key == r.generation);
        let gpu = self
            .gpu
            .as_ref()
            .filter(|_| raster_on_gpu)
            .map(|g| format!("GPU {}", g.adapter_name()));
        let sources = tabs::Sources {
            gap: &r.gap_backend,
            raster_gpu: gpu.as_deref(),
        };
        tabs::plot_tab(self.state.tab).map(|t| t.source(&sources))
    }

    /// Requests the gap of every computation waiting for the GPU, polls the GPU, and hands
    /// arrived gaps to their caches (a GPU failure turns them into CPU computations next frame).
    fn gap_on_gpu(&mut self) {
        let Some(g) = &mut self.gpu else { return };
        for (i, side) in self.sides.iter().enumerate() {
            if let Some(p) = side.cache.gpu_pending() {
                g.request_gap(i, p.generation, &p.schedule, &p.twin);
            }
        }
        g.poll();
        for (i, side) in self.sides.iter_mut().enumerate() {
            let key = side.cache.gpu_pending().map(|p| p.generation);
            if let Some(key) = key
                && let Some(pair) = g.gap(i, key)
            {
                side.cache
                    .complete_gpu(key, &pair.gap, &pair.twin, g.adapter_name());
            }
        }
    }

    /// The status bar's one line (backend, what computed the plot on screen, the model,
    /// timings, the last message) and the full text behind it (every reason and detail), shown
    /// on hover and, after a click or tap on the line, below it.
    fn status_text(&self, f: &Frame) -> (String, String) {
        let mut line = vec![self.render_backend.clone(), self.compute_summary()];
        let mut full = vec![
            format!("render: {}", self.render_backend),
            format!("compute: {}", f.compute_label),
        ];
        if let Some(src) = self.plot_source(f) {
            line.push(format!("this plot: {}", short_source(&src)));
            full.push(format!("this plot: {src}"));
        }
        if let Some(m) = model_panel::status(&self.model, &self.state) {
            line.push(m.clone());
            full.push(m);
        }
        if f.busy {
            line.push("computing".into());
            full.push("computing (the plots show the last finished result)".into());
        }
        if self.show_timings {
            let ms = f.a.as_ref().map(|(r, _)| r.compute_ms).unwrap_or(0.0);
            let t = format!("compute {ms:.1} ms · frame {:.1} ms", self.last_frame_ms);
            line.push(t.clone());
            full.push(t);
        }
        if let Some(m) = &self.message {
            line.push(m.clone());
            full.push(m.clone());
        }
        (line.join(" · "), full.join("\n"))
    }

    /// The detail window of the feature-value or gap tab as drawn for A (published for
    /// scripts); the curves come from the tabs' cache, so this evaluates nothing new.
    fn detail_status(&self, ctx: &egui::Context, f: &Frame) -> Option<page_api::DetailStatus> {
        let (r, s) = f.a.as_ref()?;
        if !matches!(self.state.tab, Tab::FeatureCurve | Tab::Gap) {
            return None;
        }
        let i = s.feature;
        let window = compute::detail_window(
            &r.schedule,
            i,
            self.state.detail_start,
            self.state.detail_len,
        );
        let curve = tabs::feature_curve::detail_curve(ctx, "A", r, (i, false), window);
        let gap_max = (self.state.tab == Tab::Gap).then(|| {
            tabs::gap::detail_gap_curve(ctx, "A", r, (i, false), window)
                .iter()
                .map(|q| q[1])
                .fold(0.0, f64::max)
        });
        Some(page_api::DetailStatus {
            start: window.0,
            len: window.1,
            feature: i,
            theta: f64::from(r.schedule.inv_freq[i]),
            zero_crossings: compute::zero_crossings(&curve),
            gap_max,
        })
    }

    /// What computes the plots, without the reasons (those are in [`Self::compute_label`]).
    fn compute_summary(&self) -> String {
        let heat_gpu = self.gpu.as_ref().filter(|g| g.failed().is_none());
        match (self.gap_path(), heat_gpu) {
            (ComputePath::Gpu(a), _) => format!("compute: GPU {a} + CPU"),
            (ComputePath::Cpu, Some(g)) => {
                format!("compute: GPU {} (heatmap) + CPU", g.adapter_name())
            }
            (ComputePath::Cpu, None) => "compute: CPU".into(),
        }
    }

    /// One line, truncated to the window's width; hovering shows the full text, a click or tap
    /// opens it below the line, and another click or tap on either closes it.
    fn status_bar(&mut self, ui: &mut Ui, f: &Frame) {
        let (line, full) = self.status_text(f);
        let r = egui::Panel::bottom("status").show(ui, |ui| {
            let mut clicked = false;
            ui.horizontal(|ui| {
                if f.busy {
                    ui.spinner();
                }
                let label = egui::Label::new(&line)
                    .truncate()
                    .sense(egui::Sense::click());
                let r = ui.add(label).on_hover_text(&full);
                clicked = r.clicked();
            });
            if self.status_open {
                let open = ui.add(egui::Label::new(&full).sense(egui::Sense::click()));
                clicked |= open.clicked();
            }
            clicked
        });
        if r.inner {
            self.status_open = !self.status_open;
        }
        self.status_height = r.response.rect.height();
    }

    fn controls_panel(&mut self, ui: &mut Ui, f: &Frame) {
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(320.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.controls(ui, f));
            });
    }

    /// The controls (side panel, or the narrow layout's controls page): the model section,
    /// then the schedule controls.
    fn controls(&mut self, ui: &mut Ui, f: &Frame) {
        let sender = self.commands.sender();
        if model_panel::ui(ui, &mut self.model, &self.state, &sender)
            == model_panel::PanelAction::Export
        {
            self.message = Some(
                match self.model.export(&self.state).and_then(|(name, bytes)| {
                    platform::save_file(&name, "application/json", &bytes)
                }) {
                    Ok(m) => m,
                    Err(e) => format!("export failed: {e}"),
                },
            );
        }
        ui.separator();
        let errors = [f.errors[0].as_ref(), f.errors[1].as_ref()];
        controls::side_panel(ui, &mut self.state, errors, f.num_features);
        // only where there is a GPU to choose (elsewhere the choice would change nothing)
        if self.gpu.is_some() {
            ui.separator();
            ui.horizontal(|ui| {
                ui.label("gap computed on:");
                for g in state::GapCompute::ALL {
                    ui.selectable_value(&mut self.state.gap_compute, g, g.label())
                        .on_hover_text(match g {
                            state::GapCompute::Auto => {
                                "the GPU, unless it is a software rasterizer (then the CPU is faster)"
                            }
                            state::GapCompute::Gpu => "the WGSL gap kernels on the renderer's GPU",
                            state::GapCompute::Cpu => "the exact CPU path, time-sliced",
                        });
                }
            });
        }
    }

    /// Files dropped on the window (or page) are read as model configs; while files hover, a
    /// hint says what dropping does.
    fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let (dropped, hovering) =
            ctx.input(|i| (i.raw.dropped_files.clone(), !i.raw.hovered_files.is_empty()));
        let lm = self.state.tab == Tab::LanguageModel;
        let make = if lm {
            AppCommand::from_dropped_text
        } else {
            AppCommand::from_dropped_file
        };
        for file in dropped {
            platform::read_dropped(file, make, self.commands.sender());
        }
        if hovering {
            let screen = ctx.content_rect();
            let painter = ctx.layer_painter(egui::LayerId::new(
                egui::Order::Foreground,
                egui::Id::unique("drop-hint"),
            ));
            painter.rect_filled(screen, 0.0, Color32::from_black_alpha(160));
            painter.text(
                screen.center(),
                egui::Align2::CENTER_CENTER,
                if lm {
                    "Drop a text file: the model scores it with RoPE, YaRN and Resonance YaRN"
                } else {
                    "Drop a config.json: A becomes the model, B its Resonance twin"
                },
                egui::FontId::proportional(20.0),
                Color32::WHITE,
            );
        }
    }

    /// The narrow layout's top bar: the controls button, the tab menu and the exports, all
    /// touch-sized.
    fn narrow_bar(&mut self, ui: &mut Ui, f: &Frame) {
        egui::Panel::top("narrow-bar").show(ui, |ui| {
            ui.spacing_mut().interact_size.y = TOUCH_TARGET;
            ui.horizontal_wrapped(|ui| {
                let label = if self.controls_open {
                    "Close controls"
                } else {
                    "Controls"
                };
                if ui
                    .add(egui::Button::new(label).min_size(egui::vec2(0.0, TOUCH_TARGET)))
                    .clicked()
                {
                    self.controls_open = !self.controls_open;
                }
                let tab = &mut self.state.tab;
                egui::ComboBox::from_label("plot")
                    .selected_text(tab.label())
                    .height(f32::INFINITY)
                    .show_ui(ui, |ui| {
                        ui.spacing_mut().interact_size.y = TOUCH_TARGET;
                        for t in Tab::ALL {
                            let b = egui::Button::selectable(*tab == t, t.label())
                                .min_size(egui::vec2(160.0, TOUCH_TARGET));
                            if ui.add(b).clicked() {
                                *tab = t;
                                // choosing a plot shows it
                                self.controls_open = false;
                            }
                        }
                    });
                self.export_buttons(ui, f);
            });
        });
    }

    /// The narrow layout's main area: the controls when opened, else the plot, full width.
    fn narrow_central(&mut self, ui: &mut Ui, f: &Frame) {
        egui::CentralPanel::default().show(ui, |ui| {
            if self.controls_open {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    ui.spacing_mut().interact_size.y = TOUCH_TARGET;
                    ui.spacing_mut().slider_width = (ui.available_width() - 150.0).max(80.0);
                    self.controls(ui, f);
                });
                return;
            }
            self.probe_slider(ui);
            self.plots(ui, f);
        });
    }

    /// The pair-layout tab's position slider (shared by A and B).
    fn probe_slider(&mut self, ui: &mut Ui) {
        if self.state.tab == Tab::Pairs {
            let max = self.state.a.eval_len.max(1);
            ui.add(
                egui::Slider::new(&mut self.state.probe_position, 0..=max)
                    .logarithmic(true)
                    .text("position p of the rotated vector"),
            );
        }
    }

    fn central_panel(&mut self, ui: &mut Ui, f: &Frame) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                for t in Tab::ALL {
                    ui.selectable_value(&mut self.state.tab, t, t.label());
                }
                ui.separator();
                self.export_buttons(ui, f);
            });
            ui.separator();
            self.probe_slider(ui);
            self.plots(ui, f);
        });
    }

    /// The plot area: the PosGen tab, or the selected plot of A (and of B beside it, or below
    /// it in the narrow layout).
    fn plots(&mut self, ui: &mut Ui, f: &Frame) {
        let tx = self.commands.sender();
        let st = &self.state;
        let [sa, sb] = &mut self.sides;
        match (&f.a, st.compare) {
            _ if st.tab == Tab::PosGen => self.posgen.ui(ui),
            _ if st.tab == Tab::LanguageModel => {
                self.lm.live.show_timings = self.show_timings;
                self.lm.ui(ui);
            }
            _ if st.tab == Tab::Stacks => {
                let edited = self.model.edited(st);
                self.stacks
                    .ui(ui, self.model.loaded.as_ref(), edited, st, &tx);
            }
            (None, _) => no_plot(ui, "A", f.errors[0].as_ref(), sa.busy()),
            (Some(a), false) => draw_tab(ui, st, "A", a, sa, &f.rasters[0], &tx),
            (Some(a), true) if self.narrow => {
                let size = egui::vec2(ui.available_width(), ui.available_height() / 2.0 - 16.0);
                ui.label(RichText::new("A").strong());
                ui.allocate_ui(size, |ui| draw_tab(ui, st, "A", a, sa, &f.rasters[0], &tx));
                ui.label(RichText::new("B").strong());
                match &f.b {
                    Some(b) => {
                        ui.allocate_ui(size, |ui| draw_tab(ui, st, "B", b, sb, &f.rasters[1], &tx));
                    }
                    None => no_plot(ui, "B", f.errors[1].as_ref(), sb.busy()),
                }
            }
            (Some(a), true) => ui.columns(2, |cols| {
                cols[0].label(RichText::new("A").strong());
                draw_tab(&mut cols[0], st, "A", a, sa, &f.rasters[0], &tx);
                cols[1].label(RichText::new("B").strong());
                match &f.b {
                    Some(b) => draw_tab(&mut cols[1], st, "B", b, sb, &f.rasters[1], &tx),
                    None => no_plot(&mut cols[1], "B", f.errors[1].as_ref(), sb.busy()),
                }
            }),
        }
    }

    fn export_buttons(&mut self, ui: &mut Ui, f: &Frame) {
        if ui
            .button("Export CSV")
            .on_hover_text("this plot's data")
            .clicked()
        {
            self.message = Some(match self.state.tab {
                Tab::LanguageModel => self.lm.export_csv(),
                _ => export_csv(&self.state, f.a.as_ref(), f.b.as_ref()),
            });
        }
        if ui
            .button("Export PNG")
            .on_hover_text("the whole view")
            .clicked()
        {
            self.request_png(ui.ctx());
        }
    }

    /// Asks the renderer for a screenshot; a later frame encodes and saves it as PNG.
    fn request_png(&self, ctx: &egui::Context) {
        let slot = self.screenshot.clone();
        let wake = ctx.clone();
        ctx.request_screenshot(move |img| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(img);
            }
            wake.request_repaint();
        });
    }

    /// Re-runs the self-check when side A's raster changed (new results, or the GPU table
    /// arrived).
    fn update_self_check(&mut self, f: &Frame) {
        let Some((r, s)) = &f.a else { return };
        let gpu = self.gpu.as_ref().filter(|g| g.failed().is_none());
        let raster = f.rasters[0].as_ref().filter(|g| g.key == r.generation);
        let source = match (gpu, raster) {
            (Some(_), Some(_)) => RasterSource::Gpu,
            // the GPU path is on but its table has not arrived: nothing to check yet
            (Some(_), None) => return,
            (None, _) => RasterSource::Cpu,
        };
        let key = (r.generation, source);
        if self.self_check.as_ref().is_some_and(|(k, _)| *k == key) {
            return;
        }
        let check = match (gpu, raster) {
            (Some(g), Some(raster)) => {
                let label = format!("GPU {}", g.adapter_name());
                self_check(&label, &raster.heat, 2e-6, r, s)
            }
            _ => self_check(compute::CPU_LABEL, &s.heat, 1e-6, r, s),
        };
        let check = SelfCheck {
            gap_cpu_reason: self.cpu_reason(),
            ..check.with_gap(r, s)
        };
        self.self_check = Some((key, check));
    }

    fn publish(&self, ctx: &egui::Context, f: &Frame) {
        let mut p = self.published.borrow_mut();
        p.state_json = serde_json::to_string(&self.state).unwrap_or_default();
        p.hash = self.state.to_hash();
        p.render_backend = self.render_backend.clone();
        p.compute_backend = f.compute_label.clone();
        p.plot_source = self.plot_source(f);
        p.frames = self.frames;
        p.compute_ms = f.a.as_ref().map(|(r, _)| r.compute_ms).unwrap_or(0.0);
        p.frame_ms = self.last_frame_ms;
        p.error = f.errors[0].as_ref().map(controls::ui_error);
        p.message = self.message.clone();
        p.layout = if self.narrow { "narrow" } else { "wide" };
        p.side_panel_open = !self.narrow || self.controls_open;
        p.self_check = self.self_check();
        p.posgen = self.posgen.status();
        p.model_error = self.model.error.clone();
        p.model_status = model_panel::status(&self.model, &self.state);
        p.status_height = self.status_height;
        p.detail = self.detail_status(ctx, f);
        p.stacks = (self.state.tab == Tab::Stacks)
            .then(|| self.stacks.status())
            .flatten();
        p.lm = (self.state.tab == Tab::LanguageModel).then(|| self.lm.status());
    }

    fn take_screenshot(&mut self) {
        let img = self.screenshot.lock().ok().and_then(|mut s| s.take());
        if let Some(img) = img {
            let saved = export::encode_color_image(&img)
                .and_then(|bytes| platform::save_file("resonance-lab.png", "image/png", &bytes));
            self.message = Some(match saved {
                Ok(m) => m,
                Err(e) => format!("PNG export failed: {e}"),
            });
        }
    }
}

/// What a side shows before it has its first results: that they are computing, or why its
/// configuration is invalid.
fn no_plot(ui: &mut Ui, side: &str, error: Option<&crate::rope::ConfigError>, busy: bool) {
    match error {
        Some(e) => {
            ui.colored_label(
                Color32::RED,
                format!("configuration {side} is invalid: {}", controls::ui_error(e)),
            );
        }
        None if busy => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("computing configuration {side}..."));
            });
        }
        None => {
            ui.label(format!("configuration {side} has no results yet"));
        }
    }
}

/// Draws the plot of `st.tab` for one side (`salt` keeps A's and B's plot ids apart).
fn draw_tab(
    ui: &mut Ui,
    st: &AppState,
    salt: &str,
    (r, s): &(Arc<Results>, Arc<Series>),
    side: &mut SideView,
    gpu: &Option<Arc<gpu_link::GpuRaster>>,
    commands: &CommandSender,
) {
    // the PosGen tab is drawn full width by `ResonanceApp::plots`, never per side
    let Some(tab) = tabs::plot_tab(st.tab) else {
        return;
    };
    let texture = tab.needs_texture().then(|| {
        let ctx = ui.ctx().clone();
        let n = r.schedule.num_features();
        side.texture(&ctx, &format!("heatmap-{salt}"), s, gpu.as_deref(), n)
    });
    let input = tabs::TabInput {
        results: r,
        series: s,
        state: st,
        salt,
        texture: texture.as_ref(),
        compare: st.compare,
        color: if salt == "B" {
            tabs::TWIN_COLOR
        } else {
            tabs::CONFIG_COLOR
        },
        commands,
    };
    tab.draw(ui, &input);
}

/// A plot source without its parenthesised reasons: `CPU (gap ...: why)` -> `CPU`.
fn short_source(src: &str) -> &str {
    src.split(" (").next().unwrap_or(src)
}

/// Saves the CSV files of the plot on screen (each side's); returns the status message.
fn export_csv(
    st: &AppState,
    a: Option<&(Arc<Results>, Arc<Series>)>,
    b: Option<&(Arc<Results>, Arc<Series>)>,
) -> String {
    let Some(tab) = tabs::plot_tab(st.tab) else {
        return match st.tab {
            Tab::Stacks => "the Stacks tab has no CSV: `resonance-lab audit FILE` prints its \
                            audit as JSON"
                .into(),
            _ => "use the PosGen panel's own Export CSV".into(),
        };
    };
    let mut out = Vec::new();
    for (name, side) in [("A", a), ("B", b)] {
        let Some((r, s)) = side else { continue };
        for (what, csv) in tab.csv(r, s, st) {
            let file = format!("resonance-lab-{what}-{name}.csv");
            out.push(
                match platform::save_file(&file, "text/csv", csv.as_bytes()) {
                    Ok(m) => m,
                    Err(e) => format!("CSV export failed: {e}"),
                },
            );
        }
    }
    out.join("; ")
}

/// A short name of a wgpu adapter for the status bar: "WebGPU", "WebGL2" or the native name.
pub fn render_backend_label(info: &wgpu::AdapterInfo) -> String {
    match info.backend {
        wgpu::Backend::BrowserWebGpu => "WebGPU".into(),
        wgpu::Backend::Gl if cfg!(target_arch = "wasm32") => "WebGL2".into(),
        b => format!("{} ({b:?})", info.name),
    }
}

impl eframe::App for ResonanceApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
        platform::after_frame(&self.published.borrow(), self.frames, ui.ctx());
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, &self.state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rope::ScheduleConfig;
    use compute::compute_now;

    /// The series and texture caches are keyed by the results' generation number: a series of
    /// another config written into the very same memory still gets its own texture (a cache
    /// keyed by address would serve the old config's here), and results of another config get
    /// their own series.
    #[test]
    fn caches_never_serve_another_configs_result_at_a_reused_address() {
        let a = ScheduleConfig::default();
        let b = ScheduleConfig {
            base: 500.0,
            ..a.clone()
        };
        let mut view = SideView::new();
        let ctx = egui::Context::default();
        let (ra, rb) = (Arc::new(compute_now(&a)), Arc::new(compute_now(&b)));
        view.series_of(ra.clone(), 20, f64::INFINITY);
        let sa = view.shown.clone().unwrap().1;
        view.series_of(rb.clone(), 20, f64::INFINITY);
        let sb = view.shown.clone().unwrap().1;
        assert_eq!(sb.curve, Series::new(&rb, 20).curve);
        assert_ne!(
            sb.curve, sa.curve,
            "feature 20 differs between b=1e4 and b=500"
        );
        // the same results and feature are served from the cache
        view.series_of(rb.clone(), 20, f64::INFINITY);
        assert!(Arc::ptr_eq(&view.shown.clone().unwrap().1, &sb));
        let mut slot = Box::new((*sa).clone());
        let addr: *const Series = &*slot;
        let ta = view.texture(&ctx, "heat", &slot, None, 32);
        *slot = (*sb).clone();
        assert_eq!(
            &*slot as *const Series, addr,
            "same address, another config"
        );
        let tb = view.texture(&ctx, "heat", &slot, None, 32);
        assert_ne!(ta.id(), tb.id(), "a new texture for the new results");
        assert_eq!(view.texture(&ctx, "heat", &slot, None, 32).id(), tb.id());
    }

    /// With no budget the series arrives one piece per call, the last complete pair stays on
    /// screen meanwhile, and the result equals the one-shot series.
    #[test]
    fn series_are_time_sliced_and_the_last_pair_stays_up() {
        let a = ScheduleConfig::default();
        let mut view = SideView::new();
        let ra = Arc::new(compute_now(&a));
        view.series_of(ra.clone(), 3, f64::INFINITY);
        let rb = Arc::new(compute_now(&ScheduleConfig { scale: 2.0, ..a }));
        let mut calls = 0;
        while view.shown.as_ref().unwrap().0.generation != rb.generation {
            assert_eq!(view.shown.as_ref().unwrap().0.generation, ra.generation);
            view.series_of(rb.clone(), 3, 0.0);
            calls += 1;
        }
        assert_eq!(calls, 4, "one O(L') piece per call");
        assert!(view.job.is_none());
        let s = &view.shown.as_ref().unwrap().1;
        assert_eq!(s.gap_curve, Series::new(&rb, 3).gap_curve);
        assert_eq!(s.curve, Series::new(&rb, 3).curve);
    }
}
