#!/usr/bin/env python3
"""Checks `gguf-patch` against llama.cpp's own code: a GGUF written by llama.cpp's converter,
patched with the twin, loaded as llama.cpp's loader reads it and rotated by ggml's CPU rope.

For each config, with scripts/stack_ref/llamacpp_worker.py (llama.cpp as vendored by
llama-cpp-python, in the venv scripts/stack_reference.py keeps for it):
1. `llamacpp_worker.py convert`: the sdist's convert_hf_to_gguf.py writes the config's GGUF
   (a placeholder norm tensor, the rope tensors it generates: rope_freqs, rope_factors_*);
2. `resonance-lab gguf-patch IN OUT --twin TWIN.json` writes the twin into it;
3. `llamacpp_worker.py rope-from-gguf OUT`: the loader's ggml_rope_ext arguments for the patched
   file (the transcription the worker checks against libllama) and `ggml_rope_ext` itself, run on
   unit vectors, give the cos/sin llama.cpp multiplies q and k by.
They are compared with the twin's (`p * inv_freq` in f32, cos/sin, times the attention factor).
ggml forms pair i's angle by its own f32 recurrence, theta = p, then i times
theta *= powf(base, -2/n_dims), divided by the factor: each of those i + 2 roundings and the
rounded ratio itself add at most one unit roundoff u = 2^-24 relative, i.e. (2i + 2) u; the
twin's angle fl(p * inv_freq) is within 2u of exact and the patched factor within u. The bound
is therefore 2e-6 plus the attention factor times theta (2i + 5) u; the figures below 4096
positions and over all are printed.

Run: python3 scripts/check_gguf_twin.py [path/to/resonance-lab]
(needs the llama.cpp venv: `python3 scripts/stack_reference.py --stacks llama.cpp --config
assets/models/llama-3.1-8b.json` creates it; llama-cpp-python builds from source, tens of minutes.)
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from export_checks import POSITIONS, ROOT, binary_from_argv, compare_to_twin, lab, twin_doc

WORKER = ROOT / "scripts" / "stack_ref" / "llamacpp_worker.py"
VENV_PY = Path.home() / ".cache" / "resonance-lab" / "venvs" / "llama.cpp" / "bin" / "python"
CONFIGS = [
    "assets/models/llama-3.1-8b.json",
    "assets/models/llama-2-7b.json",
    "assets/models/mistral-7b-v0.1.json",
    "tests/data/stack_configs/llama-2-7b-yarn-64k.json",
    "assets/models/phi-3.5-mini-instruct.json",
]
U = 2.0**-24  # float32 unit roundoff


def run(cmd):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))}: {out.stderr.strip()[-2000:]}")
    return out.stdout


def check(binary, tmp, config):
    twin, twin_path = twin_doc(binary, tmp, config)
    src, dst = tmp / "in.gguf", tmp / "out.gguf"
    for p in (src, dst):
        p.unlink(missing_ok=True)
    run([VENV_PY, WORKER, "convert", "--config", ROOT / config, "--out", src])
    patch = lab(binary, "gguf-patch", src, dst, "--twin", twin_path)
    cfg = json.loads((ROOT / config).read_text())
    max_pos = cfg.get("max_position_embeddings", max(POSITIONS) + 1)
    positions = [p for p in POSITIONS if p < max_pos]
    r = json.loads(run([VENV_PY, WORKER, "rope-from-gguf", dst, "--positions",
                        ",".join(map(str, positions)), "--context", max_pos]))
    worst_small, worst, within = compare_to_twin(
        twin, positions, r["cos"], r["sin"], lambda i, ang, a: 2e-6 + a * ang * (2 * i + 5) * U)
    inv_rel = max(abs(g - w) / w for g, w in zip(r["inv_freq"], twin["inv_freq"]) if w > 0)
    return {"worst": worst, "worst_small": worst_small, "within": within, "inv_rel": inv_rel,
            "scale": r["cos_sin_scale"], "twin_scale": twin["attention_factor"],
            "tensors": patch.get("tensors_written"),
            "bitexact": r.get("kernel_transcription_bitexact")}


def main():
    binary = binary_from_argv()
    if not VENV_PY.exists():
        raise SystemExit(f"no llama.cpp venv at {VENV_PY}: run scripts/stack_reference.py --stacks llama.cpp first")
    failed = False
    with tempfile.TemporaryDirectory() as t:
        for config in CONFIGS:
            c = check(binary, Path(t), config)
            scale_ok = abs(c["scale"] - c["twin_scale"]) <= 1e-6 * c["twin_scale"]
            ok = c["within"] and scale_ok
            failed |= not ok
            print(f"gguf-patch {config} in llama.cpp (converter -> gguf-patch -> loader -> ggml_rope_ext):"
                  f" cos/sin scale {c['scale']:.7f} (twin {c['twin_scale']:.7f}); angle per token within"
                  f" {c['inv_rel']:.2e} relative of the twin's; max |cos/sin - twin| {c['worst_small']:.3g}"
                  f" below position 4096, {c['worst']:.3g} over all (within 2e-6 + theta (2i + 5) u:"
                  f" {c['within']}) [{'ok' if ok else 'FAIL'}]")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
