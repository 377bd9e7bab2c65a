//! The training pass of [`Model`] with a hand-written backward pass. candle's backward pass
//! gives every intermediate tensor a zero-filled gradient buffer and adds each contribution to
//! it, one pass at a time on the step's thread; with every op of the model fused, those buffers
//! were the largest serial part of a training step (a tenth of it at two threads). The model's
//! graph is a fixed chain, so this walks it backwards directly: each op's own backward pass is
//! called with the tensors the forward pass kept, a gradient with one consumer is handed on as
//! it is, and only the three tensors with several consumers (each block's normalised input and
//! residual, and none other) are summed, in the order candle sums them. The values are candle's
//! bit for bit, up to the sign of zero gradients, which candle's store turns to +0 and the
//! optimiser's own `+ 0` erases as well: the test trains both ways and compares the weights.

use super::{Model, RopeTables, rms_norm_op};
use crate::posgen::fused::{
    Attention, FeedForward, Linear, MergeHeads, Project, RmsNorm, SplitHeads,
};
use candle_core::backprop::GradStore;
use candle_core::{CustomOp1, CustomOp2, CustomOp3, Result, Tensor, Var};

/// One block's kept tensors and the ops that keep state for their backward pass.
struct BlockTape {
    x: Tensor,
    n1: Tensor,
    q: Tensor,
    kt: Tensor,
    v: Tensor,
    a: Tensor,
    o: Tensor,
    x1: Tensor,
    n2: Tensor,
    f: Tensor,
    proj: [Project; 3],
    attn: Attention,
    ffn: FeedForward,
}

/// What [`Model::forward_tape`] keeps for [`Tape::backward`]: the weights as they were read,
/// every block's activations and the ops that made them (some keep state for their backward;
/// the stateless norm and products are one op each for the whole chain).
pub struct Tape {
    ids: Tensor,
    weights: Vec<(Var, Tensor)>,
    blocks: Vec<BlockTape>,
    x: Tensor,
    nf: Tensor,
    norm: RmsNorm,
    linear: Linear,
}

impl Model {
    /// Logits `(B*T, vocab)` as [`Model::forward`] computes them, bit for bit, and the tape for
    /// their gradient. The weights are read detached, so candle records no graph.
    pub fn forward_tape(&self, ids: &Tensor, rope: &RopeTables) -> Result<(Tensor, Tape)> {
        let (b, t) = ids.dims2()?;
        let dims = self.dims;
        let (d, h) = (dims.d_model, dims.n_heads);
        let threads = candle_core::utils::get_num_threads();
        let weights: Vec<(Var, Tensor)> = self
            .named_vars()
            .into_iter()
            .map(|(_, v)| {
                let t = v.as_tensor().detach();
                (v, t)
            })
            .collect();
        let w = |i: usize| &weights[i].1;
        let ids = ids.flatten_all()?;
        let (norm, linear) = (rms_norm_op(threads), Linear { threads });
        let mut x = w(0).index_select(&ids, 0)?.reshape((b * t, d))?;
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for l in 0..self.blocks.len() {
            // Block l's weights in named_vars order: attn_norm, wq, wk, wv, wo, ffn_norm, w1, w2.
            let at = |k: usize| w(1 + 8 * l + k);
            let n1 = x.apply_op2_no_bwd(at(0), &norm)?;
            let proj: [Project; 3] = std::array::from_fn(|j| Project {
                split: SplitHeads {
                    rope: (j < 2).then(|| rope.op.clone()),
                    batch: b,
                    len: t,
                    heads: h,
                    keys: j == 1,
                },
                threads,
            });
            let q = n1.apply_op2_no_bwd(at(1), &proj[0])?;
            let kt = n1.apply_op2_no_bwd(at(2), &proj[1])?;
            let v = n1.apply_op2_no_bwd(at(3), &proj[2])?;
            let attn = Attention::with_threads(threads);
            let a = q.apply_op3_no_bwd(&kt, &v, &attn)?;
            let o = a.apply_op1_no_bwd(&MergeHeads)?;
            let x1 = (&x + o.apply_op2_no_bwd(at(4), &linear)?)?;
            let n2 = x1.apply_op2_no_bwd(at(5), &norm)?;
            let ffn = FeedForward::with_threads(threads);
            let f = n2.apply_op3_no_bwd(at(6), at(7), &ffn)?;
            let next = (&x1 + &f)?;
            blocks.push(BlockTape {
                x: std::mem::replace(&mut x, next),
                n1,
                q,
                kt,
                v,
                a,
                o,
                x1,
                n2,
                f,
                proj,
                attn,
                ffn,
            });
        }
        let last = weights.len() - 2;
        let nf = x.apply_op2_no_bwd(w(last), &norm)?;
        let logits = nf.apply_op2_no_bwd(w(last + 1), &linear)?;
        let tape = Tape {
            ids,
            weights,
            blocks,
            x,
            nf,
            norm,
            linear,
        };
        Ok((logits, tape))
    }
}

