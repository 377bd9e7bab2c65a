#!/usr/bin/env python3
"""Checks the `hf-config` export of the Resonance twin in vLLM, the stack's own code (CPU).

For each config: `config FILE --export-resonance OUT --format hf-config` writes the twin as a
config.json in a directory of its own; scripts/stack_reference.py's vLLM worker then loads that
directory as `vllm serve` does (`ModelConfig` with `max_model_len` = its max_position_embeddings,
vLLM's config patches and rope-type renames) and calls `get_rope` as the architecture's model
file does; its `cos_sin_cache` rows are what vLLM multiplies q and k by. They must equal the
twin's (`p * inv_freq` in f32, cos/sin, times the attention factor, from `config FILE
--export-resonance TWIN.json`) within 2e-6, or within 2 ulp of the f32 angle where vLLM's own f32
frequency (torch's pow) is an ulp off the twin's. A config whose export says vLLM does not load
the twin is reported with the export's reason and not checked.

vLLM is installed by stack_reference.py in its own virtual environment (~6 GB, the first run
only). Run: python3 scripts/check_vllm_export.py [path/to/resonance-lab]
"""
import json
import math
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
POSITIONS = [0, 1, 2, 77, 1000, 4095, 4096, 8191, 32767, 131071]


def f32(x):
    """x rounded to float32."""
    return struct.unpack("f", struct.pack("f", x))[0]


def ulp32(x):
    """The spacing of float32 values at |x|."""
    bits = struct.unpack("I", struct.pack("f", abs(x)))[0]
    return struct.unpack("f", struct.pack("I", bits + 1))[0] - abs(x)


def lab(binary, *args):
    out = subprocess.run([binary, *args], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"resonance-lab {' '.join(args)}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def vllm_entry(config_json, layer_type, positions):
    """The vLLM worker's entry for a config.json (via stack_reference.py's single-config mode)."""
    cmd = [sys.executable, str(ROOT / "scripts" / "stack_reference.py"), "--config", str(config_json),
           "--stacks", "vllm", "--positions", ",".join(map(str, positions))]
    if layer_type:
        cmd += ["--layer-type", layer_type]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"stack_reference.py on {config_json}: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout)["vllm"]


def check(binary, tmp, config, extra):
    twin_path = tmp / "twin.json"
    lab(binary, "config", config, *extra, "--export-resonance", str(twin_path))
    twin = json.loads(twin_path.read_text())
    d = tmp / "export"
    d.mkdir(exist_ok=True)
    out = lab(binary, "config", config, *extra, "--export-resonance", str(d / "config.json"),
              "--format", "hf-config")
    verdict = out["stacks"]["vllm"]
    if not verdict["loads_twin"]:
        return None, verdict["reason"]
    lt = twin.get("layer_type")
    cfg = json.loads((d / "config.json").read_text())
    max_pos = cfg.get("text_config", cfg).get("max_position_embeddings", max(POSITIONS) + 1)
    positions = [p for p in POSITIONS if p < max_pos]
    e = vllm_entry(d / "config.json", lt, positions)
    if not e["supported"]:
        return (math.inf, math.inf, False, e.get("reason", "not supported"), 0), None
    a = twin["attention_factor"]
    inv = [f32(w) for w in twin["inv_freq"]]
    got_inv = e["inv_freq"]
    inv_ulps = max(abs(struct.unpack("i", struct.pack("f", g))[0]
                       - struct.unpack("i", struct.pack("f", w))[0]) for g, w in zip(got_inv, inv))
    worst, worst_small, within = 0.0, 0.0, True
    for k, p in enumerate(positions):
        if e["cos"][k] is None:
            within = False
            continue
        for i, w in enumerate(inv):
            ang = f32(f32(p) * w)
            err = max(abs(e["cos"][k][i] - math.cos(ang) * a), abs(e["sin"][k][i] - math.sin(ang) * a))
            worst = max(worst, err)
            if p < 4096:
                worst_small = max(worst_small, err)
            within &= err <= max(2e-6, 2 * ulp32(ang) * a)
    return (worst, worst_small, within, e["rope_class"], inv_ulps), None


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "release" / "resonance-lab")
    binary = str(Path(binary).resolve())
    failed = False
    with tempfile.TemporaryDirectory() as t:
        for config, extra in CONFIGS:
            name = " ".join([config, *extra])
            res, reason = check(binary, Path(t), config, extra)
            if res is None:
                print(f"hf-config {name}: vLLM does not load the twin, as the export says: {reason}")
                continue
            err, err_small, within, cls, inv_ulps = res
            status = "ok" if within else "FAIL"
            failed |= not within
            print(f"hf-config {name} in vLLM ({cls}): inv_freq within {inv_ulps} ulp of the twin;"
                  f" max |cos/sin - twin| {err_small:.3g} below position 4096, {err:.3g} over all"
                  f" (each within 2e-6 or 2 ulp of its f32 angle: {within}) [{status}]")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
