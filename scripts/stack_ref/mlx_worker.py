#!/usr/bin/env python3
"""mlx-lm's own RoPE for each case: what a model's rope module passes to mx.fast.rope, and its output.

Runs inside the mlx virtual environment (`pip install mlx mlx-cpu mlx-lm`; both mlx wheels are
needed on Linux). For a config it writes config.json to a temporary model directory and repeats the
steps of `mlx_lm.utils.load_model` up to the weights: `load_config`, `_get_classes` (which applies
`MODEL_REMAPPING`, e.g. mistral -> llama), `ModelArgs.from_dict` and the model class. mlx creates
parameters lazily, so the full model costs nothing.

It then takes the attention `rope` module of the first layer of the requested type and calls it on
unit vectors, with `mx.fast.rope` wrapped to record what the module passes (dims, traditional,
base, scale, freqs). On a CPU-only mlx build `mx.fast.rope` runs the op-by-op fallback of
mlx/fast.cpp `rope()`; the worker repeats those steps with mlx's own kernels to give the angle per
token (`inv_freq`) and checks them bit for bit against the rotation the module applied.

Run by scripts/stack_reference.py (protocol in protocol.py: requests on stdin), or standalone:
  python scripts/stack_ref/mlx_worker.py --out tests/data/stack_reference/mlx.json
  python scripts/stack_ref/mlx_worker.py --config FILE [--layer-type T] [--context N] [--positions P,...]
"""
import argparse
import contextlib
import ctypes
import importlib
import importlib.metadata as md
import inspect
import io
import json
import math
import os
import platform
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

# Pinned for scripts/stack_reference.py, which installs them in the stack's own virtual
# environment (both mlx wheels are needed on Linux: mlx-cpu alone has no mlx.core).
REQUIREMENTS = ["mlx==0.32.4", "mlx-cpu==0.32.4", "mlx-lm==0.32.2", "numpy"]

import mlx.core as mx  # noqa: E402
import mlx.nn as nn
from mlx_lm import utils as mlx_utils
from mlx_lm.models import rope_utils

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

MLX_LM_DIR = Path(mlx_utils.__file__).resolve().parent
MLX_DIR = Path(mx.__file__).resolve().parent

# Fields some ModelArgs require that carry no RoPE information; filled when a config subset
# omits them (assets/models/*.json keep only the RoPE-bearing fields).
PLACEHOLDERS = {
    "intermediate_size": 256,
    "rms_norm_eps": 1e-6,
    "vocab_size": 256,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
    "mlp_only_layers": [],
}

# mlx's C++ is not in the wheel; line numbers are those of ml-explore/mlx at v0.32.1-26-g846d176
# (mlx/version.h 0.32.2), whose rope() the installed 0.32.4 matches bit for bit (checked per entry).
FAST_CPP = {
    "positions": "mlx/fast.cpp:454-457 positions = (arange(T) + offset) * scale, f32",
    "default_inv_freqs": "mlx/fast.cpp:459-466 inv_freq = exp(arange(0, -dims/2, -1) * (logf(base) / (dims/2))), f32",
    "reciprocal": "mlx/fast.cpp:468-469 inv_freq = reciprocal(freqs) when freqs is given",
    "theta": "mlx/fast.cpp:470-472 theta = positions * inv_freq; cos(theta), sin(theta) in f32",
    "layout": "mlx/fast.cpp:492-511 traditional: pairs (2i, 2i+1); otherwise (i, i + dims/2)",
    "fallback_on_cpu": "mlx/backend/no_gpu/primitives.cpp:177 NO_GPU_USE_FALLBACK(RoPE)",
}

_libm = ctypes.CDLL("libm.so.6")
_libm.logf.restype = ctypes.c_float
_libm.logf.argtypes = [ctypes.c_float]


def f32(x):
    return np.float32(x)


def f32list(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def src_line(path, needle, start=1):
    """`file:line` of the first line at or after `start` that contains `needle`."""
    p = Path(path)
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if i >= start and needle in line:
            return f"{rel(p)}:{i}"
    return f"{rel(p)}:?"


def rel(p):
    p = Path(p).resolve()
    for root, name in ((MLX_LM_DIR, "mlx_lm"), (MLX_DIR, "mlx")):
        try:
            return f"{name}/{p.relative_to(root)}"
        except ValueError:
            pass
    return str(p)


def ref(module_or_path, needle, start=1):
    path = module_or_path if isinstance(module_or_path, (str, Path)) else inspect.getsourcefile(module_or_path)
    return src_line(path, needle, start)


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

def _orig_len(cfg):
    t = cfg.get("text_config", cfg)
    rs = t.get("rope_scaling") or t.get("rope_parameters") or {}
    if isinstance(rs, dict) and rs and all(isinstance(v, dict) for v in rs.values()):
        rs = next(iter(rs.values()))
    for k in ("original_max_position_embeddings",):
        if isinstance(rs, dict) and rs.get(k):
            return int(rs[k])
        if t.get(k):
            return int(t[k])
    return int(t.get("max_position_embeddings") or 131072)


LENGTHS = None  # cases.lengths when the shared case list is in use


def default_positions(L, max_pos):
    return sorted({0, 1, L - 1, L, 2 * L, max_pos - 1})


# ---------------------------------------------------------------------------------------------
# Model loading through mlx-lm's own loader
# ---------------------------------------------------------------------------------------------

def layer_index_for(cfg, layer_type):
    """Index of the first layer of `layer_type`, as transformers assigns the types."""
    if not layer_type:
        return 0
    t = cfg.get("text_config", cfg)
    types = t.get("layer_types")
    if not types:
        mt = str(t.get("model_type") or cfg.get("model_type"))
        n = int(t.get("num_hidden_layers") or 64)
        if "gemma3" in mt:
            pattern = int(t.get("sliding_window_pattern") or 6)
            types = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n)]
        else:
            types = ["full_attention"] * n
    if layer_type not in types:
        raise ValueError(f"layer_type {layer_type!r} not in the config's layer types {sorted(set(types))}")
    return types.index(layer_type)


