//! resonance-lab: Resonance RoPE and the RoPE context-extension schedules it builds on (PI, NTK,
//! YaRN, Llama-3), made visible and testable.
//!
//! Modules depend one way: `rope` (pure math) <- `gpu` (WGSL compute), `posgen` (benchmark and
//! tiny transformer) <- `app` (egui UI) and `cli` (headless JSON).

pub mod app;
#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod gguf;
pub mod gpu;
pub mod lm;
pub mod posgen;
pub mod rope;
