#!/usr/bin/env python3
"""PyTorch CPU baseline of the PosGen transformer and training step.

Mirrors `src/posgen/model.rs` and `src/posgen/train.rs` so that the training
throughput of our candle implementation (`resonance-lab posgen bench`) can be
compared with a PyTorch implementation of the same model on the same CPU.

Model (identical shapes and operations):
  * decoder-only, T5-style blocks: RMSNorm (x / sqrt(mean(x^2) + 1e-6) * w),
    q/k/v/o projections without bias, RoPE on q and k, additive causal mask
    (-1e9 above the diagonal), NO 1/sqrt(d) score scale, softmax, ReLU FFN
    (w1, w2 without bias), residuals, final RMSNorm, untied head;
  * weights are (in, out) matrices applied as `x @ W`, with the same T5-style
    initial standard deviations as `Model::new`;
  * RoPE: plain RoPE, base 10000, interleaved pairs (2i, 2i+1), applied as
    `x * cos + (x @ R) * sin` with the same cos/sin tables and pair-rotation
    matrix R as `RopeTables`;
  * loss: mean cross-entropy over the scored target positions (positions
    j + k = 4 .. L-1 of each sequence; the seeds are not scored), computed as
    in `masked_cross_entropy` (log-softmax times one-hot weights, summed,
    divided by the number of scored entries).

Training step (what is timed): build the batch (BOS + the first L-1 tokens of
each sequence as input, the sequence as targets, one-hot weights of the scored
positions), zero_grad, forward, loss, backward, AdamW step (betas 0.9/0.999,
eps 1e-8, decoupled weight decay on every parameter, as candle-nn's AdamW),
learning-rate scheduler step (one-cycle cosine, same formula as
`one_cycle_lr`), and reading the loss back as a Python float.

Data: random token ids in 0..16 (modulus 17) with BOS = 17, in sequences of
L = 64 tokens, instead of the PosGen task sequences. Throughput does not
depend on the token values: the shapes and the operations are identical.

`--lm-steps N` also times the text model of `resonance-lab lm bench` (preset
`small`: vocabulary 257 = 256 bytes + BOS, L = 128, d_model 64, 2 heads of 32,
d_ff 256, 2 layers, batch 16, every position scored, random bytes), the same
model and step with the lm preset's shapes.

`--impl fused` swaps in PyTorch's fused kernels (F.rms_norm,
F.scaled_dot_product_attention with scale=1, strided RoPE rotation,
F.cross_entropy); it computes the same function and gives an idiomatic
best-effort PyTorch number next to the op-for-op mirror (`--impl mirror`).

Prints JSON shaped like `resonance-lab posgen bench`, plus `torch_version`.
"""

import argparse
import json
import math
import sys
import time
import warnings

# numpy is optional and unused; silence torch's import-time warning about it.
warnings.filterwarnings("ignore", message=".*NumPy.*")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

MODULUS = 17
BOS = MODULUS
VOCAB = MODULUS + 1
NUM_SEEDS = 4  # j + k of the paper's tasks (j = 1, k = 3): first scored position
TRAIN_LEN = 64  # L: model positions per training sequence (BOS + L-1 tokens)
ROPE_BASE = 10_000.0

# vocab, length (L), modulus (token values drawn below it) and scored_from (first
# scored position) default to the PosGen tasks'; the lm preset reads bytes.
POSGEN = dict(vocab=VOCAB, length=TRAIN_LEN, modulus=MODULUS, scored_from=NUM_SEEDS, bos=BOS)
PRESETS = {
    "tiny": dict(
        d_model=64, n_heads=2, head_dim=32, d_ff=128, n_layers=2,
        batch_size=32, lr=3e-3, weight_decay=0.01, train=4_000, **POSGEN,
    ),
    "paper": dict(
        d_model=512, n_heads=8, head_dim=64, d_ff=2048, n_layers=2,
        batch_size=128, lr=2e-4, weight_decay=0.01, train=10_000, **POSGEN,
    ),
    # `LmPreset::get(Small)`: bytes and BOS (256), every position scored
    "lm-small": dict(
        d_model=64, n_heads=2, head_dim=32, d_ff=256, n_layers=2,
        batch_size=16, lr=3e-3, weight_decay=0.01, train=4_000,
        vocab=257, length=128, modulus=256, scored_from=0, bos=256,
    ),
}


