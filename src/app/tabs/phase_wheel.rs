//! The phase wheel: the angles one feature takes at training and at out-of-distribution
//! positions, on the unit circle.

use super::{TabInput, legend_row, side_plot};
use crate::app::compute::Results;
use crate::app::series::{self, Series, config_name};
use crate::app::state::AppState;
use egui::{Color32, RichText, Ui};
use egui_plot::{Line, MarkerShape, PlotPoint, PlotPoints, Points, Text};
use std::f64::consts::PI;

fn circle() -> Vec<[f64; 2]> {
    (0..=360)
        .map(|k| {
            let a = k as f64 * PI / 180.0;
            [a.cos(), a.sin()]
        })
        .collect()
}

fn ring(angles: &[f64], r: f64) -> PlotPoints<'static> {
    PlotPoints::new(angles.iter().map(|a| [r * a.cos(), r * a.sin()]).collect())
}

/// Plot 2: the phase wheel of the selected feature (the paper's Figure 1): training angles on
/// the unit circle, OOD angles on an outer ring (red where training never went), config and
/// twin side by side in one plot when alone (the twin is shifted right by 2.8), the side's own
/// configuration only in compare mode.
pub fn phase_wheel(ui: &mut Ui, input: &TabInput) {
    let (r, s) = (input.results, input.series);
    let i = s.feature;
    let wheels: Vec<_> = if input.twin() {
        vec![(&r.schedule, &s.wheel), (&r.twin, &s.twin_wheel)]
    } else {
        vec![(&r.schedule, &s.wheel)]
    };
    wheel_legend(ui);
    side_plot("wheel", input)
        .data_aspect(1.0)
        .x_axis_label("cos(angle)")
        .y_axis_label("sin(angle)")
        .show(ui, |p| {
            for (k, (sch, w)) in wheels.into_iter().enumerate() {
                let dx = 2.8 * k as f64;
                let shift = |pts: PlotPoints<'static>| -> PlotPoints<'static> {
                    PlotPoints::new(pts.points().iter().map(|q| [q.x + dx, q.y]).collect())
                };
                let name = config_name(sch);
                p.add(
                    Line::new("", shift(PlotPoints::new(circle())))
                        .id(("unit circle", k))
                        .color(Color32::GRAY)
                        .allow_hover(false),
                );
                p.add(
                    Points::new("training angles (p < L)", shift(ring(&w.train, 1.0)))
                        .color(Color32::DARK_GREEN)
                        .radius(2.0),
                );
                p.add(
                    Points::new(
                        "OOD angles seen in training",
                        shift(ring(&w.ood_seen, 1.12)),
                    )
                    .color(Color32::GRAY)
                    .radius(1.5),
                );
                p.add(
                    Points::new(
                        "OOD angles never seen in training",
                        shift(ring(&w.ood_new, 1.12)),
                    )
                    .color(Color32::RED)
                    .radius(2.0),
                );
                p.add(
                    Points::new("worst OOD position", shift(ring(&[w.worst_angle], 1.12)))
                        .shape(MarkerShape::Diamond)
                        .color(Color32::BLACK)
                        .radius(5.0),
                );
                p.add(
                    Text::new(
                        "",
                        PlotPoint::new(dx, 1.45),
                        RichText::new(format!("{name}, feature {i}")).size(14.0),
                    )
                    .id(("title", k)),
                );
                p.add(
                    Text::new(
                        "",
                        PlotPoint::new(dx, -1.4),
                        RichText::new(format!(
                            "gap {:.4} rad (worst at n = {})",
                            w.gap, w.worst_position
                        ))
                        .size(14.0),
                    )
                    .id(("gap", k)),
                );
            }
        });
}

/// What the wheel's markers mean, above the plot.
fn wheel_legend(ui: &mut Ui) {
    legend_row(
        ui,
        &[
            ("training angles (p < L)".into(), Color32::DARK_GREEN),
            ("OOD angles seen in training".into(), Color32::GRAY),
            ("OOD angles never seen in training".into(), Color32::RED),
            ("worst OOD position".into(), Color32::BLACK),
        ],
    );
}

/// The phase wheel tab.
pub struct PhaseWheel;

impl super::PlotTab for PhaseWheel {
    fn draw(&self, ui: &mut Ui, i: &super::TabInput) {
        phase_wheel(ui, i);
    }

    fn csv(&self, _: &Results, s: &Series, _: &AppState) -> Vec<(&'static str, String)> {
        vec![("phase-wheel", series::wheel_csv(s))]
    }

    fn source(&self, src: &super::Sources) -> String {
        format!(
            "angles on {}, gap on {}",
            crate::app::compute::CPU_LABEL,
            src.gap
        )
    }
}
