//! The wavelength per feature on a log axis, raw against rounded, with L and L' marked and
//! the pre-/post-critical features shaded.

use super::{POST_FILL, PRE_FILL, TWIN_COLOR, TabInput, hover, legend_row, pow10_label, side_plot};
use crate::app::compute::Results;
use crate::app::series::{self, Series};
use crate::app::state::AppState;
use egui::{Color32, Ui};
use egui_plot::{HLine, Line, PlotPoints, Points, Span, VLine};

/// Plot 1: wavelength per feature on a log axis, raw vs rounded (alone) or the side's own
/// schedule (compare mode), with L and L' lines, pre/post-critical shading and the critical
/// feature marked.
pub fn wavelengths(ui: &mut Ui, i: &TabInput) {
    let r = i.results;
    let (raw, rounded) = r.raw_and_rounded();
    let own = &r.schedule;
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
    let own_name = if i.twin() {
        format!("raw ({})", raw.config.method)
    } else {
        crate::app::series::config_name(own)
    };
    legend(ui, i, &own_name, crit < n);
    side_plot("wavelengths", i)
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
            let mine = if i.twin() { raw } else { own };
            p.add(Line::new(own_name.clone(), PlotPoints::new(pts(mine))).color(i.color));
            p.add(
                Points::new(format!("{own_name} points"), PlotPoints::new(pts(mine)))
                    .color(i.color)
                    .radius(2.5),
            );
            if i.twin() {
                p.add(
                    Line::new("Resonance rounded", PlotPoints::new(pts(rounded)))
                        .color(TWIN_COLOR)
                        .style(egui_plot::LineStyle::dashed_dense()),
                );
            }
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
                        .color(CRITICAL_COLOR)
                        .width(2.0),
                );
            }
        });
}

/// The critical feature's marker.
const CRITICAL_COLOR: Color32 = Color32::from_rgb(160, 60, 200);

/// The legend above the plot: the side's series, L, L' and (when there is one) the critical
/// feature.
fn legend(ui: &mut Ui, i: &TabInput, own_name: &str, has_critical: bool) {
    let c = &i.results.schedule.config;
    let mut items = vec![(own_name.to_string(), i.color)];
    if i.twin() {
        items.push(("Resonance rounded".into(), TWIN_COLOR));
    }
    items.extend([
        (format!("L = {}", c.train_len), Color32::DARK_GREEN),
        (format!("L' = {}", c.eval_len), Color32::DARK_RED),
    ]);
    if has_critical {
        let crit = i.results.schedule.critical_feature;
        items.push((format!("critical feature c = {crit}"), CRITICAL_COLOR));
    }
    legend_row(ui, &items);
}

/// The wavelengths tab.
pub struct Wavelengths;

impl super::PlotTab for Wavelengths {
    fn draw(&self, ui: &mut Ui, i: &super::TabInput) {
        wavelengths(ui, i);
    }

    fn csv(&self, r: &Results, _: &Series, _: &AppState) -> Vec<(&'static str, String)> {
        vec![("wavelengths", series::wavelengths_csv(r))]
    }
}
