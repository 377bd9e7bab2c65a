//! Native platform glue: the window, file export into the working directory, and PosGen runs
//! trained on their own threads.

use super::ResonanceApp;
use super::commands::{AppCommand, CommandSender};
use super::posgen_run::{FromWorker, RunId, ToWorker, TrainJob, WORKER_SLICE_S, WorkerState};
use std::sync::mpsc;

/// Writes an exported file into the current directory; returns a status message.
pub fn save_file(name: &str, _mime: &str, bytes: &[u8]) -> Result<String, String> {
    let path = std::env::current_dir()
        .map_err(|e| e.to_string())?
        .join(name);
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!("saved {}", path.display()))
}

/// Reads a file dropped on the window and queues its load (or the reason it failed).
pub fn read_dropped(file: egui::DroppedFileHandle, commands: CommandSender) {
    let name = file.path().file_name().map_or_else(
        || "dropped file".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let command = match file.bytes() {
        Ok(bytes) => super::model_panel::dropped(&name, bytes),
        Err(e) => AppCommand::ModelLoadFailed(format!("{name}: cannot read it: {e}")),
    };
    commands.send_and_wake(command);
}

/// A PosGen run training on its own thread. The thread takes [`ToWorker`] messages over a
/// channel, trains in slices of [`WORKER_SLICE_S`] and sends each slice's [`RunUpdate`] to the
/// app's command queue; it stops when the run finishes or fails, or when this handle (the
/// sending end) is dropped.
pub struct TrainWorker {
    control: mpsc::Sender<ToWorker>,
}

impl TrainWorker {
    /// Starts training `job` on a new thread; its updates go to `updates`, tagged with `id`.
    pub fn spawn(job: &TrainJob, id: RunId, updates: CommandSender) -> Result<TrainWorker, String> {
        let (control, inbox) = mpsc::channel();
        let start = ToWorker::Start {
            job: job.clone(),
            slice_s: WORKER_SLICE_S,
        };
        control
            .send(start)
            .map_err(|e| format!("could not start a training thread: {e}"))?;
        std::thread::Builder::new()
            .name(format!("posgen {} {}", job.method, job.task.name()))
            .spawn(move || train_thread(&inbox, id, &updates))
            .map_err(|e| format!("could not start a training thread: {e}"))?;
        Ok(TrainWorker { control })
    }

    /// Pauses (`false`) or resumes training.
    pub fn set_running(&self, running: bool) {
        let m = if running {
            ToWorker::Resume
        } else {
            ToWorker::Pause
        };
        // a thread that has finished is gone; nothing to pause then
        let _ = self.control.send(m);
    }
}

/// The body of a training thread: messages first, then one slice when there is work; blocks
/// on the channel while paused. Ends when the run ends, the handle or the app is dropped.
fn train_thread(inbox: &mpsc::Receiver<ToWorker>, id: RunId, updates: &CommandSender) {
    let mut state = WorkerState::default();
    let report = |m: FromWorker| {
        let end = matches!(&m, FromWorker::Failed { .. })
            || matches!(&m, FromWorker::Update(u) if u.error.is_some());
        let sent = updates.send(AppCommand::Worker {
            run: id,
            message: m,
        });
        sent && !end
    };
    loop {
        let message = if state.wants_slice() {
            match inbox.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        } else {
            match inbox.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        };
        if let Some(m) = message {
            if let Some(reply) = state.handle(m)
                && !report(reply)
            {
                return;
            }
            continue;
        }
        if !report(state.slice()) || state.finished() {
            return;
        }
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
    let jobs = ctx.tessellate(output.shapes.clone(), 1.0);
    let rgba = render_to_rgba(&rs, &mut renderer, &jobs, [w, h])?;
    let png = super::export::encode_png(w, h, &rgba)?;
    std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "wrote {} ({w}x{h}, rendered with {})",
        path.display(),
        rs.adapter.get_info().name
    );
    Ok(())
}

/// Renders tessellated egui output into a texture of `size` pixels and reads it back as RGBA.
fn render_to_rgba(
    rs: &eframe::egui_wgpu::RenderState,
    renderer: &mut eframe::egui_wgpu::Renderer,
    jobs: &[egui::ClippedPrimitive],
    [w, h]: [u32; 2],
) -> Result<Vec<u8>, String> {
    let screen = eframe::egui_wgpu::ScreenDescriptor {
        size_in_pixels: [w, h],
        pixels_per_point: 1.0,
    };
    let mut encoder = rs
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    let user = renderer.update_buffers(&rs.device, &rs.queue, &mut encoder, jobs, &screen);
    let extent = wgpu::Extent3d {
        width: w,
        height: h,
        depth_or_array_layers: 1,
    };
    let texture = rs.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("screenshot"),
        size: extent,
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
        renderer.render(&mut pass, jobs, &screen);
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
        extent,
    );
    rs.queue
        .submit(user.into_iter().chain(std::iter::once(encoder.finish())));
    read_rows(rs, &buffer, row, [w, h])
}

