//! AdamW in one pass per parameter tensor. candle_nn's `AdamW` computes the same update as 13
//! tensor operations, each a pass over the parameters with its own allocation; at the paper
//! preset's 6.3M parameters those passes cost as much as a sizeable part of the model's own
//! arithmetic. This one does the same float operations in the same order (candle's `t * c` is
//! `t * c + 0`, its `t + c` is `t * 1 + c`, constants rounded from f64 to f32 the way candle
//! rounds them), so the weights it produces are candle_nn's bit for bit: swapping it in does not
//! move a trained model. The test steps both side by side.

use super::fused::host;
use candle_core::{CpuStorage, InplaceOp1, Layout, Result, Tensor, Var, backprop::GradStore};
pub use candle_nn::ParamsAdamW;
use std::sync::Mutex;

/// One parameter and its two moment estimates.
struct Slot {
    var: Var,
    m: Vec<f32>,
    v: Vec<f32>,
}

/// AdamW (decoupled weight decay) over a set of variables, as candle_nn's `AdamW` computes it.
pub struct AdamW {
    slots: Vec<Slot>,
    params: ParamsAdamW,
    step_t: usize,
    threads: usize,
}

/// The f32 constants of one step, rounded from f64 as candle's `affine` rounds them.
#[derive(Clone, Copy)]
struct StepConsts {
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    scale_m: f32,
    scale_v: f32,
    decay: f32,
    eps: f32,
    lr: f32,
}

impl StepConsts {
    /// Updates one run of values in place; `theta` becomes the next parameters.
    fn update(&self, theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let c = *self;
        for (((t, &g), m), v) in theta.iter_mut().zip(g).zip(m).zip(v) {
            let next_m = (*m * c.beta1 + 0.0) + (g * c.one_minus_beta1 + 0.0);
            let next_v = (*v * c.beta2 + 0.0) + ((g * g) * c.one_minus_beta2 + 0.0);
            let m_hat = next_m * c.scale_m + 0.0;
            let v_hat = next_v * c.scale_v + 0.0;
            let decayed = *t * c.decay + 0.0;
            let adjusted = m_hat / (v_hat.sqrt() * 1.0 + c.eps);
            *t = decayed - (adjusted * c.lr + 0.0);
            *m = next_m;
            *v = next_v;
        }
    }
}

/// Values per parallel chunk of the update (below this, one thread does the tensor).
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
const CHUNK: usize = 1 << 16;

impl AdamW {
    /// An optimiser over `vars` with zero moments, on candle's thread count.
    pub fn new(vars: Vec<Var>, params: ParamsAdamW) -> AdamW {
        let slots = vars
            .into_iter()
            .map(|var| {
                let n = var.elem_count();
                Slot {
                    var,
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                }
            })
            .collect();
        AdamW {
            slots,
            params,
            step_t: 0,
            threads: candle_core::utils::get_num_threads(),
        }
    }

    /// Sets the learning rate of the next steps.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    /// Back-propagates `loss` and takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }

    /// One step with the gradients in `grads` (variables without a gradient stay as they are).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_t += 1;
        let p = &self.params;
        let t = self.step_t as i32;
        let c = StepConsts {
            beta1: p.beta1 as f32,
            one_minus_beta1: (1.0 - p.beta1) as f32,
            beta2: p.beta2 as f32,
            one_minus_beta2: (1.0 - p.beta2) as f32,
            scale_m: (1.0 / (1.0 - p.beta1.powi(t))) as f32,
            scale_v: (1.0 / (1.0 - p.beta2.powi(t))) as f32,
            decay: (1.0 - p.lr * p.weight_decay) as f32,
            eps: p.eps as f32,
            lr: p.lr as f32,
        };
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let gh = host(g)?;
            let update = Update {
                c,
                g: gh.values()?,
                moments: Mutex::new((&mut slot.m, &mut slot.v)),
                threads: self.threads,
            };
            slot.var.as_tensor().inplace_op1(&update)?;
        }
        Ok(())
    }
}

/// The step of one parameter tensor, applied in place to its storage (as `Var::set` would
/// overwrite it, without the copies).
struct Update<'a> {
    c: StepConsts,
    g: &'a [f32],
    moments: Mutex<(&'a mut [f32], &'a mut [f32])>,
    threads: usize,
}

