#!/usr/bin/env python3
"""Checks the `hf-config` export of the Resonance twin in mlx-lm, the stack's own code.

For each config: `config FILE --export-resonance OUT --format hf-config` writes the twin as a
config.json; mlx-lm builds the model from it exactly as `mlx_lm.load` does
(`mlx_lm.utils._get_classes`, `ModelArgs.from_dict`, `Model(args)`; one layer, no weights;
non-RoPE keys a committed config leaves out are filled, see FILL), and
its own rope module (`initialize_rope`'s class, `mx.fast.rope` on the CPU) rotates a unit vector
at each sampled position: the rotated halves are the cos and sin mlx-lm multiplies q and k by.
They must equal the twin's (`p * inv_freq` in f32, cos/sin, times the attention factor, from
`config FILE --export-resonance TWIN.json`) within 2e-6, or within 2 ulp of the f32 angle where
mlx-lm's own f32 frequency (the reciprocal of `long_factor * base^(2i/d)`, computed by mlx) is an
ulp off the twin's. A config whose export says mlx-lm does not load the twin is reported with the
export's reason and not checked.

Runs in its own virtual environment (~/.cache/resonance-lab/venvs/mlx-export: mlx, mlx-cpu,
mlx-lm, numpy; about 200 MB), created and filled only when missing; then re-executes itself there.

Run: python3 scripts/check_mlx_export.py [path/to/resonance-lab]
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from export_checks import (POSITIONS, binary_from_argv, compare_to_twin, export_both,
                           within_angle_rounding)

VENV = Path.home() / ".cache" / "resonance-lab" / "venvs" / "mlx-export"
PACKAGES = ["mlx==0.32.4", "mlx-cpu==0.32.4", "mlx-lm==0.32.2", "numpy"]

CONFIGS = [
    ("assets/models/llama-3.1-8b.json", []),
    ("tests/data/stack_configs/llama-3.1-8b-rope-parameters.json", []),
    ("tests/data/stack_configs/llama-2-7b-yarn-64k.json", []),
    ("assets/models/phi-3.5-mini-instruct.json", []),
    ("assets/models/qwen3-8b.json", []),
    ("assets/models/mistral-7b-v0.1.json", []),
    ("assets/models/gemma-3-1b-it.json", []),
    ("assets/models/deepseek-v3.json", []),
]
FILL = {"intermediate_size": 64, "rms_norm_eps": 1e-5, "vocab_size": 32,
        "tie_word_embeddings": False}


def ensure_venv():
    """Re-executes inside the venv, creating it first when it is missing."""
    py = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    probe = subprocess.run([str(py), "-c", "import mlx.core, mlx_lm, numpy"], capture_output=True)
    if probe.returncode != 0:
        subprocess.check_call([str(py), "-m", "pip", "install", "-q", *PACKAGES])
    os.execv(str(py), [str(py), *sys.argv])


def rope_module(cfg, layer_type):
    """mlx-lm's rope module of the first attention layer of the twin's layer type (Gemma 3's
    full-attention layers are every sliding_window_pattern-th), built as mlx_lm.load builds it."""
    from mlx_lm.utils import _get_classes
    text = cfg["text_config"] if "text_config" in cfg and "rope_scaling" not in cfg else cfg
    idx = 0
    if layer_type and "layer_types" in text:
        idx = text["layer_types"].index(layer_type)
    elif layer_type == "full_attention" and "sliding_window_pattern" in text:
        idx = text["sliding_window_pattern"] - 1
    for c in {id(cfg): cfg, id(text): text}.values():
        c["num_hidden_layers"] = idx + 1
        if "layer_types" in c:
            c["layer_types"] = c["layer_types"][: idx + 1]
        # keys some committed configs leave out and ModelArgs requires; none touches RoPE
        for k, v in FILL.items():
            c.setdefault(k, v)
    model_cls, args_cls = _get_classes(cfg)
    model = model_cls(args_cls.from_dict(cfg))
    for name, m in model.named_modules():
        if name.endswith(f"layers.{idx}.self_attn.rope"):
            return m
    raise SystemExit(f"no rope module in layer {idx} of the mlx-lm model")


def mlx_cos_sin(rope, dim, traditional, positions):
    """cos and sin per position as the module applies them: it rotates a unit vector."""
    import mlx.core as mx
    import numpy as np
    half = dim // 2
    x = np.zeros(dim, dtype=np.float32)
    if traditional:
        x[0::2] = 1.0
    else:
        x[:half] = 1.0
    cos, sin = [], []
    for p in positions:
        out = np.array(rope(mx.array(x.reshape(1, 1, 1, dim)), offset=p)).reshape(-1)
        if traditional:
            cos.append(out[0::2])
            sin.append(out[1::2])
        else:
            cos.append(out[:half])
            sin.append(out[half:dim])
    return np.array(cos, dtype=np.float64), np.array(sin, dtype=np.float64)


def check(binary, tmp, config, extra):
    twin, out, d = export_both(binary, tmp, config, extra)
    verdict = out["stacks"]["mlx-lm"]
    if not verdict["loads_twin"]:
        return None, verdict["reason"]
    cfg = json.loads((d / "config.json").read_text())
    rope = rope_module(cfg, twin.get("layer_type"))
    traditional = bool(getattr(rope, "traditional", False))
    cos, sin = mlx_cos_sin(rope, twin["dim"], traditional, POSITIONS)
    worst_small, worst, within = compare_to_twin(twin, POSITIONS, cos.tolist(), sin.tolist(),
                                                 within_angle_rounding)
    return (worst, worst_small, within, type(rope).__name__), None


def main():
    ensure_venv()
    import mlx.core as mx
    import mlx_lm
    binary = binary_from_argv()
    print(f"mlx {mx.__version__}, mlx-lm {mlx_lm.__version__}, CPU")
    failed = False
    with tempfile.TemporaryDirectory() as t:
        for config, extra in CONFIGS:
            res, reason = check(binary, Path(t), config, extra)
            if res is None:
                print(f"hf-config {' '.join([config, *extra])}: mlx-lm does not load the twin, as the export says: {reason}")
                continue
            err, err_small, within, cls = res
            status = "ok" if within else "FAIL"
            failed |= not within
            print(f"hf-config {' '.join([config, *extra])} in mlx-lm ({cls}): max |cos/sin - twin| {err_small:.3g} below"
                  f" position 4096, {err:.3g} over all (each within 2e-6 or 2 ulp of its f32 angle:"
                  f" {within}) [{status}]")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
