#!/usr/bin/env python3
"""Reference fixtures from each stack's own RoPE code: tests/data/stack_reference/<stack>.json.

For every stack (transformers, vllm, mlx, llama.cpp) this script keeps one virtual environment
under the venv root (created only when missing; the stacks' pins conflict, so they never share
one), installs the stack's pinned requirements from PyPI there, runs the stack's worker
(scripts/stack_ref/<name>_worker.py, llama.cpp's is llamacpp_worker.py) with that environment's
python on every case of scripts/stack_ref/cases.py, and writes the fixture. The protocol between
this script and a worker is described in scripts/stack_ref/protocol.py.

    python3 scripts/stack_reference.py                       # all stacks, all cases
    python3 scripts/stack_reference.py --stacks vllm         # one stack
    python3 scripts/stack_reference.py --config my/config.json --context 32768 \
        [--layer-type full_attention] [--positions 0,1,4096] [--stacks transformers,vllm]

The last form prints, for each selected stack, that stack's entry for one config (any file)
instead of writing fixtures.
"""
import argparse
import ast
import json
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKERS = os.path.join(HERE, "stack_ref")
sys.path.insert(0, WORKERS)
import cases  # noqa: E402

STACKS = ["transformers", "vllm", "mlx", "llama.cpp"]
OUT_DIR = os.path.join(ROOT, "tests", "data", "stack_reference")
STAMP = "stack_reference_requirements.json"


def worker_path(stack):
    """The worker script of a stack: scripts/stack_ref/<name>_worker.py, dots dropped."""
    return os.path.join(WORKERS, stack.replace(".", "") + "_worker.py")


def worker_declarations(stack):
    """(REQUIREMENTS, EXCLUDED_DEPENDENCIES) read from the worker's source, without importing it."""
    with open(worker_path(stack)) as f:
        tree = ast.parse(f.read())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
    if "REQUIREMENTS" not in found:
        sys.exit(f"{worker_path(stack)}: no REQUIREMENTS list")
    excluded = found.get("EXCLUDED_DEPENDENCIES")
    return ast.literal_eval(found["REQUIREMENTS"]), ast.literal_eval(excluded) if excluded else {}


def venv_python(venv_root, stack):
    """The python of a stack's virtual environment."""
    return os.path.join(venv_root, stack, "bin", "python")


def pip(python, *args):
    """Run pip of a virtual environment, niced (the machine is shared with builds)."""
    subprocess.run(["nice", "-n", "10", python, "-m", "pip", "install", "--disable-pip-version-check", *args],
                   check=True, stdout=sys.stderr)


def dependencies_without(python, requirement, excluded):
    """The dependencies an installed requirement declares for this platform, minus the excluded ones."""
    script = (
        "import json, sys\n"
        "from importlib.metadata import requires\n"
        "from packaging.requirements import Requirement\n"
        "name, excluded = sys.argv[1], set(json.loads(sys.argv[2]))\n"
        "keep = []\n"
        "for r in map(Requirement, requires(name) or []):\n"
        "    if (r.marker is None or r.marker.evaluate({'extra': ''})) and r.name not in excluded:\n"
        "        keep.append(str(r))\n"
        "print(json.dumps(keep))\n")
    name = requirement.split("==")[0].split(">")[0].split("<")[0].strip()
    out = subprocess.run([python, "-c", script, name, json.dumps(sorted(excluded))],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def install(python, requirements, excluded):
    """Install a stack's requirements; with exclusions, the top-level ones without their dependencies."""
    if not excluded:
        pip(python, *requirements)
        return
    pip(python, "packaging")
    pip(python, "--no-deps", *requirements)
    for requirement in requirements:
        pip(python, *dependencies_without(python, requirement, excluded))


def ensure_venv(venv_root, stack):
    """The python of a stack's virtual environment, created and installed when missing or stale."""
    requirements, excluded = worker_declarations(stack)
    python = venv_python(venv_root, stack)
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", os.path.join(venv_root, stack)], check=True)
    stamp = os.path.join(venv_root, stack, STAMP)
    wanted = {"requirements": requirements, "excluded": excluded}
    if not os.path.exists(stamp) or json.load(open(stamp)) != wanted:
        install(python, requirements, excluded)
        with open(stamp, "w") as f:
            json.dump(wanted, f)
    return python


def installed(python):
    """`name==version` of every package in a virtual environment."""
    out = subprocess.run([python, "-m", "pip", "freeze", "--all", "--disable-pip-version-check"],
                         check=True, capture_output=True, text=True).stdout
    return sorted(line for line in out.splitlines() if line and not line.startswith("#"))


def run_worker(python, stack, requests):
    """The worker's document for a list of requests."""
    env = dict(os.environ, PYTHONPATH=WORKERS, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(["nice", "-n", "10", python, worker_path(stack)], input=json.dumps({"requests": requests}),
                          capture_output=True, text=True, env=env, cwd=ROOT)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"{stack} worker failed with exit status {proc.returncode}")
    return json.loads(proc.stdout)


def case_requests():
    """One request per case and context of cases.py."""
    return [{"id": c["id"], "config": c["config"], "layer_type": c["layer_type"], "context": n,
             "positions": cases.case_positions(c)}
            for c in cases.CASES for n in c["contexts"]]


def write_fixture(path, doc):
    """The fixture: top-level fields pretty-printed, one case per line (diffs stay per case)."""
    head = {k: v for k, v in doc.items() if k != "cases"}
    lines = json.dumps(head, indent=1)[:-2]
    body = ",\n".join(json.dumps(e) for e in doc["cases"])
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{lines},\n \"cases\": [\n{body}\n ]\n}}\n")
    os.replace(tmp, path)