def num_params(p):
    """`ModelDims::num_params`."""
    inner = p["n_heads"] * p["head_dim"]
    per_layer = 2 * p["d_model"] + 4 * p["d_model"] * inner + 2 * p["d_model"] * p["d_ff"]
    return 2 * p["vocab"] * p["d_model"] + p["d_model"] + p["n_layers"] * per_layer


def one_cycle_lr(step, total, peak):
    """`one_cycle_lr`: cosine warm-up from peak/25 over 30% of the steps, then
    cosine annealing to peak/25/1e4."""
    total = float(max(total, 1))
    warm = max(0.3 * total, 1.0)
    start = peak / 25.0
    end = start / 1e4

    def cos_interp(a, b, frac):
        return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * frac))

    s = float(step)
    if s < warm:
        return cos_interp(start, peak, s / warm)
    return cos_interp(peak, end, min((s - warm) / max(total - warm, 1.0), 1.0))


def rope_tables(head_dim, max_len):
    """`RopeTables::new` for plain RoPE with the interleaved pair layout."""
    inv_freq = [1.0 / ROPE_BASE ** (2 * i / head_dim) for i in range(head_dim // 2)]
    cos = torch.zeros(max_len, head_dim, dtype=torch.float64)
    sin = torch.zeros(max_len, head_dim, dtype=torch.float64)
    for p in range(max_len):
        for i, f in enumerate(inv_freq):
            a, b = 2 * i, 2 * i + 1
            cos[p, a] = cos[p, b] = math.cos(p * f)
            sin[p, a] = sin[p, b] = math.sin(p * f)
    rot = torch.zeros(head_dim, head_dim)
    for i in range(head_dim // 2):
        a, b = 2 * i, 2 * i + 1
        rot[b, a] = -1.0  # (xR)[a] = -x[b]
        rot[a, b] = 1.0  # (xR)[b] = x[a]
    return cos.float(), sin.float(), rot


def causal_mask(t):
    """`causal_mask`: 0 on and below the diagonal, -1e9 above."""
    return torch.triu(torch.full((t, t), -1e9), diagonal=1)


def rms_norm(x, w):
    ms = x.square().mean(dim=-1, keepdim=True)
    return x / (ms + 1e-6).sqrt() * w


class PosGenModel(torch.nn.Module):
    """`Model`: parameters registered in the order of `Model::named_vars`."""

    def __init__(self, p, max_len, fused=False):
        super().__init__()
        d, h, dh, dff = p["d_model"], p["n_heads"], p["head_dim"], p["d_ff"]
        inner = h * dh
        self.d, self.h, self.dh, self.fused = d, h, dh, fused

        def normal(rows, cols, std):
            return torch.nn.Parameter(torch.randn(rows, cols) * std)

        def ones(n):
            return torch.nn.Parameter(torch.ones(n))

        self.embed = normal(p["vocab"], d, 1.0)
        self.blocks = torch.nn.ModuleList()
        for _ in range(p["n_layers"]):
            blk = torch.nn.Module()
            blk.attn_norm = ones(d)
            blk.wq = normal(d, inner, (d * dh) ** -0.5)
            blk.wk = normal(d, inner, d ** -0.5)
            blk.wv = normal(d, inner, d ** -0.5)
            blk.wo = normal(inner, d, inner ** -0.5)
            blk.ffn_norm = ones(d)
            blk.w1 = normal(d, dff, d ** -0.5)
            blk.w2 = normal(dff, d, dff ** -0.5)
            self.blocks.append(blk)
        self.final_norm = ones(d)
        self.head = normal(d, p["vocab"], d ** -0.5)
        cos, sin, rot = rope_tables(dh, max_len)
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)
        self.register_buffer("rot", rot)
        self.register_buffer("mask", causal_mask(max_len))

    def rope(self, x):
        """`RopeTables::apply` on (B, H, T, Dh)."""
        b, h, t, dh = x.shape
        cos, sin = self.cos[:t], self.sin[:t]
        if self.fused:
            pairs = x.unflatten(-1, (dh // 2, 2))
            rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        else:
            rotated = (x.reshape(b * h * t, dh) @ self.rot).reshape(b, h, t, dh)
        return x * cos + rotated * sin

    def norm(self, x, w):
        if self.fused:
            return F.rms_norm(x, (self.d,), w, eps=1e-6)
        return rms_norm(x, w)

    def forward(self, ids):
        """Logits (B*T, vocab) for ids (B, T)."""
        b, t = ids.shape
        h, dh = self.h, self.dh
        x = self.embed.index_select(0, ids.reshape(-1))

        def heads(y):
            return y.reshape(b, t, h, dh).transpose(1, 2).contiguous()

        for blk in self.blocks:
            n = self.norm(x, blk.attn_norm)
            q = self.rope(heads(n @ blk.wq))
            k = self.rope(heads(n @ blk.wk))
            v = heads(n @ blk.wv)
            if self.fused:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0)
            else:
                scores = q @ k.transpose(-2, -1).contiguous() + self.mask[:t, :t]
                o = torch.softmax(scores, dim=-1) @ v
            o = o.transpose(1, 2).contiguous().reshape(b * t, h * dh)
            x = x + o @ blk.wo
            n = self.norm(x, blk.ffn_norm)
            x = x + torch.relu(n @ blk.w1) @ blk.w2
        return self.norm(x, self.final_norm) @ self.head


def masked_cross_entropy(logits, weights, count):
    """`masked_cross_entropy`: rows of unscored positions are all zero."""
    logp = torch.log_softmax(logits, dim=-1)
    return (logp * weights).sum() * (-1.0 / max(count, 1))


class Trainer:
    """Model, AdamW, one-cycle schedule and a shuffled random training split."""

    def __init__(self, p, batch_size, total_steps, seed, fused=False):
        self.p, self.batch_size, self.fused = p, batch_size, fused
        self.gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.length = p["length"]
        self.model = PosGenModel(p, self.length, fused=fused)
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=p["lr"], betas=(0.9, 0.999), eps=1e-8,
            weight_decay=p["weight_decay"],
        )
        peak = p["lr"]
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: one_cycle_lr(s, total_steps, peak) / peak
        )
        self.data = torch.randint(0, p["modulus"], (p["train"], self.length), generator=self.gen)
        self.order = torch.empty(0, dtype=torch.long)
        self.cursor = 0
        self.scored = torch.arange(self.length) >= p["scored_from"]
        self.losses = []

    def next_rows(self):
        bs = min(self.batch_size, self.data.shape[0])
        rows, have = [], 0
        while have < bs:
            if self.cursor >= len(self.order):
                self.order = torch.randperm(self.data.shape[0], generator=self.gen)
                self.cursor = 0
            take = min(bs - have, len(self.order) - self.cursor)
            rows.append(self.order[self.cursor:self.cursor + take])
            self.cursor += take
            have += take
        return torch.cat(rows)

    def batch(self):
        """`Batch::from_split` + `batch_tensors`: ids (B, L), one-hot weights, count."""
        seqs = self.data[self.next_rows()]
        b = seqs.shape[0]
        assert b == min(self.batch_size, self.data.shape[0])
        ids = torch.cat([torch.full((b, 1), self.p["bos"], dtype=seqs.dtype), seqs[:, :-1]], dim=1)
        scored = self.scored.repeat(b)
        targets = seqs.reshape(-1)
        if self.fused:
            return ids, targets.masked_fill(~scored, -100), int(scored.sum())
        w = torch.zeros(b * self.length, self.p["vocab"])
        w[scored, targets[scored]] = 1.0
        return ids, w, int(scored.sum())

    def step(self):
        ids, w, count = self.batch()
        self.opt.zero_grad(set_to_none=True)
        logits = self.model(ids)
        if self.fused:
            loss = F.cross_entropy(logits, w, ignore_index=-100)
        else:
            loss = masked_cross_entropy(logits, w, count)
        loss.backward()
        self.opt.step()
        self.sched.step()
        self.losses.append(loss.item())


def time_steps(p, batch_size, steps, warmup, seed, fused):
    """`time_steps`: `warmup` untimed steps, then `steps` timed steps."""
    t = Trainer(p, batch_size, warmup + steps, seed, fused)
    params = sum(x.numel() for x in t.model.parameters())
    if params != num_params(p):
        sys.exit(f"parameter count {params} != ModelDims::num_params {num_params(p)}")
    for _ in range(warmup):
        t.step()
    start = time.perf_counter()
    for _ in range(steps):
        t.step()
    seconds = time.perf_counter() - start
    return seconds, steps, params, t.losses


def report(p, batch_size, steps, seconds, params):
    tokens = batch_size * p["length"]
    return {
        "parameters": params,
        "batch_size": batch_size,
        "tokens_per_step": tokens,
        "steps": steps,
        "seconds": seconds,
        "steps_per_second": steps / seconds,
        "tokens_per_second": steps * tokens / seconds,
    }


def self_test():
    """Both implementations compute the same loss; RoPE scores depend only on offsets."""
    p = PRESETS["tiny"]
    torch.manual_seed(0)
    mirror = Trainer(p, p["batch_size"], 10, 0, fused=False)
    fused = Trainer(p, p["batch_size"], 10, 0, fused=True)
    fused.model.load_state_dict(mirror.model.state_dict())
    ids, w, count = mirror.batch()
    _, tgt, _ = fused.batch()
    with torch.no_grad():
        a = masked_cross_entropy(mirror.model(ids), w, count).item()
        b = F.cross_entropy(fused.model(ids), tgt, ignore_index=-100).item()
    assert abs(a - b) < 1e-4 * max(1.0, abs(a)), (a, b)
    m = mirror.model
    q, k = torch.randn(1, 1, 1, m.dh), torch.randn(1, 1, 1, m.dh)
    qs, ks = q.expand(1, 1, TRAIN_LEN, m.dh), k.expand(1, 1, TRAIN_LEN, m.dh)
    s = m.rope(qs) @ m.rope(ks).transpose(-2, -1)
    assert abs(s[0, 0, 10, 3] - s[0, 0, 50, 43]) < 1e-3, "RoPE is not relative"
    assert m.rope(qs).sub(fused.model.rope(qs)).abs().max() < 1e-6
    for name, pp in PRESETS.items():
        got = sum(x.numel() for x in PosGenModel(pp, TRAIN_LEN).parameters())
        assert got == num_params(pp), (name, got, num_params(pp))
    return {"mirror_loss": a, "fused_loss": b, "parameters_match": True}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--tiny-steps", type=int, default=30)
    ap.add_argument("--paper-steps", type=int, default=2)
    ap.add_argument("--paper-batch", type=int, default=16)
    ap.add_argument("--lm-steps", type=int, default=0, help="timed steps of the lm-small model (0: skip)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--impl", choices=["mirror", "fused"], default="mirror")
    ap.add_argument("--self-test", action="store_true", help="check and exit")
    a = ap.parse_args()
    if min(a.tiny_steps, a.paper_steps, a.paper_batch) < 1 or a.warmup < 0:
        ap.error("--tiny-steps, --paper-steps, --paper-batch must be >= 1, --warmup >= 0")
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    if a.self_test:
        print(json.dumps(self_test(), indent=2))
        return
    fused = a.impl == "fused"
    tiny = PRESETS["tiny"]
    paper = PRESETS["paper"]
    print(f"torch baseline: tiny preset, {a.tiny_steps} steps", file=sys.stderr)
    ts, tn, tp, _ = time_steps(tiny, tiny["batch_size"], a.tiny_steps, a.warmup, a.seed, fused)
    print(
        f"torch baseline: paper preset, {a.paper_steps} steps of batch {a.paper_batch}",
        file=sys.stderr,
    )
    ps, pn, pp, _ = time_steps(paper, a.paper_batch, a.paper_steps, a.warmup, a.seed, fused)
    paper_doc = report(paper, a.paper_batch, pn, ps, pp)
    paper_doc["seconds_per_paper_step_of_128"] = ps / pn * 128.0 / a.paper_batch
    lm_doc = None
    if a.lm_steps > 0:
        lm = PRESETS["lm-small"]
        print(f"torch baseline: lm-small, {a.lm_steps} steps", file=sys.stderr)
        ls, ln, lp, _ = time_steps(lm, lm["batch_size"], a.lm_steps, a.warmup, a.seed, fused)
        lm_doc = report(lm, lm["batch_size"], ln, ls, lp)
    doc = {
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "impl": a.impl,
        "warmup_steps": a.warmup,
        "tiny": report(tiny, tiny["batch_size"], tn, ts, tp),
        "paper": paper_doc,
        "lm": lm_doc,
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
