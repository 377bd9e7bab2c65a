//! The cos heatmap: positions x features, from the exact CPU raster or the GPU kernel's.

use super::{TabInput, hover, legend_row, side_plot};
use crate::app::compute::Results;
use crate::app::series::{self, Series};
use crate::app::state::AppState;
use egui::{Color32, Ui};
use egui_plot::{PlotImage, PlotPoint, VLine};

/// Diverging colour map for values in [-1, 1]: blue (-1), white (0), red (+1).
pub fn diverging(v: f32) -> Color32 {
    let t = v.clamp(-1.0, 1.0);
    let (r, g, b) = if t >= 0.0 {
        (1.0, 1.0 - t, 1.0 - t)
    } else {
        (1.0 + t, 1.0 + t, 1.0)
    };
    Color32::from_rgb((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}

/// The heatmap raster as an image: x = position column, y = feature (feature 0 at the bottom).
pub fn heatmap_image(heat: &[f32], cols: usize, num_features: usize) -> egui::ColorImage {
    let w = cols;
    let mut pixels = Vec::with_capacity(w * num_features);
    for row in 0..num_features {
        let f = num_features - 1 - row;
        for c in 0..w {
            pixels.push(diverging(heat[f * w + c]));
        }
    }
    egui::ColorImage::new([w, num_features], pixels)
}

/// Plot 5: heatmap of cos(angle) over positions x features, drawn from `texture`.
pub fn heatmap(ui: &mut Ui, i: &TabInput, texture: &egui::TextureHandle) {
    let r = i.results;
    let c = &r.schedule.config;
    let (lp, n) = (c.eval_len as f64, r.schedule.num_features() as f64);
    let af = r.schedule.attention_factor;
    legend_row(
        ui,
        &[
            (format!("cos(angle) x {af:.3} = -1"), diverging(-1.0)),
            ("0".into(), Color32::from_gray(230)),
            ("+1".into(), diverging(1.0)),
            (format!("L = {}", c.train_len), Color32::BLACK),
        ],
    );
    side_plot("heatmap", i)
        .x_axis_label("position p (tokens)")
        .y_axis_label("feature index i")
        .label_formatter(|h| {
            let (name, q) = hover(h);
            Some(format!("{name}p = {:.0}, feature {:.0}", q.x, q.y.floor()))
        })
        .show(ui, |p| {
            p.add(PlotImage::new(
                format!("cos(angle) x {af:.3}: blue -1, white 0, red +1"),
                texture.id(),
                PlotPoint::new(lp / 2.0, n / 2.0),
                [lp as f32, n as f32],
            ));
            p.add(
                VLine::new(format!("L = {}", c.train_len), c.train_len as f64)
                    .color(Color32::BLACK),
            );
        });
}

/// The heatmap tab.
pub struct Heatmap;

impl super::PlotTab for Heatmap {
    fn draw(&self, ui: &mut Ui, i: &super::TabInput) {
        if let Some(t) = i.texture {
            heatmap(ui, i, t);
        }
    }

    fn csv(&self, r: &Results, s: &Series, _: &AppState) -> Vec<(&'static str, String)> {
        vec![("heatmap", series::heatmap_csv(s, r.schedule.num_features()))]
    }

    fn source(&self, src: &super::Sources) -> String {
        match src.raster_gpu {
            Some(gpu) => format!("cos table on {gpu}"),
            None => format!("cos table on {}", crate::app::compute::CPU_LABEL),
        }
    }

    fn needs_texture(&self) -> bool {
        true
    }
}
