//! The six plots. Each draws one side (a configuration and its Resonance twin) into the given
//! `Ui`; `salt` keeps plot ids distinct in compare mode.

use super::compute::Results;
use super::series::{Series, config_name};
use crate::rope::PairLayout;
use egui::{Color32, RichText, Ui};
use egui_plot::{
    Bar, BarChart, HLine, HoverPosition, Legend, Line, MarkerShape, Plot, PlotImage, PlotPoint,
    PlotPoints, Points, Span, Text, VLine,
};
use std::f64::consts::PI;

/// Colour of the configuration's own series.
pub const CONFIG_COLOR: Color32 = Color32::from_rgb(52, 120, 220);
/// Colour of the Resonance twin's series.
pub const TWIN_COLOR: Color32 = Color32::from_rgb(235, 130, 30);
const PRE_FILL: Color32 = Color32::from_rgba_premultiplied(12, 34, 12, 40);
const POST_FILL: Color32 = Color32::from_rgba_premultiplied(26, 9, 9, 30);
const TRAIN_FILL: Color32 = Color32::from_rgba_premultiplied(12, 34, 12, 40);

/// `10^v` formatted compactly for log-axis tick labels.
pub fn pow10_label(v: f64) -> String {
    let x = 10f64.powf(v);
    if (v - v.round()).abs() < 1e-9 {
        let k = v.round() as i32;
        if (0..=6).contains(&k) {
            format!("{}", 10u64.pow(k as u32))
        } else {
            format!("1e{k}")
        }
    } else if !(1e-2..1e6).contains(&x) {
        format!("{x:.2e}")
    } else {
        format!("{x:.3}")
    }
}

/// The hovered series name (with a trailing newline, empty when none) and plot position.
fn hover(h: &HoverPosition<'_>) -> (String, PlotPoint) {
    match *h {
        HoverPosition::NearDataPoint {
            plot_name,
            position,
            ..
        } => (format!("{plot_name}\n"), position),
        HoverPosition::Elsewhere { position } => (String::new(), position),
    }
}

fn legend() -> Legend {
    Legend::default().position(egui_plot::Corner::LeftTop)
}

