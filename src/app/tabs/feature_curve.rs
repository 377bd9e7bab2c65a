//! The value of one feature over positions: an overview of the whole range `[0, L')` (the
//! min/max envelope per pixel bucket, which at L' = 131,072 is a filled band) above a detail
//! window that evaluates every position exactly, so single oscillations show at any L'
//! ([`super::detail`]: drag, zoom, keys, double click; "at L" and "at L'" put it where
//! training ends and where evaluation does).

use super::detail::{self, Curve, DetailSeries};
use super::{TRAIN_FILL, TWIN_COLOR, TabInput, hover, legend_row, side_plot};
use crate::app::compute::{self, Results};
use crate::app::series::{self, Series, config_name};
use crate::app::state::AppState;
use crate::rope::Phase;
use egui::{Color32, Ui};
use egui_plot::{Line, PlotPoints, Span};

/// Whether the value feature `phase` takes at position `p` is one it took in training
/// (at some position below `l`), decided exactly on the phase's integer form.
pub fn seen_in_training(phase: &Phase, p: u64, l: u64) -> bool {
    if p < l {
        return true;
    }
    match *phase {
        Phase::Integer { lambda } => lambda <= l || p % lambda < l,
        // p' < l with (p - p') * alpha = 0 mod 2^64: p - p' a multiple of 2^(64 - tz(alpha))
        Phase::Fixed { alpha } => {
            if alpha == 0 {
                return true;
            }
            let m = 1u128 << (64 - alpha.trailing_zeros());
            let p = u128::from(p);
            (p / m) * m + u128::from(l) > p
        }
    }
}

/// The detail curve of feature `f` of side `salt` (its configuration, or with `twin` its
/// Resonance twin) over `window`, cached by results generation, feature and window: the tab
/// draws it and the page API counts its zero crossings from the same copy.
pub fn detail_curve(
    ctx: &egui::Context,
    salt: &str,
    r: &Results,
    (f, twin): (usize, bool),
    window: (u64, u64),
) -> Curve {
    let id = egui::Id::unique(("feature-detail-curve", salt, twin));
    detail::cached_curve(ctx, id, (r.generation, f, window), || {
        let s = if twin { &r.twin } else { &r.schedule };
        compute::detail_curve(s, f, window.0, window.1)
    })
}

/// Plot 3: feature value (cos, attention factor applied) of the selected feature: the
/// overview with the training range shaded and the detail window marked, then the window.
pub fn feature_curve(ui: &mut Ui, i: &TabInput) {
    let (r, s) = (i.results, i.series);
    let mut items = vec![(config_name(&r.schedule), i.color)];
    if i.twin() {
        items.push((config_name(&r.twin), TWIN_COLOR));
    }
    items.push((
        "training range [0, L)".into(),
        Color32::from_rgb(150, 200, 150),
    ));
    items.push(("detail window".into(), Color32::from_rgb(200, 200, 90)));
    legend_row(ui, &items);
    let window = compute::detail_window(
        &r.schedule,
        s.feature,
        i.state.detail_start,
        i.state.detail_len,
    );
    let h = (ui.available_height() - 40.0).max(200.0);
    overview(ui, i, h * 0.38, window);
    detail::window_buttons(ui, i, window, &[]);
    detail_view(ui, i, h * 0.62, window);
}

/// The whole range, as before; a click moves the detail window's centre there.
fn overview(ui: &mut Ui, i: &TabInput, height: f32, window: (u64, u64)) {
    let (r, s) = (i.results, i.series);
    let l = r.schedule.config.train_len as f64;
    let resp = side_plot("feature", i)
        .height(height)
        .x_axis_label("position p (tokens), whole range")
        .y_axis_label(format!("cos(p theta_{}) x af", s.feature))
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
            p.add(detail::window_span(window));
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
    detail::overview_click(&resp, i, window.1);
}

/// The detail window: every position evaluated exactly (min/max per bucket past 2,400).
fn detail_view(ui: &mut Ui, i: &TabInput, height: f32, window: (u64, u64)) {
    let r = i.results;
    let f = i.series.feature;
    let ctx = ui.ctx().clone();
    let mut series = vec![DetailSeries {
        name: config_name(&r.schedule),
        color: i.color,
        curve: detail_curve(&ctx, i.salt, r, (f, false), window),
    }];
    if i.twin() {
        series.push(DetailSeries {
            name: config_name(&r.twin),
            color: TWIN_COLOR,
            curve: detail_curve(&ctx, i.salt, r, (f, true), window),
        });
    }
    let af = r.schedule.attention_factor.max(r.twin.attention_factor);
    let (phase, l, own_af) = (
        r.schedule.phases[f],
        r.schedule.config.train_len,
        r.schedule.attention_factor,
    );
    detail::detail_plot(
        ui,
        i,
        "feature-detail",
        height,
        window,
        (format!("cos(p theta_{f}) x af"), -1.1 * af..=1.1 * af),
        &series,
        move |p| {
            let v = phase.angle(p).cos() * own_af;
            let seen = if seen_in_training(&phase, p, l) {
                "seen in training"
            } else {
                "never seen in training"
            };
            format!("value {v:.6} ({seen})")
        },
    );
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

#[cfg(test)]
mod tests {
    use super::seen_in_training;
    use crate::rope::Phase;

    #[test]
    fn seen_in_training_is_exact_for_both_phase_forms() {
        // wavelength 10, trained to 4: residues 0..4 were seen
        let p = Phase::Integer { lambda: 10 };
        assert!(seen_in_training(&p, 3, 4));
        assert!(seen_in_training(&p, 23, 4) && !seen_in_training(&p, 25, 4));
        assert!(seen_in_training(
            &Phase::Integer { lambda: 4 },
            1_000_001,
            4
        ));
        // a quarter turn per token (alpha = 2^62): period 4, so everything past L = 4 repeats
        let q = Phase::Fixed { alpha: 1 << 62 };
        assert!(seen_in_training(&q, 1_000_003, 4) && !seen_in_training(&q, 1_000_003, 3));
        // an odd alpha never repeats within 2^64 positions
        let odd = Phase::Fixed {
            alpha: 0x9e37_79b9_7f4a_7c15,
        };
        assert!(seen_in_training(&odd, 63, 64) && !seen_in_training(&odd, 64, 64));
        assert!(seen_in_training(&Phase::Fixed { alpha: 0 }, 1 << 40, 1));
    }

    /// Two independent decisions agree at every position: the closed form above, and the
    /// detail gap curve (a window minimum of exact keys) being 0, for RoPE and YaRN features
    /// at Llama 2 scale, around L and far past it.
    #[test]
    fn a_zero_gap_is_exactly_a_seen_angle() {
        use crate::app::compute::detail_gap_curve;
        use crate::rope::{Method, Schedule, ScheduleConfig};
        for method in [Method::ROPE, Method::YARN] {
            let c = ScheduleConfig::with_lengths(method, 128, 1e4, 4096, 1 << 20);
            let s = Schedule::new(&c).unwrap();
            for f in [0, 10, 30, 40, 50, 63] {
                for start in [4000u64, 100_000, (1 << 20) - 2000] {
                    let curve = detail_gap_curve(&s, f, start, 2000);
                    assert_eq!(curve.len(), 2000);
                    for q in &curve {
                        let p = q[0] as u64;
                        assert_eq!(
                            q[1] == 0.0,
                            seen_in_training(&s.phases[f], p, 4096),
                            "{method:?} feature {f} p {p}: gap {}",
                            q[1]
                        );
                    }
                }
            }
        }
    }
}
