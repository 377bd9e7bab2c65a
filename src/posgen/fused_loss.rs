//! The mean cross-entropy of logits against byte targets as one op with its own backward pass:
//! what `candle_nn::loss::cross_entropy` computes (log-softmax, gather, sum, scale), bit for
//! bit, value and gradient. candle's form is twelve graph nodes over the `(N, C)` logits, whose
//! backward pass zeroes, adds and keeps a logits-sized tensor for most of them, one pass at a
//! time on the step's thread; at the text model's 257-way vocabulary the logits are the largest
//! activations of the model and those passes were a seventh of a training step. This op does
//! the same float operations per element (the row sums through candle's own vector kernel, so in
//! its order) with rows split across threads, and keeps the exponentials for its backward pass.
//! Written by hand because no crate fuses this for candle with a backward pass; the test checks
//! it against candle's form bit for bit.

use super::fused::{contiguous, contiguous_as, for_each_chunk, host};
use candle_core::cpu::kernels::VecOps;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use std::sync::OnceLock;

/// candle's sum of a row of f32 (its reduction kernel: vectorised where the CPU allows).
fn row_sum(row: &[f32]) -> f32 {
    let mut s = 0f32;
    // SAFETY: the kernel reads exactly `row.len()` values from `row` and writes one to `s`.
    unsafe { <f32 as VecOps>::vec_reduce_sum(row.as_ptr(), &mut s, row.len()) };
    s
}

/// What the forward pass keeps for the backward pass: per row the maximum logit and the sum
/// of exponentials, and every exponential `exp(x - max)`.
struct Saved {
    max: Vec<f32>,
    sum: Vec<f32>,
    exp: Vec<f32>,
}

/// Mean cross-entropy of `logits (N, C)` (f32) against `targets (N)` (u32 class indices), a
/// scalar; apply with `logits.apply_op2(targets, CrossEntropy::with_threads(t))`.
pub struct CrossEntropy {
    threads: usize,
    saved: OnceLock<Saved>,
}

impl CrossEntropy {
    /// The op on `threads` threads (1: in the calling thread).
    pub fn with_threads(threads: usize) -> CrossEntropy {
        CrossEntropy {
            threads: threads.max(1),
            saved: OnceLock::new(),
        }
    }

    /// `1 / N` as candle's `affine(-1 / N, 0)` rounds it.
    fn scale(n: usize) -> f32 {
        (-1f64 / n as f64) as f32
    }
}

/// The mean cross-entropy of `logits (N, C)` against `targets (N)` and its gradient with
/// respect to the logits (the loss's own gradient taken as 1, as a backward pass starts it), on
/// candle's thread count.
pub fn loss_and_gradient(logits: &Tensor, targets: &Tensor) -> Result<(f32, Tensor)> {
    let op = CrossEntropy::with_threads(candle_core::utils::get_num_threads());
    let loss = logits.apply_op2_no_bwd(targets, &op)?;
    let (g, _) = op.bwd(logits, targets, &loss, &loss.ones_like()?)?;
    let g = g.ok_or_else(|| candle_core::Error::Msg("cross-entropy: no gradient".into()))?;
    Ok((loss.to_scalar::<f32>()?, g))
}

