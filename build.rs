//! Build script: writes trimmed copies of the committed PosGen studies
//! (`results/posgen_study_*.json`) for the app to embed. The app shows each study's derived
//! statistics (summaries, comparisons, budget check) and counts its runs; the runs' own
//! per-position curves and validation losses are most of each file's bytes and would only
//! weigh down the web bundle, so they are emptied here. Nothing else changes: the statistics
//! the app shows are the committed file's, byte for byte in value.

use std::path::Path;

/// The studies the app embeds (file stems under `results/`).
const STUDIES: [&str; 5] = [
    "posgen_study_clean",
    "posgen_study_clean_2000",
    "posgen_study_clean_4000",
    "posgen_study_authors",
    "posgen_study_authors_2000",
];

/// Per-run fields the app does not read.
const HEAVY_RUN_FIELDS: [&str; 4] = [
    "per_position_accuracy",
    "val_loss",
    "loss_curve",
    "validation",
];

fn main() {
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|e| panic!("OUT_DIR: {e}"));
    for stem in STUDIES {
        let path = format!("results/{stem}.json");
        println!("cargo:rerun-if-changed={path}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut study: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        if let Some(runs) = study.get_mut("runs").and_then(|r| r.as_array_mut()) {
            for run in runs.iter_mut().filter_map(|r| r.as_object_mut()) {
                for field in HEAVY_RUN_FIELDS {
                    if let Some(v) = run.get_mut(field) {
                        *v = serde_json::Value::Array(Vec::new());
                    }
                }
            }
        }
        let trimmed = serde_json::to_string(&study).unwrap_or_else(|e| panic!("{path}: {e}"));
        let out = Path::new(&out_dir).join(format!("{stem}.json"));
        std::fs::write(&out, trimmed).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    }
}
