//! Scoring text: perplexity and bits per byte on non-overlapping windows of a token stream, and
//! the loss at each position of the window (the curve that shows where a schedule breaks).
//! Targets that are [`BOS`] (a file boundary, not a byte) are not scored, so perplexity is per
//! byte: a model that spreads its mass evenly over the 256 bytes scores exactly 256.

use super::error::LmError;
use super::tokens::BOS;
use crate::posgen::{Model, RopeTables};
use crate::rope::Schedule;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Most tokens in one forward pass of the evaluation (windows are batched up to this).
const EVAL_BATCH_TOKENS: usize = 8192;

/// The score of a model at one window length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LengthScore {
    /// Window length (tokens of context, the last one predicted from all before it).
    pub length: usize,
    /// Windows scored.
    pub windows: usize,
    /// Byte targets scored.
    pub tokens: usize,
    /// Mean cross-entropy, nats per byte.
    pub mean_loss: f64,
    /// exp(mean loss).
    pub perplexity: f64,
    /// Mean loss / ln 2.
    pub bits_per_byte: f64,
    /// Mean loss at each position 0..length of the window (over the windows that score it).
    pub loss_per_position: Vec<f64>,
}

/// Per row of `logits` (`targets.len()` rows of `vocab` values), the cross-entropy of its
/// target in nats, computed in f64; `None` where the target is [`BOS`].
pub fn score_logits(logits: &[f32], vocab: usize, targets: &[u16]) -> Vec<Option<f64>> {
    logits
        .chunks_exact(vocab)
        .zip(targets)
        .map(|(row, &t)| {
            (t != BOS).then(|| {
                let max = row
                    .iter()
                    .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
                let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
                max + sum.ln() - f64::from(row[usize::from(t)])
            })
        })
        .collect()
}

/// Sums of token losses by position in the window, and their counts (BOS targets skipped).
pub struct Tally {
    sum: Vec<f64>,
    count: Vec<usize>,
}

impl Tally {
    /// An empty tally for windows of `length` positions.
    pub fn new(length: usize) -> Tally {
        Tally {
            sum: vec![0.0; length],
            count: vec![0; length],
        }
    }

    /// Adds the token losses of whole windows, in window order.
    pub fn add(&mut self, losses: &[Option<f64>]) {
        let length = self.sum.len();
        for (i, l) in losses.iter().enumerate() {
            if let Some(l) = l {
                self.sum[i % length] += l;
                self.count[i % length] += 1;
            }
        }
    }

    /// Targets scored at positions `range` of the window.
    pub fn scored(&self, range: std::ops::Range<usize>) -> usize {
        self.count.get(range).map_or(0, |c| c.iter().sum())
    }

    /// Mean token loss over positions `range` (`None` when nothing there was scored).
    pub fn mean(&self, range: std::ops::Range<usize>) -> Option<f64> {
        let n = self.scored(range.clone());
        (n > 0).then(|| self.sum[range].iter().sum::<f64>() / n as f64)
    }

    /// Mean loss at each position (0 where nothing was scored).
    pub fn per_position(&self) -> Vec<f64> {
        self.sum
            .iter()
            .zip(&self.count)
            .map(|(s, &c)| s / c.max(1) as f64)
            .collect()
    }
}

/// Token losses of `windows` (each `length + 1` tokens: inputs then the last target) under
/// `rope`, in window order.
pub fn window_losses(
    model: &Model,
    rope: &RopeTables,
    windows: &[&[u16]],
    length: usize,
) -> Result<Vec<Option<f64>>, LmError> {
    let mut ids = Vec::with_capacity(windows.len() * length);
    let mut targets = Vec::with_capacity(windows.len() * length);
    for w in windows {
        ids.extend(w[..length].iter().map(|&t| u32::from(t)));
        targets.extend_from_slice(&w[1..=length]);
    }
    let ids = Tensor::from_vec(ids, (windows.len(), length), &Device::Cpu)?;
    let logits = model.forward(&ids, rope)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(score_logits(&logits, model.dims.vocab, &targets))
}

/// The model's score on the first `tokens` tokens of `stream` cut into windows of `length`
/// (non-overlapping; each window's last target is the next window's first input), rotated by
/// `schedule`.
pub fn evaluate(
    model: &Model,
    schedule: &Schedule,
    stream: &[u16],
    length: usize,
    tokens: usize,
) -> Result<LengthScore, LmError> {
    if length == 0 {
        return Err(LmError::Usage(
            "invalid --lengths: every length must be > 0".into(),
        ));
    }
    let n = tokens / length;
    if n == 0 || stream.len() < n * length + 1 {
        return Err(LmError::Usage(format!(
            "invalid --lengths: {length} needs at least {} tokens of text (the split has {}, \
             the evaluation scores {tokens})",
            length.max(tokens) + 1,
            stream.len()
        )));
    }
    let rope = RopeTables::new(schedule, length);
    let per_batch = (EVAL_BATCH_TOKENS / length).max(1);
    let all: Vec<&[u16]> = (0..n)
        .map(|k| &stream[k * length..=(k + 1) * length])
        .collect();
    let mut tally = Tally::new(length);
    for batch in all.chunks(per_batch) {
        tally.add(&window_losses(model, &rope, batch, length)?);
    }
    let scored = tally.scored(0..length);
    let mean_loss = tally.mean(0..length).unwrap_or(0.0);
    Ok(LengthScore {
        length,
        windows: n,
        tokens: scored,
        mean_loss,
        perplexity: mean_loss.exp(),
        bits_per_byte: mean_loss / std::f64::consts::LN_2,
        loss_per_position: tally.per_position(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_byte_logits_score_ln_256_and_bos_targets_are_skipped() {
        let vocab = 257;
        let mut row = vec![0.5f32; vocab];
        row[usize::from(BOS)] = -1e30;
        let logits: Vec<f32> = row.iter().cycle().take(3 * vocab).copied().collect();
        let s = score_logits(&logits, vocab, &[7, BOS, 255]);
        assert_eq!(s[1], None);
        for l in [s[0], s[2]] {
            let l = l.unwrap_or(f64::NAN);
            assert!((l - 256f64.ln()).abs() < 1e-12, "{l}");
            assert!((l.exp() - 256.0).abs() < 1e-9);
        }
        // all 257 logits equal: ln 257
        let flat = vec![0.0f32; vocab];
        let s = score_logits(&flat, vocab, &[3]);
        assert!((s[0].unwrap_or(f64::NAN) - 257f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn a_confident_right_logit_scores_near_zero_and_a_wrong_one_high() {
        let vocab = 257;
        let mut row = vec![0.0f32; vocab];
        row[65] = 40.0;
        let s = score_logits(&row, vocab, &[65]);
        assert!(s[0].unwrap_or(f64::NAN) < 1e-12);
        let s = score_logits(&row, vocab, &[66]);
        assert!((s[0].unwrap_or(f64::NAN) - 40.0).abs() < 1e-9);
    }
}
