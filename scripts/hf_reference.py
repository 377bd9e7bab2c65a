#!/usr/bin/env python3
"""Golden values for tests/data/hf_reference.json.

Re-implements Hugging Face transformers' `modeling_rope_utils` frequency functions
(default, linear, dynamic, yarn, llama3) line by line in numpy float32 (numpy's own powf and
f32 arithmetic, standing in for torch's f32 CPU kernels; the one pow is correctly rounded), and the official Resonance RoPE
rounding (`round(reciprocal(inv) * 2*pi)` in f32, round half to even). Phase references use
mpmath at 60 digits. Run: python3 scripts/hf_reference.py > tests/data/hf_reference.json
"""
import json
import math

import numpy as np
from mpmath import mp, mpf, cos, sin, pi as mpi

f32 = np.float32


def powf(base, exps):
    """`base ** exps` for f32 inputs, correctly rounded to f32 (via 60-digit mpmath).

    torch's vectorised powf (SLEEF, <= 1 ULP) and numpy's may differ from the correctly rounded
    value by 1 ULP in `pos_i`; everything after the pow follows transformers' f32 order exactly.
    """
    mp.dps = 60
    b = mpf(float(f32(base)))
    return np.array([float(b ** mpf(float(e))) for e in exps], dtype=np.float64).astype(np.float32)


def default(base, dim):
    exps = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / f32(dim)
    return f32(1.0) / powf(base, exps)


def linear(base, dim, factor):
    return default(base, dim) / f32(factor)


def dynamic(base, dim, factor, seq_len, max_pos):
    seq_len = max(seq_len, max_pos)
    b = base * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2))
    return default(b, dim)


def ntk(base, dim, factor):
    return default(base * factor ** (dim / (dim - 2)), dim)


def yarn(base, dim, factor, max_pos, beta_fast=32, beta_slow=1, truncate=True):
    def corr_dim(rot):
        return (dim * math.log(max_pos / (rot * 2 * math.pi))) / (2 * math.log(base))

    low, high = corr_dim(beta_fast), corr_dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    pos = powf(base, np.arange(0, dim, 2).astype(np.float32) / f32(dim))
    extrap = f32(1.0) / pos
    interp = f32(1.0) / (f32(factor) * pos)
    ramp = np.clip((np.arange(dim // 2, dtype=np.float32) - f32(low)) / f32(high - low), 0, 1)
    mask = f32(1) - ramp
    inv = interp * (f32(1) - mask) + extrap * mask
    att = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0
    return inv.astype(np.float32), att, (low, high)


def llama3(base, dim, factor, lf, hf, old):
    inv = default(base, dim)
    low_wl, high_wl = old / lf, old / hf
    wl = f32(2 * math.pi) / inv
    inv_l = np.where(wl > f32(low_wl), inv / f32(factor), inv)
    smooth = (f32(old) / wl - f32(lf)) / f32(hf - lf)
    smoothed = (f32(1) - smooth) * inv_l / f32(factor) + smooth * inv_l
    medium = ~(wl < f32(high_wl)) * ~(wl > f32(low_wl))
    return np.where(medium, smoothed, inv_l).astype(np.float32)


def resonance(inv):
    wl = np.round(np.reciprocal(inv) * f32(2) * f32(math.pi))
    return (f32(2 * math.pi) / wl).astype(np.float32), wl


def case(name, args, inv, att=1.0, extra=None):
    d = {"name": name, "args": args, "inv_freq": [float(v) for v in inv], "attention_factor": att}
    if extra:
        d.update(extra)
    return d


cases = []
for dim, base in [(64, 10000.0), (128, 10000.0), (128, 500000.0), (256, 1e6)]:
    cases.append(case(f"rope d{dim} b{base:g}", ["--dim", str(dim), "--base", repr(base)], default(base, dim)))
cases.append(case("pi s4", ["--method", "pi", "--scale", "4"], linear(10000.0, 64, 4.0)))
cases.append(case("ntk s8 d128", ["--method", "ntk", "--dim", "128", "--scale", "8"], ntk(10000.0, 128, 8.0)))
cases.append(case(
    "dynamic-ntk d128 L4096 seq10000 s4",
    ["--method", "dynamic-ntk", "--dim", "128", "--train-len", "4096", "--scale", "4", "--seq-len", "10000"],
    dynamic(10000.0, 128, 4.0, 10000, 4096)))
inv, att, rng = yarn(10000.0, 128, 8.0, 4096)
cases.append(case("yarn llama2 s8", ["--method", "yarn", "--dim", "128", "--train-len", "4096", "--scale", "8"],
                  inv, att, {"correction_range": list(rng)}))
inv, att, rng = yarn(10000.0, 64, 4.0, 64)
cases.append(case("yarn posgen s4", ["--method", "yarn", "--scale", "4"], inv, att, {"correction_range": list(rng)}))
inv, att, rng = yarn(10000.0, 64, 4.0, 64, truncate=False)
cases.append(case("yarn posgen s4 no-truncate", ["--method", "yarn", "--scale", "4", "--no-truncate"], inv, att,
                  {"correction_range": list(rng)}))
cases.append(case(
    "llama3 8k s8",
    ["--method", "llama3", "--dim", "128", "--base", "500000", "--train-len", "8192", "--scale", "8"],
    llama3(500000.0, 128, 8.0, 1.0, 4.0, 8192)))
rinv, rwl = resonance(default(10000.0, 64))
cases.append(case("resonance rope d64", ["--resonance"], rinv, 1.0, {"rounded": [float(v) for v in rwl]}))
yinv, att, _ = yarn(10000.0, 64, 4.0, 64)
rinv, rwl = resonance(yinv)
cases.append(case("resonance yarn posgen s4", ["--resonance", "--method", "yarn", "--scale", "4"], rinv, att,
                  {"rounded": [float(v) for v in rwl]}))
rinv, rwl = resonance(default(1e9, 256))
cases.append(case("resonance d256 b1e9", ["--resonance", "--dim", "256", "--base", "1e9"], rinv, 1.0,
                  {"rounded": [float(v) for v in rwl]}))

# exact phases: cos/sin of p * inv (inv an exact f32 value) at 60 digits
mp.dps = 60
phases = []
inv = default(10000.0, 64)
for i in [0, 5, 17, 31]:
    for p in [1000000, 123456789, 2**31 + 12345, 2**32 - 1]:
        a = mpf(float(inv[i])) * p
        phases.append({"feature": i, "position": p, "cos": float(cos(a)), "sin": float(sin(a))})

print(json.dumps({"schedules": cases, "phases_rope_d64": phases}, indent=1))