def build_model(cfg, layer_idx):
    """mlx-lm's loader steps on a temporary directory holding only config.json.

    mlx_lm.utils.load_model does load_config, then the model file's classes via _get_classes
    (MODEL_REMAPPING), then ModelArgs.from_dict(config) and Model(args); the worker runs those
    same functions and stops before the weights (gemma3's sanitize cannot take an empty weight
    dict). mlx creates parameters lazily, so the full layer count costs nothing.
    """
    notes = []
    cfg = json.loads(json.dumps(cfg))
    model_cls, args_cls = mlx_utils._get_classes(cfg)
    params = inspect.signature(args_cls).parameters
    filled = []
    for k, p in params.items():
        if p.default is inspect.Parameter.empty and k not in cfg and k in PLACEHOLDERS:
            cfg[k] = PLACEHOLDERS[k]
            filled.append(k)
    if filled:
        notes.append("config subset lacks fields mlx-lm's ModelArgs requires but that carry no "
                     f"RoPE information; filled with placeholders: {', '.join(filled)}")
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.json").write_text(json.dumps(cfg))
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            config = mlx_utils.load_config(Path(d))
            model_cls, args_cls = mlx_utils._get_classes(config=config)
            model = model_cls(args_cls.from_dict(config))
        printed = log.getvalue().strip()
        if printed:
            notes.append(f"mlx-lm printed while building the model: {printed}")
    notes.append(f"built as mlx_lm.utils.load_model does ({ref(mlx_utils, 'model_class, model_args_class = get_model_classes(config=config)')}, "
                 f"{ref(mlx_utils, 'model_args = model_args_class.from_dict(config)')}), without weights")
    return model, model_cls, args_cls, notes


def find_rope(model, layer_idx, any_layer=False):
    """(attention module, its rope module, attention path) of layer `layer_idx`."""
    cands = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Module) and "rope" in mod and isinstance(mod["rope"], nn.Module):
            parts = name.split(".")
            if "layers" in parts:
                i = parts.index("layers")
                if i + 1 < len(parts) and parts[i + 1] == str(layer_idx):
                    cands.append((name, mod))
    if not cands:
        # some modules keep the rope as a plain attribute
        for name, mod in model.named_modules():
            r = getattr(mod, "rope", None)
            if isinstance(r, nn.Module) and f"layers.{layer_idx}." in name + ".":
                cands.append((name, mod))
    if not cands and any_layer:
        # layer 0 may have no rope (Qwen3-Next's linear-attention layers): the first that has one
        best = None
        for name, mod in model.named_modules():
            r = getattr(mod, "rope", None)
            parts = name.split(".")
            if isinstance(r, nn.Module) and "layers" in parts and parts.index("layers") + 1 < len(parts):
                idx = parts[parts.index("layers") + 1]
                if idx.isdigit() and (best is None or (int(idx), len(name)) < best[0]):
                    best = ((int(idx), len(name)), name, mod)
        if best is not None:
            cands = [(best[1], best[2])]
    if not cands:
        raise RuntimeError(f"no rope module found in layer {layer_idx}")
    name, attn = sorted(cands, key=lambda c: len(c[0]))[0]
    return attn, attn["rope"] if "rope" in attn else attn.rope, name


# ---------------------------------------------------------------------------------------------
# Recording mx.fast.rope and reading the rotation
# ---------------------------------------------------------------------------------------------

class RopeRecorder:
    def __init__(self):
        self.calls = []
        self._orig = mx.fast.rope

    def __enter__(self):
        orig = self._orig

        def wrapped(a, dims, *, traditional, base, scale, offset, freqs=None, **kw):
            self.calls.append({
                "dims": int(dims), "traditional": bool(traditional),
                "base": None if base is None else float(base), "scale": float(scale),
                "offset": int(offset) if not isinstance(offset, mx.array) else int(offset.item()),
                "freqs": None if freqs is None else np.array(freqs.astype(mx.float32)),
                "input_width": int(a.shape[-1]), "seq": int(a.shape[-2]),
            })
            return orig(a, dims, traditional=traditional, base=base, scale=scale, offset=offset,
                        freqs=freqs, **kw)

        mx.fast.rope = wrapped
        return self

    def __exit__(self, *exc):
        mx.fast.rope = self._orig


def call_rope(rope, x, offset=0):
    sig = inspect.signature(rope.__call__).parameters
    if "offset" in sig:
        return rope(x, offset=offset)
    return rope(x, offset)


