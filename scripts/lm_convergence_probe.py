#!/usr/bin/env python3
"""Where does the text model's pretraining converge? Pretrains one seed per corpus with the
budget multiplied (`lm pretrain --patience P --max-steps M --budget B`: patience P and step cap
M times B), then replays the recorded validation curve under the stopping rule with patience P
times 1, 2, 4, ... B: the step each rule stops at, the step of the weights it keeps and their
validation loss. With B = 1 that is a study's budget under that rule; the difference from the
longest rule is what that budget leaves on the table.

    scripts/lm_convergence_probe.py --bin target/release/resonance-lab --patience 6 \
        --max-steps 2500 --budget 8 --out results/lm_convergence_probe

Threads: RAYON_NUM_THREADS (the run's values do not depend on it). Writes OUT.json and OUT.md;
`--report-only` rewrites OUT.md from OUT.json.
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
    p.add_argument("--patience", type=int, default=12, help="patience P (small's: 12)")
    p.add_argument("--max-steps", type=int, default=12000, help="step cap M (small's: 12000)")
    p.add_argument("--min-delta", type=float, default=0.005, help="the preset's (small: 0.005)")
    p.add_argument("--out", required=True)
    p.add_argument("--pretrained", nargs="*", default=[], metavar="FILE",
                   help="replay these outputs of `lm pretrain --budget B` (one per corpus, run "
                        "with this --seed and --budget) instead of pretraining again")
    p.add_argument("--report-only", action="store_true", help="rewrite OUT.md from OUT.json")
    a = p.parse_args()
    if a.report_only:
        doc = json.loads(Path(a.out + ".json").read_text())
        Path(a.out + ".md").write_text(render(doc))
        return
    given = {}
    for f in a.pretrained:
        out = json.loads(Path(f).read_text())
        given[out["checkpoint"]["corpus"]] = out
    doc = {"command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), "budget": a.budget,
           "seed": a.seed, "patience": a.patience, "max_steps": a.max_steps,
           "min_delta": a.min_delta, "corpora": []}
    for corpus in a.corpus:
        cmd = [a.bin, "lm", "pretrain", "--corpus", corpus, "--seed", str(a.seed),
               "--patience", str(a.patience), "--max-steps", str(a.max_steps),
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
    Path(a.out + ".md").write_text(render(doc))


def render(doc):
    """The Markdown report of a probe's JSON."""
    lines = ["# Text model: where pretraining converges", "",
             f"One seed ({doc['seed']}) per corpus pretrained with patience {doc['patience']} "
             f"checks of 100 steps and step cap {doc['max_steps']}, both times {doc['budget']}; "
             f"its validation curve replayed under the stopping rule (improvement > "
             f"{doc['min_delta']} nats per byte) with patience {doc['patience']} times 1, 2, 4, "
             f"... {doc['budget']}. Command: `{doc['command']}`.", "",
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
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
