//! The visualizer: an eframe/egui app (native and web) that shows why a RoPE schedule does or
//! does not generalise to longer contexts, with and without Resonance rounding.
//!
//! `state` is the serializable view (URL hash / storage), `compute` turns configurations into
//! results through a backend, `series` derives plot data, `plots` and `controls` draw. Platform
//! glue lives in `native` and `web` only.

pub mod compute;
pub mod controls;
pub mod gpu_heat;
pub mod plots;
pub mod png;
pub mod posgen_panel;
pub mod posgen_run;
pub mod series;
pub mod state;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(not(target_arch = "wasm32"))]
use native as platform;
#[cfg(target_arch = "wasm32")]
use web as platform;

use crate::gpu::GpuCompute;
use compute::{Backend, Cache, Results};
use egui::{Color32, RichText, Ui};
use serde::Serialize;
use series::Series;
use state::{AppState, Tab};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use web_time::Instant;

/// Seconds of schedule/gap computation per frame and side; longer computations continue in the
/// next frames (the last good plot stays up), so dragging a slider never stalls a frame.
pub const FRAME_COMPUTE_BUDGET_S: f64 = 0.008;

/// Storage key of the app state (native persistence).
pub const STORAGE_KEY: &str = "resonance-lab-state";

/// What the app publishes every frame for the page (JS API) and for tests.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Published {
    /// The app state as JSON.
    pub state_json: String,
    /// The app state in URL-hash form.
    pub hash: String,
    /// Rendering backend, e.g. "WebGPU" or "WebGL2".
    pub render_backend: String,
    /// Compute backend label.
    pub compute_backend: String,
    /// Frames drawn so far.
    pub frames: u64,
    /// Milliseconds of the last computation.
    pub compute_ms: f64,
    /// Milliseconds the previous frame spent in the app's `draw` (CPU; excludes rendering).
    pub frame_ms: f64,
    /// The current validation error, if any.
    pub error: Option<String>,
}

/// Result of the parity self-check: the compute backend against the f64 reference.
#[derive(Clone, Debug, Serialize)]
pub struct SelfCheck {
    /// Which backend was checked.
    pub backend: String,
    /// What it was compared against.
    pub reference: String,
    /// Values compared.
    pub values: usize,
    /// Largest absolute difference.
    pub max_abs_err: f64,
    /// Whether `max_abs_err` is within tolerance (1e-6 for the CPU raster, which is stored as
    /// f32; 2e-6 for the GPU kernel).
    pub ok: bool,
}

/// Compares a heatmap raster the app draws (`heat`, feature-major like [`Series::heat`], from
/// `backend`) with `rope::reference::cos_sin` (the independent f64 reference) at every sampled
/// position; `tol` is the allowed error of cos before the attention factor.
pub fn self_check(backend: &str, heat: &[f32], tol: f64, r: &Results, s: &Series) -> SelfCheck {
    let n = r.schedule.num_features();
    let af = r.schedule.attention_factor;
    let mut max_err = 0f64;
    let mut values = 0;
    for (c, &p) in s.heat_positions.iter().enumerate() {
        let (cos, _) = crate::rope::reference::cos_sin(&r.schedule, p);
        for (f, want) in cos.iter().enumerate().take(n) {
            let got = heat[f * s.heat_cols + c] as f64 * af;
            max_err = max_err.max((got - want).abs());
            values += 1;
        }
    }
    let tol = tol * af.max(1.0);
    SelfCheck {
        backend: backend.to_string(),
        reference: "rope::reference::cos_sin (f64)".into(),
        values,
        max_abs_err: max_err,
        ok: max_err <= tol && values > 0,
    }
}

struct Side {
    cache: Cache,
    series: Option<(usize, usize, Arc<Series>)>,
    texture: Option<(usize, egui::TextureHandle)>,
}

impl Side {
    fn new() -> Self {
        Side {
            cache: Cache::default(),
            series: None,
            texture: None,
        }
    }

