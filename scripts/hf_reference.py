#!/usr/bin/env python3
"""Golden values for tests/data/hf_reference.json.

Two parts. `transformers_configs`: config.json dictionaries (legacy `rope_scaling` and
transformers-5 `rope_parameters` forms, per-layer types, partial rotary, every rope type) run
through transformers' own code: `ROPE_INIT_FUNCTIONS[rope_type]` and, for `default`, the model's
`compute_default_rope_parameters`, in torch float32 on the CPU. Needs `pip install torch
transformers numpy mpmath`; the transformers version is recorded in the output.

`schedules` and `phases_rope_d64` (the original cases) Hugging Face transformers' `modeling_rope_utils` frequency functions
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


# ---------------------------------------------------------------------------------------------
# transformers' own code on config.json dictionaries
import importlib  # noqa: E402

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoConfig  # noqa: E402
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS  # noqa: E402

ROTARY_CLASS = {
    "llama": ("llama", "LlamaRotaryEmbedding"),
    "phi": ("phi", "PhiRotaryEmbedding"),
    "phi3": ("phi3", "Phi3RotaryEmbedding"),
    "gemma3_text": ("gemma3", "Gemma3RotaryEmbedding"),
    "qwen2": ("qwen2", "Qwen2RotaryEmbedding"),
    "deepseek_v3": ("deepseek_v3", "DeepseekV3RotaryEmbedding"),
    "mistral": ("mistral", "MistralRotaryEmbedding"),
    "mixtral": ("mixtral", "MixtralRotaryEmbedding"),
    "qwen3": ("qwen3", "Qwen3RotaryEmbedding"),
    "gpt_oss": ("gpt_oss", "GptOssRotaryEmbedding"),
}


def hf_inv_freq(config_json, layer_type=None, seq_len=None):
    """inv_freq and attention factor exactly as transformers computes them for this config."""
    d = json.loads(json.dumps(config_json))
    model_type = d.pop("model_type")
    d.pop("_name_or_path", None)
    cfg = AutoConfig.for_model(model_type, **d)
    params = cfg.rope_parameters[layer_type] if layer_type else cfg.rope_parameters
    rope_type = params["rope_type"]
    kwargs = {"layer_type": layer_type} if layer_type else {}
    if rope_type == "default":
        module, cls = ROTARY_CLASS[model_type]
        rotary = getattr(importlib.import_module(f"transformers.models.{module}.modeling_{module}"), cls)
        inv, att = rotary.compute_default_rope_parameters(cfg, **kwargs)
    else:
        inv, att = ROPE_INIT_FUNCTIONS[rope_type](cfg, None, seq_len=seq_len, **kwargs)
    assert inv.dtype == torch.float32
    return rope_type, [float(v) for v in inv.tolist()], float(att)


def hf_case(name, config_json, layer_type=None, seq_len=None):
    rope_type, inv, att = hf_inv_freq(config_json, layer_type, seq_len)
    return {"name": name, "config": config_json, "layer_type": layer_type, "seq_len": seq_len,
            "rope_type": rope_type, "inv_freq": inv, "attention_factor": att}


def llama(**kw):
    d = {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
         "max_position_embeddings": 4096, "rope_theta": 10000.0}
    d.update(kw)
    return d


# LongRoPE factor lists: smooth positive sequences standing in for searched factors
short48 = [round(1.0 + 0.01 * i, 4) for i in range(48)]
long48 = [round(1.0 + 0.4 * i + 0.001 * i * i, 4) for i in range(48)]
short8 = [1.0, 1.0, 1.5, 2.0]
long8 = [1.0, 2.0, 4.0, 8.0]
hf = []
hf.append(hf_case("default legacy (llama 2 7b)", llama()))
hf.append(hf_case("default rope_parameters", llama(rope_theta=None, rope_parameters={"rope_type": "default", "rope_theta": 500000.0})))
hf.append(hf_case("linear legacy type", llama(rope_scaling={"type": "linear", "factor": 4.0})))
hf.append(hf_case("linear rope_parameters", llama(rope_parameters={"rope_type": "linear", "factor": 2.5, "rope_theta": 1e6})))
hf.append(hf_case("dynamic init", llama(rope_scaling={"type": "dynamic", "factor": 2.0})))
hf.append(hf_case("dynamic seq 10000", llama(rope_scaling={"rope_type": "dynamic", "factor": 2.0}), seq_len=10000))
hf.append(hf_case("yarn legacy llama2 s8", llama(max_position_embeddings=32768, rope_scaling={"type": "yarn", "factor": 8.0, "original_max_position_embeddings": 4096})))
hf.append(hf_case("yarn factor null", llama(max_position_embeddings=65536, rope_scaling={"rope_type": "yarn", "factor": None, "original_max_position_embeddings": 4096})))
hf.append(hf_case("yarn mscale", llama(max_position_embeddings=32768, rope_scaling={"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 4096, "mscale": 1.0, "mscale_all_dim": 0.5})))
hf.append(hf_case("yarn attention_factor", llama(max_position_embeddings=32768, rope_parameters={"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 4096, "attention_factor": 1.5, "rope_theta": 10000.0})))
hf.append(hf_case("yarn truncate false beta 16/2", llama(max_position_embeddings=16384, rope_parameters={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4096, "truncate": False, "beta_fast": 16, "beta_slow": 2, "rope_theta": 1e6})))
hf.append(hf_case("yarn deepseek-v3 shape", {
    "model_type": "deepseek_v3", "hidden_size": 7168, "num_attention_heads": 128, "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128, "v_head_dim": 128, "max_position_embeddings": 163840, "rope_theta": 10000,
    "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                     "original_max_position_embeddings": 4096, "type": "yarn"}}))
hf.append(hf_case("yarn partial 0.5", llama(max_position_embeddings=32768, partial_rotary_factor=0.5, rope_scaling={"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 4096})))
hf.append(hf_case("llama3 (llama 3.1 8b)", llama(max_position_embeddings=131072, rope_theta=500000.0, rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"})))
phi3 = {"model_type": "phi3", "hidden_size": 3072, "num_attention_heads": 32, "max_position_embeddings": 131072,
        "original_max_position_embeddings": 4096, "rope_theta": 10000.0,
        "rope_scaling": {"type": "longrope", "short_factor": short48, "long_factor": long48}}
hf.append(hf_case("longrope short (init)", phi3))
hf.append(hf_case("longrope long", phi3, seq_len=4097))
hf.append(hf_case("longrope explicit factor and attention_factor", dict(phi3, rope_scaling={"type": "longrope", "short_factor": short48, "long_factor": long48, "factor": 16.0, "attention_factor": 1.25}), seq_len=8192))
tiny_longrope = {"model_type": "phi3", "hidden_size": 32, "num_attention_heads": 4, "max_position_embeddings": 1024,
                 "original_max_position_embeddings": 256, "rope_theta": 10000.0,
                 "rope_scaling": {"type": "longrope", "short_factor": short8, "long_factor": long8}}
hf.append(hf_case("longrope tiny long", tiny_longrope, seq_len=1024))
hf.append(hf_case("longrope tiny short", tiny_longrope, seq_len=256))
hf.append(hf_case("default partial 0.4 (phi-2 shape)", {"model_type": "phi", "hidden_size": 2560, "num_attention_heads": 32, "max_position_embeddings": 2048, "rope_theta": 10000.0, "partial_rotary_factor": 0.4}))
hf.append(hf_case("linear partial 0.25", llama(partial_rotary_factor=0.25, rope_scaling={"type": "linear", "factor": 2.0})))
hf.append(hf_case("dynamic partial 0.5 seq 20000", llama(rope_parameters={"rope_type": "dynamic", "factor": 4.0, "rope_theta": 10000.0, "partial_rotary_factor": 0.5}), seq_len=20000))
hf.append(hf_case("proportional 0.25", llama(head_dim=256, max_position_embeddings=262144, rope_parameters={"rope_type": "proportional", "rope_theta": 1e6, "partial_rotary_factor": 0.25})))
hf.append(hf_case("proportional 0.3 factor 2", llama(head_dim=20, max_position_embeddings=8192, rope_parameters={"rope_type": "proportional", "rope_theta": 10000.0, "partial_rotary_factor": 0.3, "factor": 2.0})))
gemma = {"model_type": "gemma3_text", "hidden_size": 2560, "num_attention_heads": 8, "head_dim": 256,
         "num_hidden_layers": 6, "max_position_embeddings": 131072,
         "layer_types": ["sliding_attention"] * 5 + ["full_attention"],
         "rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                             "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}}
hf.append(hf_case("per-layer full_attention", gemma, layer_type="full_attention"))
hf.append(hf_case("per-layer sliding_attention", gemma, layer_type="sliding_attention"))
gemma_legacy = {"model_type": "gemma3_text", "hidden_size": 2560, "num_attention_heads": 8, "head_dim": 256,
                "num_hidden_layers": 6, "max_position_embeddings": 131072, "rope_theta": 1000000.0,
                "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 8.0}}
hf.append(hf_case("gemma3 legacy full_attention", gemma_legacy, layer_type="full_attention"))
hf.append(hf_case("gemma3 legacy sliding_attention", gemma_legacy, layer_type="sliding_attention"))
gemma_yarn = dict(gemma, rope_parameters={
    "full_attention": {"rope_type": "yarn", "factor": 8.0, "rope_theta": 1000000.0, "original_max_position_embeddings": 8192, "truncate": False},
    "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})
hf.append(hf_case("per-layer yarn (layer truncate not read)", gemma_yarn, layer_type="full_attention"))


# the app's built-in models (assets/models): each file as published, every layer type, and
# LongRoPE's long branch too
import os  # noqa: E402

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "assets", "models")
builtin = []
for entry in json.load(open(os.path.join(MODELS, "index.json"))):
    doc = json.load(open(os.path.join(MODELS, entry["file"])))
    # multimodal configs: the language model's settings are under text_config
    d = doc["text_config"] if "text_config" in doc and "rope_theta" not in doc else doc
    d = {k: v for k, v in d.items() if k not in ("architectures", "_name_or_path")}
    probe = AutoConfig.for_model(d["model_type"], **{k: v for k, v in d.items() if k != "model_type"})
    params = probe.rope_parameters
    layers = sorted(params) if all(isinstance(v, dict) for v in params.values()) else [None]
    for lt in layers:
        seq_lens = [None]
        if (params[lt] if lt else params)["rope_type"] == "longrope":
            seq_lens.append(probe.max_position_embeddings)
        for sl in seq_lens:
            c = hf_case(entry["file"], d, layer_type=lt, seq_len=sl)
            c["file"] = entry["file"]
            del c["config"]
            builtin.append(c)

print(json.dumps({"transformers_version": transformers.__version__, "torch_version": torch.__version__,
                  "schedules": cases, "phases_rope_d64": phases, "transformers_configs": hf,
                  "builtin_models": builtin}, indent=1))
