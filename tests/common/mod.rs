//! Helpers shared by the integration tests.

use resonance_lab::rope::Schedule;

/// The naive f32 formula `cos(p * theta)`, `sin(p * theta)` as many implementations compute it
/// (attention factor applied): what exact phases are compared against at large positions.
pub fn naive_f32_cos_sin(schedule: &Schedule, p: u64) -> (Vec<f32>, Vec<f32>) {
    let af = schedule.attention_factor as f32;
    schedule
        .inv_freq
        .iter()
        .map(|&inv| {
            let a = p as f32 * inv;
            (a.cos() * af, a.sin() * af)
        })
        .unzip()
}
