//! One file per plot tab, each drawing one side into the given `Ui` (`salt` keeps plot ids
//! distinct in compare mode), saying which CSV files its data exports to and where its data was
//! computed. [`plot_tab`] is the one place that maps a [`Tab`] to its view.
//!
//! Alone, a side shows its configuration and that configuration's Resonance twin. In compare
//! mode each panel shows its own configuration only (A in A's colour in A's panel, B in B's in
//! B's) on the same axes as the other panel (linked plots), so the two panels compare rather
//! than repeat each other. Legends sit above the plots, outside the data.

pub mod detail;
pub mod feature_curve;
pub mod gap;
pub mod heatmap;
pub mod pairs;
pub mod phase_wheel;
pub mod wavelengths;

use super::compute::Results;
use super::series::Series;
use super::state::{AppState, Tab};
use egui::{Color32, Ui};
use egui_plot::{HoverPosition, Plot, PlotPoint};

/// Colour of the configuration's own series.
pub const CONFIG_COLOR: Color32 = Color32::from_rgb(52, 120, 220);
/// Colour of the Resonance twin's series.
pub const TWIN_COLOR: Color32 = Color32::from_rgb(235, 130, 30);
pub(super) const PRE_FILL: Color32 = Color32::from_rgba_premultiplied(12, 34, 12, 40);
pub(super) const POST_FILL: Color32 = Color32::from_rgba_premultiplied(26, 9, 9, 30);
pub(super) const TRAIN_FILL: Color32 = Color32::from_rgba_premultiplied(12, 34, 12, 40);

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
pub(super) fn hover(h: &HoverPosition<'_>) -> (String, PlotPoint) {
    match *h {
        HoverPosition::NearDataPoint {
            plot_name,
            position,
            ..
        } => (format!("{plot_name}\n"), position),
        HoverPosition::Elsewhere { position } => (String::new(), position),
    }
}

/// A legend above a plot, outside its data: a swatch in each series' colour and its name.
pub(super) fn legend_row(ui: &mut Ui, items: &[(String, Color32)]) {
    ui.horizontal_wrapped(|ui| {
        for (name, color) in items {
            let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
            ui.painter().rect_filled(rect, 2.0, *color);
            ui.label(egui::RichText::new(name).size(12.0));
            ui.add_space(6.0);
        }
    });
}

/// The plot `kind` of one side; in compare mode A's and B's plots of a kind share their axes
/// (zooming or panning one moves the other) and the hover cursor's position.
pub(super) fn side_plot<'a>(kind: &'static str, i: &TabInput) -> Plot<'a> {
    let p = Plot::new((kind, i.salt));
    if i.compare {
        p.link_axis(egui::Id::unique(("compare-axes", kind)), [true, true])
            .link_cursor(egui::Id::unique(("compare-cursor", kind)), [true, true])
    } else {
        p
    }
}

/// What a plot tab draws from: one side's results and series, the view state, and the heatmap
/// texture when the tab asks for one.
pub struct TabInput<'a> {
    /// The side's results.
    pub results: &'a Results,
    /// The side's plot-ready series.
    pub series: &'a Series,
    /// The view state (selected feature, probe position, ...).
    pub state: &'a AppState,
    /// Distinguishes A's plot ids from B's.
    pub salt: &'a str,
    /// The cos raster as a texture ([`PlotTab::needs_texture`] tabs only).
    pub texture: Option<&'a egui::TextureHandle>,
    /// Compare mode: draw this side's configuration only (no twin), on axes shared with the
    /// other side's panel.
    pub compare: bool,
    /// The colour of this side's configuration (A's or B's).
    pub color: Color32,
    /// Where the tab's own controls (the detail window's drag, zoom and keys) send changes.
    pub commands: &'a super::commands::CommandSender,
}

impl TabInput<'_> {
    /// Whether the panel overlays the configuration's Resonance twin (not in compare mode).
    pub fn twin(&self) -> bool {
        !self.compare
    }
}

/// Where a tab's data was computed, for the status bar.
pub struct Sources<'a> {
    /// What computed the gap (`GPU <adapter>` or the CPU path).
    pub gap: &'a str,
    /// The GPU that computed the heatmap's raster, when it did.
    pub raster_gpu: Option<&'a str>,
}

/// One plot tab.
pub trait PlotTab {
    /// Draws one side.
    fn draw(&self, ui: &mut Ui, input: &TabInput);
    /// The CSV files of the tab's data for one side: (file-name part, contents).
    fn csv(&self, r: &Results, s: &Series, st: &AppState) -> Vec<(&'static str, String)>;
    /// Where the data on screen was computed.
    fn source(&self, sources: &Sources) -> String {
        let _ = sources;
        super::compute::CPU_LABEL.to_string()
    }
    /// Whether [`TabInput::texture`] must hold the cos raster.
    fn needs_texture(&self) -> bool {
        false
    }
}

/// The view of a plot tab; `None` for the PosGen tab, which is not drawn per side.
pub fn plot_tab(tab: Tab) -> Option<&'static dyn PlotTab> {
    Some(match tab {
        Tab::Wavelengths => &wavelengths::Wavelengths,
        Tab::PhaseWheel => &phase_wheel::PhaseWheel,
        Tab::FeatureCurve => &feature_curve::FeatureCurve,
        Tab::Gap => &gap::Gap,
        Tab::Heatmap => &heatmap::Heatmap,
        Tab::Pairs => &pairs::Pairs,
        Tab::PosGen | Tab::Stacks | Tab::LanguageModel => return None,
    })
}
