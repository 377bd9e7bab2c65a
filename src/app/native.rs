//! The native entry point: the window, and the offscreen screenshot of one frame.

use super::ResonanceApp;

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
