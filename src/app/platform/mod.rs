//! The small platform layer: what the app's modules need from the machine they run on (saving
//! a file, reading a dropped one or a bundle file, a training worker, per-frame page work), natively or in the
//! browser. It depends only on the modules below the panels (commands, messages, the worker
//! protocol), never on the panels or the app root.

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(not(target_arch = "wasm32"))]
pub use native::{TrainWorker, after_frame, fetch_bytes, fetch_text, read_dropped, save_file};
#[cfg(target_arch = "wasm32")]
pub use web::{
    TrainWorker, after_frame, export, fail, fetch_bytes, fetch_text, install_worker_api,
    read_dropped, save_file,
};
