#!/usr/bin/env python3
"""Where does the text model's pretraining converge? Pretrains one seed per corpus with the
budget multiplied (`lm pretrain --budget B`: patience and step cap times B), then replays the
recorded validation curve under the study's stopping rule with patience times 1, 2, 4, ... B:
the step each rule stops at, the step of the weights it keeps and their validation loss. With
B = 1 that is the study's own budget; the difference from the longest rule is what the study's
budget leaves on the table.

    scripts/lm_convergence_probe.py --bin target/release/resonance-lab --budget 8 \
        --out results/lm_convergence_probe

Threads: RAYON_NUM_THREADS (the run's values do not depend on it). Writes OUT.json and OUT.md.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def replay(curve, patience, min_delta):
    """(stop step or None, best step, best loss) of the stopping rule on a [step, loss] curve."""
    best, best_step, since = float("inf"), None, 0
    for step, loss in curve:
        if loss < best - min_delta:
            best, best_step, since = loss, step, 0
        else:
            since += 1
            if since >= patience:
                return step, best_step, best
    return None, best_step, best


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--corpus", nargs="+", default=["code", "prose"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=int, default=8)
    p.add_argument("--patience", type=int, default=6, help="the preset's patience (small: 6)")
    p.add_argument("--min-delta", type=float, default=0.005, help="the preset's (small: 0.005)")
    p.add_argument("--out", required=True)
    p.add_argument("--pretrained", nargs="*", default=[], metavar="FILE",
                   help="replay these outputs of `lm pretrain --budget B` (one per corpus, run "
                        "with this --seed and --budget) instead of pretraining again")
    a = p.parse_args()
    given = {}
    for f in a.pretrained:
        out = json.loads(Path(f).read_text())
        given[out["checkpoint"]["corpus"]] = out
    doc = {"command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), "budget": a.budget,
           "seed": a.seed, "patience": a.patience, "min_delta": a.min_delta, "corpora": []}
    for corpus in a.corpus:
        cmd = [a.bin, "lm", "pretrain", "--corpus", corpus, "--seed", str(a.seed),
               "--budget", str(a.budget), "--out"]
        if corpus in given:
            out = given[corpus]
        else:
            with tempfile.TemporaryDirectory() as tmp:
                print(" ".join(cmd + ["DIR"]), file=sys.stderr)
                run = subprocess.run(cmd + [str(Path(tmp) / "model")], check=True,
                                     capture_output=True, text=True)
                out = json.loads(run.stdout)
        ck = out["checkpoint"]
        if ck["seed"] != a.seed or ck["corpus"] != corpus:
            sys.exit(f"{corpus}: the pretrained output is seed {ck['seed']}, not {a.seed}")
        rules = []
        mult = 1
        while mult <= a.budget:
            stop, best_step, best = replay(ck["val_curve"], a.patience * mult, a.min_delta)
            rules.append({"patience": a.patience * mult, "stops_at": stop, "best_step": best_step,
                          "best_val_loss": best})
            mult *= 2
        doc["corpora"].append({"corpus": corpus, "pretrain": " ".join(cmd[1:] + ["DIR"]),
                               "steps": ck["steps"], "seconds": ck["seconds"],
                               "tokens_per_second": out["tokens_per_second"],
                               "threads": out["threads"], "rules": rules,
                               "val_curve": ck["val_curve"]})
    Path(a.out + ".json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = ["# Text model: where pretraining converges", "",
             f"One seed ({a.seed}) per corpus pretrained with the budget times {a.budget}; its "
             f"validation curve replayed under the study's rule (improvement > {a.min_delta} "
             f"nats per byte, patience in checks of 100 steps). Command: `{doc['command']}`.", "",
             "| corpus | patience | stops at step | weights kept from step | val loss (nats/byte) |",
             "|---|---|---|---|---|"]
    for c in doc["corpora"]:
        for r in c["rules"]:
            stop = f"{r['stops_at']:.0f}" if r["stops_at"] is not None else f"not by {c['steps']}"
            lines.append(f"| {c['corpus']} | {r['patience']} | {stop} | {r['best_step']:.0f} | "
                         f"{r['best_val_loss']:.4f} |")
    lines.append("")
    for c in doc["corpora"]:
        lines.append(f"- {c['corpus']}: `{c['pretrain']}` ran {c['steps']} steps in "
                     f"{c['seconds']:.0f} s on {c['threads']} threads.")
    Path(a.out + ".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
