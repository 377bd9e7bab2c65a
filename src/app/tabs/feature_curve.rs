//! The value of one feature over positions, training range against the OOD range.

use super::{TRAIN_FILL, TWIN_COLOR, TabInput, hover, legend_row, side_plot};
use crate::app::compute::Results;
use crate::app::series::{self, Series, config_name};
use crate::app::state::AppState;
use egui::Color32;
use egui::Ui;
use egui_plot::{Line, PlotPoints, Span};

/// Plot 3: feature value (cos, attention factor applied) of the selected feature over positions,
/// training range shaded, the configuration (and its twin when alone).
pub fn feature_curve(ui: &mut Ui, i: &TabInput) {
    let (r, s) = (i.results, i.series);
    let l = r.schedule.config.train_len as f64;
    let mut items = vec![(config_name(&r.schedule), i.color)];
    if i.twin() {
        items.push((config_name(&r.twin), TWIN_COLOR));
    }
    items.push((
        "training range [0, L)".into(),
        Color32::from_rgb(150, 200, 150),
    ));
    legend_row(ui, &items);
    side_plot("feature", i)
        .x_axis_label("position p (tokens)")
        .y_axis_label(format!("cos(p * theta_{}) x attention factor", s.feature))
        .label_formatter(|h| {
            let (name, q) = hover(h);
            Some(format!("{name}p = {:.0}\nvalue {:.4}", q.x, q.y))
        })
        .show(ui, |p| {
            p.add(
                Span::new("training range [0, L)", 0.0..=l)
                    .fill(TRAIN_FILL)
                    .border_width(0.0),
            );
            p.add(
                Line::new(config_name(&r.schedule), PlotPoints::new(s.curve.clone()))
                    .color(i.color),
            );
            if i.twin() {
                p.add(
                    Line::new(config_name(&r.twin), PlotPoints::new(s.twin_curve.clone()))
                        .color(TWIN_COLOR),
                );
            }
        });
}

/// The feature value tab.
pub struct FeatureCurve;

impl super::PlotTab for FeatureCurve {
    fn draw(&self, ui: &mut Ui, i: &super::TabInput) {
        feature_curve(ui, i);
    }

    fn csv(&self, _: &Results, s: &Series, _: &AppState) -> Vec<(&'static str, String)> {
        vec![("feature-value", series::feature_csv(s))]
    }
}
