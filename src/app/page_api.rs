//! What the page's JS API (`window.resonanceLab`) and the tests read: the [`Published`] record
//! each frame writes. The API's installation in the page is the web entry point's job
//! ([`super::web`]); the record itself is the same on every platform.

use super::self_check::SelfCheck;
use serde::Serialize;

/// What the app publishes every frame for the page (JS API) and for tests.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Published {
    /// The app state as JSON.
    pub state_json: String,
    /// The app state in URL-hash form.
    pub hash: String,
    /// Rendering backend, e.g. "WebGPU" or "WebGL2".
    pub render_backend: String,
    /// Compute backend label.
    pub compute_backend: String,
    /// Where the plot on screen was computed (`this plot: ...` in the status bar).
    pub plot_source: Option<String>,
    /// Frames drawn so far.
    pub frames: u64,
    /// Milliseconds of the last computation.
    pub compute_ms: f64,
    /// Milliseconds the previous frame spent in the app's `draw` (CPU; excludes rendering).
    pub frame_ms: f64,
    /// The current validation error, if any.
    pub error: Option<String>,
    /// The status bar's message (an export, or what of a URL could not be applied).
    pub message: Option<String>,
    /// `"narrow"` (below [`super::NARROW_WIDTH`]) or `"wide"`.
    pub layout: &'static str,
    /// Whether the controls are on screen (always in the wide layout; behind a button in the
    /// narrow one, closed by default).
    pub side_panel_open: bool,
    /// The latest parity self-check (`resonanceLab.selfCheck()`).
    #[serde(skip)]
    pub self_check: Option<SelfCheck>,
    /// The model section's last load error (`None` after a good load).
    pub model_error: Option<String>,
    /// The status bar's words for the loaded model (name, layer type, whether B is its twin).
    pub model_status: Option<String>,
    /// The feature-value tab's detail window as drawn for A (`None` on other tabs).
    pub detail: Option<DetailStatus>,
    /// Height of the status bar in points (one line unless its full text was opened).
    pub status_height: f32,
    /// The Stacks tab's audit as drawn (`None` on other tabs): context, twin choice, each
    /// stack's support and attention factor, the differences.
    pub stacks: Option<serde_json::Value>,
    /// The Language model tab as drawn (`None` on other tabs): the corpus shown, its runs, and
    /// each paired difference's verdict.
    pub lm: Option<serde_json::Value>,
    /// The PosGen tab's runs (`resonanceLab.posgen()`).
    #[serde(skip)]
    pub posgen: serde_json::Value,
}

/// What the detail window of the feature-value and gap tabs shows, for scripts and tests.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DetailStatus {
    /// First position of the window.
    pub start: u64,
    /// Positions in the window.
    pub len: u64,
    /// The selected feature.
    pub feature: usize,
    /// That feature's angle per token as the schedule uses it (its f32 frequency), radians.
    pub theta: f64,
    /// Sign changes of A's drawn feature-value curve across the window.
    pub zero_crossings: usize,
    /// The largest gap (radians) of A's drawn gap curve in the window (gap tab only).
    pub gap_max: Option<f64>,
}
