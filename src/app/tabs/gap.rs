//! The interpolation gap: per feature, and over positions for the selected feature: the gap
//! curve's overview over every OOD position (min/max per pixel bucket) above the exact curve in
//! the detail window the feature-value tab also uses ([`super::detail`]), where single
//! positions show at any L' and the readout says whether a position's angle was seen in
//! training (gap 0) or not.

use super::detail::{self, Curve, DetailSeries};
use super::{TWIN_COLOR, TabInput, hover, legend_row, side_plot};
use crate::app::compute::{self, Results};
use crate::app::series::{self, Series, config_name};
use crate::app::state::AppState;
use crate::rope::GapWorkspace;
use egui::{Color32, Ui};
use egui_plot::{Bar, BarChart, Line, PlotPoints, VLine};
use std::f64::consts::PI;

/// The gap curve of feature `f` of side `salt` (with `twin`, of its Resonance twin) over
/// `window`, exact at every position, cached by results generation, feature and window.
pub fn detail_gap_curve(
    ctx: &egui::Context,
    salt: &str,
    r: &Results,
    (f, twin): (usize, bool),
    window: (u64, u64),
) -> Curve {
    let id = egui::Id::unique(("gap-detail-curve", salt, twin));
    detail::cached_curve(ctx, id, (r.generation, f, window), || {
        let s = if twin { &r.twin } else { &r.schedule };
        compute::detail_gap_curve(s, f, window.0, window.1)
    })
}

/// Plot 4: interpolation gap per feature (bars: the configuration, and its twin beside it when
/// alone) above the gap curve of the selected feature: its overview over the OOD positions,
/// then the detail window.
pub fn gap(ui: &mut Ui, i: &TabInput) {
    let (r, s) = (i.results, i.series);
    let twin = i.twin();
    let mut items = vec![(config_name(&r.schedule), i.color)];
    if twin {
        items.push((config_name(&r.twin), TWIN_COLOR));
    }
    items.push(("detail window".into(), Color32::from_rgb(200, 200, 90)));
    legend_row(ui, &items);
    let window = compute::detail_window(
        &r.schedule,
        s.feature,
        i.state.detail_start,
        i.state.detail_len,
    );
    let h = (ui.available_height() - 40.0).max(240.0);
    bars(ui, i, h * 0.34);
    overview(ui, i, h * 0.26, window);
    let worst = r.gap.worst_position[s.feature.min(r.gap.worst_position.len() - 1)];
    detail::window_buttons(ui, i, window, &[("at the worst gap", worst)]);
    detail_view(ui, i, h * 0.40, window);
}

/// The gap per feature, the selected feature marked.
fn bars(ui: &mut Ui, i: &TabInput, height: f32) {
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
    side_plot("gap-bars", i)
        .height(height)
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
}

/// The gap curve over every OOD position; a click centres the detail window there.
fn overview(ui: &mut Ui, i: &TabInput, height: f32, window: (u64, u64)) {
    let (r, s) = (i.results, i.series);
    let resp = side_plot("gap-curve", i)
        .height(height)
        .x_axis_label("OOD position n (tokens), whole range")
        .y_axis_label(format!("gap of feature {} (rad)", s.feature))
        .label_formatter(|h| {
            let (name, q) = hover(h);
            Some(format!("{name}n = {:.0}\ngap {:.4} rad", q.x, q.y))
        })
        .show(ui, |p| {
            p.add(detail::window_span(window));
            p.add(
                Line::new(
                    config_name(&r.schedule),
                    PlotPoints::new(s.gap_curve.clone()),
                )
                .color(i.color),
            );
            if i.twin() {
                p.add(
                    Line::new(
                        config_name(&r.twin),
                        PlotPoints::new(s.twin_gap_curve.clone()),
                    )
                    .color(TWIN_COLOR),
                );
            }
        });
    detail::overview_click(&resp, i, window.1);
}

/// The exact gap at every position of the detail window (0 in the training range).
fn detail_view(ui: &mut Ui, i: &TabInput, height: f32, window: (u64, u64)) {
    let r = i.results;
    let f = i.series.feature;
    let ctx = ui.ctx().clone();
    let mut series = vec![DetailSeries {
        name: config_name(&r.schedule),
        color: i.color,
        curve: detail_gap_curve(&ctx, i.salt, r, (f, false), window),
    }];
    if i.twin() {
        series.push(DetailSeries {
            name: config_name(&r.twin),
            color: TWIN_COLOR,
            curve: detail_gap_curve(&ctx, i.salt, r, (f, true), window),
        });
    }
    let top = series
        .iter()
        .flat_map(|s| s.curve.iter().map(|q| q[1]))
        .fold(0.0f64, f64::max)
        .clamp(1e-3, PI);
    let (phase, l) = (r.schedule.phases[f], r.schedule.config.train_len);
    detail::detail_plot(
        ui,
        i,
        "gap-detail",
        height,
        window,
        (
            format!("gap of feature {f} at position p (rad)"),
            -0.05 * top..=1.1 * top,
        ),
        &series,
        move |p| {
            let g = GapWorkspace::default().curve_range(&phase, l, p, p + 1)[0];
            let seen = if g == 0.0 {
                "seen in training"
            } else {
                "never seen in training"
            };
            format!("gap {g:.6} rad ({seen})")
        },
    );
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