def unit_input(width, dims, traditional, T):
    """x with ones on the first coordinate of every rotated pair, zeros elsewhere."""
    row = np.zeros(width, dtype=np.float32)
    if traditional:
        row[0:dims:2] = 1.0
    else:
        row[: dims // 2] = 1.0
    return mx.array(np.broadcast_to(row, (1, 1, T, width)).copy())


def read_cos_sin(out_rows, dims, traditional):
    out_rows = np.asarray(out_rows, dtype=np.float32)
    if traditional:
        return out_rows[:, 0:dims:2], out_rows[:, 1:dims:2]
    h = dims // 2
    return out_rows[:, :h], out_rows[:, h:dims]


def mlx_inv_freqs(call):
    """The fallback's inverse frequencies (mlx/fast.cpp `rope`, `default_inv_freqs` / reciprocal)
    with mlx's own CPU kernels, in the same order."""
    half = call["dims"] // 2
    if call["freqs"] is not None:
        return np.array(mx.reciprocal(mx.array(call["freqs"], dtype=mx.float32)))
    # std::log(base) on a float is logf; the quotient by half_dims is a float division.
    c = f32(_libm.logf(f32(call["base"]))) / f32(half)
    return np.array(mx.exp(mx.multiply(mx.arange(0, -half, -1, dtype=mx.float32),
                                       mx.array(float(c), dtype=mx.float32))))


def mlx_fallback_cos_sin(call, inv, positions):
    """cos/sin as the fallback forms them: positions = (arange + offset) * scale, theta =
    positions * inv_freqs, all f32 with mlx's kernels."""
    pos = mx.multiply(mx.array(np.asarray(positions, dtype=np.float32)), mx.array(call["scale"], dtype=mx.float32))
    theta = mx.multiply(mx.expand_dims(pos, -1), mx.array(inv))
    return np.array(mx.cos(theta)), np.array(mx.sin(theta))


# ---------------------------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------------------------

def rope_scaling_of(cfg):
    t = cfg.get("text_config", cfg)
    return t.get("rope_scaling"), t.get("rope_parameters")


def describe_keys(cfg, args, rope, attn, model_module):
    """Which config keys mlx-lm read for the rope, and from where."""
    notes = []
    t = cfg.get("text_config", cfg)
    rs, rp = rope_scaling_of(cfg)
    a = args
    sig = inspect.signature(type(a)).parameters
    read_rp = "rope_parameters" in sig
    if rp is not None and not read_rp:
        notes.append(f"config has `rope_parameters` but {model_module.__name__}.ModelArgs has no such field: "
                     "BaseModelArgs.from_dict drops unknown keys "
                     f"({ref(rope_utils.__file__.replace('rope_utils.py', 'base.py'), 'if k in inspect.signature(cls).parameters')}), "
                     f"so rope_theta falls back to the ModelArgs default {getattr(a, 'rope_theta', None)} and scaling to none")
    if "rope_theta" in sig:
        src = "top level" if "rope_theta" in t else ("rope_parameters" if read_rp and rp else "ModelArgs default")
        notes.append(f"base from `rope_theta` ({src}): {getattr(a, 'rope_theta', None)}")
    if "rope_scaling" in sig and getattr(a, "rope_scaling", None) is None and rs:
        notes.append("config's rope_scaling was dropped by the model's ModelArgs.__post_init__")
    if "rope_scaling" not in sig and rs:
        notes.append(f"{model_module.__name__}.ModelArgs has no `rope_scaling` field: the config's "
                     "scaling is ignored (plain RoPE runs)")
    return notes


def softmax_scale_of(attn):
    for name in ("scale", "sm_scale", "softmax_scale"):
        v = getattr(attn, name, None)
        if isinstance(v, (int, float)):
            return float(v), name
    return None, None


def strip_scaling(cfg):
    """The config with its rope scaling removed (bases kept)."""
    c = json.loads(json.dumps(cfg))
    for t in (c, c.get("text_config") if isinstance(c.get("text_config"), dict) else None):
        if t is None:
            continue
        if t.get("rope_scaling") is not None:
            t["rope_scaling"] = None
        rp = t.get("rope_parameters")
        if isinstance(rp, dict):
            if all(isinstance(v, dict) for v in rp.values()):
                t["rope_parameters"] = {k: {"rope_type": "default", **({"rope_theta": v["rope_theta"]} if "rope_theta" in v else {})}
                                        for k, v in rp.items()}
            else:
                t["rope_parameters"] = {"rope_type": "default", **({"rope_theta": rp["rope_theta"]} if "rope_theta" in rp else {})}
    return c


def unit_factor(cfg):
    """The config with its rope scaling factor set to 1 (for model files that need a section)."""
    c = json.loads(json.dumps(cfg))
    for t in (c, c.get("text_config") if isinstance(c.get("text_config"), dict) else None):
        for key in ("rope_scaling", "rope_parameters"):
            sec = t.get(key) if t else None
            if isinstance(sec, dict):
                for d in ([sec] + [v for v in sec.values() if isinstance(v, dict)]):
                    if "factor" in d:
                        d["factor"] = 1.0
    return c


def plain_scale(cfg, layer_idx, attn_path):
    for variant in (strip_scaling, unit_factor):
        try:
            m, _, _, _ = build_model(variant(cfg), layer_idx)
            attn = dict(m.named_modules())[attn_path]
            return softmax_scale_of(attn)[0]
        except Exception:
            continue
    return None


def run_case(case, positions_fn, context=None, positions=None):
    cfg_path = Path(case["config"])
    if not cfg_path.is_absolute():
        cfg_path = REPO / cfg_path
    cfg = json.loads(cfg_path.read_text())
    t = cfg.get("text_config", cfg)
    layer_type = case.get("layer_type")
    base_entry = {"id": case.get("id", cfg_path.stem), "config": case["config"], "layer_type": layer_type}

    try:
        layer_idx = layer_index_for(cfg, layer_type)
        model, model_cls, args_cls, load_notes = build_model(cfg, layer_idx)
    except Exception as e:  # mlx-lm cannot load this config at all
        entries = []
        for ctx in ([context] if context else case.get("contexts", [None])):
            entries.append(dict(base_entry, context=ctx, supported=False,
                                reason=f"mlx-lm cannot build the model: {type(e).__name__}: {e}",
                                runs_instead=None, rope_class=None, inv_freq=None,
                                attention_factor=None, attention_factor_applied_to="none",
                                cos_sin_scale=None, positions=[], cos=[], sin=[], notes=[]))
        return entries

    model_module = sys.modules[model_cls.__module__]
    attn, rope, attn_path = find_rope(model, layer_idx, any_layer=not layer_type)
    layer_idx = int(attn_path.split('.')[attn_path.split('.').index('layers') + 1])
    args = model_args_of(model, attn, attn_path)
    rope_cls = type(rope)
    rope_cls_ref = ref(rope_cls, f"class {rope_cls.__name__}")

    if LENGTHS is not None:
        L, max_pos = LENGTHS(cfg, layer_type)
    else:
        L = _orig_len(cfg)
        max_pos = int(t.get("max_position_embeddings") or getattr(args, "max_position_embeddings", None) or 131072)
    contexts = [context] if context else list(case.get("contexts") or [L])
    entries = []
    for ctx in contexts:
        pos = list(positions) if positions else list(positions_fn(L, max_pos))
        entries.append(run_context(base_entry, cfg, t, model_module, model_cls, attn, attn_path, rope,
                                   rope_cls, rope_cls_ref, args, load_notes, layer_idx, int(ctx), pos))
    return entries


def run_context(base_entry, cfg, t, model_module, model_cls, attn, attn_path, rope, rope_cls,
                rope_cls_ref, args, load_notes, layer_idx, ctx, pos):
    notes = list(load_notes)
    notes.append(f"model class {model_cls.__module__}.Model ({ref(model_module, 'class Model(')}); "
                 f"config model_type {cfg.get('model_type')!r}"
                 + (f", remapped by MODEL_REMAPPING ({ref(mlx_utils, 'MODEL_REMAPPING = {')})"
                    if cfg.get("model_type") in mlx_utils.MODEL_REMAPPING else ""))
    notes.append(f"layer {layer_idx}: {attn_path}.rope is {rope_cls.__module__}.{rope_cls.__name__} ({rope_cls_ref})")
    notes += describe_keys(cfg, args, rope, attn, model_module)

    # Probe once to learn dims / layout / width, then evaluate on the prefill of the context.
    width = rope_input_width(attn, rope, t)
    with RopeRecorder() as rec:
        mx.eval(call_rope(rope, mx.zeros((1, 1, 1, width)), 0))
    if not rec.calls:
        raise RuntimeError(f"{rope_cls.__name__} did not call mx.fast.rope")
    probe = rec.calls[0]
    dims, traditional = probe["dims"], probe["traditional"]
    half = dims // 2

    # mlx-lm's only length knob is T + offset of the call (DynamicNTKScalingRoPE reads
    # x.shape[-2] + offset). A module whose __call__ reads x.shape is evaluated at position p on
    # the tail of a prefill of max(ctx, p+1) tokens: offset p, T = max(ctx - p, 1), row 0. Any
    # other module sees one token at offset p (its output does not depend on T).
    length_dependent = "x.shape" in inspect.getsource(type(rope).__call__)
    cos_rows, sin_rows, calls, groups = {}, {}, [], {}
    state = None  # the mx.fast.rope arguments of a length-ctx call (length-dependent modules)
    if length_dependent:
        with RopeRecorder() as rec:
            mx.eval(call_rope(rope, unit_input(dims, dims, traditional, 1), ctx - 1))
        state = rec.calls[0]
    for p in pos:
        if length_dependent and p >= ctx:
            # A length-ctx sequence has no position p; as for transformers' fixture, the module's
            # state at length ctx (the recorded mx.fast.rope arguments) is applied at offset p.
            x = unit_input(dims, dims, traditional, 1)
            fr = None if state["freqs"] is None else mx.array(state["freqs"])
            with RopeRecorder() as rec:
                out = mx.fast.rope(x, dims, traditional=traditional, base=state["base"], scale=state["scale"],
                                   offset=p, freqs=fr)[0, 0, 0:1]
                mx.eval(out)
        else:
            T = max(ctx - p, 1) if length_dependent else 1
            x = unit_input(dims, dims, traditional, T)
            with RopeRecorder() as rec:
                out = call_rope(rope, x, p)[0, 0, 0:1]
                mx.eval(out)
        calls.append((p, rec.calls[0]))
        c, s = read_cos_sin(np.array(out), dims, traditional)
        cos_rows[p], sin_rows[p] = c[0], s[0]
        groups[p] = [p]

    call = state if state is not None else calls[0][1]
    if length_dependent:
        notes.append(f"{rope_cls.__name__}.__call__ reads the call's length (T + offset): position p < context is "
                     f"read from the tail of a {ctx}-token prefill (offset p, T = context - p); positions at or "
                     f"past the context get the mx.fast.rope arguments of that length-{ctx} call at offset p")
    if any(cl["base"] != call["base"] or cl["scale"] != call["scale"] for _, cl in calls):
        bases = sorted({cl["base"] for _, cl in calls})
        notes.append(f"the base passed to mx.fast.rope differs between positions: {bases}")
    inv = mlx_inv_freqs(call)
    angle_per_token = (f32(call["scale"]) * inv).astype(np.float32)

    # The pre-rotation scale of q/k (cos_sin_scale): the module's output at position 0, where
    # the rotation is the identity, is that scale exactly.
    with RopeRecorder():
        o0 = call_rope(rope, unit_input(dims, dims, traditional, 1), 0)
        mx.eval(o0)
    c0, s0 = read_cos_sin(np.array(o0[0, 0]), dims, traditional)
    pre_scale = float(c0[0, 0])
    if not (np.all(c0 == c0[0, 0]) and np.all(s0 == 0)):
        notes.append("output at position 0 is not a uniform scale of the identity")

    # Bit-for-bit check of the reproduced fallback against the module's output.
    checks = []
    for p0, cl in calls:
        inv_c = mlx_inv_freqs(cl)
        ps = groups[p0]
        c_ref, s_ref = mlx_fallback_cos_sin(cl, inv_c, ps)
        if pre_scale != 1.0:
            sc = mx.array(pre_scale, dtype=mx.float32)
            c_ref = np.array(mx.multiply(mx.array(c_ref), sc))
            s_ref = np.array(mx.multiply(mx.array(s_ref), sc))
        got_c = np.stack([cos_rows[p] for p in ps])
        got_s = np.stack([sin_rows[p] for p in ps])
        checks.append(bool(np.array_equal(got_c, c_ref) and np.array_equal(got_s, s_ref)))
    fallback_bitexact = all(checks)

    # What the rope scaling does to the softmax scale: the attention's scale over the scale of
    # the same architecture built without a rope scaling section.
    sm, sm_name = softmax_scale_of(attn)
    softmax_factor = None
    plain = plain_scale(cfg, layer_idx, attn_path)
    if sm is not None and plain:
        softmax_factor = sm / plain
        if abs(softmax_factor - 1) > 1e-12:
            src = Path(inspect.getsourcefile(model_module)).read_text()
            where = (ref(model_module, "self.scale = self.scale *") if "self.scale = self.scale *" in src
                     else ref(model_module, "apply_yarn_mscale(") if "apply_yarn_mscale(" in src
                     else rel(inspect.getsourcefile(model_module)))
            notes.append(f"attention softmax scale `{sm_name}` = {sm!r}: {softmax_factor!r} x the scale without "
                         f"rope scaling ({plain!r}) ({where})")

    applied = "cos_sin" if abs(pre_scale - 1) > 0 else "none"
    scaling = expected_section(cfg, base_entry["layer_type"])
    notes += type_notes(rope, rope_cls, scaling, call, cfg, t, ctx, args, model_module)
    want = canonical_type(scaling.get("rope_type") or scaling.get("type") or "default")
    got = ran_type(rope_cls, call)
    supported, reason, runs_instead = True, None, None
    rp_dropped = (t.get("rope_parameters") is not None and t.get("rope_scaling") is None
                  and "rope_parameters" not in inspect.signature(type(args)).parameters)
    if want != got:
        supported = False
        why = ("the config's rope section is `rope_parameters`, which "
               f"{model_module.__name__}.ModelArgs does not read" if rp_dropped else
               f"{model_module.__name__} does not apply it")
        reason = f"rope type {want!r} asked for; {why}: it runs {got!r} ({rope_cls.__name__}) instead, silently"
        runs_instead = describe_run(rope_cls, call)
    want_base = expected_base(cfg, base_entry["layer_type"])
    if supported and want_base is not None and call["base"] is not None and got in ("default", "linear", "dynamic"):
        if got != "dynamic" and float(f32(want_base)) != float(f32(call["base"])):
            supported = False
            reason = (f"the config's base {want_base} is not the base mlx-lm uses ({call['base']})"
                      + (": `rope_parameters` is not read" if rp_dropped else ""))
            runs_instead = describe_run(rope_cls, call)
    if rp_dropped and supported:
        notes.append("the config's `rope_parameters` is not read by this model's ModelArgs; what runs "
                     "happens to match it (defaults)")

    notes.append("cos/sin read from the module's mx.fast.rope output on unit vectors (CPU fallback, "
                 f"{FAST_CPP['fallback_on_cpu']}); the worker's op-by-op replay of it "
                 f"({FAST_CPP['positions']}; {FAST_CPP['reciprocal'] if call['freqs'] is not None else FAST_CPP['default_inv_freqs']}; "
                 f"{FAST_CPP['theta']}) matches it bit for bit: {fallback_bitexact}")
    notes.append(FAST_CPP["layout"] + f": this module passes traditional={traditional}")
    if call["scale"] != 1.0:
        notes.append(f"mx.fast.rope scales positions, not frequencies: theta = f32(f32(p) * {call['scale']!r}) * inv_freq; "
                     "inv_freq here is the folded angle per token f32(scale * inv_freq); the stack's own "
                     "angle at p differs from p * that by at most the f32 rounding of the angle")

    return dict(
        base_entry,
        context=ctx,
        supported=supported,
        reason=reason,
        runs_instead=runs_instead,
        rope_class=f"{rope_cls.__module__}.{rope_cls.__name__}",
        mx_fast_rope_args={
            "dims": dims, "traditional": traditional, "base": call["base"],
            "base_f32": None if call["base"] is None else float(f32(call["base"])),
            "scale": call["scale"], "freqs": None if call["freqs"] is None else f32list(call["freqs"]),
        },
        inv_freq=f32list(angle_per_token),
        inv_freq_unscaled=f32list(inv),
        attention_factor=float(f32(pre_scale)) if applied == "cos_sin" else 1.0,
        attention_factor_applied_to=applied,
        cos_sin_scale=float(f32(pre_scale)),
        softmax_scale_factor=softmax_factor,
        pair_layout="interleaved" if traditional else "half-split",
        rotary_dim=dims,
        head_dim=head_dim_of(attn, t),
        positions=pos,
        cos=[f32list(cos_rows[p]) for p in pos],
        sin=[f32list(sin_rows[p]) for p in pos],
        fallback_replay_bitexact=fallback_bitexact,
        notes=notes,
    )


def rope_input_width(attn, rope, t):
    """The last dimension the attention feeds its rope: the MLA rope part or the head size."""
    for k in ("qk_rope_head_dim",):
        v = getattr(attn, k, None)
        if isinstance(v, int):
            return v
    for k in ("dims", "dim"):
        v = getattr(rope, k, None)
        if isinstance(v, int):
            hd = getattr(attn, "head_dim", None)
            return max(v, hd) if isinstance(hd, int) else v
    hd = getattr(attn, "head_dim", None)
    if isinstance(hd, int):
        return hd
    return t.get("head_dim") or t["hidden_size"] // t["num_attention_heads"]


def model_args_of(model, attn, attn_path):
    """The ModelArgs instance the layer was built from (the text model's, for a multimodal one)."""
    from mlx_lm.models.base import BaseModelArgs
    found = None
    mods = dict(model.named_modules())
    parts = attn_path.split(".")
    chain = [model] + [mods[".".join(parts[:i])] for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in mods]
    for m in chain:
        for k in ("args", "config"):
            v = getattr(m, k, None)
            if isinstance(v, BaseModelArgs):
                found = v
    if found is None:
        raise RuntimeError("no ModelArgs found on the model")
    return found


CANON = {"su": "longrope", "deepseek_yarn": "yarn", "telechat3-yarn": "yarn", "mrope": "default"}


def canonical_type(t):
    return CANON.get(t, t)


def expected_section(cfg, layer_type):
    """The rope section that applies to this layer as transformers reads the config."""
    t = cfg.get("text_config", cfg) if "rope_theta" not in cfg and "rope_parameters" not in cfg else cfg
    sec = t.get("rope_scaling") or t.get("rope_parameters") or {}
    if layer_type and isinstance(sec.get(layer_type), dict):
        return sec[layer_type]
    if layer_type == "sliding_attention" and "gemma3" in str(t.get("model_type", cfg.get("model_type"))):
        return {"rope_type": "default"}  # Gemma 3's local layers: default rope, local base
    if sec and all(isinstance(v, dict) for v in sec.values()):
        return next(iter(sec.values()))
    return sec


def expected_base(cfg, layer_type):
    t = cfg.get("text_config", cfg) if "rope_theta" not in cfg and "rope_parameters" not in cfg else cfg
    sec = expected_section(cfg, layer_type)
    if sec.get("rope_theta") is not None:
        return float(sec["rope_theta"])
    if layer_type == "sliding_attention" and t.get("rope_local_base_freq") is not None:
        return float(t["rope_local_base_freq"])
    if t.get("rope_theta") is not None:
        return float(t["rope_theta"])
    return None


def ran_type(rope_cls, call):
    n = rope_cls.__name__
    if rope_cls is nn.RoPE:
        return "linear" if call["scale"] != 1.0 else "default"
    if "Yarn" in n:
        return "yarn"
    if n == "Llama3RoPE":
        return "llama3"
    if n == "SuScaledRoPE" or "LongRope" in n or "LongRoPE" in n:
        return "longrope"
    if n == "DynamicNTKScalingRoPE" or n == "DynamicNTKAlphaRoPE":
        return "dynamic"
    if n == "ProportionalRoPE":
        return "proportional"
    return n


def describe_run(rope_cls, call):
    if call["base"] is not None:
        return f"{rope_cls.__name__}: mx.fast.rope(base={call['base']}, scale={call['scale']}, dims={call['dims']})"
    return f"{rope_cls.__name__}: mx.fast.rope(freqs=..., scale={call['scale']}, dims={call['dims']})"


def head_dim_of(attn, t):
    for k in ("q_head_dim", "head_dim"):
        v = getattr(attn, k, None)
        if isinstance(v, int):
            return v
    return t.get("head_dim") or t["hidden_size"] // t["num_attention_heads"]


def type_notes(rope, rope_cls, scaling, call, cfg, t, ctx, args, model_module):
    """Per-class facts: keys read, defaults, what is ignored, with file:line."""
    n = []
    ru = rope_utils.__file__
    name = rope_cls.__name__
    sc = scaling if isinstance(scaling, dict) else {}
    yarn_keys = ref(ru, "for key in [", ref_start(ru, 'rope_type in ("yarn"'))
    linear_line = ref(ru, 'scale = 1 / scaling_config["factor"] if rope_type == "linear" else 1.0')
    if name == "YarnRoPE":
        n.append(f"YaRN ramp truncated with floor/ceil always ({ref(ru, 'low = math.floor(yarn_find_correction_dim(beta_fast))')}); "
                 f"clamped to [0, dims-1] ({ref(ru, 'return max(low, 0), min(high, dims - 1)')})")
        if "truncate" in sc:
            n.append(f"config sets truncate={sc['truncate']!r}: initialize_rope does not pass `truncate` "
                     f"({yarn_keys})"
                     + (", so the ramp is floored/ceiled anyway" if sc["truncate"] is False else ""))
        if "attention_factor" in sc:
            n.append(f"config sets attention_factor={sc['attention_factor']!r}: initialize_rope does not pass it "
                     f"({yarn_keys}); the mscale formula "
                     f"0.1*mscale*ln(factor)+1 is used instead ({ref(ru, 'return 0.1 * mscale * math.log(scale) + 1.0')})")
        n.append(f"mscale = get_mscale(factor, mscale)/get_mscale(factor, mscale_all_dim) "
                 f"({ref(ru, 'self.mscale = yarn_get_mscale(scaling_factor, mscale)')}); multiplies q/k before "
                 f"rotation when != 1 ({ref(ru, 'x = x.at[..., : self.dims].multiply(input_scale)')})")
        n.append(f"freqs = (freq_inter*freq_extra)/(freq_inter*mask + freq_extra*(1-mask)) in f32 "
                 f"({ref(ru, 'self._freqs = (freq_inter * freq_extra) / (')}); mx.fast.rope takes their reciprocal")
        omp = sc.get("original_max_position_embeddings")
        n.append("original length from rope_scaling.original_max_position_embeddings"
                 + (f" = {omp}" if omp else f": absent, YarnRoPE default 4096 ({ref(ru, 'original_max_position_embeddings=4096', ref_start(ru, 'class YarnRoPE'))})"))
    elif name == "SuScaledRoPE":
        n.append(f"LongRoPE: only long_factor is used, at every length ({ref(ru, 'self._freqs = mx.array(long_factor, dtype=mx.float32) * freqs')}); "
                 "short_factor is stored nowhere")
        n.append(f"scale = long_mscale or sqrt(1 + ln(max_pos/orig)/ln(orig)) "
                 f"({ref(ru, 'self._scale = long_mscale or')}), applied to q/k before rotation "
                 f"({ref(ru, 'x.at[..., : self.dim].multiply(self._scale)')}); the attention module passes no "
                 "long_mscale and the config's attention_factor is not read")
        omp = getattr(args, "original_max_position_embeddings", None)
        n.append(f"original_max_position_embeddings from the top level of the config ({omp}); "
                 f"max_position_embeddings from the top level ({getattr(args, 'max_position_embeddings', None)})")
    elif name == "Llama3RoPE":
        n.append(f"llama3: freqs (periods) = base**(arange(0,dims,2)/dims) "
                 f"({ref(ru, 'freqs = base ** (mx.arange(0, dims, 2) / dims)')}), medium band "
                 f"freqs / ((1-smooth)/factor + smooth) ({ref(ru, 'smooth_freqs = freqs / ((1 - smooth_factors) / factor + smooth_factors)')}); "
                 f"strict inequalities at both band edges ({ref(ru, 'is_medium_freq = (wavelens > high_freq_wavelen) & (wavelens < low_freq_wavelen)')})")
        if "original_max_position_embeddings" not in sc:
            n.append("original_max_position_embeddings absent from rope_scaling: default 8192")
    elif name == "DynamicNTKScalingRoPE":
        n.append(f"dynamic NTK: base = base*((factor*len/max_pos)-(factor-1))**(dims/(dims-2)) in Python f64 with "
                 f"len = max(T + offset, max_position_embeddings) ({ref(ru, 'seq_len = max(x.shape[-2] + offset, self.max_position_embeddings)')}), "
                 "passed to mx.fast.rope as an f32 base; recomputed on every call")
        n.append(f"max_position_embeddings from the top level ({getattr(rope, 'max_position_embeddings', None)}); "
                 "rope_scaling.original_max_position_embeddings is not read")
        if "alpha" in sc:
            n.append(f"rope_scaling.alpha = {sc['alpha']!r} is not read by initialize_rope's dynamic branch "
                     f"({ref(ru, 'return DynamicNTKScalingRoPE(')}); only `factor` is")
    elif name == "RoPE":
        if call["base"] is not None:
            n.append(f"nn.RoPE passes base={call['base']!r} to mx.fast.rope: inv_freq = exp(-i * logf(base)/(dims/2)) in f32 "
                     f"({FAST_CPP['default_inv_freqs']}), not 1/base**(2i/d) as transformers: a few ulp apart")
        if call["scale"] != 1.0:
            n.append(f"linear: initialize_rope passes scale = 1/factor ({linear_line})"
                     if rope_cls is nn.RoPE and model_module.__name__ not in ("mlx_lm.models.phi3", "mlx_lm.models.mixtral")
                     else f"linear: scale = {call['scale']}")
    if isinstance(rope, nn.RoPE) and type(rope) is nn.RoPE and sc and (sc.get("type") or sc.get("rope_type")) not in (None, "default", "linear"):
        n.append(f"rope type {(sc.get('type') or sc.get('rope_type'))!r} has no effect: the model builds a plain nn.RoPE")
    return n


def ref_start(path, needle):
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if needle in line:
            return i
    return 1


def versions():
    return {
        "mlx": md.version("mlx"),
        "mlx-cpu": md.version("mlx-cpu") if _has("mlx-cpu") else None,
        "mlx-lm": md.version("mlx-lm"),
        "numpy": np.__version__,
        "device": str(mx.default_device()),
    }


def _has(dist):
    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


RAN = {
    "loader": {"ran": True, "how": "mlx_lm.utils load_config, _get_classes (MODEL_REMAPPING), ModelArgs.from_dict "
               "and the model class, without weights"},
    "rope_module": {"ran": True, "how": "each case's attention rope module on unit vectors, mx.fast.rope wrapped "
                    "to record its arguments"},
    "kernel": {"ran": True, "how": "mx.fast.rope on the CPU (mlx-cpu wheel): the op-by-op fallback of "
               "mlx/fast.cpp rope(), replayed by the worker and checked bit for bit per entry"},
    "gpu_kernels": {"ran": False, "why": "Metal and CUDA need their GPUs",
                    "derived_from": "not modelled: mlx/backend/metal/kernels/rope.metal and mlx/backend/cuda/rope.cu "
                                    "compute the frequencies in-kernel and may differ from the CPU path in the last bits"},
}

FIELDS = {
    "inv_freq": "angle per token per pair, f32, as mlx applies it (a position scale folded in)",
    "inv_freq_unscaled": "mx.fast.rope's inverse frequencies before the position scale",
    "cos_sin_scale": "what the rope module multiplies q/k by before rotating (cos and sin carry it)",
    "softmax_scale_factor": "the attention's softmax scale over that of the same model built without rope scaling",
    "cos, sin": "per position, per pair, read from mx.fast.rope output on unit vectors",
}


def header():
    v = versions()
    return {"stack": "mlx-lm", "version": v["mlx-lm"],
            "packages": {k: v[k] for k in ("mlx", "mlx-cpu", "mlx-lm", "numpy")},
            "device": v["device"], "ran": RAN, "fields": FIELDS}


def evaluate(request):
    """One request of the orchestrator's protocol (scripts/stack_ref/protocol.py)."""
    case = {"id": request["id"], "config": request["config"], "layer_type": request.get("layer_type")}
    return run_case(case, default_positions, int(request["context"]), request.get("positions"))[0]


def requests_from_cases():
    """One request per case and context of scripts/stack_ref/cases.py (as the orchestrator builds them)."""
    import cases as cases_mod
    global LENGTHS
    LENGTHS = cases_mod.lengths
    pos_of = getattr(cases_mod, "case_positions", None)
    out = []
    for c in cases_mod.CASES:
        pos = pos_of(c) if pos_of else cases_mod.positions(*cases_mod.lengths(cases_mod.load_config(c["config"]), c["layer_type"]))
        for n in c["contexts"]:
            out.append({"id": c["id"], "config": c["config"], "layer_type": c["layer_type"], "context": n,
                        "positions": pos})
    return out


def write_fixture(path, doc):
    """Top-level fields pretty-printed, one case per line, as scripts/stack_reference.py writes them."""
    head = {k: v for k, v in doc.items() if k != "cases"}
    lines = json.dumps(head, indent=1)[:-2]
    body = ",\n".join(json.dumps(e) for e in doc["cases"])
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{lines},\n \"cases\": [\n{body}\n ]\n}}\n")
    os.replace(tmp, path)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    mx.set_default_device(mx.cpu)
    if not argv:  # the orchestrator's protocol: requests on stdin, one document on stdout
        from protocol import serve
        serve(header, evaluate)
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the fixture for every case of cases.py here")
    ap.add_argument("--config", help="single-config mode: one case's JSON on stdout")
    ap.add_argument("--layer-type")
    ap.add_argument("--context", type=int)
    ap.add_argument("--positions", help="comma-separated positions")
    a = ap.parse_args(argv)
    positions = [int(p) for p in a.positions.split(",")] if a.positions else None

    if a.config:
        cfg = json.loads(Path(a.config).read_text())
        try:
            import cases as cases_mod
            L, max_pos = cases_mod.lengths(cfg, a.layer_type)
        except Exception:
            t = cfg.get("text_config", cfg)
            L, max_pos = _orig_len(cfg), int(t.get("max_position_embeddings") or 131072)
        case = {"id": Path(a.config).stem, "config": str(Path(a.config).resolve()), "layer_type": a.layer_type}
        entry = run_case(case, default_positions, a.context or max_pos, positions or default_positions(L, max_pos))[0]
        json.dump(dict(header(), **entry), sys.__stdout__, indent=1)
        print(file=sys.__stdout__)
        return 0

    reqs = requests_from_cases()
    entries = []
    for r in reqs:
        print(f"case {r['id']} context {r['context']}", file=sys.stderr)
        entries.append(evaluate(r))
    doc = dict(header(), python=platform.python_version(),
               generated_by=shlex.join(["python", "scripts/stack_ref/mlx_worker.py", *argv]),
               cases=entries)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_fixture(out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
