//! Native platform glue: the window, file export into the working directory, and PosGen runs
//! trained on their own threads.

use super::ResonanceApp;
use super::posgen_run::{Job, RunUpdate, WORKER_SLICE_S, WorkerRun};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// Writes an exported file into the current directory; returns a status message.
pub fn save_file(name: &str, _mime: &str, bytes: &[u8]) -> Result<String, String> {
    let path = std::env::current_dir()
        .map_err(|e| e.to_string())?
        .join(name);
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!("saved {}", path.display()))
}

/// A PosGen run training on its own thread; it reports [`RunUpdate`]s every
/// [`WORKER_SLICE_S`] and stops when it finishes, fails or is dropped.
pub struct TrainWorker {
    updates: mpsc::Receiver<RunUpdate>,
    running: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl TrainWorker {
    /// Starts training `job` on a new thread.
    pub fn spawn(job: &Job) -> Result<TrainWorker, String> {
        let (tx, updates) = mpsc::channel();
        let running = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, job) = (running.clone(), stop.clone(), job.clone());
        std::thread::Builder::new()
            .name(format!("posgen {} {}", job.method, job.task))
            .spawn(move || {
                let mut run = match WorkerRun::new(&job) {
                    Ok(run) => run,
                    Err(e) => {
                        let _ = tx.send(RunUpdate::failed(e));
                        return;
                    }
                };
                while !s.load(Ordering::Relaxed) {
                    if !r.load(Ordering::Relaxed) {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        continue;
                    }
                    let u = run.slice(WORKER_SLICE_S);
                    let end = u.error.is_some() || run.finished();
                    if tx.send(u).is_err() || end {
                        break;
                    }
                }
            })
            .map_err(|e| format!("could not start a training thread: {e}"))?;
        Ok(TrainWorker {
            updates,
            running,
            stop,
        })
    }

    /// Updates received since the last call.
    pub fn updates(&self) -> Vec<RunUpdate> {
        self.updates.try_iter().collect()
    }

    /// Pauses (`false`) or resumes training.
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
    }
}

impl Drop for TrainWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Per-frame platform work (nothing natively: eframe persists the state itself).
pub fn after_frame(_app: &mut ResonanceApp, _ctx: &egui::Context) {}

/// Opens the native window and runs until it is closed.
pub fn run() -> Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("resonance-lab")
            .with_inner_size([1280.0, 800.0]),
        ..Default::default()
    };
    eframe::run_native(
        "resonance-lab",
        options,
        Box::new(|cc| Ok(Box::new(ResonanceApp::from_creation_context(cc, None)))),
    )
    .map_err(|e| format!("could not open the window: {e}"))
}

