//! The detail window shared by the feature-value and gap tabs: one window `[start, start +
//! len)` of positions (the permalink's `detail_start`, `detail_len`), evaluated exactly at
//! every position, under an overview of the whole range. A drag pans it, scrolling or a pinch
//! zooms around the pointer, a double click resets it, the arrow keys and `+` / `-` move and
//! zoom it while the pointer is over it, and a click on the overview centres it there; every
//! change is an [`AppCommand::SetDetail`]. Curves are cached in egui's memory by what they
//! depend on, so a still frame evaluates nothing.

use super::{TRAIN_FILL, TabInput, hover};
use crate::app::commands::AppCommand;
use crate::app::compute::{DETAIL_MAX, DETAIL_MIN};
use egui::{Color32, Id, Ui};
use egui_plot::{Line, Plot, PlotPoints, PlotResponse, Points, Span, VLine};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The detail window's colour in the overview.
pub const WINDOW_FILL: Color32 = Color32::from_rgba_premultiplied(60, 60, 10, 50);

/// A drawn curve, shared between the frames that draw it unchanged.
pub type Curve = Arc<Vec<[f64; 2]>>;

/// The curve `compute` gives for `key`, computed on the first frame that asks and kept until
/// a frame asks with another key (the window, the feature, the results generation).
pub fn cached_curve(
    ctx: &egui::Context,
    id: Id,
    key: impl Hash,
    compute: impl FnOnce() -> Vec<[f64; 2]>,
) -> Curve {
    let key = {
        let mut h = std::hash::DefaultHasher::new();
        key.hash(&mut h);
        h.finish()
    };
    if let Some((k, c)) = ctx.data(|d| d.get_temp::<(u64, Curve)>(id))
        && k == key
    {
        return c;
    }
    let c: Curve = Arc::new(compute());
    ctx.data_mut(|d| d.insert_temp(id, (key, c.clone())));
    c
}

/// Where the overview puts the detail window: its span, to draw in the overview plot.
pub fn window_span((start, len): (u64, u64)) -> Span {
    Span::new("detail window", start as f64..=(start + len) as f64)
        .fill(WINDOW_FILL)
        .border_width(1.0)
}

/// A click on the overview centres the detail window where it lands.
pub fn overview_click(resp: &PlotResponse<()>, i: &TabInput, len: u64) {
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

/// "at L", "at L'", any `extra` (label, centre) buttons, and "reset" for the detail window,
/// with its extent in words.
pub fn window_buttons(ui: &mut Ui, i: &TabInput, (start, len): (u64, u64), extra: &[(&str, u64)]) {
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
        for (label, centre) in extra {
            if ui.small_button(*label).clicked() {
                set(centre.saturating_sub(len / 2), len);
            }
        }
        if ui.small_button("reset").clicked() {
            set(0, 0);
        }
    });
}

/// One series of a detail plot.
pub struct DetailSeries {
    /// Legend and hover name.
    pub name: String,
    /// Line colour.
    pub color: Color32,
    /// The curve over the window.
    pub curve: Curve,
}

/// The detail plot `kind` of one side: the window's curves with the training range shaded and
/// L and L' marked where they fall inside it, a point per position when there are few,
/// `readout(p)` under the pointer, and the window's pointer and key input turned into
/// [`AppCommand::SetDetail`].
#[allow(clippy::too_many_arguments)]
pub fn detail_plot(
    ui: &mut Ui,
    i: &TabInput,
    kind: &'static str,
    height: f32,
    (start, len): (u64, u64),
    (y_label, y_range): (String, std::ops::RangeInclusive<f64>),
    series: &[DetailSeries],
    readout: impl Fn(u64) -> String + 'static,
) {
    let c = &i.results.schedule.config;
    let l = c.train_len;
    let resp = Plot::new((kind, i.salt))
        .height(height)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .x_axis_label("position p (tokens), detail window")
        .y_axis_label(y_label)
        .label_formatter(move |h| {
            let (name, q) = hover(h);
            let p = q.x.round().max(0.0) as u64;
            Some(format!("{name}p = {p}\n{}", readout(p)))
        })
        .show(ui, |p| {
            p.set_plot_bounds_x(start as f64 - 0.5..=(start + len) as f64 - 0.5);
            p.set_plot_bounds_y(y_range);
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
            for (k, s) in series.iter().enumerate() {
                if k == 0 && len <= 256 {
                    p.add(
                        Points::new(
                            format!("{} at each position", s.name),
                            PlotPoints::new(s.curve.to_vec()),
                        )
                        .color(s.color)
                        .radius(2.0),
                    );
                }
                p.add(Line::new(s.name.clone(), PlotPoints::new(s.curve.to_vec())).color(s.color));
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
fn window_input(ui: &Ui, resp: &PlotResponse<()>, (start, len): (u64, u64)) -> Option<(u64, u64)> {
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
