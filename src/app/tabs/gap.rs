//! The interpolation gap: per feature, and over the OOD positions of the selected feature.

use super::{CONFIG_COLOR, TWIN_COLOR, hover, legend};
use crate::app::compute::Results;
use crate::app::series::{self, Series, config_name};
use crate::app::state::AppState;
use egui::{Color32, Ui};
use egui_plot::{Bar, BarChart, Line, Plot, PlotPoints, VLine};

/// Plot 4: interpolation gap per feature (bars, config vs twin) above the gap curve of the
/// selected feature over OOD positions.
pub fn gap(ui: &mut Ui, salt: &str, r: &Results, s: &Series) {
    let h = (ui.available_height() - 8.0).max(120.0) / 2.0;
    let bars = |g: &[f64], off: f64| -> Vec<Bar> {
        g.iter()
            .enumerate()
            .map(|(i, &v)| {
                Bar::new(i as f64 + off, v)
                    .width(0.4)
                    .name(format!("feature {i}"))
            })
            .collect()
    };
    Plot::new(("gap-bars", salt))
        .legend(legend())
        .height(h)
        .x_axis_label("feature index i")
        .y_axis_label("gap (rad)")
        .show(ui, |p| {
            p.add(
                BarChart::new(config_name(&r.schedule), bars(&r.gap.gap, -0.2)).color(CONFIG_COLOR),
            );
            p.add(
                BarChart::new(config_name(&r.twin), bars(&r.twin_gap.gap, 0.2)).color(TWIN_COLOR),
            );
            p.add(VLine::new("selected feature", s.feature as f64).color(Color32::GRAY));
        });
    Plot::new(("gap-curve", salt))
        .legend(legend())
        .height(h)
        .x_axis_label("OOD position n (tokens)")
        .y_axis_label(format!(
            "gap of feature {} at OOD position n (rad)",
            s.feature
        ))
        .label_formatter(|h| {
            let (name, q) = hover(h);
            Some(format!("{name}n = {:.0}\ngap {:.4} rad", q.x, q.y))
        })
        .show(ui, |p| {
            p.add(
                Line::new(
                    config_name(&r.schedule),
                    PlotPoints::new(s.gap_curve.clone()),
                )
                .color(CONFIG_COLOR),
            );
            p.add(
                Line::new(
                    config_name(&r.twin),
                    PlotPoints::new(s.twin_gap_curve.clone()),
                )
                .color(TWIN_COLOR),
            );
        });
}

/// The interpolation gap tab.
pub struct Gap;

impl super::PlotTab for Gap {
    fn draw(&self, ui: &mut Ui, i: &super::TabInput) {
        gap(ui, i.salt, i.results, i.series);
    }

    fn csv(&self, r: &Results, s: &Series, _: &AppState) -> Vec<(&'static str, String)> {
        vec![
            ("gap-per-feature", series::gap_csv(r)),
            ("gap-curve", series::gap_curve_csv(s)),
        ]
    }

    fn source(&self, src: &super::Sources) -> String {
        format!("gap bars and curves on {}", src.gap)
    }
}
