"""What the export checks (check_stack_exports.py, check_vllm_export.py, check_mlx_export.py,
check_gguf_twin.py) share: running the lab, writing the twin and its hf-config export, float32
rounding, and the comparison of a stack's cos/sin with the twin's. Plain Python, so that each
check can import it from whichever virtual environment it runs in.
"""
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSITIONS = [0, 1, 2, 77, 1000, 4095, 4096, 8191, 32767, 131071]


def binary_from_argv():
    """The resonance-lab binary named on the command line (default target/release), absolute."""
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "release" / "resonance-lab")
    return str(Path(binary).resolve())


def lab(binary, *args):
    """The JSON document a resonance-lab command prints; exits with its one-line error."""
    out = subprocess.run([str(a) for a in (binary, *args)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"resonance-lab {' '.join(map(str, args))}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def twin_doc(binary, tmp, config, extra=()):
    """`config FILE --export-resonance TWIN.json`: the twin document, and its path."""
    path = tmp / "twin.json"
    lab(binary, "config", config, *extra, "--export-resonance", path)
    return json.loads(path.read_text()), path


def export_both(binary, tmp, config, extra=()):
    """The twin document, the `--format hf-config` export's printed document (with its `stacks`
    verdicts) and the directory holding the exported config.json."""
    twin, _ = twin_doc(binary, tmp, config, extra)
    d = tmp / "export"
    d.mkdir(exist_ok=True)
    out = lab(binary, "config", config, *extra, "--export-resonance", d / "config.json",
              "--format", "hf-config")
    return twin, out, d


def f32(x):
    """x rounded to float32."""
    return struct.unpack("f", struct.pack("f", x))[0]


def ulp32(x):
    """The spacing of float32 values at |x|."""
    bits = struct.unpack("I", struct.pack("f", abs(x)))[0]
    return struct.unpack("f", struct.pack("I", bits + 1))[0] - abs(x)


def compare_to_twin(twin, positions, cos, sin, bound):
    """A stack's cos/sin (per position, per pair; a row None where the stack has no value)
    against the twin's: fl(p * inv_freq) in float32, cos/sin, times the attention factor.
    `bound(i, angle, attention_factor)` is the allowed difference of pair i. Returns the largest
    difference below position 4096, over all, and whether every value is within its bound."""
    a = twin["attention_factor"]
    inv = [f32(w) for w in twin["inv_freq"]]
    worst, worst_small, within = 0.0, 0.0, True
    for k, p in enumerate(positions):
        if cos[k] is None:
            within = False
            continue
        for i, w in enumerate(inv):
            ang = f32(f32(p) * w)
            err = max(abs(cos[k][i] - math.cos(ang) * a), abs(sin[k][i] - math.sin(ang) * a))
            worst = max(worst, err)
            if p < 4096:
                worst_small = max(worst_small, err)
            within &= err <= bound(i, ang, a)
    return worst_small, worst, within


def within_angle_rounding(i, ang, a):
    """2e-6, or 2 ulp of the f32 angle (times the attention factor) where larger: a stack whose
    f32 frequency is an ulp off the twin's."""
    return max(2e-6, 2 * ulp32(ang) * a)
