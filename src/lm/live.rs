//! Scoring a pasted text live: the lab's shipped model (weights as safetensors bytes) reads the
//! text in windows of up to s x L bytes, once per schedule (RoPE, YaRN and Resonance YaRN,
//! zero-shot), and reports the loss at each position of the window. The work is cut into units
//! of one window of one schedule, so a caller (a Web Worker, a thread, or a frame) can run it in
//! time slices and show progress. Same scoring as `lm eval`: [`window_losses`] and [`Tally`].

use super::checkpoint::{RopeSpec, load_model};
use super::error::LmError;
use super::eval::{Tally, window_losses};
use super::preset::{LmPreset, LmPresetName};
use super::tokens;
use crate::posgen::study::{Estimate, estimate};
use crate::posgen::{Model, RopeTables};
use serde::{Deserialize, Serialize};
use web_time::Instant;

/// Most windows of the text scored per schedule (a long text is scored from its start).
pub const MAX_WINDOWS: usize = 32;

/// Longest window a scoring accepts (16 x L of the `small` preset).
pub const MAX_LENGTH: usize = 2048;

/// Scale factor of the live YaRN schedules (the study's s): windows reach s x L.
pub const LIVE_SCALE: f64 = 4.0;

/// What to score: a text and the model that reads it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextScoreJob {
    /// The text (its UTF-8 bytes are the tokens, after BOS).
    pub text: String,
    /// The model's weights (`model.safetensors` of a checkpoint).
    pub weights: Vec<u8>,
    /// The preset the weights belong to.
    pub preset: LmPresetName,
    /// Window length, 1..=[`MAX_LENGTH`] (a shorter text gets one window of its length).
    pub length: usize,
}

/// Whether `length` is a window length a scoring accepts; the error says why not.
pub fn check_length(length: usize) -> Result<(), String> {
    if (1..=MAX_LENGTH).contains(&length) {
        Ok(())
    } else {
        Err(format!("{length} is not in 1..={MAX_LENGTH}"))
    }
}

/// The default window length for a model of `preset`: s x L, where YaRN's scaled range ends.
pub fn default_length(preset: LmPresetName) -> usize {
    (LIVE_SCALE * LmPreset::get(preset).train_len as f64) as usize
}

/// The schedules the live scoring compares, in display order: RoPE as pretrained, then YaRN and
/// Resonance YaRN at [`LIVE_SCALE`], zero-shot.
pub fn live_arms() -> [RopeSpec; 3] {
    let yarn = |resonance| RopeSpec {
        method: "yarn".into(),
        resonance,
        scale: LIVE_SCALE,
    };
    [RopeSpec::rope(false), yarn(false), yarn(true)]
}

/// One schedule's score on the text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmTextScore {
    /// The schedule.
    pub rope: RopeSpec,
    /// Its label, e.g. `Resonance YaRN s=4`.
    pub label: String,
    /// Mean loss (nats per byte) at each position of the window.
    pub loss_per_position: Vec<f64>,
    /// Mean loss over positions below L (the trained lengths).
    pub loss_within: Option<f64>,
    /// Mean loss over positions L and beyond (`None` when the window is not longer than L).
    pub loss_beyond: Option<f64>,
    /// Mean loss over the whole window.
    pub loss: f64,
    /// Mean loss past L over the windows, with its 95% interval (windows of one text are not
    /// independent samples: a guide, not a study).
    pub beyond_by_window: Option<Estimate>,
}

/// The score of every schedule on one text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextScoreResult {
    /// Pretraining length L of the model.
    pub train_len: usize,
    /// Window length (s x L, or shorter for a short text).
    pub length: usize,
    /// Windows scored per schedule.
    pub windows: usize,
    /// Bytes of the text.
    pub text_bytes: usize,
    /// Byte targets scored per schedule.
    pub targets: usize,
    /// Per schedule, in [`live_arms`] order.
    pub arms: Vec<ArmTextScore>,
    /// Resonance YaRN minus YaRN of the loss past L, paired by window, with its 95% interval.
    pub resonance_minus_yarn_beyond: Option<Estimate>,
    /// Seconds of scoring (the model's forward passes, not the time between slices).
    pub seconds: f64,
    /// Tokens through the model per second of scoring.
    pub tokens_per_second: f64,
}

