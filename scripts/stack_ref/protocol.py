"""How `scripts/stack_reference.py` talks to a stack's worker, and helpers every worker shares.

A worker is `scripts/stack_ref/<name>_worker.py`, run with the python of that stack's virtual
environment. It reads one JSON request on stdin,

    {"requests": [{"id", "config", "layer_type", "context", "positions"}, ...]}

(`config` is a path, relative to the repository root or absolute), and prints one JSON document on
stdout,

    {"stack", "version", "python", "torch", "packages": {name: version}, "entries": [...]}

with one entry per request, in order. An entry repeats `id`, `config`, `layer_type`, `context`
and has `supported` (false with `reason`, and `runs_instead` when the stack runs something else),
`rope_class`, `inv_freq` (the angle per token of each pair, float32 values), `attention_factor`,
`attention_factor_applied_to` ("cos_sin" | "softmax_scale" | "none"), `cos_sin_scale`,
`softmax_scale_factor`, `is_neox_style`, `pair_layout`, `rotary_dim`, `positions`, `cos` and
`sin` (per position, per pair, as the stack multiplies q and k; null where the stack has no value)
and `notes` (with file:line in the installed package). Logs go to stderr. A worker module also declares `REQUIREMENTS`, the pip requirements of its
virtual environment, and may declare `EXCLUDED_DEPENDENCIES` ({name: reason}): dependencies of a
requirement that cannot be installed here and that the stack does not need on a CPU; the
orchestrator then installs that requirement with `--no-deps` and the rest of its dependencies.

This module is plain Python (no stack imported), like cases.py.
"""
import json
import os
import platform
import sys

from cases import ROOT

# Stacks log to stdout; only `serve` writes there, everything else printed goes to stderr.
STDOUT = sys.stdout
sys.stdout = sys.stderr


def f32_list(values):
    """Python floats that are exactly the given float32 values (JSON round-trips them)."""
    return [float(v) for v in values]


def config_path(path):
    """An absolute path for a request's config (relative paths are from the repository root)."""
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def load_request_config(path):
    """The config.json a request names, as a dict."""
    with open(config_path(path)) as f:
        return json.load(f)


def where(path, snippet, occurrence=1):
    """'<package-relative path>:<line>' of the first (or n-th) line of `path` containing `snippet`.

    Notes cite the installed package's source this way, so that the line numbers always belong
    to the version that produced the fixture.
    """
    with open(path) as f:
        hits = [i + 1 for i, line in enumerate(f) if snippet in line]
    if len(hits) < occurrence:
        raise LookupError(f"{snippet!r} not found in {path}")
    site = path.split("site-packages" + os.sep, 1)[-1]
    return f"{site}:{hits[occurrence - 1]}"


def refusal(error):
    """One line naming a stack's exception: its type and message."""
    return f"{type(error).__name__}: {error}".splitlines()[0]


def unsupported(request, reason, runs_instead=None, notes=()):
    """The entry of a case the stack refuses or cannot run."""
    entry = dict(base_entry(request), supported=False, reason=reason, runs_instead=runs_instead)
    entry["notes"] = list(notes)
    return entry


def base_entry(request):
    """The fields every entry repeats from its request."""
    return {k: request[k] for k in ("id", "config", "layer_type", "context")}


def serve(header, evaluate):
    """Read the request on stdin, evaluate each case, print the document on stdout.

    `header()` gives the top-level fields (stack, version, python, torch, packages);
    `evaluate(request)` gives one entry. A worker turns the stack's own refusals into
    `unsupported` entries; any other exception ends the run.
    """
    requests = json.load(sys.stdin)["requests"]
    entries = []
    for request in requests:
        print(f"case {request['id']} context {request['context']}", file=sys.stderr)
        entries.append(evaluate(request))
    doc = dict(header(), python=platform.python_version(), entries=entries)
    json.dump(doc, STDOUT)
    STDOUT.write("\n")