    /// Brings results and series up to date; returns (results, series) of the last good config.
    fn update(
        &mut self,
        backend: &Backend,
        cfg: &crate::rope::ScheduleConfig,
        feature: usize,
    ) -> Option<(Arc<Results>, Arc<Series>)> {
        self.cache.update(backend, cfg, FRAME_COMPUTE_BUDGET_S);
        let r = self.cache.results()?.clone();
        let key = Arc::as_ptr(&r) as usize;
        let fresh = matches!(&self.series, Some((k, f, _)) if *k == key && *f == feature);
        if !fresh {
            self.series = Some((key, feature, Arc::new(Series::new(&r, feature))));
        }
        let s = self.series.as_ref().map(|(_, _, s)| s.clone())?;
        Some((r, s))
    }

    /// The heatmap texture: from the GPU raster when one is current, else the CPU raster.
    fn texture(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        s: &Arc<Series>,
        gpu: Option<&gpu_heat::GpuRaster>,
        n: usize,
    ) -> egui::TextureHandle {
        let key = gpu.map_or(Arc::as_ptr(s) as usize, |g| g as *const _ as usize);
        match &self.texture {
            Some((k, t)) if *k == key => t.clone(),
            _ => {
                let heat = gpu.map_or(&s.heat[..], |g| &g.heat[..]);
                let img = plots::heatmap_image(heat, s.heat_cols, n);
                let t = ctx.load_texture(name, img, egui::TextureOptions::NEAREST);
                self.texture = Some((key, t.clone()));
                t
            }
        }
    }
}

/// The visualizer app.
pub struct ResonanceApp {
    /// The view state (URL hash / storage).
    pub state: AppState,
    backend: Backend,
    render_backend: String,
    sides: [Side; 2],
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
    /// GPU feature tables (heatmap) on the renderer's device; `None` on WebGL2 / no device.
    gpu: Option<gpu_heat::GpuHeat>,
}