/// A text being scored, one unit (a window under one schedule) at a time.
pub struct TextScoring {
    model: Model,
    train_len: usize,
    tokens: Vec<u16>,
    length: usize,
    windows: usize,
    arms: Vec<(RopeSpec, RopeTables, Tally)>,
    /// Per schedule, the mean loss past L of each window scored.
    beyond: Vec<Vec<f64>>,
    next: usize,
    seconds: f64,
}

impl TextScoring {
    /// Loads the model and prepares the schedules; bad weights or an empty text are errors.
    pub fn new(job: &TextScoreJob) -> Result<TextScoring, LmError> {
        if job.text.is_empty() {
            return Err(LmError::Usage("the text is empty: nothing to score".into()));
        }
        check_length(job.length).map_err(|e| LmError::Usage(format!("invalid --length: {e}")))?;
        let preset = LmPreset::get(job.preset);
        let model = load_model(&job.weights, job.preset, "weights")?;
        let tokens = tokens::encode(job.text.as_bytes());
        let length = job.length.min(tokens.len() - 1);
        let windows = ((tokens.len() - 1) / length).min(MAX_WINDOWS);
        let arms = live_arms()
            .into_iter()
            .map(|spec| {
                let schedule = spec.schedule(&preset)?;
                let tables = RopeTables::new(&schedule, length);
                Ok((spec, tables, Tally::new(length)))
            })
            .collect::<Result<Vec<_>, LmError>>()?;
        Ok(TextScoring {
            model,
            train_len: preset.train_len,
            tokens,
            length,
            windows,
            beyond: vec![Vec::new(); arms.len()],
            arms,
            next: 0,
            seconds: 0.0,
        })
    }

    /// Units done and in all (one unit: one window under one schedule).
    pub fn progress(&self) -> (usize, usize) {
        (self.next, self.windows * self.arms.len())
    }

    /// Every unit is done.
    pub fn finished(&self) -> bool {
        let (done, total) = self.progress();
        done == total
    }

    /// Scores units for about `budget_s` seconds (at least one, unless finished).
    pub fn step_for(&mut self, budget_s: f64) -> Result<(), LmError> {
        let t0 = Instant::now();
        while !self.finished() {
            let (arm, w) = (self.next / self.windows, self.next % self.windows);
            let window = &self.tokens[w * self.length..=(w + 1) * self.length];
            let (_, tables, tally) = &mut self.arms[arm];
            let losses = window_losses(&self.model, tables, &[window], self.length)?;
            let past: Vec<f64> = losses
                .iter()
                .skip(self.train_len)
                .flatten()
                .copied()
                .collect();
            if !past.is_empty() {
                self.beyond[arm].push(past.iter().sum::<f64>() / past.len() as f64);
            }
            tally.add(&losses);
            self.next += 1;
            if t0.elapsed().as_secs_f64() >= budget_s {
                break;
            }
        }
        self.seconds += t0.elapsed().as_secs_f64();
        Ok(())
    }