/// Maps the readback buffer (blocking: the offscreen render has no frame to keep) and strips
/// the row padding, swapping BGRA to RGBA where the target format needs it.
fn read_rows(
    rs: &eframe::egui_wgpu::RenderState,
    buffer: &wgpu::Buffer,
    row: u32,
    [w, h]: [u32; 2],
) -> Result<Vec<u8>, String> {
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
    Ok(rgba)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::commands::CommandQueue;
    use crate::app::posgen_run::RunView;
    use crate::posgen::{Task, TrainPhase};
    use crate::rope::Method;
    use std::time::{Duration, Instant};

    /// Applies the queued worker messages to `view`; returns the step of a pause
    /// acknowledgement among them.
    fn drain(q: &CommandQueue, view: &mut RunView) -> Option<usize> {
        let mut paused = None;
        for c in q.drain() {
            if let AppCommand::Worker { run, message } = c {
                assert_eq!(run, RunId(7));
                if let FromWorker::Paused { step } = message {
                    paused = Some(step);
                }
                view.apply(message.into_update());
            }
        }
        paused
    }

    #[test]
    fn a_paused_thread_stops_and_a_resumed_one_finishes() {
        let mut job = TrainJob::new(Task::Cot, Method::ROPE, false, 1, 40);
        job.eval_every = 40;
        let q = CommandQueue::default();
        let w = TrainWorker::spawn(&job, RunId(7), q.sender()).unwrap();
        let mut view = RunView::default();
        let t0 = Instant::now();
        while view.step == 0 && t0.elapsed() < Duration::from_secs(60) {
            drain(&q, &mut view);
            std::thread::sleep(Duration::from_millis(5));
        }
        w.set_running(false);
        // the slice in flight reports, then the pause is acknowledged; nothing comes after it
        let mut ack = None;
        while ack.is_none() && t0.elapsed() < Duration::from_secs(60) {
            ack = drain(&q, &mut view);
            std::thread::sleep(Duration::from_millis(5));
        }
        let paused_at = ack.expect("the pause is acknowledged");
        assert_eq!(
            view.step, paused_at,
            "every step before the pause was reported"
        );
        assert!(paused_at >= 1);
        std::thread::sleep(Duration::from_millis(500));
        drain(&q, &mut view);
        assert_eq!(view.step, paused_at, "a paused worker trained");
        assert!(paused_at < 40, "finished before the pause took effect");
        w.set_running(true);
        while view.phase != Some(TrainPhase::Done) && t0.elapsed() < Duration::from_secs(120) {
            drain(&q, &mut view);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(view.phase, Some(TrainPhase::Done));
        assert_eq!(view.loss_curve.len(), 40);
        assert!(view.result.is_some() && view.error.is_none());
    }

    #[test]
    fn a_bad_job_reports_its_error() {
        let mut job = TrainJob::new(Task::Cot, Method::ROPE, false, 1, 4);
        job.steps = 0;
        let q = CommandQueue::default();
        let _w = TrainWorker::spawn(&job, RunId(7), q.sender()).unwrap();
        let mut view = RunView::default();
        let t0 = Instant::now();
        while view.error.is_none() && t0.elapsed() < Duration::from_secs(10) {
            drain(&q, &mut view);
            std::thread::sleep(Duration::from_millis(5));
        }
        let e = view.error.expect("the error arrives");
        assert!(e.contains("steps"), "{e}");
    }
}