impl ResonanceApp {
    /// A new app showing `state`; `render_backend` names the renderer (adapter or web API).
    pub fn new(state: AppState, render_backend: impl Into<String>) -> Self {
        ResonanceApp {
            state,
            backend: Backend::Cpu,
            render_backend: render_backend.into(),
            sides: [Side::new(), Side::new()],
            message: None,
            screenshot: Arc::new(Mutex::new(None)),
            frames: 0,
            last_frame_ms: 0.0,
            show_timings: true,
            published: Rc::new(RefCell::new(Published::default())),
            posgen: posgen_panel::PosgenPanel::default(),
            gpu: None,
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
        let app = ResonanceApp::new(state, render);
        // WebGL2 (and GL natively) has no compute shaders: those keep the CPU path.
        let gpu = cc.wgpu_render_state.as_ref().and_then(|rs| {
            let info = rs.adapter.get_info();
            if info.backend == wgpu::Backend::Gl {
                return None;
            }
            let name = render_backend_label(&info);
            match GpuCompute::from_device(rs.device.clone(), rs.queue.clone(), name) {
                Ok(g) => Some(g),
                Err(e) => {
                    log::warn!("GPU compute unavailable, using the CPU path: {e}");
                    None
                }
            }
        });
        match gpu {
            Some(g) => app.with_gpu(g),
            None => app,
        }
    }

    /// Computes heatmap tables with `gpu` (the CPU raster stays the fallback and reference).
    pub fn with_gpu(mut self, gpu: GpuCompute) -> Self {
        self.gpu = Some(gpu_heat::GpuHeat::new(gpu));
        self
    }

    /// What computes the plots, for the status bar and the page.
    pub fn compute_label(&self) -> String {
        match &self.gpu {
            Some(g) if g.failed().is_none() => {
                format!("GPU {} (feature tables) + CPU f64", g.adapter_name())
            }
            Some(g) => format!(
                "{} (GPU failed: {})",
                self.backend.label(),
                g.failed().unwrap_or_default()
            ),
            None => self.backend.label().to_string(),
        }
    }

    /// True while a time-sliced computation is still running for either side.
    pub fn busy(&self) -> bool {
        self.sides.iter().any(|s| s.cache.busy())
    }

    /// The compute backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
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

    /// Runs the parity self-check on side A's current results: the GPU raster against the f64
    /// reference when the GPU path is active (`None` until its table has arrived), else the
    /// CPU raster.
    pub fn self_check(&mut self) -> Option<SelfCheck> {
        let (r, s) = self.sides[0].update(&self.backend, &self.state.a, self.state.feature)?;
        match &self.gpu {
            Some(g) if g.failed().is_none() => {
                let raster = g.raster(0, Arc::as_ptr(&s) as usize)?;
                let label = format!("GPU {}", g.adapter_name());
                Some(self_check(&label, &raster.heat, 2e-6, &r, &s))
            }
            _ => Some(self_check(self.backend.label(), &s.heat, 1e-6, &r, &s)),
        }
    }

    /// Draws the whole app into `ui` (also used by tests and the offscreen screenshot).
    pub fn draw(&mut self, ui: &mut Ui) {
        let t0 = Instant::now();
        self.frames += 1;
        self.take_screenshot();
        let compute_label = self.compute_label();
        let st = &mut self.state;
        let [sa, sb] = &mut self.sides;
        let ra = sa.update(&self.backend, &st.a, st.feature);
        let rb = if st.compare {
            sb.update(&self.backend, &st.b, st.feature)
        } else {
            None
        };
        let errors = [sa.cache.error().cloned(), sb.cache.error().cloned()];
        let busy = sa.cache.busy() || sb.cache.busy();
        if busy {
            ui.ctx().request_repaint();
        }
        let mut rasters: [Option<Arc<gpu_heat::GpuRaster>>; 2] = [None, None];
        if let Some(g) = &mut self.gpu {
            g.poll();
            for (i, side) in [&ra, &rb].into_iter().enumerate() {
                if let Some((r, s)) = side {
                    let key = Arc::as_ptr(s) as usize;
                    g.request(i, key, &r.schedule, s);
                    rasters[i] = g.raster(i, key);
                }
            }
            if g.busy() {
                ui.ctx().request_repaint();
            }
        }
        // before the first result, the configured d/2 (the feature slider must not clamp to 0)
        let nf = ra
            .as_ref()
            .map(|(r, _)| r.schedule.num_features())
            .unwrap_or((st.a.dim / 2).max(1));

        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.label(format!("render: {}", self.render_backend));
                ui.separator();
                ui.label(format!("compute: {compute_label}"));
                ui.separator();
                if busy {
                    ui.spinner();
                    ui.label("computing (the plots show the last finished result)");
                    ui.separator();
                }
                if self.show_timings {
                    let ms = ra.as_ref().map(|(r, _)| r.compute_ms).unwrap_or(0.0);
                    ui.label(format!("compute {ms:.1} ms"));
                    ui.separator();
                    ui.label(format!("frame {:.1} ms", self.last_frame_ms));
                }
                if let Some(m) = &self.message {
                    ui.separator();
                    ui.label(m);
                }
            });
        });
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(320.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    controls::side_panel(ui, st, [errors[0].as_ref(), errors[1].as_ref()], nf);
                });
            });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                for t in Tab::ALL {
                    ui.selectable_value(&mut st.tab, t, t.label());
                }
                ui.separator();
                if ui
                    .button("Export CSV")
                    .on_hover_text("this plot's data")
                    .clicked()
                {
                    self.message = Some(export_csv(st.tab, ra.as_ref(), rb.as_ref()));
                }
                if ui
                    .button("Export PNG")
                    .on_hover_text("the whole view")
                    .clicked()
                {
                    let slot = self.screenshot.clone();
                    let ctx = ui.ctx().clone();
                    ui.ctx().request_screenshot(move |img| {
                        *slot.lock().expect("screenshot slot") = Some(img);
                        ctx.request_repaint();
                    });
                }
            });
            ui.separator();
            match (&ra, st.compare) {
                _ if st.tab == Tab::PosGen => self.posgen.ui(ui),
                (None, _) => {
                    ui.label("no valid configuration yet");
                }
                (Some(a), false) => draw_tab(ui, st.tab, "A", a, sa, &rasters[0], nf),
                (Some(a), true) => {
                    ui.columns(2, |cols| {
                        cols[0].label(RichText::new("A").strong());
                        draw_tab(&mut cols[0], st.tab, "A", a, sa, &rasters[0], nf);
                        cols[1].label(RichText::new("B").strong());
                        match &rb {
                            Some(b) => {
                                let nb = b.0.schedule.num_features();
                                draw_tab(&mut cols[1], st.tab, "B", b, sb, &rasters[1], nb)
                            }
                            None => {
                                cols[1].colored_label(Color32::RED, "no valid configuration B yet");
                            }
                        }
                    });
                }
            }
        });
        if let Some((r, s)) = &ra {
            // keep the feature in range after d changes
            self.state.feature = self.state.feature.min(r.schedule.num_features() - 1);
            let _ = s;
        }
        let mut p = self.published.borrow_mut();
        p.state_json = serde_json::to_string(&self.state).expect("state serializes");
        p.hash = self.state.to_hash();
        p.render_backend = self.render_backend.clone();
        p.compute_backend = compute_label;
        p.frames = self.frames;
        p.compute_ms = ra.as_ref().map(|(r, _)| r.compute_ms).unwrap_or(0.0);
        p.frame_ms = self.last_frame_ms;
        p.error = self.sides[0].cache.error().map(|e| e.to_string());
        self.last_frame_ms = t0.elapsed().as_secs_f64() * 1e3;
    }

    fn take_screenshot(&mut self) {
        let img = self.screenshot.lock().expect("screenshot slot").take();
        if let Some(img) = img {
            let bytes = png::encode_color_image(&img);
            self.message = Some(
                match platform::save_file("resonance-lab.png", "image/png", &bytes) {
                    Ok(m) => m,
                    Err(e) => format!("PNG export failed: {e}"),
                },
            );
        }
    }
}