/// Plot 1: wavelength per feature on a log axis, raw vs rounded, with L and L' lines,
/// pre/post-critical shading and the critical feature marked.
pub fn wavelengths(ui: &mut Ui, salt: &str, r: &Results) {
    let (raw, rounded) = r.raw_and_rounded();
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
    Plot::new(("wavelengths", salt))
        .legend(legend())
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
            p.add(
                Line::new(
                    format!("raw ({})", raw.config.method),
                    PlotPoints::new(pts(raw)),
                )
                .color(CONFIG_COLOR),
            );
            p.add(
                Points::new("raw points", PlotPoints::new(pts(raw)))
                    .color(CONFIG_COLOR)
                    .radius(2.5),
            );
            p.add(
                Line::new("Resonance rounded", PlotPoints::new(pts(rounded)))
                    .color(TWIN_COLOR)
                    .style(egui_plot::LineStyle::dashed_dense()),
            );
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
                        .color(Color32::from_rgb(160, 60, 200))
                        .width(2.0),
                );
            }
        });
}

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
/// twin side by side in one plot (the twin is shifted right by 2.6).
pub fn phase_wheel(ui: &mut Ui, salt: &str, r: &Results, s: &Series) {
    let i = s.feature;
    Plot::new(("wheel", salt))
        .legend(legend())
        .data_aspect(1.0)
        .x_axis_label("cos(angle)")
        .y_axis_label("sin(angle)")
        .show(ui, |p| {
            for (k, (sch, w)) in [(&r.schedule, &s.wheel), (&r.twin, &s.twin_wheel)]
                .into_iter()
                .enumerate()
            {
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

/// Plot 4: interpolation gap per feature (bars, config vs twin) above the gap curve of the
/// selected feature over OOD positions.
pub fn gap(ui: &mut Ui, salt: &str, r: &Results, s: &Series) {
    let h = (ui.available_height() - 8.0).max(120.0) / 2.0;
    let bars = |g: &[f64], off: f64| -> Vec<Bar> {
        g.iter()
            .enumerate()
            .map(|(i, &v)| {
                Bar::new(i as f64 + off, v)
                    .width(0.4)
                    .name(format!("feature {i}"))
            })
            .collect()
    };
    Plot::new(("gap-bars", salt))
        .legend(legend())
        .height(h)
        .x_axis_label("feature index i")
        .y_axis_label("gap (rad)")
        .show(ui, |p| {
            p.add(
                BarChart::new(config_name(&r.schedule), bars(&r.gap.gap, -0.2)).color(CONFIG_COLOR),
            );
            p.add(
                BarChart::new(config_name(&r.twin), bars(&r.twin_gap.gap, 0.2)).color(TWIN_COLOR),
            );
            p.add(VLine::new("selected feature", s.feature as f64).color(Color32::GRAY));
        });
    Plot::new(("gap-curve", salt))
        .legend(legend())
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
                .color(CONFIG_COLOR),
            );
            p.add(
                Line::new(
                    config_name(&r.twin),
                    PlotPoints::new(s.twin_gap_curve.clone()),
                )
                .color(TWIN_COLOR),
            );
        });
}

/// Diverging colour map for values in [-1, 1]: blue (-1), white (0), red (+1).
pub fn diverging(v: f32) -> Color32 {
    let t = v.clamp(-1.0, 1.0);
    let (r, g, b) = if t >= 0.0 {
        (1.0, 1.0 - t, 1.0 - t)
    } else {
        (1.0 + t, 1.0 + t, 1.0)
    };
    Color32::from_rgb((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}

/// The heatmap raster as an image: x = position column, y = feature (feature 0 at the bottom).
pub fn heatmap_image(heat: &[f32], cols: usize, num_features: usize) -> egui::ColorImage {
    let w = cols;
    let mut pixels = Vec::with_capacity(w * num_features);
    for row in 0..num_features {
        let f = num_features - 1 - row;
        for c in 0..w {
            pixels.push(diverging(heat[f * w + c]));
        }
    }
    egui::ColorImage::new([w, num_features], pixels)
}

/// Plot 5: heatmap of cos(angle) over positions x features, drawn from `texture`.
pub fn heatmap(ui: &mut Ui, salt: &str, r: &Results, texture: &egui::TextureHandle) {
    let c = &r.schedule.config;
    let (lp, n) = (c.eval_len as f64, r.schedule.num_features() as f64);
    let af = r.schedule.attention_factor;
    Plot::new(("heatmap", salt))
        .legend(legend())
        .x_axis_label("position p (tokens)")
        .y_axis_label("feature index i")
        .label_formatter(|h| {
            let (name, q) = hover(h);
            Some(format!("{name}p = {:.0}, feature {:.0}", q.x, q.y.floor()))
        })
        .show(ui, |p| {
            p.add(PlotImage::new(
                format!("cos(angle) x {af:.3}: blue -1, white 0, red +1"),
                texture.id(),
                PlotPoint::new(lp / 2.0, n / 2.0),
                [lp as f32, n as f32],
            ));
            p.add(
                VLine::new(format!("L = {}", c.train_len), c.train_len as f64)
                    .color(Color32::BLACK),
            );
        });
}

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
pub fn pairs(ui: &mut Ui, salt: &str, r: &Results, feature: usize, position: u64) {
    let p = super::series::pair_layouts(&r.schedule, position);
    let h = (ui.available_height() - 8.0).max(120.0) / 2.0;
    let configured = r.schedule.config.layout;
    let colors = [CONFIG_COLOR, TWIN_COLOR];
    let dim = r.schedule.config.dim;
    Plot::new(("pairs-map", salt))
        .legend(legend())
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
    Plot::new(("pairs-rotation", salt))
        .legend(legend())
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
