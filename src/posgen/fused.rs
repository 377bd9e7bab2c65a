//! Fused CPU ops of the PosGen transformer, each with its own backward pass: RMSNorm, RoPE,
//! causal attention (scores, causal softmax and the weighted sum of values in one op), the
//! projections into heads (matrix product, move into heads and rotation), the ReLU feed-forward
//! block, and the move out of heads. candle's built-in fused versions have no backward pass, and
//! the elementary forms cost 4-16 tensor passes (and allocations) each, plus, in candle's
//! backward pass, a zeroed gradient buffer and an addition for every intermediate tensor; these
//! keep the intermediates out of the graph, and the softmax skips the masked half of the scores.
//! Backward passes read their inputs in place rather than copying them out. Matrix products make
//! the very calls candle's matmul makes. Each op does the same float operations in the same order
//! as the elementary form it replaces where that form is candle's own (everything but RMSNorm and
//! RoPE: bit for bit), so swapping one in does not move a trained model. The tests check values
//! and gradients against the elementary forms.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use std::sync::Arc;

/// The f32 values of a contiguous CPU input, or an error naming `op`.
pub(crate) fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    contiguous_as(s, l, op)
}

/// The values of a contiguous CPU input of element type `T`, or an error naming `op`.
pub(crate) fn contiguous_as<'a, T: candle_core::WithDType>(
    s: &'a CpuStorage,
    l: &Layout,
    op: &str,
) -> Result<&'a [T]> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: input must be contiguous")))?;
    Ok(&s.as_slice::<T>()?[a..b])
}

/// A tensor's f32 values in row-major order, borrowed from its CPU storage when the tensor is
/// contiguous (a backward pass reads its inputs once; copying them out cost as much as the
/// pass), copied otherwise.
pub(crate) enum HostView<'a> {
    Borrowed(candle_core::StorageRef<'a>, std::ops::Range<usize>),
    Owned(Vec<f32>),
}

impl HostView<'_> {
    /// The values.
    pub(crate) fn values(&self) -> Result<&[f32]> {
        match self {
            HostView::Borrowed(storage, range) => match &**storage {
                candle_core::Storage::Cpu(CpuStorage::F32(v)) => Ok(&v[range.clone()]),
                _ => candle_core::bail!("fused op: expected f32 values on the CPU"),
            },
            HostView::Owned(v) => Ok(v),
        }
    }
}

pub(crate) fn host(t: &Tensor) -> Result<HostView<'_>> {
    let (storage, layout) = t.storage_and_layout();
    if let Some((a, b)) = layout.contiguous_offsets() {
        return Ok(HostView::Borrowed(storage, a..b));
    }
    drop(storage);
    Ok(HostView::Owned(t.flatten_all()?.to_vec1::<f32>()?))
}

/// ReLU's value as candle's `v.max(0)` computes it: +0 for both zeros and for NaN.
fn relu(v: f32) -> f32 {
    if v > 0.0 { v } else { 0.0 }
}

/// ReLU's slope as candle's backward takes it, `x >= 0`: 1 at both zeros.
fn relu_slope(x: f32) -> f32 {
    if x >= 0.0 { 1.0 } else { 0.0 }
}

/// Causal softmax of score row `r` (which sees keys `0..=r`, `seen = r + 1` of them) in place:
/// the first `seen` entries become their softmax, the rest exact zeros, as with a -inf mask.
fn softmax_row(row: &mut [f32], seen: usize) {
    let m = row[..seen]
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for x in &mut row[..seen] {
        *x = (*x - m).exp();
        sum += *x;
    }
    row[..seen].iter_mut().for_each(|x| *x /= sum);
    row[seen..].fill(0.0);
}

/// The softmax backward of one row in place: `g` (the gradient of probabilities `p`) becomes
/// the scores' gradient `p (g - sum(p g))` over the first `seen` entries, exact zeros after.
fn softmax_row_grad(p: &[f32], g: &mut [f32], seen: usize) {
    let dot: f32 = p[..seen].iter().zip(&g[..seen]).map(|(a, b)| a * b).sum();
    for j in 0..seen {
        g[j] = p[j] * (g[j] - dot);
    }
    g[seen..].fill(0.0);
}

/// The model runs it inside [`FeedForward`]; this op is the form that one is tested against.
/// `max(x, 0)` (+0 at -0 and NaN), with the gradient `g * (x >= 0)` (1 at 0), as candle's `relu`
/// and its backward compute them, in one pass each instead of candle's five backward passes
/// (zeros, compare, convert, multiply).
pub struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, self.name())?;
        let y: Vec<f32> = x.iter().map(|&v| relu(v)).collect();
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let (xh, gh) = (host(x)?, host(g)?);
        let dx: Vec<f32> = xh
            .values()?
            .iter()
            .zip(gh.values()?)
            .map(|(&x, g)| g * relu_slope(x))
            .collect();
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

/// Softmax over the last dimension of `(.., T, T)` scores where query row `i` sees keys `0..=i`
/// (the causal mask folded in: masked entries are exactly 0, as with a -inf mask).
/// The model runs it inside [`Attention`]; this op is the form that one is tested against.
pub struct CausalSoftmax;

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, self.name())?;
        let dims = l.dims();
        let t = *dims.last().unwrap_or(&0);
        if dims.len() < 2 || dims[dims.len() - 2] != t {
            candle_core::bail!("causal-softmax: scores must be (.., T, T), got {dims:?}");
        }
        let mut y = x.to_vec();
        for (r, row) in y.chunks_exact_mut(t).enumerate() {
            softmax_row(row, r % t + 1);
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        // dx = y * (g - sum(g * y)) per row
        let (yh, gh) = (host(y)?, host(g)?);
        let (yv, gv) = (yh.values()?, gh.values()?);
        let t = *y.dims().last().unwrap_or(&1);
        let mut dx = gv.to_vec();
        for (r, (yr, dr)) in yv.chunks_exact(t).zip(dx.chunks_exact_mut(t)).enumerate() {
            softmax_row_grad(yr, dr, r % t + 1);
        }
        Ok(Some(Tensor::from_vec(dx, y.shape(), y.device())?))
    }
}

