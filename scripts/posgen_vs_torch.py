#!/usr/bin/env python3
"""Training throughput of our PosGen model (candle, `resonance-lab posgen bench`) and of the
text model of `lm pretrain` (`resonance-lab lm bench`) side by side with the same models and
steps in PyTorch (`scripts/posgen_torch_baseline.py`), on this CPU (named in the results), at
each thread count given.

The two are run alternately (ours, torch, ours, torch, ...) `--repeats` times per thread count,
so that both see the same machine state, and the median of each is reported with the ratio of
medians. Writes `<out>.json` (every measurement) and `<out>.md` (the table).

    python3 scripts/posgen_vs_torch.py --bin target/release/resonance-lab --threads 1 2 \
        --out results/posgen_vs_torch

Needs `pip install torch`.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cpu_name():
    """The CPU's model name and whether it has AVX-512 (the kernels differ with it)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")),
                platform.machine())
    return f"{name}, {'with' if 'avx512f' in info else 'no'} AVX-512"


def run_json(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def ours(binary, threads, a):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    doc = run_json([binary, "posgen", "bench", "--tiny-steps", str(a.tiny_steps), "--paper-steps",
                    str(a.paper_steps), "--paper-batch", str(a.paper_batch), "--converge-target", "0",
                    "--study-runs", "0"], env)
    # the text model of `lm pretrain` (preset small), its training step on random bytes
    doc["lm"] = run_json([binary, "lm", "bench", "--steps", str(a.lm_steps)], env)
    return doc


def torch(threads, a):
    return run_json([sys.executable, str(HERE / "posgen_torch_baseline.py"), "--threads", str(threads),
                     "--tiny-steps", str(a.tiny_steps), "--paper-steps", str(a.paper_steps),
                     "--paper-batch", str(a.paper_batch), "--lm-steps", str(a.lm_steps)], dict(os.environ))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the resonance-lab binary (a release build)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tiny-steps", type=int, default=60)
    ap.add_argument("--paper-steps", type=int, default=2)
    ap.add_argument("--paper-batch", type=int, default=16)
    ap.add_argument("--lm-steps", type=int, default=30, help="timed steps of the lm small preset")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rows, raw = [], []
    for t in a.threads:
        meas = {"ours": [], "torch": []}
        for r in range(a.repeats):
            print(f"threads {t}, repeat {r + 1}/{a.repeats}", file=sys.stderr)
            meas["ours"].append(ours(a.bin, t, a))
            meas["torch"].append(torch(t, a))
        raw.append({"threads": t, **meas})
        med = lambda who, preset, key: statistics.median(m[preset][key] for m in meas[who])  # noqa: E731
        for preset, key in [("tiny", "steps_per_second"), ("paper", "tokens_per_second"),
                            ("lm", "tokens_per_second")]:
            o, p = med("ours", preset, key), med("torch", preset, key)
            rows.append({"threads": t, "preset": preset, "metric": key, "ours": o, "torch": p,
                         "ours_over_torch": o / p})
    doc = {
        "machine": cpu_name(),
        "cpus": os.cpu_count(),
        "repeats": a.repeats,
        "tiny_steps": a.tiny_steps,
        "paper_steps": a.paper_steps,
        "paper_batch": a.paper_batch,
        "lm_steps": a.lm_steps,
        "torch_version": raw[0]["torch"][0]["torch_version"],
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "medians": rows,
        "runs": raw,
    }
    Path(a.out + ".json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = [
        "# Training throughput: resonance-lab (candle) vs PyTorch, same model, same CPU",
        "",
        f"Median of {a.repeats} alternating runs per thread count ({a.tiny_steps} tiny steps, "
        f"{a.paper_steps} paper steps of batch {a.paper_batch}, {a.lm_steps} steps of the text "
        f"model `lm` (preset small, `lm bench`)); torch {doc['torch_version']}, "
        f"{doc['cpus']} CPUs ({doc['machine']}). Command: `{doc['command']}`.",
        "",
        "| threads | preset | metric | resonance-lab | PyTorch | ratio (ours / torch) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['threads']} | {r['preset']} | {r['metric']} | {r['ours']:.1f} | "
                     f"{r['torch']:.1f} | {r['ours_over_torch']:.2f} |")
    for preset in ["tiny", "paper", "lm"]:
        verdict = all(r["ours_over_torch"] >= 1.0 for r in rows if r["preset"] == preset)
        lines += ["", f"{preset}: at least PyTorch's throughput at every thread count: "
                  + ("yes." if verdict else "no.")]
    Path(a.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
