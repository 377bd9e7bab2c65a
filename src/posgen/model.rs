//! A decoder-only transformer (T5-style blocks: RMSNorm, ReLU FFN, no 1/sqrt(d) logit scale)
//! whose rotary tables come from a [`Schedule`] via [`rope::cos_sin`]: the angles trained on
//! are exactly the angles the plots show. RMSNorm, RoPE, causal attention and ReLU are fused ops
//! with their own backward passes ([`super::fused`]); weights come from a seeded generator.

use super::fused::{Attention, FeedForward, MergeHeads, Project, RmsNorm, Rope, SplitHeads};
use super::rng::SplitMix64;
use crate::rope::{self, Schedule};
use candle_core::{D, DType, Device, Result, Tensor, Var};
use serde::Serialize;
use std::sync::Arc;

mod tape;
pub use tape::Tape;

/// Shape of the transformer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ModelDims {
    /// Vocabulary size (modulus + 1 for BOS).
    pub vocab: usize,
    /// Residual width.
    pub d_model: usize,
    /// Attention heads.
    pub n_heads: usize,
    /// Per-head (rotary) dimension.
    pub head_dim: usize,
    /// Hidden width of the ReLU feed-forward block.
    pub d_ff: usize,
    /// Transformer blocks.
    pub n_layers: usize,
}

impl ModelDims {
    /// Number of trainable scalars.
    pub fn num_params(&self) -> usize {
        let inner = self.n_heads * self.head_dim;
        let per_layer = 2 * self.d_model + 4 * self.d_model * inner + 2 * self.d_model * self.d_ff;
        2 * self.vocab * self.d_model + self.d_model + self.n_layers * per_layer
    }
}

/// The rotary angles of a schedule for positions `0..max_len`, as the fused [`Rope`] op.
#[derive(Clone)]
pub struct RopeTables {
    /// The op (tables shared, cheap to clone).
    pub op: Rope,
    /// Positions covered.
    pub max_len: usize,
}

impl RopeTables {
    /// Tables for positions `0..max_len` of `schedule` (whose `dim` is the head dimension).
    pub fn new(schedule: &Schedule, max_len: usize) -> RopeTables {
        let dim = schedule.config.dim;
        let layout = schedule.config.layout;
        let half = dim / 2;
        let mut cos = Vec::with_capacity(max_len * half);
        let mut sin = Vec::with_capacity(max_len * half);
        for p in 0..max_len {
            let (c, s) = rope::cos_sin(schedule, p as u64);
            cos.extend(c.iter().take(half).map(|v| *v as f32));
            sin.extend(s.iter().take(half).map(|v| *v as f32));
        }
        RopeTables {
            op: Rope {
                cos: Arc::new(cos),
                sin: Arc::new(sin),
                pairs: Arc::new((0..half).map(|i| layout.pair(i, dim)).collect()),
                max_len,
                inverse: false,
            },
            max_len,
        }
    }

    /// Rotates `x` of shape `(B, H, T, Dh)` by the angles of positions `0..T`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1(self.op.clone())
    }
}

struct Block {
    attn_norm: Var,
    wq: Var,
    wk: Var,
    wv: Var,
    wo: Var,
    ffn_norm: Var,
    w1: Var,
    w2: Var,
}

/// The transformer's parameters.
pub struct Model {
    /// Its shape.
    pub dims: ModelDims,
    embed: Var,
    blocks: Vec<Block>,
    final_norm: Var,
    head: Var,
}

fn normal_var(rng: &mut SplitMix64, shape: (usize, usize), std: f64, dev: &Device) -> Result<Var> {
    let n = shape.0 * shape.1;
    let v: Vec<f32> = (0..n).map(|_| (rng.normal() * std) as f32).collect();
    Var::from_tensor(&Tensor::from_vec(v, shape, dev)?)
}

fn ones_var(n: usize, dev: &Device) -> Result<Var> {
    Var::from_tensor(&Tensor::ones(n, DType::F32, dev)?)
}

/// The model's fused RMSNorm op on `threads` threads.
fn rms_norm_op(threads: usize) -> RmsNorm {
    RmsNorm { eps: 1e-6, threads }
}

/// RMSNorm (fused, with its backward pass) on `threads` threads.
fn rms_norm(x: &Tensor, w: &Tensor, threads: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op2(w, rms_norm_op(threads))
}