/// RMSNorm over the last dimension, `x / sqrt(mean(x^2) + eps) * w`, of `x (.., d)` and `w (d)`.
pub struct RmsNorm {
    /// Added to the mean square.
    pub eps: f32,
    /// Threads its row passes may use.
    pub threads: usize,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s1, l1, self.name())?;
        let w = contiguous(s2, l2, self.name())?;
        let d = w.len();
        if l1.dims().last() != Some(&d) {
            candle_core::bail!("rms-norm: x {:?} vs weight {:?}", l1.dims(), l2.dims());
        }
        let mut y = vec![0f32; x.len()];
        for_each_chunk(self.threads, x.len(), &mut y, d, |i, yr| {
            let xr = &x[i * d..(i + 1) * d];
            let ms = xr.iter().map(|v| v * v).sum::<f32>() / d as f32;
            let s = (ms + self.eps).sqrt();
            for ((yv, xv), wv) in yr.iter_mut().zip(xr).zip(w) {
                *yv = xv / s * wv;
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // r = 1/sqrt(mean(x^2)+eps), y = w x r:
        // dx = r (g w - x r^2 mean(g w x)),  dw = sum over rows of g x r
        let (xh, wh, gh) = (host(x)?, host(w)?, host(g)?);
        let (xv, wv, gv) = (xh.values()?, wh.values()?, gh.values()?);
        let d = wv.len();
        let n = xv.len();
        let mut rs = vec![0f32; n / d];
        for_each_chunk(self.threads, n, &mut rs, 1, |i, r| {
            let xr = &xv[i * d..(i + 1) * d];
            let ms = xr.iter().map(|v| v * v).sum::<f32>() / d as f32;
            r[0] = 1.0 / (ms + self.eps).sqrt();
        });
        let mut dx = vec![0f32; n];
        for_each_chunk(self.threads, n, &mut dx, d, |i, dr| {
            let (xr, gr, r) = (&xv[i * d..(i + 1) * d], &gv[i * d..(i + 1) * d], rs[i]);
            let c = xr
                .iter()
                .zip(gr)
                .zip(wv)
                .map(|((x, g), w)| g * w * x)
                .sum::<f32>()
                / d as f32;
            for j in 0..d {
                dr[j] = r * (gr[j] * wv[j] - xr[j] * r * r * c);
            }
        });
        // Each column sums its rows in row order, whichever thread owns the column.
        let mut dw = vec![0f32; d];
        for_each_chunk(self.threads, n, &mut dw, DW_COLUMNS, |blk, dwc| {
            let j0 = blk * DW_COLUMNS;
            for (i, &r) in rs.iter().enumerate() {
                let (xr, gr) = (&xv[i * d + j0..], &gv[i * d + j0..]);
                for (j, v) in dwc.iter_mut().enumerate() {
                    *v += gr[j] * xr[j] * r;
                }
            }
        });
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dw, w.shape(), w.device())?),
        ))
    }
}

/// Rotates each coordinate pair `(a, b)` of `x (.., T, Dh)` at position `t` by its angle:
/// `y_a = x_a cos - x_b sin`, `y_b = x_b cos + x_a sin` (`inverse` rotates back, which is
/// also the backward pass).
#[derive(Clone)]
pub struct Rope {
    /// `(max_len, Dh/2)`: cos of each pair's angle (attention factor included).
    pub cos: Arc<Vec<f32>>,
    /// `(max_len, Dh/2)`: sin, same layout.
    pub sin: Arc<Vec<f32>>,
    /// Coordinate indices `(a, b)` of each pair.
    pub pairs: Arc<Vec<(usize, usize)>>,
    /// Positions covered.
    pub max_len: usize,
    /// Rotate by minus the angle.
    pub inverse: bool,
}

impl Rope {
    /// Writes `x` (one head's `Dh` values at position `t`) rotated into `y`.
    fn rotate(&self, t: usize, x: &[f32], y: &mut [f32]) {
        let half = self.pairs.len();
        let sign = if self.inverse { -1.0 } else { 1.0 };
        let (cos, sin) = (
            &self.cos[t * half..(t + 1) * half],
            &self.sin[t * half..(t + 1) * half],
        );
        for (i, &(a, b)) in self.pairs.iter().enumerate() {
            let (c, s) = (cos[i], sign * sin[i]);
            y[a] = x[a] * c - x[b] * s;
            y[b] = x[b] * c + x[a] * s;
        }
    }

    /// The same tables rotating the other way.
    fn reversed(&self) -> Rope {
        Rope {
            inverse: !self.inverse,
            ..self.clone()
        }
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, self.name())?;
        let dims = l.dims();
        let half = self.pairs.len();
        let dh = 2 * half;
        if dims.len() < 2 || dims[dims.len() - 1] != dh || dims[dims.len() - 2] > self.max_len {
            candle_core::bail!("rope: x {dims:?} vs Dh {dh}, {} positions", self.max_len);
        }
        let t_len = dims[dims.len() - 2];
        let mut y = vec![0f32; x.len()];
        for (r, (xr, yr)) in x.chunks_exact(dh).zip(y.chunks_exact_mut(dh)).enumerate() {
            self.rotate(r % t_len, xr, yr);
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(g.contiguous()?.apply_op1_no_bwd(&self.reversed())?))
    }
}

/// Moves `x (B*T, H*Dh)` (a projection's output, row per token) to `(B, H, T, Dh)` (row per head
/// and token), rotating each head's values by its position when `rope` is given: what
/// `reshape, transpose(1, 2), contiguous` and then [`Rope`] compute, in one pass and one
/// backward pass instead of a copy, a rotation and two strided gradient additions.
#[derive(Clone)]
pub struct SplitHeads {
    /// Rotary tables to apply (`None`: move only).
    pub rope: Option<Rope>,
    /// Sequences `B`.
    pub batch: usize,
    /// Positions `T`.
    pub len: usize,
    /// Heads `H`.
    pub heads: usize,
    /// Write each head transposed, `(B, H, Dh, T)`: keys laid out as `q k^T` reads them, which
    /// `k.t().contiguous()` would otherwise copy (and copy back in the backward pass).
    pub keys: bool,
}

impl SplitHeads {
    /// Head size `Dh` of a `(B*T, H*Dh)` input with `n` values.
    fn head_dim(&self, n: usize, op: &str) -> Result<usize> {
        let rows = self.batch * self.len * self.heads;
        if rows == 0 || !n.is_multiple_of(rows) {
            candle_core::bail!(
                "{op}: {n} values for {} x {} x {}",
                self.batch,
                self.len,
                self.heads
            );
        }
        Ok(n / rows)
    }
}

/// Index of row `(b, h, t)` of a `(B, H, T, Dh)` tensor and of the token row `(b, t)`'s head
/// `h` in a `(B*T, H*Dh)` one, both in units of `Dh`.
fn head_rows(
    batch: usize,
    heads: usize,
    len: usize,
) -> impl Iterator<Item = (usize, usize, usize)> {
    (0..batch).flat_map(move |b| {
        (0..heads).flat_map(move |h| {
            (0..len).map(move |t| ((b * heads + h) * len + t, (b * len + t) * heads + h, t))
        })
    })
}

