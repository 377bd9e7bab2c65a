//! The wavelength per feature on a log axis, raw against rounded, with L and L' marked and
//! the pre-/post-critical features shaded.

use super::{CONFIG_COLOR, POST_FILL, PRE_FILL, TWIN_COLOR, hover, legend, pow10_label};
use crate::app::compute::Results;
use crate::app::series::{self, Series};
use crate::app::state::AppState;
use egui::{Color32, Ui};
use egui_plot::{HLine, Line, Plot, PlotPoints, Points, Span, VLine};

/// Plot 1: wavelength per feature on a log axis, raw vs rounded, with L and L' lines,
/// pre/post-critical shading and the critical feature marked.
pub fn wavelengths(ui: &mut Ui, salt: &str, r: &Results) {
    let (raw, rounded) = r.raw_and_rounded();
    let c = &r.schedule.config;
    let n = raw.num_features();
    let crit = r.schedule.critical_feature;
    let pts = |s: &crate::rope::Schedule| -> Vec<[f64; 2]> {
        s.wavelength
            .iter()
            .enumerate()
            .map(|(i, w)| [i as f64, w.log10()])
            .collect()
    };
    Plot::new(("wavelengths", salt))
        .legend(legend())
        .x_axis_label("feature index i")
        .y_axis_label("wavelength (tokens, log scale)")
        .y_axis_formatter(|m, _| pow10_label(m.value))
        .label_formatter(|h| {
            let (name, p) = hover(h);
            Some(format!(
                "{name}feature {:.0}\nwavelength {} tokens",
                p.x,
                pow10_label(p.y)
            ))
        })
        .show(ui, |p| {
            p.add(
                Span::new("pre-critical", -0.5..=crit as f64 - 0.5)
                    .fill(PRE_FILL)
                    .border_width(0.0),
            );
            p.add(
                Span::new("post-critical", crit as f64 - 0.5..=n as f64 - 0.5)
                    .fill(POST_FILL)
                    .border_width(0.0),
            );
            p.add(
                Line::new(
                    format!("raw ({})", raw.config.method),
                    PlotPoints::new(pts(raw)),
                )
                .color(CONFIG_COLOR),
            );
            p.add(
                Points::new("raw points", PlotPoints::new(pts(raw)))
                    .color(CONFIG_COLOR)
                    .radius(2.5),
            );
            p.add(
                Line::new("Resonance rounded", PlotPoints::new(pts(rounded)))
                    .color(TWIN_COLOR)
                    .style(egui_plot::LineStyle::dashed_dense()),
            );
            p.add(
                HLine::new(format!("L = {}", c.train_len), (c.train_len as f64).log10())
                    .color(Color32::DARK_GREEN),
            );
            p.add(
                HLine::new(format!("L' = {}", c.eval_len), (c.eval_len as f64).log10())
                    .color(Color32::DARK_RED),
            );
            if crit < n {
                p.add(
                    VLine::new(format!("critical feature c = {crit}"), crit as f64)
                        .color(Color32::from_rgb(160, 60, 200))
                        .width(2.0),
                );
            }
        });
}

/// The wavelengths tab.
pub struct Wavelengths;

impl super::PlotTab for Wavelengths {
    fn draw(&self, ui: &mut Ui, i: &super::TabInput) {
        wavelengths(ui, i.salt, i.results);
    }

    fn csv(&self, r: &Results, _: &Series, _: &AppState) -> Vec<(&'static str, String)> {
        vec![("wavelengths", series::wavelengths_csv(r))]
    }
}