/// Renders the app offscreen (no window) with egui-wgpu at 1280x800 and writes a PNG to `path`.
pub fn screenshot(path: &std::path::Path) -> Result<(), String> {
    use eframe::egui_wgpu;
    let (w, h) = (1280u32, 800u32);
    let setup =
        egui_wgpu::WgpuSetup::CreateNew(egui_wgpu::WgpuSetupCreateNew::without_display_handle());
    let instance = pollster::block_on(setup.new_instance());
    let rs = pollster::block_on(egui_wgpu::RenderState::create(
        &egui_wgpu::WgpuConfiguration {
            wgpu_setup: setup,
            ..Default::default()
        },
        &instance,
        None,
        egui_wgpu::RendererOptions::default(),
    ))
    .map_err(|e| format!("no wgpu adapter for the offscreen render: {e}"))?;
    let ctx = egui::Context::default();
    let mut app = ResonanceApp::new(
        super::state::AppState::default(),
        super::render_backend_label(&rs.adapter.get_info()),
    );
    let input = || egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(w as f32, h as f32),
        )),
        ..Default::default()
    };
    let mut output = ctx.run_ui(input(), |ui| app.draw(ui));
    let mut renderer = rs.renderer.write();
    let apply = |out: &mut egui::FullOutput, renderer: &mut egui_wgpu::Renderer| {
        for (id, deltas) in out.textures_delta.set.drain() {
            for delta in deltas {
                renderer.update_texture(&rs.device, &rs.queue, id, &delta);
            }
        }
        for id in out.textures_delta.free.drain() {
            renderer.free_texture(&id);
        }
    };
    apply(&mut output, &mut renderer);
    for _ in 0..2 {
        output = ctx.run_ui(input(), |ui| app.draw(ui));
        apply(&mut output, &mut renderer);
    }
    let screen = egui_wgpu::ScreenDescriptor {
        size_in_pixels: [w, h],
        pixels_per_point: 1.0,
    };
    let jobs = ctx.tessellate(output.shapes.clone(), 1.0);
    let mut encoder = rs
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    let user = renderer.update_buffers(&rs.device, &rs.queue, &mut encoder, &jobs, &screen);
    let texture = rs.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("screenshot"),
        size: wgpu::Extent3d {
            width: w,
            height: h,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: rs.target_format,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    {
        let mut pass = encoder
            .begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("screenshot pass"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &view,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                        store: wgpu::StoreOp::Store,
                    },
                    depth_slice: None,
                })],
                ..Default::default()
            })
            .forget_lifetime();
        renderer.render(&mut pass, &jobs, &screen);
    }
    let row = (w * 4).div_ceil(256) * 256;
    let buffer = rs.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("screenshot readback"),
        size: (row * h) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    encoder.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row),
                rows_per_image: None,
            },
        },
        wgpu::Extent3d {
            width: w,
            height: h,
            depth_or_array_layers: 1,
        },
    );
    rs.queue
        .submit(user.into_iter().chain(std::iter::once(encoder.finish())));
    let (tx, rx) = std::sync::mpsc::channel();
    buffer
        .slice(..)
        .map_async(wgpu::MapMode::Read, move |r| drop(tx.send(r)));
    rs.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| format!("GPU poll failed: {e}"))?;
    rx.recv()
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("readback failed: {e}"))?;
    let data = buffer
        .slice(..)
        .get_mapped_range()
        .map_err(|e| format!("readback failed: {e}"))?;
    let bgra = matches!(
        rs.target_format,
        wgpu::TextureFormat::Bgra8Unorm | wgpu::TextureFormat::Bgra8UnormSrgb
    );
    let mut rgba = Vec::with_capacity((w * h * 4) as usize);
    for r in data.chunks_exact(row as usize) {
        for px in r[..(w * 4) as usize].chunks_exact(4) {
            if bgra {
                rgba.extend_from_slice(&[px[2], px[1], px[0], px[3]]);
            } else {
                rgba.extend_from_slice(px);
            }
        }
    }
    let png = super::png::encode_rgba(w, h, &rgba);
    std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "wrote {} ({w}x{h}, rendered with {})",
        path.display(),
        rs.adapter.get_info().name
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posgen::{Task, TrainPhase};
    use crate::rope::Method;
    use std::time::{Duration, Instant};

    use super::super::posgen_run::RunView;

    fn drain(w: &TrainWorker, view: &mut RunView) {
        for u in w.updates() {
            view.apply(u);
        }
    }

    #[test]
    fn a_paused_thread_stops_and_a_resumed_one_finishes() {
        let mut job = Job::new(Task::Cot, Method::Rope, false, 1, 40);
        job.eval_every = 40;
        let w = TrainWorker::spawn(&job).unwrap();
        let mut view = RunView::default();
        let t0 = Instant::now();
        while view.step == 0 && t0.elapsed() < Duration::from_secs(60) {
            drain(&w, &mut view);
            std::thread::sleep(Duration::from_millis(5));
        }
        w.set_running(false);
        // the slice in flight reports; then nothing comes for a while
        let mut quiet = Instant::now();
        while quiet.elapsed() < Duration::from_millis(500) {
            let before = view.step;
            drain(&w, &mut view);
            if view.step != before {
                quiet = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let paused_at = view.step;
        assert!(paused_at >= 1);
        std::thread::sleep(Duration::from_millis(500));
        drain(&w, &mut view);
        assert_eq!(view.step, paused_at, "a paused worker trained");
        assert!(paused_at < 40, "finished before the pause took effect");
        w.set_running(true);
        while view.phase != Some(TrainPhase::Done) && t0.elapsed() < Duration::from_secs(120) {
            drain(&w, &mut view);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(view.phase, Some(TrainPhase::Done));
        assert_eq!(view.loss_curve.len(), 40);
        assert!(view.result.is_some() && view.error.is_none());
    }

    #[test]
    fn a_bad_job_reports_its_error() {
        let mut job = Job::new(Task::Cot, Method::Rope, false, 1, 4);
        job.task = "nope".into();
        let w = TrainWorker::spawn(&job).unwrap();
        let mut view = RunView::default();
        let t0 = Instant::now();
        while view.error.is_none() && t0.elapsed() < Duration::from_secs(10) {
            drain(&w, &mut view);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(view.error.as_deref(), Some("unknown task 'nope'"));
    }
}