impl SplitHeads {
    /// The forward move of the `(B*T, H*Dh)` values `x`: the moved values and their shape.
    /// Sequences are moved independently, on up to `threads` threads.
    fn split(&self, x: &[f32], threads: usize) -> Result<(Vec<f32>, Shape)> {
        let dh = self.head_dim(x.len(), "split-heads")?;
        if self
            .rope
            .as_ref()
            .is_some_and(|r| 2 * r.pairs.len() != dh || self.len > r.max_len)
        {
            candle_core::bail!(
                "split-heads: rotary tables do not fit Dh {dh}, T {}",
                self.len
            );
        }
        let (b, h, t_len) = (self.batch, self.heads, self.len);
        let per_seq = h * t_len * dh;
        let mut y = vec![0f32; x.len()];
        for_each_chunk(threads, x.len(), &mut y, per_seq, |seq, y| {
            let x = &x[seq * per_seq..(seq + 1) * per_seq];
            let mut row = vec![0f32; dh];
            for (out, inp, t) in head_rows(1, h, t_len) {
                let xr = &x[inp * dh..(inp + 1) * dh];
                match &self.rope {
                    Some(r) => r.rotate(t, xr, &mut row),
                    None => row.copy_from_slice(xr),
                }
                if self.keys {
                    // row (h, t) of (H, T, Dh) is column t of head h in (H, Dh, T)
                    let head = out / t_len * dh * t_len;
                    for (c, v) in row.iter().enumerate() {
                        y[head + c * t_len + t] = *v;
                    }
                } else {
                    y[out * dh..(out + 1) * dh].copy_from_slice(&row);
                }
            }
        });
        let shape = if self.keys {
            Shape::from((b, h, dh, t_len))
        } else {
            Shape::from((b, h, t_len, dh))
        };
        Ok((y, shape))
    }

    /// The backward move: the gradient of the `(B*T, H*Dh)` input for the output gradient `gv`,
    /// sequence by sequence on up to `threads` threads.
    fn unsplit(&self, gv: &[f32], threads: usize) -> Result<Vec<f32>> {
        let dh = self.head_dim(gv.len(), "split-heads")?;
        let t_len = self.len;
        let per_seq = self.heads * t_len * dh;
        let back = self.rope.as_ref().map(Rope::reversed);
        let mut dx = vec![0f32; gv.len()];
        for_each_chunk(threads, gv.len(), &mut dx, per_seq, |seq, dx| {
            let gv = &gv[seq * per_seq..(seq + 1) * per_seq];
            let mut row = vec![0f32; dh];
            for (out, inp, t) in head_rows(1, self.heads, t_len) {
                let gr: &[f32] = if self.keys {
                    let head = out / t_len * dh * t_len;
                    for (c, v) in row.iter_mut().enumerate() {
                        *v = gv[head + c * t_len + t];
                    }
                    &row
                } else {
                    &gv[out * dh..(out + 1) * dh]
                };
                let dr = &mut dx[inp * dh..(inp + 1) * dh];
                match &back {
                    Some(r) => r.rotate(t, gr, dr),
                    None => dr.copy_from_slice(gr),
                }
            }
        });
        Ok(dx)
    }
}

impl CustomOp1 for SplitHeads {
    fn name(&self) -> &'static str {
        "split-heads"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, shape) = self.split(contiguous(s, l, self.name())?, 1)?;
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let dx = self.unsplit(host(g)?.values()?, 1)?;
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

/// Moves `(B, H, T, Dh)` back to `(B*T, H*Dh)`: what `transpose(1, 2), contiguous, reshape`
/// compute, in one pass each way.
#[derive(Clone, Copy)]
pub struct MergeHeads;

impl CustomOp1 for MergeHeads {
    fn name(&self) -> &'static str {
        "merge-heads"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, self.name())?;
        let &[batch, heads, len, dh] = l.dims() else {
            candle_core::bail!("merge-heads: expected (B, H, T, Dh), got {:?}", l.dims());
        };
        let mut y = vec![0f32; x.len()];
        for (inp, out, _) in head_rows(batch, heads, len) {
            y[out * dh..(out + 1) * dh].copy_from_slice(&x[inp * dh..(inp + 1) * dh]);
        }
        Ok((CpuStorage::F32(y), Shape::from((batch * len, heads * dh))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let &[batch, heads, len, dh] = x.dims() else {
            candle_core::bail!("merge-heads: expected (B, H, T, Dh), got {:?}", x.dims());
        };
        let gh = host(g)?;
        let gv = gh.values()?;
        let mut dx = vec![0f32; gv.len()];
        for (out, inp, _) in head_rows(batch, heads, len) {
            dx[out * dh..(out + 1) * dh].copy_from_slice(&gv[inp * dh..(inp + 1) * dh]);
        }
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

/// Multiply-adds below which a matrix product runs in one thread: splitting a small product
/// costs more in synchronisation than it saves.
const PARALLEL_MIN_FLOPS: usize = 1 << 22;

/// How a product of `flops` multiply-adds runs on `threads` threads (one in the browser, which
/// has no thread pool). The kernel's results do not depend on it (it splits output blocks, not
/// sums).
fn parallelism(threads: usize, flops: usize) -> gemm::Parallelism {
    if !cfg!(target_arch = "wasm32") && threads > 1 && flops >= PARALLEL_MIN_FLOPS {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    }
}

/// One `(m, n)` product `lhs (m, k) * rhs (k, n)` into the contiguous `dst`, with the
/// operands read through their strides: the call candle's CPU matmul makes for each matrix of a
/// batch (`read_dst` false, the same strides), so the result is candle's bit for bit. Strides
/// are `(row, column)`; the extents are checked against the slices before the kernel runs.
#[allow(clippy::too_many_arguments)]
fn matmul_like_candle(
    dst: &mut [f32],
    (m, n, k): (usize, usize, usize),
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
    threads: usize,
) {
    assert!(
        dst.len() >= m * n,
        "matmul: dst holds {} < {m} x {n}",
        dst.len()
    );
    // SAFETY: `dst` holds the m x n values the kernel writes and is borrowed mutably.
    unsafe {
        gemm_into(
            dst.as_mut_ptr(),
            (m, n, k),
            lhs,
            lhs_strides,
            rhs,
            rhs_strides,
            threads,
        )
    };
}

/// [`matmul_like_candle`] into a new `(m, n)` buffer. The kernel writes every value of its
/// destination without reading it, so the buffer is not zero-filled first: at the paper
/// preset's widths that fill was as costly as the softmax.
fn product(
    (m, n, k): (usize, usize, usize),
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
    threads: usize,
) -> Vec<f32> {
    if k == 0 || m * n == 0 {
        return vec![0f32; m * n];
    }
    let mut dst = Vec::with_capacity(m * n);
    // SAFETY: the capacity holds m x n values; with k > 0 and `read_dst` false the kernel
    // writes each of them (it computes dst = lhs rhs, never reading dst) before `set_len`
    // exposes them.
    unsafe {
        gemm_into(
            dst.as_mut_ptr(),
            (m, n, k),
            lhs,
            lhs_strides,
            rhs,
            rhs_strides,
            threads,
        );
        dst.set_len(m * n);
    }
    dst
}

/// The kernel call of [`matmul_like_candle`] into `dst`, after checking the operands'
/// extents against their slices.
///
/// # Safety
/// `dst` must be valid for writing `m * n` values, with nothing else reading or writing them.
unsafe fn gemm_into(
    dst: *mut f32,
    (m, n, k): (usize, usize, usize),
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    threads: usize,
) {
    let reach = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs + 1
    };
    assert!(
        lhs.len() >= reach(m, k, lhs_rs, lhs_cs),
        "matmul: lhs too short"
    );
    assert!(
        rhs.len() >= reach(k, n, rhs_rs, rhs_cs),
        "matmul: rhs too short"
    );
    // SAFETY: every operand index the kernel touches is inside the slices (checked above),
    // which are borrowed immutably; `dst` is the caller's to write (this function's contract).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism(threads, m * n * k),
        );
    }
}