fn targets_of<'a>(s: &'a CpuStorage, l: &Layout, n: usize, c: usize) -> Result<&'a [u32]> {
    let t = contiguous_as::<u32>(s, l, "cross-entropy")?;
    if l.dims() != [n] {
        candle_core::bail!("cross-entropy: targets {:?} for {n} rows", l.dims());
    }
    if let Some(&bad) = t.iter().find(|&&v| v as usize >= c) {
        candle_core::bail!("cross-entropy: target {bad} outside {c} classes");
    }
    Ok(t)
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let &[n, c] = l1.dims() else {
            candle_core::bail!("cross-entropy: logits must be (N, C), got {:?}", l1.dims());
        };
        let x = contiguous(s1, l1, self.name())?;
        let t = targets_of(s2, l2, n, c)?;
        // Per row: max m, e = exp(x - m), s = sum(e); the target's log-probability is
        // (x_t - m) - ln(s), as candle's log_softmax leaves it before the gather.
        let mut max = vec![0f32; n];
        for_each_chunk(self.threads, n * c, &mut max, 1, |i, m| {
            m[0] = x[i * c..(i + 1) * c]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
        });
        let mut exp = vec![0f32; n * c];
        for_each_chunk(self.threads, n * c, &mut exp, c, |i, er| {
            for (e, &v) in er.iter_mut().zip(&x[i * c..(i + 1) * c]) {
                *e = (v - max[i]).exp();
            }
        });
        let mut sum = vec![0f32; n];
        for_each_chunk(self.threads, n * c, &mut sum, 1, |i, s| {
            s[0] = row_sum(&exp[i * c..(i + 1) * c]);
        });
        let logp: Vec<f32> = (0..n)
            .map(|i| (x[i * c + t[i] as usize] - max[i]) - sum[i].ln())
            .collect();
        let loss = row_sum(&logp) * Self::scale(n) + 0.0;
        let _ = self.saved.set(Saved { max, sum, exp });
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    fn bwd(
        &self,
        x: &Tensor,
        targets: &Tensor,
        _loss: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let Some(saved) = self.saved.get() else {
            candle_core::bail!("cross-entropy: backward before forward");
        };
        let (n, c) = x.dims2()?;
        let (xh, gh) = (host(x)?, host(g)?);
        let (xv, g0) = (xh.values()?, gh.values()?[0]);
        let t = targets.to_vec1::<u32>()?;
        // candle's chain, node by node (each `0 + ...` is its gradient store's zeroed start):
        // the loss's affine: k = g * scale + 0; the gathered entries get k each, so the
        // log-probabilities' gradient G is k at the target, +0 elsewhere; ln(s) gets
        // 0 + sum(0 - G) = -k, s gets 0 + (-k) / s, every exponential that, so the shifted
        // logits get (0 + G) + (-k / s) e; the logits get 0 + that, plus (x == max) times the
        // max's gradient 0 + sum(0 - that).
        let k = g0 * Self::scale(n) + 0.0;
        let mut dx = vec![0f32; n * c];
        for_each_chunk(self.threads, n * c, &mut dx, c, |i, dr| {
            let (xr, er) = (&xv[i * c..(i + 1) * c], &saved.exp[i * c..(i + 1) * c]);
            let gs = 0.0 + (0.0 + (0.0 - k)) / saved.sum[i];
            let target = t[i] as usize;
            for (j, (d, &e)) in dr.iter_mut().zip(er).enumerate() {
                let big_g = if j == target { 0.0 + k } else { 0.0 };
                *d = big_g + (0.0 + gs) * e;
            }
            // candle sums the negated row; IEEE rounding is symmetric, so that is the row's
            // sum negated, up to the sign of a zero, which the `0 +` erases.
            let gm = 0.0 + -row_sum(dr);
            for (d, &v) in dr.iter_mut().zip(xr) {
                let mask = if v == saved.max[i] { 1.0 } else { 0.0 };
                *d = (0.0 + *d) + mask * gm;
            }
        });
        Ok((Some(Tensor::from_vec(dx, (n, c), x.device())?), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posgen::rng::SplitMix64;
    use candle_core::{DType, Device, Var};

    fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    /// Logits with ties at the row maximum (every fifth row) and targets on every class.
    fn case(n: usize, c: usize, seed: u64) -> (Tensor, Tensor) {
        let mut rng = SplitMix64::new(seed);
        let mut v: Vec<f32> = (0..n * c).map(|_| 3.0 * rng.normal() as f32).collect();
        for i in (0..n).step_by(5) {
            v[i * c] = 9.0;
            v[i * c + c - 1] = 9.0;
        }
        let t: Vec<u32> = (0..n).map(|i| ((i * 7 + i / 3) % c) as u32).collect();
        (
            Tensor::from_vec(v, (n, c), &Device::Cpu).unwrap(),
            Tensor::from_vec(t, n, &Device::Cpu).unwrap(),
        )
    }

    #[test]
    fn cross_entropy_matches_candles_value_and_gradient_bit_for_bit() {
        for &(n, c, threads) in &[(2048, 257, 1), (2048, 257, 2), (37, 18, 1), (300, 9, 4)] {
            let (x, t) = case(n, c, n as u64 + c as u64);
            let a = Var::from_tensor(&x).unwrap();
            let ours = a
                .as_tensor()
                .apply_op2(&t, CrossEntropy::with_threads(threads))
                .unwrap();
            let ga = ours.backward().unwrap();
            let b = Var::from_tensor(&x).unwrap();
            let theirs = candle_nn::loss::cross_entropy(b.as_tensor(), &t).unwrap();
            let gb = theirs.backward().unwrap();
            assert_eq!(bits(&ours), bits(&theirs), "loss at {n} x {c}");
            let (l, g) = loss_and_gradient(&x, &t).unwrap();
            assert_eq!(l.to_bits(), theirs.to_scalar::<f32>().unwrap().to_bits());
            assert_eq!(bits(&g), bits(gb.get(&b).unwrap()), "loss_and_gradient");
            assert_eq!(
                bits(ga.get(&a).unwrap()),
                bits(gb.get(&b).unwrap()),
                "gradient at {n} x {c} on {threads} threads"
            );
        }
    }

    #[test]
    fn cross_entropy_of_uniform_logits_is_ln_c() {
        let x = Tensor::zeros((8, 256), DType::F32, &Device::Cpu).unwrap();
        let t = Tensor::from_vec((0..8u32).collect::<Vec<_>>(), 8, &Device::Cpu).unwrap();
        let l: f32 = x
            .apply_op2(&t, CrossEntropy::with_threads(1))
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!((l - 256f32.ln()).abs() < 1e-6, "{l}");
    }

    #[test]
    fn cross_entropy_refuses_bad_targets() {
        let x = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
        let far = Tensor::from_vec(vec![0u32, 4], 2, &Device::Cpu).unwrap();
        let short = Tensor::from_vec(vec![0u32], 1, &Device::Cpu).unwrap();
        for t in [far, short] {
            assert!(x.apply_op2(&t, CrossEntropy::with_threads(1)).is_err());
        }
    }
}