/// The gradient of `x`'s one input whose gradient the op gives, or an error naming the op.
fn given(g: Option<Tensor>, op: &str) -> Result<Tensor> {
    g.ok_or_else(|| candle_core::Error::Msg(format!("{op}: no gradient from its backward pass")))
}

impl Tape {
    /// The gradient of every weight for `g_logits`, the gradient of the loss with respect to
    /// the logits, in a store keyed as candle's backward pass keys it.
    pub fn backward(self, g_logits: &Tensor) -> Result<GradStore> {
        let w = |i: usize| &self.weights[i].1;
        let n = self.weights.len();
        let mut g: Vec<Option<Tensor>> = vec![None; n];
        // logits = nf head
        let (g_nf, gw) = self.linear.grads(&self.nf, w(n - 1), g_logits)?;
        g[n - 1] = Some(gw);
        let (gx, gw) = self.norm.bwd(&self.x, w(n - 2), &self.nf, &g_nf)?;
        g[n - 2] = gw;
        let mut g_x = given(gx, "final norm")?;
        for (l, blk) in self.blocks.iter().enumerate().rev() {
            let at = 1 + 8 * l;
            // x2 = x1 + f, f = ffn(n2), n2 = norm(x1)
            let (gn2, gw1, gw2) = blk.ffn.bwd(&blk.n2, w(at + 6), w(at + 7), &blk.f, &g_x)?;
            (g[at + 6], g[at + 7]) = (gw1, gw2);
            let (gx1, gw) =
                self.norm
                    .bwd(&blk.x1, w(at + 5), &blk.n2, &given(gn2, "feed-forward")?)?;
            g[at + 5] = gw;
            let g_x1 = (&g_x + given(gx1, "ffn norm")?)?;
            // x1 = x + o wo, o = merge(attention(q, k^T, v)), each of q, k^T, v from n1
            let (g_o, gw) = self.linear.grads(&blk.o, w(at + 4), &g_x1)?;
            g[at + 4] = Some(gw);
            let g_a = given(MergeHeads.bwd(&blk.a, &blk.o, &g_o)?, "merge heads")?;
            let (gq, gk, gv) = blk.attn.bwd(&blk.q, &blk.kt, &blk.v, &blk.a, &g_a)?;
            // candle sums n1's three gradients as it meets their ops: v, then k^T, then q.
            let mut g_n1: Option<Tensor> = None;
            for (j, (out, go)) in [(&blk.v, gv), (&blk.kt, gk), (&blk.q, gq)]
                .into_iter()
                .enumerate()
            {
                let k = 2 - j;
                let (gn, gw) =
                    blk.proj[k].bwd(&blk.n1, w(at + 1 + k), out, &given(go, "attention")?)?;
                g[at + 1 + k] = gw;
                let gn = given(gn, "projection")?;
                g_n1 = Some(match g_n1 {
                    None => gn,
                    Some(acc) => (acc + gn)?,
                });
            }
            let g_n1 = given(g_n1, "projections")?;
            let (gx, gw) = self.norm.bwd(&blk.x, w(at), &blk.n1, &g_n1)?;
            g[at] = gw;
            g_x = (g_x1 + given(gx, "attention norm")?)?;
        }
        g[0] = Some(w(0).zeros_like()?.index_add(&self.ids, &g_x, 0)?);
        let mut store = GradStore::default();
        for ((var, _), grad) in self.weights.iter().zip(g) {
            if let Some(grad) = grad {
                store.insert(var.as_tensor(), grad);
            }
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posgen::optim::{AdamW, ParamsAdamW};
    use crate::posgen::{ModelDims, SplitMix64};
    use crate::rope::{Schedule, ScheduleConfig};
    use candle_core::Device;

    fn model(seed: u64) -> Model {
        let dims = ModelDims {
            vocab: 19,
            d_model: 16,
            n_heads: 2,
            head_dim: 8,
            d_ff: 24,
            n_layers: 2,
        };
        Model::new(dims, &mut SplitMix64::new(seed), &Device::Cpu).unwrap()
    }

    fn batch(seed: u64) -> (Tensor, Tensor) {
        let mut rng = SplitMix64::new(seed);
        let ids: Vec<u32> = (0..3 * 11).map(|_| (rng.next_u64() % 19) as u32).collect();
        let tg: Vec<u32> = (0..3 * 11).map(|_| (rng.next_u64() % 19) as u32).collect();
        (
            Tensor::from_vec(ids, (3, 11), &Device::Cpu).unwrap(),
            Tensor::from_vec(tg, 33, &Device::Cpu).unwrap(),
        )
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v.iter().map(|x| (x + 0.0).to_bits()).collect()
    }

    /// The gradient of candle's cross-entropy with respect to `logits`, by candle's backward
    /// pass on a copy of them.
    fn loss_gradient(logits: &Tensor, targets: &Tensor) -> Tensor {
        let lv = Var::from_tensor(logits).unwrap();
        let loss = candle_nn::loss::cross_entropy(lv.as_tensor(), targets).unwrap();
        let mut grads = loss.backward().unwrap();
        grads.remove(lv.as_tensor()).unwrap()
    }

    fn rope() -> RopeTables {
        let config = ScheduleConfig {
            dim: 8,
            ..ScheduleConfig::default()
        };
        RopeTables::new(&Schedule::new(&config).unwrap(), 11)
    }

    #[test]
    fn tape_gradients_are_candles_bit_for_bit() {
        let (m, rope) = (model(3), rope());
        let (ids, targets) = batch(4);
        let theirs = candle_nn::loss::cross_entropy(&m.forward(&ids, &rope).unwrap(), &targets)
            .unwrap()
            .backward()
            .unwrap();
        let (logits, tape) = m.forward_tape(&ids, &rope).unwrap();
        assert_eq!(bits(&logits), bits(&m.forward(&ids, &rope).unwrap()));
        let ours = tape.backward(&loss_gradient(&logits, &targets)).unwrap();
        for (name, v) in m.named_vars() {
            let (a, b) = (ours.get(&v).unwrap(), theirs.get(&v).unwrap());
            assert_eq!(bits(a), bits(b), "gradient of {name}");
        }
    }

    #[test]
    fn training_through_the_tape_gives_candles_weights_bit_for_bit() {
        let (a, b, rope) = (model(5), model(5), rope());
        let params = ParamsAdamW {
            lr: 3e-2,
            ..ParamsAdamW::default()
        };
        let vars = |m: &Model| m.named_vars().into_iter().map(|(_, v)| v).collect();
        let (mut oa, mut ob) = (
            AdamW::new(vars(&a), params.clone()),
            AdamW::new(vars(&b), params),
        );
        for step in 0..5 {
            let (ids, targets) = batch(10 + step);
            let loss = candle_nn::loss::cross_entropy(&a.forward(&ids, &rope).unwrap(), &targets);
            oa.backward_step(&loss.unwrap()).unwrap();
            let (logits, tape) = b.forward_tape(&ids, &rope).unwrap();
            let g = loss_gradient(&logits, &targets);
            ob.step(&tape.backward(&g).unwrap()).unwrap();
        }
        for ((name, va), (_, vb)) in a.named_vars().into_iter().zip(b.named_vars()) {
            let raw = |v: &Var| -> Vec<u32> {
                let t = v
                    .as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                t.iter().map(|x| x.to_bits()).collect()
            };
            assert_eq!(raw(&va), raw(&vb), "weights of {name}");
        }
    }
}
