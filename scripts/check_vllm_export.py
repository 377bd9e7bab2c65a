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

from export_checks import (POSITIONS, ROOT, binary_from_argv, compare_to_twin, export_both,
                           within_angle_rounding)

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
    twin, out, d = export_both(binary, tmp, config, extra)
    verdict = out["stacks"]["vllm"]
    if not verdict["loads_twin"]:
        return None, verdict["reason"]
    cfg = json.loads((d / "config.json").read_text())
    max_pos = cfg.get("text_config", cfg).get("max_position_embeddings", max(POSITIONS) + 1)
    positions = [p for p in POSITIONS if p < max_pos]
    e = vllm_entry(d / "config.json", twin.get("layer_type"), positions)
    if not e["supported"]:
        return (math.inf, math.inf, False, e.get("reason", "not supported"), 0), None
    bits = lambda x: struct.unpack("i", struct.pack("f", x))[0]
    inv_ulps = max(abs(bits(g) - bits(w)) for g, w in zip(e["inv_freq"], twin["inv_freq"]))
    worst_small, worst, within = compare_to_twin(twin, positions, e["cos"], e["sin"],
                                                 within_angle_rounding)
    return (worst, worst_small, within, e["rope_class"], inv_ulps), None


def main():
    binary = binary_from_argv()
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