    /// The scores, once every unit is done.
    pub fn result(&self) -> Option<TextScoreResult> {
        if !self.finished() {
            return None;
        }
        let (l, n) = (self.train_len.min(self.length), self.length);
        let arms = self
            .arms
            .iter()
            .zip(&self.beyond)
            .map(|((spec, _, tally), beyond)| ArmTextScore {
                rope: spec.clone(),
                label: spec.label(),
                loss_per_position: tally.per_position(),
                loss_within: tally.mean(0..l),
                loss_beyond: tally.mean(l..n),
                loss: tally.mean(0..n).unwrap_or(f64::NAN),
                beyond_by_window: (!beyond.is_empty()).then(|| estimate(beyond)),
            })
            .collect();
        let paired: Vec<f64> = self.beyond[2]
            .iter()
            .zip(&self.beyond[1])
            .map(|(r, y)| r - y)
            .collect();
        let (_, total) = self.progress();
        Some(TextScoreResult {
            train_len: self.train_len,
            length: self.length,
            windows: self.windows,
            text_bytes: self.tokens.len() - 1,
            targets: self.arms.first().map_or(0, |a| a.2.scored(0..n)),
            arms,
            resonance_minus_yarn_beyond: (!paired.is_empty()).then(|| estimate(&paired)),
            seconds: self.seconds,
            tokens_per_second: (total * self.length) as f64 / self.seconds.max(1e-9),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::checkpoint::weights;
    use crate::posgen::SplitMix64;
    use candle_core::Device;

    fn tiny_weights(seed: u64) -> Vec<u8> {
        let p = LmPreset::get(LmPresetName::Tiny);
        let mut rng = SplitMix64::derive(seed, "live-test");
        let model = Model::new(p.dims, &mut rng, &Device::Cpu).unwrap();
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("live-{}-{seed}-{k}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        candle_core::safetensors::save(&weights(&model), &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    }

    fn job(text: &str) -> TextScoreJob {
        TextScoreJob {
            text: text.into(),
            weights: tiny_weights(3),
            preset: LmPresetName::Tiny,
            length: default_length(LmPresetName::Tiny),
        }
    }

    #[test]
    fn sliced_scoring_equals_one_pass_of_lm_eval_per_schedule() {
        let text: String = (0..40)
            .map(|i| format!("line {i}: the quick brown fox\n"))
            .collect();
        let j = job(&text);
        let mut s = TextScoring::new(&j).unwrap();
        assert_eq!(s.length, 128, "4 x L of the tiny preset");
        let windows = (text.len() / 128).min(MAX_WINDOWS);
        assert_eq!(s.progress(), (0, 3 * windows));
        let mut slices = 0;
        while !s.finished() {
            s.step_for(0.0).unwrap();
            slices += 1;
        }
        assert_eq!(slices, 3 * windows, "a zero budget still does one unit");
        let r = s.result().unwrap();
        assert_eq!(r.windows, windows);
        assert_eq!(r.targets, windows * 128, "no BOS among the targets");
        let preset = LmPreset::get(LmPresetName::Tiny);
        let model = load_model(&j.weights, LmPresetName::Tiny, "weights").unwrap();
        let stream = tokens::encode(text.as_bytes());
        for (arm, spec) in r.arms.iter().zip(live_arms()) {
            let schedule = spec.schedule(&preset).unwrap();
            let direct =
                crate::lm::eval::evaluate(&model, &schedule, &stream, 128, windows * 128).unwrap();
            assert_eq!(
                arm.loss_per_position, direct.loss_per_position,
                "{}",
                arm.label
            );
            assert!((arm.loss - direct.mean_loss).abs() < 1e-12);
            let within: f64 = direct.loss_per_position[..32].iter().sum::<f64>() / 32.0;
            assert!((arm.loss_within.unwrap() - within).abs() < 1e-12);
            assert!(arm.loss_beyond.is_some());
            let by_window = arm.beyond_by_window.unwrap();
            assert_eq!(by_window.n, windows);
            // every window scores the same number of targets past L: the mean of window means
            let beyond: f64 = direct.loss_per_position[32..].iter().sum::<f64>() / 96.0;
            assert!((by_window.mean - beyond).abs() < 1e-9);
        }
        let d = r.resonance_minus_yarn_beyond.unwrap();
        let means = |a: usize| r.arms[a].beyond_by_window.unwrap().mean;
        assert!((d.mean - (means(2) - means(1))).abs() < 1e-9);
        assert!(d.ci95.is_some_and(|[lo, hi]| lo <= d.mean && d.mean <= hi));
        assert_eq!(r.arms[2].label, "Resonance YaRN s=4");
    }

    #[test]
    fn a_short_text_gets_a_short_window_and_nothing_beyond_l() {
        let mut s = TextScoring::new(&job("abcdefghij")).unwrap();
        assert_eq!((s.length, s.windows), (10, 1));
        let mut j = job(&"x".repeat(100));
        j.length = 64;
        let s64 = TextScoring::new(&j).unwrap();
        assert_eq!((s64.length, s64.windows), (64, 1));
        s.step_for(10.0).unwrap();
        let r = s.result().unwrap();
        assert_eq!(r.targets, 10);
        assert!(r.arms.iter().all(|a| a.loss_beyond.is_none()));
        assert!(r.resonance_minus_yarn_beyond.is_none());
    }

    #[test]
    fn empty_text_and_bad_weights_are_clear_errors() {
        let e = TextScoring::new(&job("")).err().unwrap().to_string();
        assert!(e.contains("empty"), "{e}");
        let mut j = job("hello");
        j.weights = vec![1, 2, 3];
        let e = TextScoring::new(&j).err().unwrap().to_string();
        assert!(e.contains("unreadable weights"), "{e}");
        let mut j = job("hello");
        j.preset = LmPresetName::Small;
        let e = TextScoring::new(&j).err().unwrap().to_string();
        assert!(e.contains("another preset"), "{e}");
        for length in [0, MAX_LENGTH + 1] {
            let mut j = job("hello");
            j.length = length;
            let e = TextScoring::new(&j).err().unwrap().to_string();
            assert!(e.contains("--length"), "{e}");
        }
    }
}