impl InplaceOp1 for Update<'_> {
    fn name(&self) -> &'static str {
        "adamw"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let (Some((a, b)), CpuStorage::F32(theta)) = (layout.contiguous_offsets(), storage) else {
            candle_core::bail!("adamw: parameters must be contiguous f32 values");
        };
        let theta = &mut theta[a..b];
        let mut moments = self
            .moments
            .lock()
            .map_err(|_| candle_core::Error::Msg("adamw: moments poisoned".into()))?;
        let (m, v) = &mut *moments;
        if [self.g.len(), m.len(), v.len()] != [theta.len(); 3] {
            candle_core::bail!(
                "adamw: gradient of {} values for {}",
                self.g.len(),
                theta.len()
            );
        }
        #[cfg(not(target_arch = "wasm32"))]
        if self.threads > 1 && theta.len() > CHUNK {
            use rayon::prelude::*;
            theta
                .par_chunks_mut(CHUNK)
                .zip(self.g.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .for_each(|(((t, g), m), v)| self.c.update(t, g, m, v));
            return Ok(());
        }
        let _ = self.threads;
        self.c.update(theta, self.g, m, v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posgen::rng::SplitMix64;
    use candle_core::Device;
    use candle_nn::Optimizer;

    fn bits(t: &Tensor) -> Vec<u32> {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// Five steps on the same losses with changing learning rates: every parameter, bit for bit
    /// candle_nn's, including exact zeros (a -0 and a +0 gradient) and a tensor large enough to
    /// be split across threads.
    #[test]
    fn matches_candle_nn_adamw_bit_for_bit() {
        let mut rng = SplitMix64::new(7);
        let mut make = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.normal() as f32).collect() };
        let shapes = [(3, 5), (1, CHUNK + 17)];
        let inits: Vec<Vec<f32>> = shapes.iter().map(|s| make(s.0 * s.1)).collect();
        let targets: Vec<Vec<f32>> = shapes.iter().map(|s| make(s.0 * s.1)).collect();
        let vars = || -> Vec<Var> {
            shapes
                .iter()
                .zip(&inits)
                .map(|(s, v)| {
                    Var::from_tensor(&Tensor::from_vec(v.clone(), *s, &Device::Cpu).unwrap())
                        .unwrap()
                })
                .collect()
        };
        let loss = |vs: &[Var]| -> Tensor {
            // sum((x - target)^2 * x), with the first entry's gradient forced to -0 and the
            // second's to +0 by multiplying by a mask
            let mut total = Tensor::new(0f32, &Device::Cpu).unwrap();
            for ((v, s), target) in vs.iter().zip(&shapes).zip(&targets) {
                let t = Tensor::from_vec(target.clone(), *s, &Device::Cpu).unwrap();
                let mut mask = vec![1f32; s.0 * s.1];
                mask[0] = -0.0;
                mask[1] = 0.0;
                let mask = Tensor::from_vec(mask, *s, &Device::Cpu).unwrap();
                let d = (v.as_tensor() - &t).unwrap();
                let term = ((&d * &d).unwrap() * v.as_tensor()).unwrap();
                total = (total + (term * mask).unwrap().sum_all().unwrap()).unwrap();
            }
            total
        };
        let params = ParamsAdamW {
            lr: 3e-3,
            weight_decay: 0.01,
            ..ParamsAdamW::default()
        };
        let (ours_vars, theirs_vars) = (vars(), vars());
        let mut ours = AdamW::new(ours_vars.clone(), params.clone());
        let mut theirs = candle_nn::AdamW::new(theirs_vars.clone(), params).unwrap();
        for threads in [1, 3] {
            ours.threads = threads;
            for step in 0..5 {
                let lr = 3e-3 * (1.0 + step as f64) / 7.0;
                ours.set_learning_rate(lr);
                theirs.set_learning_rate(lr);
                ours.backward_step(&loss(&ours_vars)).unwrap();
                theirs.backward_step(&loss(&theirs_vars)).unwrap();
                for (a, b) in ours_vars.iter().zip(&theirs_vars) {
                    assert_eq!(bits(a.as_tensor()), bits(b.as_tensor()), "step {step}");
                }
            }
        }
        // the update moved the parameters
        assert_ne!(
            bits(ours_vars[0].as_tensor()),
            bits(&Tensor::from_vec(inits[0].clone(), shapes[0], &Device::Cpu).unwrap())
        );
    }
}
