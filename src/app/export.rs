//! Encodes exported views: PNG through the `png` crate (deflate-compressed, adaptive row
//! filters), so a 1280x800 screenshot of plots is tens of kilobytes rather than 4 MB raw.

/// Encodes `rgba` (row-major, 4 bytes per pixel, `width * height` pixels) as a compressed PNG.
/// A buffer of the wrong size is an error, not a panic.
pub fn encode_png(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>, String> {
    let want = width as usize * height as usize * 4;
    if rgba.len() != want {
        return Err(format!(
            "{width}x{height} RGBA needs {want} bytes, got {}",
            rgba.len()
        ));
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Balanced);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgba).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Encodes an egui screenshot as PNG (sRGB, unmultiplied alpha).
pub fn encode_color_image(img: &egui::ColorImage) -> Result<Vec<u8>, String> {
    let rgba: Vec<u8> = img
        .pixels
        .iter()
        .flat_map(|c| c.to_srgba_unmultiplied())
        .collect();
    let (w, h) = (img.size[0], img.size[1]);
    let dim = |v: usize| u32::try_from(v).map_err(|_| format!("image side {v} too large"));
    encode_png(dim(w)?, dim(h)?, &rgba)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut r = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn round_trips_and_compresses_a_plot_like_image() {
        // a 1280x800 view: mostly flat background with some lines, like a plot
        let (w, h) = (1280u32, 800u32);
        let mut rgba = vec![0u8; (w * h * 4) as usize];
        for (k, px) in rgba.chunks_exact_mut(4).enumerate() {
            let (x, y) = (k as u32 % w, k as u32 / w);
            let line = (x as f64 * 0.05).sin() * 200.0 + 400.0;
            let v = if (y as f64 - line).abs() < 2.0 {
                40
            } else {
                250
            };
            px.copy_from_slice(&[v, v, 255, 255]);
        }
        let png = encode_png(w, h, &rgba).unwrap();
        let (info, back) = decode(&png);
        assert_eq!((info.width, info.height), (w, h));
        assert_eq!(info.color_type, png::ColorType::Rgba);
        assert_eq!(back, rgba);
        assert!(
            png.len() < rgba.len() / 20,
            "{} bytes for {} raw",
            png.len(),
            rgba.len()
        );
    }

    #[test]
    fn a_wrong_buffer_size_is_an_error() {
        let e = encode_png(2, 2, &[0; 15]).unwrap_err();
        assert!(e.contains("needs 16 bytes, got 15"), "{e}");
    }

    #[test]
    fn egui_images_keep_their_colours() {
        let img = egui::ColorImage::new(
            [2, 1],
            vec![egui::Color32::RED, egui::Color32::from_rgb(1, 2, 3)],
        );
        let (_, back) = decode(&encode_color_image(&img).unwrap());
        assert_eq!(back, [255, 0, 0, 255, 1, 2, 3, 255]);
    }
}
