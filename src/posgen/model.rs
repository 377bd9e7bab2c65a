//! A decoder-only transformer (T5-style blocks: RMSNorm, ReLU FFN, no 1/sqrt(d) logit scale)
//! whose rotary tables come from a [`Schedule`] via [`rope::cos_sin`]: the angles trained on
//! are exactly the angles the plots show. Only differentiable candle ops are used (own RMSNorm,
//! `ops::softmax`, RoPE as `x*cos + (x R)*sin`), and weights come from a seeded generator.

use super::rng::SplitMix64;
use crate::rope::{self, Schedule};
use candle_core::{D, DType, Device, Result, Tensor, Var};
use serde::Serialize;

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

/// cos/sin tables expanded to the head dimension, plus the fixed pair-rotation matrix.
#[derive(Clone, Debug)]
pub struct RopeTables {
    /// `(max_len, head_dim)`: cos of each coordinate's feature (attention factor applied).
    pub cos: Tensor,
    /// `(max_len, head_dim)`: sin, same layout.
    pub sin: Tensor,
    /// `(head_dim, head_dim)`: `x R` puts `-x_b` in slot a and `x_a` in slot b of each pair.
    pub rot: Tensor,
    /// Positions covered.
    pub max_len: usize,
}

impl RopeTables {
    /// Tables for positions `0..max_len` of `schedule` (whose `dim` is the head dimension).
    pub fn new(schedule: &Schedule, max_len: usize, device: &Device) -> Result<RopeTables> {
        let dim = schedule.config.dim;
        let layout = schedule.config.layout;
        let mut cos = vec![0f32; max_len * dim];
        let mut sin = vec![0f32; max_len * dim];
        for p in 0..max_len {
            let (c, s) = rope::cos_sin(schedule, p as u64);
            for i in 0..dim / 2 {
                let (a, b) = layout.pair(i, dim);
                cos[p * dim + a] = c[i] as f32;
                cos[p * dim + b] = c[i] as f32;
                sin[p * dim + a] = s[i] as f32;
                sin[p * dim + b] = s[i] as f32;
            }
        }
        let mut rot = vec![0f32; dim * dim];
        for i in 0..dim / 2 {
            let (a, b) = layout.pair(i, dim);
            // (xR)[a] = sum_r x[r] R[r][a] = -x[b];  (xR)[b] = x[a].
            rot[b * dim + a] = -1.0;
            rot[a * dim + b] = 1.0;
        }
        Ok(RopeTables {
            cos: Tensor::from_vec(cos, (max_len, dim), device)?,
            sin: Tensor::from_vec(sin, (max_len, dim), device)?,
            rot: Tensor::from_vec(rot, (dim, dim), device)?,
            max_len,
        })
    }

    /// Rotates `x` of shape `(B, H, T, Dh)` by the angles of positions `0..T`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, t, dh) = x.dims4()?;
        let cos = self.cos.narrow(0, 0, t)?;
        let sin = self.sin.narrow(0, 0, t)?;
        let rotated = x.reshape((b * h * t, dh))?.matmul(&self.rot)?;
        let rotated = rotated.reshape((b, h, t, dh))?;
        x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?
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

/// RMSNorm from elementary (differentiable) ops.
fn rms_norm(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(ms + 1e-6)?.sqrt()?)?.broadcast_mul(w)
}

/// Additive causal mask `(T, T)`: 0 on and below the diagonal, a large negative value above.
pub fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let v: Vec<f32> = (0..t * t)
        .map(|k| if k % t > k / t { -1e9 } else { 0.0 })
        .collect();
    Tensor::from_vec(v, (t, t), device)
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

    /// Logits `(B*T, vocab)` for input ids `(B, T)`; `mask` is [`causal_mask`] of size T.
    pub fn forward(&self, ids: &Tensor, rope: &RopeTables, mask: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let dims = self.dims;
        let (d, h, dh) = (dims.d_model, dims.n_heads, dims.head_dim);
        let mut x = self
            .embed
            .as_tensor()
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b * t, d))?;
        let heads = |y: Tensor| -> Result<Tensor> {
            y.reshape((b, t, h, dh))?.transpose(1, 2)?.contiguous()
        };
        for blk in &self.blocks {
            let n = rms_norm(&x, blk.attn_norm.as_tensor())?;
            let q = rope.apply(&heads(n.matmul(blk.wq.as_tensor())?)?)?;
            let k = rope.apply(&heads(n.matmul(blk.wk.as_tensor())?)?)?;
            let v = heads(n.matmul(blk.wv.as_tensor())?)?;
            let scores = q.matmul(&k.t()?.contiguous()?)?.broadcast_add(mask)?;
            let p = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let o = p
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * t, h * dh))?;
            x = (x + o.matmul(blk.wo.as_tensor())?)?;
            let n = rms_norm(&x, blk.ffn_norm.as_tensor())?;
            let f = n
                .matmul(blk.w1.as_tensor())?
                .relu()?
                .matmul(blk.w2.as_tensor())?;
            x = (x + f)?;
        }
        rms_norm(&x, self.final_norm.as_tensor())?.matmul(self.head.as_tensor())
    }
}

/// Mean cross-entropy over the entries whose `weights` row is one-hot on the target (rows of
/// unscored positions are all zero); `count` is the number of scored entries.
pub fn masked_cross_entropy(logits: &Tensor, weights: &Tensor, count: usize) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let total = (logp * weights)?.sum_all()?;
    total.affine(-1.0 / count.max(1) as f64, 0.0)
}
