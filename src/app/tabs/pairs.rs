//! The pair layout: which head dimensions each feature rotates under half-split and
//! interleaved pairing, and one vector rotated to a chosen position in both.

use super::{CONFIG_COLOR, TWIN_COLOR, TabInput, legend_row, side_plot};
use crate::app::compute::Results;
use crate::app::series::{self, Series};
use crate::app::state::AppState;
use crate::rope::PairLayout;
use egui::Ui;
use egui_plot::{Bar, BarChart, PlotPoints, Points, VLine};

/// Both pair layouts with their display names, the configured one first.
fn layouts(configured: PairLayout) -> [(PairLayout, &'static str); 2] {
    let name = |l: PairLayout| match l {
        PairLayout::HalfSplit => "half-split (Llama, HF rotate_half)",
        PairLayout::Interleaved => "interleaved (GPT-J)",
    };
    let other = match configured {
        PairLayout::HalfSplit => PairLayout::Interleaved,
        PairLayout::Interleaved => PairLayout::HalfSplit,
    };
    [(configured, name(configured)), (other, name(other))]
}

/// Plot 6: the pair layout. Above, the feature that rotates each head dimension in both
/// layouts (half-split repeats the frequency ramp twice, interleaved climbs it in steps of
/// two), with the selected feature's two dimensions marked; below, one vector (all ones)
/// rotated at `position` in both layouts: the same rotations land on different coordinates,
/// which is why weights trained with one layout cannot be run with the other.
pub fn pairs(ui: &mut Ui, i: &TabInput, feature: usize, position: u64) {
    let r = i.results;
    let p = series::pair_layouts(&r.schedule, position);
    let configured = r.schedule.config.layout;
    let colors = [CONFIG_COLOR, TWIN_COLOR];
    let dim = r.schedule.config.dim;
    let [(_, first), (_, second)] = layouts(configured);
    legend_row(
        ui,
        &[
            (format!("{first}, this configuration"), colors[0]),
            (second.to_string(), colors[1]),
        ],
    );
    let h = (ui.available_height() - 8.0).max(120.0) / 2.0;
    side_plot("pairs-map", i)
        .height(h)
        .x_axis_label("head dimension j")
        .y_axis_label("feature i rotating dimension j")
        .show(ui, |plot| {
            for (k, (layout, name)) in layouts(configured).into_iter().enumerate() {
                let pts: Vec<[f64; 2]> = (0..dim)
                    .map(|j| [j as f64, p.feature_of(layout, j) as f64])
                    .collect();
                let label = if k == 0 {
                    format!("{name}, this configuration")
                } else {
                    name.to_string()
                };
                plot.add(
                    Points::new(label, PlotPoints::new(pts))
                        .color(colors[k])
                        .radius(if k == 0 { 3.0 } else { 2.0 }),
                );
                let (a, b) = layout.pair(feature.min(dim / 2 - 1), dim);
                for j in [a, b] {
                    plot.add(
                        VLine::new(format!("feature {feature}, {name}"), j as f64)
                            .color(colors[k])
                            .style(egui_plot::LineStyle::dashed_dense()),
                    );
                }
            }
        });
    side_plot("pairs-rotation", i)
        .height(h)
        .x_axis_label("head dimension j")
        .y_axis_label(format!(
            "the all-ones vector rotated to position {position}"
        ))
        .show(ui, |plot| {
            for (k, (layout, name)) in layouts(configured).into_iter().enumerate() {
                let off = if k == 0 { -0.2 } else { 0.2 };
                let bars: Vec<Bar> = p
                    .rotated(layout)
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| Bar::new(j as f64 + off, v).width(0.4))
                    .collect();
                plot.add(BarChart::new(name, bars).color(colors[k]));
            }
        });
}

/// The pair layout tab.
pub struct Pairs;

impl super::PlotTab for Pairs {
    fn draw(&self, ui: &mut Ui, i: &super::TabInput) {
        pairs(ui, i, i.series.feature, i.state.probe_position);
    }

    fn csv(&self, r: &Results, _: &Series, st: &AppState) -> Vec<(&'static str, String)> {
        vec![(
            "pair-layout",
            series::pairs_csv(&series::pair_layouts(&r.schedule, st.probe_position)),
        )]
    }
}