def generate(stack, python, command):
    """Run one stack on every case and write its fixture."""
    doc = run_worker(python, stack, case_requests())
    fixture = {k: v for k, v in doc.items() if k != "entries"}
    fixture.update(generated_by=command, installed=installed(python),
                   excluded_dependencies=worker_declarations(stack)[1], cases=doc["entries"])
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, f"{stack}.json")
    write_fixture(path, fixture)
    print(f"wrote {os.path.relpath(path, ROOT)} ({len(fixture['cases'])} entries)", file=sys.stderr)


def single_request(args):
    """The request of the single-config mode, with L, max and positions read from the file."""
    path = os.path.abspath(args.config)
    with open(path) as f:
        L, max_pos = cases.lengths(json.load(f), args.layer_type)
    positions = [int(p) for p in args.positions.split(",")] if args.positions else cases.positions(L, max_pos)
    return {"id": os.path.basename(path), "config": path, "layer_type": args.layer_type,
            "context": args.context or max_pos, "positions": positions}


def parse_args():
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stacks", default=",".join(STACKS), help="comma-separated, from " + ", ".join(STACKS))
    p.add_argument("--venv-root", default=os.path.expanduser("~/.cache/resonance-lab/venvs"))
    p.add_argument("--config", help="print one config's entry per stack instead of writing fixtures")
    p.add_argument("--layer-type", help="with --config: the layer type of a per-layer rope section")
    p.add_argument("--context", type=int, help="with --config: the context (default max_position_embeddings)")
    p.add_argument("--positions", help="with --config: comma-separated positions (default {0,1,L-1,L,2L,max-1})")
    args = p.parse_args()
    args.stacks = args.stacks.split(",")
    unknown = [s for s in args.stacks if s not in STACKS]
    if unknown:
        p.error(f"--stacks: unknown {', '.join(unknown)} (valid: {', '.join(STACKS)})")
    if args.config is None and (args.layer_type or args.context or args.positions):
        p.error("--layer-type, --context and --positions need --config")
    return args


def main():
    """Write the fixtures, or print one config's entries."""
    args = parse_args()
    command = shlex.join(["python3", "scripts/stack_reference.py", *sys.argv[1:]])
    pythons = {stack: ensure_venv(args.venv_root, stack) for stack in args.stacks}
    if args.config:
        request = single_request(args)
        out = {}
        for stack, python in pythons.items():
            doc = run_worker(python, stack, [request])
            out[stack] = dict({k: v for k, v in doc.items() if k != "entries"}, **doc["entries"][0])
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    for stack, python in pythons.items():
        generate(stack, python, command)


if __name__ == "__main__":
    main()
