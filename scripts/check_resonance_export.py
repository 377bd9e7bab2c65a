#!/usr/bin/env python3
"""Checks README's "install the Resonance twin" snippet against a real transformers model.

Builds tiny random-weight Llama models locally (no downloads) from config.json files, exports
their Resonance twin with `resonance-lab config --export-resonance`, installs it with the
README snippet, and verifies that the model's rotary embedding now produces our cos/sin:
the `inv_freq` buffer equals the exported f32 values bit for bit, `attention_scaling` equals the
exported attention factor, and cos/sin at sampled positions match `resonance-lab features` of
the same schedule (exact phases in f64) within f32 rounding of `p * inv_freq`. A forward pass
of the whole model runs with the twin installed.

Run: python3 scripts/check_resonance_export.py path/to/resonance-lab
(needs `pip install torch transformers`).
"""
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM


# --- the README snippet, verbatim ------------------------------------------------------------
def install_resonance_twin(model, path):
    """Loads a `resonance-lab config --export-resonance` file into a transformers model's RoPE."""
    twin = json.loads(Path(path).read_text())
    rotary = model.model.rotary_emb
    layer = twin.get("layer_type")
    prefix = f"{layer}_" if layer and hasattr(rotary, f"{layer}_inv_freq") else ""
    buffer = getattr(rotary, prefix + "inv_freq")
    inv_freq = torch.tensor(twin["inv_freq"], dtype=torch.float32, device=buffer.device)
    assert buffer.shape == inv_freq.shape, (buffer.shape, inv_freq.shape)
    buffer.copy_(inv_freq)
    getattr(rotary, prefix + "original_inv_freq").copy_(inv_freq)
    setattr(rotary, prefix + "attention_scaling", twin["attention_factor"])
    # dynamic / longrope recompute inv_freq in forward(); the twin is a fixed schedule
    if prefix:
        rotary.rope_type[layer] = "default"
    else:
        rotary.rope_type = "default"
# ----------------------------------------------------------------------------------------------


CASES = [
    # (config.json fields, equivalent `resonance-lab features` schedule options)
    (
        {"rope_theta": 10000.0, "max_position_embeddings": 16384,
         "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4096}},
        ["--method", "yarn", "--dim", "32", "--base", "10000", "--train-len", "4096",
         "--eval-len", "16384", "--scale", "4"],
    ),
    (
        {"rope_theta": 500000.0, "max_position_embeddings": 131072,
         "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}},
        ["--method", "llama3", "--dim", "32", "--base", "500000", "--train-len", "8192",
         "--eval-len", "131072", "--scale", "8"],
    ),
    (
        {"rope_theta": 10000.0, "max_position_embeddings": 8192,
         "rope_scaling": {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 4096,
                          "attention_factor": 1.3}},
        ["--method", "yarn", "--dim", "32", "--base", "10000", "--train-len", "4096",
         "--eval-len", "8192", "--scale", "2", "--attention-factor", "1.3"],
    ),
]


def main(binary):
    torch.manual_seed(0)
    positions = [0, 1, 2, 5, 77, 1000, 4095, 4096, 8191]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (rope, features_args) in enumerate(CASES):
            cfg = {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 2,
                   "num_key_value_heads": 1, "intermediate_size": 128, "num_hidden_layers": 1,
                   "vocab_size": 97, **rope}
            cfg_path = Path(tmp, f"config{i}.json")
            cfg_path.write_text(json.dumps(cfg))
            out = Path(tmp, f"twin{i}.json")
            subprocess.run([binary, "config", str(cfg_path), "--export-resonance", str(out)],
                           check=True, capture_output=True)
            twin = json.loads(out.read_text())

            model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in cfg.items() if k != "model_type"}))
            model.eval()
            install_resonance_twin(model, out)

            rotary = model.model.rotary_emb
            want = torch.tensor(twin["inv_freq"], dtype=torch.float32)
            assert torch.equal(rotary.inv_freq, want), "inv_freq buffer differs"
            assert rotary.attention_scaling == twin["attention_factor"]

            x = torch.zeros(1, len(positions), 64)
            pos = torch.tensor([positions])
            with torch.no_grad():
                cos, sin = rotary(x, pos)
                model(torch.tensor([[1, 2, 3, 4]]))  # the model runs with the twin installed
            ours = json.loads(subprocess.run(
                [binary, "features", "--resonance", "--positions", ",".join(map(str, positions)),
                 *features_args], check=True, capture_output=True, text=True).stdout)
            assert ours["attention_factor"] == twin["attention_factor"]
            half = len(twin["inv_freq"])
            worst = 0.0
            for r, p in enumerate(positions):
                err = 0.0
                for f in range(half):
                    for table, theirs in ((ours["cos"], cos), (ours["sin"], sin)):
                        # transformers repeats the d/2 features: emb = cat(freqs, freqs)
                        a, b = float(theirs[0, r, f]), float(theirs[0, r, f + half])
                        assert a == b
                        err = max(err, abs(a - table[r][f]))
                # f32 `p * inv_freq` and f32 cos/sin: the error grows like p * ulp(1)
                tol = (4e-7 + 2.0 * p * 2.0**-24) * twin["attention_factor"]
                assert err <= tol, (p, err, tol)
                worst = max(worst, err)
            print(f"case {i} ({cfg['rope_scaling']['rope_type']}): inv_freq bit-identical, "
                  f"attention_scaling {rotary.attention_scaling}, max |cos/sin - ours| = {worst:.2e} "
                  f"over positions up to {positions[-1]}")
    print(f"ok: transformers {transformers.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "resonance-lab")