/// Runs `f(i, chunks)` for every head `i`, where `chunks[j]` is the `i`-th run of `sizes[j]`
/// values of `bufs[j]`, on `threads` threads. Heads are independent and each is computed the
/// same way whatever the split, so results do not depend on the thread count.
fn for_each_head<const N: usize, F>(
    threads: usize,
    heads: usize,
    bufs: [&mut [f32]; N],
    sizes: [usize; N],
    f: F,
) where
    F: Fn(usize, [&mut [f32]; N]) + Sync + Send,
{
    let mut rest = bufs;
    let work: Vec<[&mut [f32]; N]> = (0..heads)
        .map(|_| {
            std::array::from_fn(|j| {
                let (head, tail) = std::mem::take(&mut rest[j]).split_at_mut(sizes[j]);
                rest[j] = tail;
                head
            })
        })
        .collect();
    #[cfg(not(target_arch = "wasm32"))]
    if threads > 1 {
        use rayon::prelude::*;
        work.into_par_iter()
            .enumerate()
            .for_each(|(i, chunks)| f(i, chunks));
        return;
    }
    let _ = threads;
    for (i, chunks) in work.into_iter().enumerate() {
        f(i, chunks);
    }
}

/// Causal attention of one batch of heads: `softmax(q k^T + causal mask) v` for `q (B, H, T, Dh)`,
/// keys transposed `k^T (B, H, Dh, T)` and `v (B, H, T, Dh)`, with no logit scale (T5-style).
/// It computes what `q.matmul(k_t)`, [`CausalSoftmax`] and `.matmul(v)` compute, bit for bit,
/// values and gradients (the same matrix kernel calls, the same softmax arithmetic, and the
/// `0 + g` candle's gradient store adds, which only turns -0 into +0), but the `(B, H, T, T)`
/// scores and probabilities never become tensors of the graph: candle's backward pass would zero,
/// add and keep each of them, the largest tensors of the model. The probabilities are kept in
/// the op for its backward pass. Heads run in parallel.
pub struct Attention {
    threads: usize,
    probs: std::sync::OnceLock<Vec<f32>>,
}

impl Default for Attention {
    /// The op on candle's thread count (`RAYON_NUM_THREADS`, else every core).
    fn default() -> Attention {
        Attention::with_threads(candle_core::utils::get_num_threads())
    }
}

impl Attention {
    /// The op on `threads` threads (1: in the calling thread).
    pub fn with_threads(threads: usize) -> Attention {
        Attention {
            threads: threads.max(1),
            probs: std::sync::OnceLock::new(),
        }
    }

    /// Shape `(B*H, T, Dh)` of `q`, `k^T` and `v`, checked against each other.
    fn dims(q: &Layout, kt: &Layout, v: &Layout) -> Result<(usize, usize, usize)> {
        let (&[b, h, t, dh], &[kb, kh, kdh, kt_len], &[vb, vh, vt, vdh]) =
            (q.dims(), kt.dims(), v.dims())
        else {
            candle_core::bail!(
                "attention: expected q (B, H, T, Dh), k^T (B, H, Dh, T), v (B, H, T, Dh), got \
                 {:?}, {:?}, {:?}",
                q.dims(),
                kt.dims(),
                v.dims()
            );
        };
        if (kb, kh, kdh, kt_len) != (b, h, dh, t) || (vb, vh, vt, vdh) != (b, h, t, dh) {
            candle_core::bail!(
                "attention: q {:?}, k^T {:?}, v {:?} do not match",
                q.dims(),
                kt.dims(),
                v.dims()
            );
        }
        Ok((b * h, t, dh))
    }
}

/// `x + 0.0`: what adding a gradient to candle's zero-initialised store does to it (-0 becomes
/// +0, every other value is unchanged).
fn stored(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v += 0.0);
}

/// Values a row pass must touch (`work`) before it is split across threads: below this, the
/// hand-off costs more than the pass.
#[cfg(not(target_arch = "wasm32"))]
const PARALLEL_MIN_VALUES: usize = 1 << 15;

/// Columns of a weight gradient summed by one task.
const DW_COLUMNS: usize = 64;

/// Calls `f(i, chunk)` for every `size`-value chunk `i` of `y` (the last may be shorter), on
/// `threads` threads when the pass touches at least [`PARALLEL_MIN_VALUES`] values. Each chunk
/// is computed by one call whatever the split, so results do not depend on the thread count.
pub(crate) fn for_each_chunk<F>(threads: usize, work: usize, y: &mut [f32], size: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    #[cfg(not(target_arch = "wasm32"))]
    if threads > 1 && work >= PARALLEL_MIN_VALUES {
        use rayon::prelude::*;
        y.par_chunks_mut(size)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
        return;
    }
    let _ = (threads, work);
    y.chunks_mut(size).enumerate().for_each(|(i, c)| f(i, c));
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "causal-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (heads, t, dh) = Self::dims(l1, l2, l3)?;
        let (q, kt, v) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
            contiguous(s3, l3, self.name())?,
        );
        let (tt, td) = (t * t, t * dh);
        let mut p = vec![0f32; heads * tt];
        let mut o = vec![0f32; heads * td];
        for_each_head(
            self.threads,
            heads,
            [&mut p, &mut o],
            [tt, td],
            |i, [p, o]| {
                let (q, kt, v) = (&q[i * td..][..td], &kt[i * td..][..td], &v[i * td..][..td]);
                matmul_like_candle(p, (t, t, dh), q, (dh, 1), kt, (t, 1), 1);
                for (r, row) in p.chunks_exact_mut(t).enumerate() {
                    softmax_row(row, r + 1);
                }
                matmul_like_candle(o, (t, dh, t), p, (t, 1), v, (dh, 1), 1);
            },
        );
        self.probs
            .set(p)
            .map_err(|_| candle_core::Error::Msg("attention: op applied twice".into()))?;
        Ok((CpuStorage::F32(o), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        kt: &Tensor,
        v: &Tensor,
        _o: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (heads, t, dh) = Self::dims(q.layout(), kt.layout(), v.layout())?;
        let probs = self
            .probs
            .get()
            .ok_or_else(|| candle_core::Error::Msg("attention: backward before forward".into()))?;
        let (qh, kth, vh, gh) = (host(q)?, host(kt)?, host(v)?, host(g)?);
        let (qv, ktv, vv, gv) = (qh.values()?, kth.values()?, vh.values()?, gh.values()?);
        let (tt, td) = (t * t, t * dh);
        let mut dq = vec![0f32; heads * td];
        let mut dkt = vec![0f32; heads * td];
        let mut dv = vec![0f32; heads * td];
        let mut scratch = vec![0f32; heads * tt];
        let bufs = [&mut dq[..], &mut dkt[..], &mut dv[..], &mut scratch[..]];
        for_each_head(
            self.threads,
            heads,
            bufs,
            [td, td, td, tt],
            |i, [dq, dkt, dv, dp]| {
                let (q, kt, v) = (
                    &qv[i * td..][..td],
                    &ktv[i * td..][..td],
                    &vv[i * td..][..td],
                );
                let (p, go) = (&probs[i * tt..][..tt], &gv[i * td..][..td]);
                // O = P v: dP = dO v^T, dv = P^T dO
                matmul_like_candle(dp, (t, t, dh), go, (dh, 1), v, (1, dh), 1);
                matmul_like_candle(dv, (t, dh, t), p, (1, t), go, (dh, 1), 1);
                stored(dp);
                // softmax: dS = P (dP - sum(P dP)) per row, 0 where masked
                for (r, (pr, gr)) in p.chunks_exact(t).zip(dp.chunks_exact_mut(t)).enumerate() {
                    softmax_row_grad(pr, gr, r + 1);
                }
                stored(dp);
                // S = q k^T: dq = dS (k^T)^T, dk^T = q^T dS
                matmul_like_candle(dq, (t, dh, t), dp, (t, 1), kt, (1, t), 1);
                matmul_like_candle(dkt, (dh, t, t), q, (1, dh), dp, (t, 1), 1);
            },
        );
        let dev = q.device();
        Ok((
            Some(Tensor::from_vec(dq, q.shape(), dev)?),
            Some(Tensor::from_vec(dkt, kt.shape(), dev)?),
            Some(Tensor::from_vec(dv, v.shape(), dev)?),
        ))
    }
}

