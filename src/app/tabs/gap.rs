//! The interpolation gap: per feature, and over the OOD positions of the selected feature.

use super::{TWIN_COLOR, TabInput, hover, legend_row, side_plot};
use crate::app::compute::Results;
use crate::app::series::{self, Series, config_name};
use crate::app::state::AppState;
use egui::{Color32, Ui};
use egui_plot::{Bar, BarChart, Line, PlotPoints, VLine};

/// Plot 4: interpolation gap per feature (bars: the configuration, and its twin beside it when
/// alone) above the gap curve of the selected feature over OOD positions.
pub fn gap(ui: &mut Ui, i: &TabInput) {
    let (r, s) = (i.results, i.series);
    let twin = i.twin();
    let (width, off) = if twin { (0.4, 0.2) } else { (0.8, 0.0) };
    let bars = |g: &[f64], off: f64| -> Vec<Bar> {
        g.iter()
            .enumerate()
            .map(|(k, &v)| {
                Bar::new(k as f64 + off, v)
                    .width(width)
                    .name(format!("feature {k}"))
            })
            .collect()
    };
    let mut items = vec![(config_name(&r.schedule), i.color)];
    if twin {
        items.push((config_name(&r.twin), TWIN_COLOR));
    }
    legend_row(ui, &items);
    let h = (ui.available_height() - 8.0).max(120.0) / 2.0;
    side_plot("gap-bars", i)
        .height(h)
        .x_axis_label("feature index i")
        .y_axis_label("gap (rad)")
        .show(ui, |p| {
            p.add(BarChart::new(config_name(&r.schedule), bars(&r.gap.gap, -off)).color(i.color));
            if twin {
                p.add(
                    BarChart::new(config_name(&r.twin), bars(&r.twin_gap.gap, off))
                        .color(TWIN_COLOR),
                );
            }
            p.add(VLine::new("selected feature", s.feature as f64).color(Color32::GRAY));
        });
    side_plot("gap-curve", i)
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
                .color(i.color),
            );
            if twin {
                p.add(
                    Line::new(
                        config_name(&r.twin),
                        PlotPoints::new(s.twin_gap_curve.clone()),
                    )
                    .color(TWIN_COLOR),
                );
            }
        });
}

/// The interpolation gap tab.
pub struct Gap;

impl super::PlotTab for Gap {
    fn draw(&self, ui: &mut Ui, i: &super::TabInput) {
        gap(ui, i);
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
