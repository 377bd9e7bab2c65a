//! The value of one feature over positions: an overview of the whole range `[0, L')` (the
//! min/max envelope per pixel bucket, which at L' = 131,072 is a filled band) above a detail
//! window that evaluates every position exactly, so single oscillations show at any L'. The
//! window moves by dragging, zooms by scrolling or pinching (around the pointer), resets on a
//! double click, follows the arrow keys and `+` / `-` while the pointer is over it, and jumps
//! to where a click on the overview lands; "at L" and "at L'" put it where training ends and
//! where evaluation does. Each change is an [`AppCommand::SetDetail`]; the window is part of
//! the permalink (`detail_start`, `detail_len`).

use super::{TRAIN_FILL, TWIN_COLOR, TabInput, hover, legend_row, side_plot};
use crate::app::commands::AppCommand;
use crate::app::compute::{self, DETAIL_MAX, DETAIL_MIN, Results};
use crate::app::series::{self, Series, config_name};
use crate::app::state::AppState;
use crate::rope::Phase;
use egui::{Color32, Ui};
use egui_plot::{Line, Plot, PlotPoints, Points, Span, VLine};

/// The detail window's colour in the overview.
const WINDOW_FILL: Color32 = Color32::from_rgba_premultiplied(60, 60, 10, 50);

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
    let (start, len) = compute::detail_window(
        &r.schedule,
        s.feature,
        i.state.detail_start,
        i.state.detail_len,
    );
    let h = (ui.available_height() - 40.0).max(200.0);
    overview(ui, i, h * 0.38, (start, len));
    window_buttons(ui, i, (start, len));
    detail(ui, i, h * 0.62, (start, len));
}