/// `x (r, k) * w (k, n)` as candle's matmul computes it for two contiguous matrices.
fn linear(x: &[f32], w: &[f32], (r, k, n): (usize, usize, usize), threads: usize) -> Vec<f32> {
    product((r, n, k), x, (k, 1), w, (n, 1), threads)
}

/// The gradients `(dx, dw)` of `y = x (r, k) * w (k, n)` for the stored upstream gradient
/// `g (r, n)`, as candle's matmul backward computes them: `g w^T` and `x^T g`, the transposes
/// read through their strides.
fn linear_grads(
    x: &[f32],
    w: &[f32],
    g: &[f32],
    (r, k, n): (usize, usize, usize),
    threads: usize,
) -> (Vec<f32>, Vec<f32>) {
    let dx = |t| product((r, k, n), g, (n, 1), w, (1, n), t);
    let dw = |t| product((k, n, r), x, (1, k), g, (n, 1), t);
    join(threads, r * k * n, dx, dw)
}

/// `(a(t), b(t))`, the two run side by side, each on its share `t` of the `threads`, when
/// `threads > 1` and each is worth a thread (`flops` multiply-adds). Two independent products
/// split this way need one hand-off, where splitting each product needs one per product and
/// packs its shared operand twice.
fn join<A: Send, B: Send>(
    threads: usize,
    flops: usize,
    a: impl FnOnce(usize) -> A + Send,
    b: impl FnOnce(usize) -> B + Send,
) -> (A, B) {
    #[cfg(not(target_arch = "wasm32"))]
    if threads > 1 && flops >= PARALLEL_MIN_FLOPS {
        let half = threads / 2;
        return rayon::join(|| a(threads - half), || b(half));
    }
    let _ = flops;
    (a(threads), b(threads))
}

/// Rows `r` and the inner and outer widths `(k, n)` of `x (r, k) * w (k, n)`.
fn linear_dims(x: &Layout, w: &Layout, op: &str) -> Result<(usize, usize, usize)> {
    let (&[r, k], &[wk, n]) = (x.dims(), w.dims()) else {
        candle_core::bail!(
            "{op}: expected x (R, K) and w (K, N), got {:?} and {:?}",
            x.dims(),
            w.dims()
        );
    };
    if wk != k {
        candle_core::bail!("{op}: x {:?} does not match w {:?}", x.dims(), w.dims());
    }
    Ok((r, k, n))
}

/// A projection `x (B*T, D) * w (D, H*Dh)` moved into heads by a [`SplitHeads`]: what
/// `x.matmul(w)` followed by the split computes, bit for bit, values and gradients (candle's
/// matrix kernel calls, and the `0 + g` of its gradient store between the two), without the
/// projection's output becoming a graph tensor that the backward pass zeroes, adds and keeps.
pub struct Project {
    /// The move into heads (with its rotation, if any).
    pub split: SplitHeads,
    /// Threads of the matrix products.
    pub threads: usize,
}

impl CustomOp2 for Project {
    fn name(&self) -> &'static str {
        "project-split"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = linear_dims(l1, l2, self.name())?;
        let (x, w) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
        );
        let (y, shape) = self
            .split
            .split(&linear(x, w, dims, self.threads), self.threads)?;
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dims = linear_dims(x.layout(), w.layout(), self.name())?;
        let mut dproj = self.split.unsplit(host(g)?.values()?, self.threads)?;
        stored(&mut dproj);
        let (xh, wh) = (host(x)?, host(w)?);
        let (dx, dw) = linear_grads(xh.values()?, wh.values()?, &dproj, dims, self.threads);
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dw, w.shape(), w.device())?),
        ))
    }
}