impl Model {
    /// A model with T5-style initial weights drawn from `rng`.
    pub fn new(dims: ModelDims, rng: &mut SplitMix64, dev: &Device) -> Result<Model> {
        let d = dims.d_model;
        let inner = dims.n_heads * dims.head_dim;
        let df = d as f64;
        let mut blocks = Vec::with_capacity(dims.n_layers);
        for _ in 0..dims.n_layers {
            blocks.push(Block {
                attn_norm: ones_var(d, dev)?,
                wq: normal_var(rng, (d, inner), (df * dims.head_dim as f64).powf(-0.5), dev)?,
                wk: normal_var(rng, (d, inner), df.powf(-0.5), dev)?,
                wv: normal_var(rng, (d, inner), df.powf(-0.5), dev)?,
                wo: normal_var(rng, (inner, d), (inner as f64).powf(-0.5), dev)?,
                ffn_norm: ones_var(d, dev)?,
                w1: normal_var(rng, (d, dims.d_ff), df.powf(-0.5), dev)?,
                w2: normal_var(rng, (dims.d_ff, d), (dims.d_ff as f64).powf(-0.5), dev)?,
            });
        }
        Ok(Model {
            dims,
            embed: normal_var(rng, (dims.vocab, d), 1.0, dev)?,
            blocks,
            final_norm: ones_var(d, dev)?,
            head: normal_var(rng, (d, dims.vocab), df.powf(-0.5), dev)?,
        })
    }

    /// Every trainable variable with a readable name.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut out = vec![("embed".to_string(), self.embed.clone())];
        for (l, b) in self.blocks.iter().enumerate() {
            for (n, v) in [
                ("attn_norm", &b.attn_norm),
                ("wq", &b.wq),
                ("wk", &b.wk),
                ("wv", &b.wv),
                ("wo", &b.wo),
                ("ffn_norm", &b.ffn_norm),
                ("w1", &b.w1),
                ("w2", &b.w2),
            ] {
                out.push((format!("block{l}.{n}"), v.clone()));
            }
        }
        out.push(("final_norm".to_string(), self.final_norm.clone()));
        out.push(("head".to_string(), self.head.clone()));
        out
    }

    /// Logits `(B*T, vocab)` for input ids `(B, T)` under causal attention.
    pub fn forward(&self, ids: &Tensor, rope: &RopeTables) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let dims = self.dims;
        let (d, h) = (dims.d_model, dims.n_heads);
        let mut x = self
            .embed
            .as_tensor()
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b * t, d))?;
        let threads = candle_core::utils::get_num_threads();
        let project = |n: &Tensor, w: &Var, rotary: bool, keys: bool| {
            let split = SplitHeads {
                rope: rotary.then(|| rope.op.clone()),
                batch: b,
                len: t,
                heads: h,
                keys,
            };
            n.apply_op2(w.as_tensor(), Project { split, threads })
        };
        for blk in &self.blocks {
            let n = rms_norm(&x, blk.attn_norm.as_tensor(), threads)?;
            let q = project(&n, &blk.wq, true, false)?;
            let k_t = project(&n, &blk.wk, true, true)?;
            let v = project(&n, &blk.wv, false, false)?;
            let o = q
                .apply_op3(&k_t, &v, Attention::with_threads(threads))?
                .apply_op1(MergeHeads)?;
            x = (x + o.matmul(blk.wo.as_tensor())?)?;
            let n = rms_norm(&x, blk.ffn_norm.as_tensor(), threads)?;
            let f = n.apply_op3(
                blk.w1.as_tensor(),
                blk.w2.as_tensor(),
                FeedForward::with_threads(threads),
            )?;
            x = (x + f)?;
        }
        rms_norm(&x, self.final_norm.as_tensor(), threads)?.matmul(self.head.as_tensor())
    }
}

/// Mean cross-entropy over the entries whose `weights` row is one-hot on the target (rows of
/// unscored positions are all zero); `count` is the number of scored entries.
pub fn masked_cross_entropy(logits: &Tensor, weights: &Tensor, count: usize) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let total = (logp * weights)?.sum_all()?;
    total.affine(-1.0 / count.max(1) as f64, 0.0)
}