fn draw_tab(
    ui: &mut Ui,
    tab: Tab,
    salt: &str,
    (r, s): &(Arc<Results>, Arc<Series>),
    side: &mut Side,
    gpu: &Option<Arc<gpu_heat::GpuRaster>>,
    nf: usize,
) {
    match tab {
        Tab::Wavelengths => plots::wavelengths(ui, salt, r),
        Tab::PhaseWheel => plots::phase_wheel(ui, salt, r, s),
        Tab::FeatureCurve => plots::feature_curve(ui, salt, r, s),
        Tab::Gap => plots::gap(ui, salt, r, s),
        Tab::Heatmap => {
            let ctx = ui.ctx().clone();
            let t = side.texture(&ctx, &format!("heatmap-{salt}"), s, gpu.as_deref(), nf);
            plots::heatmap(ui, salt, r, &t)
        }
        // drawn full width by `ResonanceApp::draw`, never per side
        Tab::PosGen => {}
    }
}

fn export_csv(
    tab: Tab,
    a: Option<&(Arc<Results>, Arc<Series>)>,
    b: Option<&(Arc<Results>, Arc<Series>)>,
) -> String {
    let mut out = String::new();
    for (name, side) in [("A", a), ("B", b)] {
        let Some((r, s)) = side else { continue };
        let csv = match tab {
            Tab::Wavelengths => series::wavelengths_csv(r),
            Tab::PhaseWheel => series::wheel_csv(s),
            Tab::FeatureCurve => series::feature_csv(s),
            Tab::Gap => series::gap_csv(r, s),
            Tab::Heatmap => series::heatmap_csv(s, r.schedule.num_features()),
            Tab::PosGen => return "use the PosGen panel's own Export CSV".into(),
        };
        let file = format!("resonance-lab-{}-{name}.csv", tab.slug());
        let m = match platform::save_file(&file, "text/csv", csv.as_bytes()) {
            Ok(m) => m,
            Err(e) => format!("CSV export failed: {e}"),
        };
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(&m);
    }
    out
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
        platform::after_frame(self, ui.ctx());
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, &self.state);
    }
}
