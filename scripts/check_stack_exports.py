#!/usr/bin/env python3
"""Checks the two deployable forms of the Resonance twin against the stacks' own code.

1. `config FILE --export-resonance OUT --format hf-config`: the exported config.json is loaded by
   transformers (`AutoConfig.from_pretrained` on a directory holding only it, then the model's own
   `<Model>RotaryEmbedding`), and its cos/sin at sampled positions must equal the twin's within
   2e-6. The twin's cos/sin are computed here from the twin document (`config FILE
   --export-resonance TWIN.json`): `p * inv_freq` in f32, cos/sin, times the attention factor,
   as transformers' forward does.
2. `gguf-patch IN.gguf OUT.gguf --twin TWIN.json`: a GGUF shaped as llama.cpp's converter writes
   it (written here with the `gguf` package), patched, and read back with `gguf.GGUFReader`: the
   factor tensors must hold `wavelength_i / (2 pi base^(2i/d))` (f32, to 1 ulp) and the rope
   metadata must be switched to the twin (`rope.scaling.type = none`, `attn_factor`).

Runs in its own virtual environment (~/.cache/resonance-lab/venvs/stack-exports), created and
filled (`gguf`, `numpy`, `torch`, `transformers`) only when missing; then re-executes itself there.
vLLM and mlx-lm are not run here (each needs its own multi-GB environment, see
../shared/TOOLCHAIN.md and docs/stack-notes); the export's `stacks` field states what they read.

Run: python3 scripts/check_stack_exports.py [path/to/resonance-lab]
"""
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from export_checks import POSITIONS, binary_from_argv, export_both, lab, twin_doc

VENV = Path.home() / ".cache" / "resonance-lab" / "venvs" / "stack-exports"
PACKAGES = ["gguf", "numpy", "torch", "transformers"]

CONFIGS = [
    ("assets/models/llama-3.1-8b.json", []),
    ("tests/data/stack_configs/llama-3.1-8b-rope-parameters.json", []),
    ("tests/data/stack_configs/llama-2-7b-yarn-64k.json", []),
    ("assets/models/phi-3.5-mini-instruct.json", []),
    ("tests/data/stack_configs/phi-2.json", []),
    ("assets/models/qwen3-8b.json", []),
    ("tests/data/stack_configs/gemma-3-27b-rope-parameters.json", []),
    ("tests/data/stack_configs/gemma-3-27b-rope-parameters.json", ["--layer-type", "sliding_attention"]),
    ("assets/models/deepseek-v3.json", []),
]


def ensure_venv():
    """Re-executes inside the venv, creating it first when it is missing."""
    py = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    probe = subprocess.run([str(py), "-c", "import gguf, numpy, torch, transformers"],
                           capture_output=True)
    if probe.returncode != 0:
        subprocess.check_call([str(py), "-m", "pip", "install", "-q", *PACKAGES])
    os.execv(str(py), [str(py), *sys.argv])


def twin_cos_sin(twin, positions):
    """The twin's cos/sin as transformers' forward computes them from its f32 inv_freq."""
    import torch
    inv = torch.tensor(twin["inv_freq"], dtype=torch.float32)
    p = torch.tensor(positions, dtype=torch.float32)[:, None]
    ang = p * inv[None, :]
    a = twin["attention_factor"]
    return (ang.cos() * a).double(), (ang.sin() * a).double()


def rotary_module(config_dir):
    """The model's own rotary embedding class built from the exported config."""
    import importlib
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import model_type_to_module_name
    cfg = AutoConfig.from_pretrained(config_dir)
    text = cfg.get_text_config()
    mod = model_type_to_module_name(text.model_type)
    module = importlib.import_module(f"transformers.models.{mod}.modeling_{mod}")
    names = [n for n in dir(module) if n.endswith("RotaryEmbedding") and not n.startswith("_")]
    return getattr(module, min(names, key=len))(config=text)