/// The whole range, as before; a click moves the detail window's centre there.
fn overview(ui: &mut Ui, i: &TabInput, height: f32, (start, len): (u64, u64)) {
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
            p.add(
                Span::new("detail window", start as f64..=(start + len) as f64)
                    .fill(WINDOW_FILL)
                    .border_width(1.0),
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
    if resp.response.clicked()
        && let Some(pos) = resp.response.interact_pointer_pos()
    {
        let x = resp.transform.value_from_position(pos).x.max(0.0) as u64;
        let _ = i.commands.send(AppCommand::SetDetail {
            start: x.saturating_sub(len / 2),
            len,
        });
    }
}

/// "at L", "at L'" and "reset" for the detail window, and its extent in words.
fn window_buttons(ui: &mut Ui, i: &TabInput, (start, len): (u64, u64)) {
    let c = &i.results.schedule.config;
    ui.horizontal_wrapped(|ui| {
        ui.label(format!("detail: positions {start} to {}", start + len - 1));
        let set = |start: u64, len: u64| {
            let _ = i.commands.send(AppCommand::SetDetail { start, len });
        };
        if ui.small_button("at L").clicked() {
            set(c.train_len.saturating_sub(len / 2), len);
        }
        if ui.small_button("at L'").clicked() {
            set(c.eval_len.saturating_sub(len), len);
        }
        if ui.small_button("reset").clicked() {
            set(0, 0);
        }
    });
}

/// The detail window: every position evaluated exactly (min/max per bucket past 2,400).
fn detail(ui: &mut Ui, i: &TabInput, height: f32, (start, len): (u64, u64)) {
    let (r, s) = (i.results, i.series);
    let f = s.feature;
    let c = &r.schedule.config;
    let curve = compute::detail_curve(&r.schedule, f, start, len);
    let twin = i
        .twin()
        .then(|| compute::detail_curve(&r.twin, f, start, len));
    let af = r.schedule.attention_factor.max(r.twin.attention_factor);
    let (phase, l) = (r.schedule.phases[f], c.train_len);
    let resp = Plot::new(("feature-detail", i.salt))
        .height(height)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .x_axis_label("position p (tokens), detail window")
        .y_axis_label(format!("cos(p theta_{f}) x af"))
        .label_formatter(move |h| {
            let (name, q) = hover(h);
            let p = q.x.round().max(0.0) as u64;
            let v = phase.angle(p).cos() * af;
            let seen = if seen_in_training(&phase, p, l) {
                "seen in training"
            } else {
                "never seen in training"
            };
            Some(format!("{name}p = {p}\nvalue {v:.6} ({seen})"))
        })
        .show(ui, |p| {
            p.set_plot_bounds_x(start as f64 - 0.5..=(start + len) as f64 - 0.5);
            p.set_plot_bounds_y(-1.1 * af..=1.1 * af);
            p.add(
                Span::new("training range [0, L)", 0.0..=l as f64)
                    .fill(TRAIN_FILL)
                    .border_width(0.0),
            );
            for (name, x, color) in [
                (format!("L = {l}"), l, Color32::DARK_GREEN),
                (
                    format!("L' = {}", c.eval_len),
                    c.eval_len,
                    Color32::DARK_RED,
                ),
            ] {
                if (start..=start + len).contains(&x) {
                    p.add(VLine::new(name, x as f64).color(color));
                }
            }
            let few = len <= 256;
            let name = config_name(&r.schedule);
            if few {
                p.add(
                    Points::new(
                        format!("{name} at each position"),
                        PlotPoints::new(curve.clone()),
                    )
                    .color(i.color)
                    .radius(2.0),
                );
            }
            p.add(Line::new(name, PlotPoints::new(curve)).color(i.color));
            if let Some(t) = twin {
                p.add(Line::new(config_name(&r.twin), PlotPoints::new(t)).color(TWIN_COLOR));
            }
        });
    if let Some(w) = window_input(ui, &resp, (start, len)) {
        let _ = i.commands.send(AppCommand::SetDetail {
            start: w.0,
            len: w.1,
        });
    }
}

/// The window the pointer and keys ask for, if they changed it: a drag pans, scrolling or a
/// pinch zooms around the pointer, a double click resets (`len` 0), and while the pointer is
/// over the plot the arrow keys pan by a tenth and `+` / `-` zoom by two.
fn window_input(
    ui: &Ui,
    resp: &egui_plot::PlotResponse<()>,
    (start, len): (u64, u64),
) -> Option<(u64, u64)> {
    let r = &resp.response;
    if r.double_clicked() {
        return Some((0, 0));
    }
    let width = r.rect.width().max(1.0) as f64;
    let per_px = len as f64 / width;
    let mut s = start as f64;
    let mut n = len as f64;
    if r.dragged() {
        s -= r.drag_delta().x as f64 * per_px;
    }
    if r.hovered() {
        let (scroll, pinch, keys) = ui.input(|inp| {
            let k = |key| inp.key_pressed(key);
            (
                inp.smooth_scroll_delta.y as f64,
                inp.zoom_delta() as f64,
                (
                    k(egui::Key::ArrowLeft),
                    k(egui::Key::ArrowRight),
                    k(egui::Key::Plus) || k(egui::Key::Equals),
                    k(egui::Key::Minus),
                ),
            )
        });
        let (left, right, zoom_in, zoom_out) = keys;
        let mut factor = (-scroll * 0.003).exp() / pinch;
        if zoom_in {
            factor *= 0.5;
        }
        if zoom_out {
            factor *= 2.0;
        }
        if factor != 1.0 {
            let anchor = r
                .hover_pos()
                .map(|p| resp.transform.value_from_position(p).x)
                .unwrap_or(s + n / 2.0);
            let new_n = (n * factor).clamp(DETAIL_MIN as f64, DETAIL_MAX as f64);
            s = anchor - (anchor - s) * new_n / n;
            n = new_n;
        }
        if left {
            s -= n / 10.0;
        }
        if right {
            s += n / 10.0;
        }
    }
    let w = (s.max(0.0).round() as u64, n.round() as u64);
    (w != (start, len)).then_some(w)
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
}