/// `x (R, K) * w (K, N)`: what candle's `x.matmul(w)` computes, bit for bit, value and
/// gradients, with the backward pass's two products run side by side ([`linear_grads`])
/// instead of each split by the kernel (the split that scaled the feed-forward block's backward
/// pass 2x at two threads, where the kernel's own split scales its forward pass 1.4x).
pub struct Linear {
    /// Threads the products may use.
    pub threads: usize,
}

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (r, k, n) = linear_dims(l1, l2, self.name())?;
        let (x, w) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
        );
        let y = linear(x, w, (r, k, n), self.threads);
        Ok((CpuStorage::F32(y), Shape::from((r, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = self.grads(x, w, g)?;
        Ok((Some(dx), Some(dw)))
    }
}

impl Linear {
    /// The gradients `(dx, dw)` for the upstream gradient `g (R, N)`.
    pub fn grads(&self, x: &Tensor, w: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
        let dims = linear_dims(x.layout(), w.layout(), self.name())?;
        let (xh, wh, gh) = (host(x)?, host(w)?, host(g)?);
        let (dx, dw) = linear_grads(xh.values()?, wh.values()?, gh.values()?, dims, self.threads);
        Ok((
            Tensor::from_vec(dx, x.shape(), x.device())?,
            Tensor::from_vec(dw, w.shape(), w.device())?,
        ))
    }
}

/// The ReLU feed-forward block `relu(x w1) w2` of `x (R, D)`, `w1 (D, F)`, `w2 (F, D)`: what
/// `x.matmul(w1)`, [`Relu`] and `.matmul(w2)` compute, bit for bit, values and gradients, while
/// the two `(R, F)` hidden tensors, the widest of the block, stay out of candle's graph. The
/// pre-activation is kept in the op for its backward pass.
pub struct FeedForward {
    threads: usize,
    hidden: std::sync::OnceLock<Vec<f32>>,
}

impl FeedForward {
    /// The block on `threads` threads.
    pub fn with_threads(threads: usize) -> FeedForward {
        FeedForward {
            threads: threads.max(1),
            hidden: std::sync::OnceLock::new(),
        }
    }

    /// Rows and widths `(R, D, F)`, checked across the three inputs.
    fn dims(x: &Layout, w1: &Layout, w2: &Layout) -> Result<(usize, usize, usize)> {
        let (r, d, f) = linear_dims(x, w1, "feed-forward")?;
        if w2.dims() != [f, d] {
            candle_core::bail!(
                "feed-forward: w1 {:?} does not match w2 {:?}",
                w1.dims(),
                w2.dims()
            );
        }
        Ok((r, d, f))
    }
}

/// `relu(h)` of a hidden tensor, split across threads in runs of at least 4,096 values.
fn activations(h: &[f32], threads: usize) -> Vec<f32> {
    #[cfg(not(target_arch = "wasm32"))]
    if threads > 1 && h.len() >= PARALLEL_MIN_VALUES {
        use rayon::prelude::*;
        const ACTIVATION_CHUNK: usize = 1 << 12;
        return h
            .par_iter()
            .with_min_len(ACTIVATION_CHUNK)
            .map(|&v| relu(v))
            .collect();
    }
    let _ = threads;
    h.iter().map(|&v| relu(v)).collect()
}

impl Default for FeedForward {
    /// The block on candle's thread count.
    fn default() -> FeedForward {
        FeedForward::with_threads(candle_core::utils::get_num_threads())
    }
}

impl CustomOp3 for FeedForward {
    fn name(&self) -> &'static str {
        "feed-forward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (r, d, f) = Self::dims(l1, l2, l3)?;
        let (x, w1, w2) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
            contiguous(s3, l3, self.name())?,
        );
        let h = linear(x, w1, (r, d, f), self.threads);
        let a = activations(&h, self.threads);
        let y = linear(&a, w2, (r, f, d), self.threads);
        self.hidden
            .set(h)
            .map_err(|_| candle_core::Error::Msg("feed-forward: op applied twice".into()))?;
        Ok((CpuStorage::F32(y), Shape::from((r, d))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w1: &Tensor,
        w2: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (r, d, f) = Self::dims(x.layout(), w1.layout(), w2.layout())?;
        let h = self.hidden.get().ok_or_else(|| {
            candle_core::Error::Msg("feed-forward: backward before forward".into())
        })?;
        let (xh, w1h, w2h, gh) = (host(x)?, host(w1)?, host(w2)?, host(g)?);
        let a = activations(h, self.threads);
        let (mut da, dw2) = linear_grads(&a, w2h.values()?, gh.values()?, (r, f, d), self.threads);
        // Stored, through ReLU's backward as [`Relu`] computes it (g * (h >= 0)), stored again.
        for_each_chunk(self.threads, da.len(), &mut da, f, |i, row| {
            for (g, &v) in row.iter_mut().zip(&h[i * f..]) {
                *g = (*g + 0.0) * relu_slope(v) + 0.0;
            }
        });
        let (dx, dw1) = linear_grads(xh.values()?, w1h.values()?, &da, (r, d, f), self.threads);
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw1, w1.shape(), dev)?),
            Some(Tensor::from_vec(dw2, w2.shape(), dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posgen::rng::SplitMix64;
    use candle_core::{D, Device, Var};

    fn random(shape: &[usize], seed: u64) -> Tensor {
        let mut rng = SplitMix64::new(seed);
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    /// Value and gradients of `sum(f(vars) * r)` for a fixed random `r`.
    fn value_and_grads(
        vars: &[Var],
        f: impl Fn(&[Tensor]) -> Tensor,
        seed: u64,
    ) -> (Tensor, Vec<Tensor>) {
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let y = f(&ts);
        let r = random(y.dims(), seed);
        let loss = (&y * &r).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let g = vars.iter().map(|v| grads.get(v).unwrap().clone()).collect();
        (y, g)
    }

    #[test]
    fn causal_softmax_matches_mask_plus_softmax_with_gradients() {
        let x = Var::from_tensor(&random(&[2, 3, 7, 7], 1)).unwrap();
        let mask: Vec<f32> = (0..49)
            .map(|k| if k % 7 > k / 7 { -1e9 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (7, 7), &Device::Cpu).unwrap();
        let (y0, g0) = value_and_grads(
            std::slice::from_ref(&x),
            |t| candle_nn::ops::softmax(&t[0].broadcast_add(&mask).unwrap(), D::Minus1).unwrap(),
            2,
        );
        let (y1, g1) = value_and_grads(
            std::slice::from_ref(&x),
            |t| t[0].apply_op1(CausalSoftmax).unwrap(),
            2,
        );
        assert!(max_diff(&y0, &y1) < 1e-6, "{}", max_diff(&y0, &y1));
        assert!(
            max_diff(&g0[0], &g1[0]) < 1e-5,
            "{}",
            max_diff(&g0[0], &g1[0])
        );
        // row 0 sees only key 0
        let row0: Vec<f32> = y1.flatten_all().unwrap().to_vec1().unwrap()[..7].to_vec();
        assert_eq!(row0, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    /// The fused attention op against the chain it replaces (`q k^T`, [`CausalSoftmax`], `P v`):
    /// output and all three gradients bit for bit, in one thread and split across three.
    #[test]
    fn attention_matches_the_matmul_softmax_chain_bit_for_bit() {
        let (b, h, t, dh) = (2, 3, 7, 4);
        let vars: Vec<Var> = [
            (&[b, h, t, dh], 31),
            (&[b, h, dh, t], 32),
            (&[b, h, t, dh], 33),
        ]
        .into_iter()
        .map(|(s, seed)| Var::from_tensor(&random(s, seed)).unwrap())
        .collect();
        let r = random(&[b, h, t, dh], 34);
        let run = |f: &dyn Fn(&Tensor, &Tensor, &Tensor) -> Tensor| {
            let (q, kt, v) = (
                vars[0].as_tensor(),
                vars[1].as_tensor(),
                vars[2].as_tensor(),
            );
            let o = f(q, kt, v);
            let grads = (&o * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let mut out = vec![bits(&o)];
            out.extend(vars.iter().map(|v| bits(grads.get(v).unwrap())));
            out
        };
        let chain = run(&|q, kt, v| {
            q.matmul(kt)
                .unwrap()
                .apply_op1(CausalSoftmax)
                .unwrap()
                .matmul(v)
                .unwrap()
        });
        for threads in [1, 3] {
            let fused = run(&|q, kt, v| {
                q.apply_op3(kt, v, Attention::with_threads(threads))
                    .unwrap()
            });
            assert_eq!(fused, chain, "{threads} threads");
        }
        // query 0 sees only key 0: its output is v's row 0
        let o = vars[0]
            .as_tensor()
            .apply_op3(
                vars[1].as_tensor(),
                vars[2].as_tensor(),
                Attention::default(),
            )
            .unwrap();
        let first = |x: &Tensor| {
            x.get(1)
                .unwrap()
                .get(2)
                .unwrap()
                .get(0)
                .unwrap()
                .to_vec1::<f32>()
        };
        assert_eq!(first(&o).unwrap(), first(vars[2].as_tensor()).unwrap());
    }

    /// Values and gradients of `sum(f(vars) * r)` as bit patterns, `r` random of `out` shape.
    fn bit_grads(vars: &[Var], out: &[usize], f: &dyn Fn(&[&Tensor]) -> Tensor) -> Vec<Vec<u32>> {
        let r = random(out, 99);
        let ts: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
        let y = f(&ts);
        let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let mut res = vec![bits(&y)];
        res.extend(vars.iter().map(|v| bits(grads.get(v).unwrap())));
        res
    }

    fn vars(shapes: &[&[usize]], seed: u64) -> Vec<Var> {
        shapes
            .iter()
            .enumerate()
            .map(|(i, s)| Var::from_tensor(&random(s, seed + i as u64)).unwrap())
            .collect()
    }

    /// The fused projection against `x.matmul(w)` and [`SplitHeads`], for queries (rotated),
    /// keys (rotated, transposed) and values: bit for bit in one thread and in three, with a
    /// product large enough to be split.
    #[test]
    fn project_matches_matmul_then_split_bit_for_bit() {
        let (b, t, h, dh, d) = (16, 64, 8, 64, 64);
        let mut rng = SplitMix64::new(41);
        let angles: Vec<f64> = (0..t * dh / 2).map(|_| rng.normal()).collect();
        let rope = Rope {
            cos: Arc::new(angles.iter().map(|a| a.cos() as f32).collect()),
            sin: Arc::new(angles.iter().map(|a| a.sin() as f32).collect()),
            pairs: Arc::new((0..dh / 2).map(|i| (i, i + dh / 2)).collect()),
            max_len: t,
            inverse: false,
        };
        let vs = vars(&[&[b * t, d], &[d, h * dh]], 40);
        for (rotary, keys) in [(true, false), (true, true), (false, false)] {
            let split = SplitHeads {
                rope: rotary.then(|| rope.clone()),
                batch: b,
                len: t,
                heads: h,
                keys,
            };
            let out: &[usize] = if keys { &[b, h, dh, t] } else { &[b, h, t, dh] };
            let chain = bit_grads(&vs, out, &|x| {
                x[0].matmul(x[1]).unwrap().apply_op1(split.clone()).unwrap()
            });
            for threads in [1, 3] {
                let op = || Project {
                    split: split.clone(),
                    threads,
                };
                let fused = bit_grads(&vs, out, &|x| x[0].apply_op2(x[1], op()).unwrap());
                assert_eq!(
                    fused, chain,
                    "rotary {rotary}, keys {keys}, {threads} threads"
                );
            }
        }
    }

    /// The fused feed-forward block against `x.matmul(w1)`, [`Relu`] and `.matmul(w2)`, with
    /// exact zeros in the pre-activation (ReLU's gradient is 1 there): bit for bit in one thread
    /// and in three, with products large enough to be split.
    #[test]
    fn feed_forward_matches_the_matmul_relu_chain_bit_for_bit() {
        let (r, d, f) = (2048, 64, 256);
        let mut vs = vars(&[&[r, d], &[d, f], &[f, d]], 50);
        // a zero row of x gives exact zeros in the pre-activation
        let mut x: Vec<f32> = vs[0].as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        x[..d].fill(0.0);
        vs[0] = Var::from_tensor(&Tensor::from_vec(x, (r, d), &Device::Cpu).unwrap()).unwrap();
        let chain = bit_grads(&vs, &[r, d], &|x| {
            x[0].matmul(x[1])
                .unwrap()
                .apply_op1(Relu)
                .unwrap()
                .matmul(x[2])
                .unwrap()
        });
        for threads in [1, 3] {
            let fused = bit_grads(&vs, &[r, d], &|x| {
                x[0].apply_op3(x[1], x[2], FeedForward::with_threads(threads))
                    .unwrap()
            });
            assert_eq!(fused, chain, "{threads} threads");
        }
    }

    /// Bit for bit, value and gradient, including exact zeros in x (gradient 1 there, as
    /// candle's `ge(0)` mask gives) and a non-contiguous upstream gradient.
    #[test]
    fn relu_matches_candle_relu_bit_for_bit() {
        let mut v: Vec<f32> = random(&[4, 6], 12)
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        v[3] = 0.0;
        v[7] = -0.0;
        let x = Var::from_tensor(&Tensor::from_vec(v, (4, 6), &Device::Cpu).unwrap()).unwrap();
        let r = random(&[6, 4], 13);
        let run = |f: &dyn Fn(&Tensor) -> Tensor| {
            let y = f(x.as_tensor());
            let loss = (&y * r.t().unwrap()).unwrap().sum_all().unwrap();
            let g = loss.backward().unwrap().get(&x).unwrap().clone();
            (bits(&y), bits(&g))
        };
        let (y0, g0) = run(&|t| t.relu().unwrap());
        let (y1, g1) = run(&|t| t.apply_op1(Relu).unwrap());
        assert_eq!(y0, y1);
        assert_eq!(g0, g1);
        // the zeros pass the gradient through
        let g: Vec<f32> = g1.iter().map(|b| f32::from_bits(*b)).collect();
        assert!(g[3] != 0.0 && g[7] != 0.0, "{g:?}");
    }

    /// Bit patterns of a tensor's values.
    fn bits(t: &Tensor) -> Vec<u32> {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// Split of heads (with and without rotation, keys transposed) against the reshape /
    /// transpose / contiguous / [`Rope`] chain it replaces: values and gradients bit for bit.
    #[test]
    fn split_heads_matches_the_tensor_chain_bit_for_bit() {
        let (b, t, h, dh) = (2, 5, 3, 4);
        let mut rng = SplitMix64::new(21);
        let angles: Vec<f64> = (0..t * dh / 2).map(|_| rng.normal()).collect();
        let rope = Rope {
            cos: Arc::new(angles.iter().map(|a| a.cos() as f32).collect()),
            sin: Arc::new(angles.iter().map(|a| a.sin() as f32).collect()),
            pairs: Arc::new(vec![(0, 2), (1, 3)]),
            max_len: t,
            inverse: false,
        };
        let x = Var::from_tensor(&random(&[b * t, h * dh], 22)).unwrap();
        let r = random(&[b, h, t, dh], 23);
        let chain = |v: &Tensor, rotary: bool| {
            let y = v
                .reshape((b, t, h, dh))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap();
            if rotary {
                y.apply_op1(rope.clone()).unwrap()
            } else {
                y
            }
        };
        for (rotary, keys) in [(true, false), (false, false), (true, true)] {
            let split = SplitHeads {
                rope: rotary.then(|| rope.clone()),
                batch: b,
                len: t,
                heads: h,
                keys,
            };
            let r = if keys {
                r.t().unwrap().contiguous().unwrap()
            } else {
                r.clone()
            };
            let run = |f: &dyn Fn(&Tensor) -> Tensor| {
                let y = f(x.as_tensor());
                let loss = (&y * &r).unwrap().sum_all().unwrap();
                (bits(&y), bits(loss.backward().unwrap().get(&x).unwrap()))
            };
            let want = run(&|v: &Tensor| {
                let y = chain(v, rotary);
                if keys {
                    y.t().unwrap().contiguous().unwrap()
                } else {
                    y
                }
            });
            let got = run(&|v: &Tensor| v.apply_op1(split.clone()).unwrap());
            assert_eq!(want, got, "rotary {rotary}, keys {keys}");
        }
    }

    #[test]
    fn merge_heads_matches_the_tensor_chain_bit_for_bit_and_undoes_the_split() {
        let (b, t, h, dh) = (2, 5, 3, 4);
        let x = random(&[b * t, h * dh], 22);
        let y = Var::from_tensor(&random(&[b, h, t, dh], 24)).unwrap();
        let r = random(&[b * t, h * dh], 25);
        let run = |f: &dyn Fn(&Tensor) -> Tensor| {
            let o = f(y.as_tensor());
            let loss = (&o * &r).unwrap().sum_all().unwrap();
            (bits(&o), bits(loss.backward().unwrap().get(&y).unwrap()))
        };
        let want = run(&|v: &Tensor| {
            v.transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
                .reshape((b * t, h * dh))
                .unwrap()
        });
        let got = run(&|v: &Tensor| v.apply_op1(MergeHeads).unwrap());
        assert_eq!(want, got);
        // merge undoes split
        let split = SplitHeads {
            rope: None,
            batch: b,
            len: t,
            heads: h,
            keys: false,
        };
        let back = x.apply_op1(split).unwrap().apply_op1(MergeHeads).unwrap();
        assert_eq!(bits(&back), bits(&x));
    }

    #[test]
    fn rms_norm_matches_the_elementary_form_with_gradients() {
        let x = Var::from_tensor(&random(&[5, 8], 3)).unwrap();
        let w = Var::from_tensor(&random(&[8], 4)).unwrap();
        let vars = [x, w];
        let (y0, g0) = value_and_grads(
            &vars,
            |t| {
                let ms = t[0].sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
                let s = (ms + 1e-6).unwrap().sqrt().unwrap();
                t[0].broadcast_div(&s)
                    .unwrap()
                    .broadcast_mul(&t[1])
                    .unwrap()
            },
            5,
        );
        let (y1, g1) = value_and_grads(
            &vars,
            |t| {
                t[0].apply_op2(
                    &t[1],
                    RmsNorm {
                        eps: 1e-6,
                        threads: 1,
                    },
                )
                .unwrap()
            },
            5,
        );
        assert!(max_diff(&y0, &y1) < 1e-5);
        for (a, b) in g0.iter().zip(&g1) {
            assert!(max_diff(a, b) < 1e-4, "{}", max_diff(a, b));
        }
    }

    /// Rows split across threads, and weight-gradient columns summed in row order by whichever
    /// thread owns them: the same bits as one thread, for a pass large enough to be split.
    #[test]
    fn rms_norm_gives_the_same_bits_on_any_thread_count() {
        let vs = vars(&[&[4096, 160], &[160]], 60);
        let run = |threads| {
            bit_grads(&vs, &[4096, 160], &|t| {
                t[0].apply_op2(t[1], RmsNorm { eps: 1e-6, threads })
                    .unwrap()
            })
        };
        let one = run(1);
        assert_eq!(run(3), one);
        assert_eq!(run(2), one);
    }

    #[test]
    fn rope_matches_cos_plus_rotated_sin_and_inverts() {
        let (t, dh) = (6, 8);
        let pairs: Vec<(usize, usize)> = (0..dh / 2).map(|i| (2 * i, 2 * i + 1)).collect();
        let mut rng = SplitMix64::new(9);
        let angles: Vec<f64> = (0..t * dh / 2).map(|_| rng.normal()).collect();
        let op = Rope {
            cos: Arc::new(angles.iter().map(|a| a.cos() as f32).collect()),
            sin: Arc::new(angles.iter().map(|a| a.sin() as f32).collect()),
            pairs: Arc::new(pairs.clone()),
            max_len: t,
            inverse: false,
        };
        // elementary form: x * cos + (x R) * sin with the tables expanded to Dh
        let mut cos = vec![0f32; t * dh];
        let mut sin = vec![0f32; t * dh];
        let mut rot = vec![0f32; dh * dh];
        for p in 0..t {
            for (i, &(a, b)) in pairs.iter().enumerate() {
                for c in [a, b] {
                    cos[p * dh + c] = op.cos[p * dh / 2 + i];
                    sin[p * dh + c] = op.sin[p * dh / 2 + i];
                }
            }
        }
        for &(a, b) in &pairs {
            rot[b * dh + a] = -1.0;
            rot[a * dh + b] = 1.0;
        }
        let dev = Device::Cpu;
        let cos = Tensor::from_vec(cos, (t, dh), &dev).unwrap();
        let sin = Tensor::from_vec(sin, (t, dh), &dev).unwrap();
        let rot = Tensor::from_vec(rot, (dh, dh), &dev).unwrap();
        let x = Var::from_tensor(&random(&[2, 3, t, dh], 10)).unwrap();
        let (y0, g0) = value_and_grads(
            std::slice::from_ref(&x),
            |v| {
                let r = v[0].reshape((2 * 3 * t, dh)).unwrap().matmul(&rot).unwrap();
                let r = r.reshape((2, 3, t, dh)).unwrap();
                (v[0].broadcast_mul(&cos).unwrap() + r.broadcast_mul(&sin).unwrap()).unwrap()
            },
            11,
        );
        let (y1, g1) = value_and_grads(
            std::slice::from_ref(&x),
            |v| v[0].apply_op1(op.clone()).unwrap(),
            11,
        );
        assert!(max_diff(&y0, &y1) < 1e-5);
        assert!(max_diff(&g0[0], &g1[0]) < 1e-5);
        let back = Rope {
            inverse: true,
            ..op.clone()
        };
        let round_trip = y1.apply_op1_no_bwd(&back).unwrap();
        assert!(max_diff(&round_trip, x.as_tensor()) < 1e-5);
    }
}
