//! The value of one feature over positions, training range against the OOD range.

use super::{CONFIG_COLOR, TRAIN_FILL, TWIN_COLOR, hover, legend};
use crate::app::compute::Results;
use crate::app::series::{self, Series, config_name};
use crate::app::state::AppState;
use egui::Ui;
use egui_plot::{Line, Plot, PlotPoints, Span};

/// Plot 3: feature value (cos, attention factor applied) of the selected feature over positions,
/// training range shaded, config and twin.
pub fn feature_curve(ui: &mut Ui, salt: &str, r: &Results, s: &Series) {
    let l = r.schedule.config.train_len as f64;
    Plot::new(("feature", salt))
        .legend(legend())
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
                    .color(CONFIG_COLOR),
            );
            p.add(
                Line::new(config_name(&r.twin), PlotPoints::new(s.twin_curve.clone()))
                    .color(TWIN_COLOR),
            );
        });
}

/// The feature value tab.
pub struct FeatureCurve;

impl super::PlotTab for FeatureCurve {
    fn draw(&self, ui: &mut Ui, i: &super::TabInput) {
        feature_curve(ui, i.salt, i.results, i.series);
    }

    fn csv(&self, _: &Results, s: &Series, _: &AppState) -> Vec<(&'static str, String)> {
        vec![("feature-value", series::feature_csv(s))]
    }
}