def check_hf_config(binary, tmp, config, extra, positions):
    import torch
    twin, out, d = export_both(binary, tmp, config, extra)
    rot = rotary_module(str(d))
    dim = twin["dim"]
    x = torch.zeros(1, len(positions), 8, dtype=torch.float32)
    pos = torch.tensor([positions], dtype=torch.int64)
    lt = twin.get("layer_type")
    kwargs = {"layer_type": lt} if lt else {}
    with torch.no_grad():
        cos, sin = rot(x, pos, **kwargs)
    cos = cos[0, :, : dim // 2].double()
    sin = sin[0, :, : dim // 2].double()
    wc, ws = twin_cos_sin(twin, positions)
    err = torch.maximum((cos - wc).abs(), (sin - ws).abs())
    # where transformers' f32 inv_freq is 1 ulp off the twin's (its pow is not the lab's),
    # the angle p * inv_freq differs by about one ulp of the angle: allow that angle's rounding
    inv = torch.tensor(twin["inv_freq"], dtype=torch.float32)
    ang = torch.tensor(positions, dtype=torch.float32)[:, None] * inv[None, :]
    ulp_ang = (torch.nextafter(ang.abs(), torch.tensor(float("inf"))) - ang.abs()).double()
    tol = torch.clamp(2 * ulp_ang * twin["attention_factor"], min=2e-6)
    buffer = f"{lt}_inv_freq" if lt and hasattr(rot, f"{lt}_inv_freq") else "inv_freq"
    got_inv = getattr(rot, buffer).float()[: dim // 2]
    inv_ulps = (got_inv.view(torch.int32).long() - inv.view(torch.int32).long()).abs().max().item()
    small = [i for i, p in enumerate(positions) if p < 4096]
    err_small = err[small].max().item()
    loads = {k: v["loads_twin"] for k, v in out["stacks"].items()}
    return err.max().item(), err_small, bool((err <= tol).all()), inv_ulps, loads


def write_gguf(path, arch, dim, base, rope_meta, factor_names):
    import gguf
    import numpy as np
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(8192)
    w.add_embedding_length(dim * 2)
    w.add_head_count(2)
    w.add_rope_freq_base(base)
    w.add_rope_dimension_count(dim)
    for key, value in rope_meta:
        if isinstance(value, str):
            w.add_string(f"{arch}.{key}", value)
        else:
            w.add_float32(f"{arch}.{key}", value)
    rng = np.random.default_rng(0)
    w.add_tensor("token_embd.weight", rng.standard_normal((4, dim * 2)).astype(np.float16))
    for name in factor_names:
        w.add_tensor(name, np.ones(dim // 2, dtype=np.float32))
    w.add_tensor("output_norm.weight", rng.standard_normal(13).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def check_gguf(binary, tmp, config, arch, rope_meta, factor_names):
    import gguf
    import numpy as np
    twin, twin_path = twin_doc(binary, tmp, config)
    src, dst = tmp / "in.gguf", tmp / "out.gguf"
    write_gguf(src, arch, twin["dim"], twin["rope_theta"], rope_meta, factor_names)
    lab(binary, "gguf-patch", str(src), str(dst), "--twin", str(twin_path))
    r = gguf.GGUFReader(str(dst))
    want = np.array([w / (2 * math.pi * twin["rope_theta"] ** (2 * i / twin["dim"]))
                     for i, w in enumerate(twin["wavelength"])], dtype=np.float32)
    names = factor_names or ["rope_freqs.weight"]
    worst = 0
    for name in names:
        t = next(t for t in r.tensors if t.name == name)
        got = np.asarray(t.data, dtype=np.float32).reshape(-1)
        ulp = np.abs(got.view(np.int32).astype(np.int64) - want.view(np.int32).astype(np.int64))
        worst = max(worst, int(ulp.max()))
    f = r.fields
    def val(k):
        fld = f[k]
        return fld.contents() if hasattr(fld, "contents") else fld.parts[fld.data[0]]
    st = val(f"{arch}.rope.scaling.type")
    af = float(val(f"{arch}.rope.scaling.attn_factor"))
    ok = (st == "none" and abs(af - twin["attention_factor"]) <= 1e-7 * twin["attention_factor"]
          and f"{arch}.rope.scaling.factor" not in f)
    return worst, ok, [t.name for t in r.tensors]


def main():
    ensure_venv()
    import torch
    import transformers
    binary = binary_from_argv()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    failed = False
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for config, extra in CONFIGS:
            err, err_small, within, inv_ulps, loads = check_hf_config(binary, tmp, config, extra,
                                                                      POSITIONS)
            status = "ok" if within and inv_ulps <= 1 else "FAIL"
            failed |= status != "ok"
            print(f"hf-config {config} {' '.join(extra)}: inv_freq within {inv_ulps} ulp of the twin;"
                  f" max |cos/sin - twin| {err_small:.3g} below position 4096, {err:.3g} over all"
                  f" (each within 2e-6 or 2 ulp of its f32 angle: {within}) [{status}]"
                  f" loads_twin {loads}")
        for config, arch, meta, names in [
            ("assets/models/llama-3.1-8b.json", "llama", [], ["rope_freqs.weight"]),
            ("tests/data/stack_configs/llama-2-7b-yarn-64k.json", "llama",
             [("rope.scaling.type", "yarn"), ("rope.scaling.factor", 16.0)], []),
            ("assets/models/phi-3.5-mini-instruct.json", "phi3",
             [("rope.scaling.attn_factor", 1.1902381181716919)],
             ["rope_factors_long.weight", "rope_factors_short.weight"]),
        ]:
            worst, ok, tensors = check_gguf(binary, tmp, config, arch, meta, names)
            status = "ok" if worst <= 1 and ok else "FAIL"
            failed |= status != "ok"
            print(f"gguf-patch {config}: factors within {worst} ulp, rope metadata switched: {ok}"
                  f" tensors {tensors} [{status}]")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
