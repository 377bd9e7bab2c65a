"""The case list every stack's reference worker evaluates.

A case is one config.json (a repo-relative path), one layer type (None, or a key of a per-layer
rope section such as Gemma 3's "sliding_attention"), and the contexts to evaluate it at. The
context is the knob each stack uses: the current sequence length in transformers and mlx-lm,
`max_model_len` in vLLM, `n_ctx` in llama.cpp. Contexts include values below and above every
switch the config has (LongRoPE's short/long factors, dynamic NTK's original length).

This module is plain Python (no stack imported) so that each worker, running in its own virtual
environment, can import it.
"""
import json
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Values a sparse config.json leaves to its transformers config class (the file's own default).
# gemma-3-4b-it writes no max_position_embeddings; Gemma3TextConfig's default is 131072.
DEFAULT_MAX_POSITION = {"gemma3_text": 131072}


def case(case_id, config, layer_type=None, contexts=None, shows=(), extra_positions=()):
    """One case; `contexts` None means the defaults of `default_contexts`.

    `shows` names the tracker issues (docs/stack-notes) this case reproduces; `extra_positions`
    are evaluated besides `positions(L, max)` (dynamic NTK runs past max_position_embeddings).
    """
    c = {"id": case_id, "config": config, "layer_type": layer_type, "shows": list(shows),
         "extra_positions": list(extra_positions)}
    c["contexts"] = contexts if contexts is not None else default_contexts(c)
    return c


def load_config(path):
    """The config.json at a repo-relative path, as a dict."""
    with open(os.path.join(ROOT, path)) as f:
        return json.load(f)


def text_config(cfg):
    """The language model's part of a config: `text_config` of a multimodal file, else the file."""
    if "text_config" in cfg and "rope_theta" not in cfg and "rope_parameters" not in cfg:
        return cfg["text_config"]
    return cfg


def rope_section(cfg, layer_type=None):
    """The rope dictionary of a (text) config for a layer type, or {} when there is none."""
    section = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    if layer_type is not None and isinstance(section.get(layer_type), dict):
        return section[layer_type]
    return section


def lengths(cfg, layer_type=None):
    """(L, max): the original (pre-training) length and max_position_embeddings of a config.

    L is `original_max_position_embeddings` from the rope section, else from the top level
    (Phi-3 writes it there), else max_position_embeddings.
    """
    t = text_config(cfg)
    max_pos = t.get("max_position_embeddings") or DEFAULT_MAX_POSITION[t["model_type"]]
    section = rope_section(t, layer_type)
    original = section.get("original_max_position_embeddings") or t.get("original_max_position_embeddings")
    return int(original or max_pos), int(max_pos)


def positions(L, max_pos):
    """{0, 1, L-1, L, 2L, max-1}, each clipped to [0, max-1], sorted, without repeats."""
    return sorted({min(max(p, 0), max_pos - 1) for p in (0, 1, L - 1, L, 2 * L, max_pos - 1)})


def case_positions(c):
    """The positions a worker evaluates for a case: `positions(L, max)` and its extra positions."""
    L, max_pos = lengths(load_config(c["config"]), c["layer_type"])
    return sorted(set(positions(L, max_pos)) | set(c["extra_positions"]))


def default_contexts(c):
    """L and max for a case (one value when they are equal)."""
    L, max_pos = lengths(load_config(c["config"]), c["layer_type"])
    return sorted({L, max_pos})


M = "assets/models/"
T = "tests/data/configs/"
S = "tests/data/stack_configs/"

CASES = [
    # built-in models (assets/models/index.json), every layer type
    case("llama-2-7b", M + "llama-2-7b.json"),
    case("llama-3.1-8b", M + "llama-3.1-8b.json"),
    case("llama-3.2-1b-instruct", M + "llama-3.2-1b-instruct.json"),
    case("llama-3.2-3b", M + "llama-3.2-3b.json"),
    case("mistral-7b-v0.1", M + "mistral-7b-v0.1.json"),
    case("mixtral-8x7b-v0.1", M + "mixtral-8x7b-v0.1.json"),
    case("qwen2.5-7b-instruct", M + "qwen2.5-7b-instruct.json"),
    case("qwen3-8b", M + "qwen3-8b.json"),
    case("deepseek-v3", M + "deepseek-v3.json", contexts=[4096, 163840], shows=["mscale"]),
    case("gpt-oss-20b", M + "gpt-oss-20b.json", contexts=[4096, 131072], shows=["truncate"]),
    case("phi-3.5-mini-instruct", M + "phi-3.5-mini-instruct.json", contexts=[2048, 4096, 4097, 131072],
         shows=["longrope-switch"]),
    case("gemma-3-1b-it/full_attention", M + "gemma-3-1b-it.json", "full_attention"),
    case("gemma-3-1b-it/sliding_attention", M + "gemma-3-1b-it.json", "sliding_attention"),
    case("gemma-3-4b-it/full_attention", M + "gemma-3-4b-it.json", "full_attention"),
    case("gemma-3-4b-it/sliding_attention", M + "gemma-3-4b-it.json", "sliding_attention"),
    # the CLI's test configs
    case("tests/llama-3.1-8b", T + "llama-3.1-8b.json"),
    case("tests/qwen2-7b-instruct", T + "qwen2-7b-instruct.json"),
    # fixture configs (tests/data/stack_configs/README.md says what each exercises)
    case("phi-2", S + "phi-2.json"),
    case("deepseek-v2-lite", S + "deepseek-v2-lite.json", contexts=[4096, 32768, 163840], shows=["mscale"]),
    case("deepseek-v3-mscale-unequal", S + "deepseek-v3-mscale-unequal.json", contexts=[4096, 163840],
         shows=["mscale"]),
    case("deepseek-v3-mscale-only", S + "deepseek-v3-mscale-only.json", contexts=[163840], shows=["mscale"]),
    case("deepseek-v3-attention-factor", S + "deepseek-v3-attention-factor.json", contexts=[163840],
         shows=["yarn-attention-factor", "mscale"]),
    case("deepseek-v3-truncate-false", S + "deepseek-v3-truncate-false.json", contexts=[163840], shows=["truncate"]),
    case("llama-2-7b-dynamic", S + "llama-2-7b-dynamic.json", contexts=[2048, 4096, 8192, 16384],
         shows=["dynamic-static"], extra_positions=[8191, 16383]),
    case("qwen2-7b-dynamic-rope-parameters", S + "qwen2-7b-dynamic-rope-parameters.json",
         contexts=[16384, 32768, 65536, 131072], shows=["dynamic-static"],
         extra_positions=[65535, 131071]),
    case("llama-2-7b-32k-linear", S + "llama-2-7b-32k-linear.json"),
    case("llama-2-7b-yarn-64k", S + "llama-2-7b-yarn-64k.json"),
    case("qwen3-8b-yarn", S + "qwen3-8b-yarn.json", contexts=[32768, 40960, 131072], shows=["yarn-factor"]),
    case("qwen3-8b-yarn-attention-factor", S + "qwen3-8b-yarn-attention-factor.json", contexts=[32768, 131072],
         shows=["yarn-attention-factor"]),
    case("llama-yarn-mscale", S + "llama-yarn-mscale.json", contexts=[4096, 32768], shows=["mscale"]),
    case("llama-3.1-8b-rope-parameters", S + "llama-3.1-8b-rope-parameters.json"),
    case("phi-4-mini-longrope-partial", S + "phi-4-mini-longrope-partial.json", contexts=[4096, 4097, 131072],
         shows=["longrope-switch"]),
    case("phi3-longrope-factor-vs-original", S + "phi3-longrope-factor-vs-original.json",
         contexts=[4096, 8192, 65536], shows=["longrope-factor"]),
    case("gemma-3-27b-rope-parameters/full_attention", S + "gemma-3-27b-rope-parameters.json", "full_attention"),
    case("gemma-3-27b-rope-parameters/sliding_attention", S + "gemma-3-27b-rope-parameters.json",
         "sliding_attention"),
    case("gemma-4-proportional/full_attention", S + "gemma-4-proportional.json", "full_attention"),
    case("gemma-4-proportional/sliding_attention", S + "gemma-4-proportional.json", "sliding_attention"),
    case("llama-1m-d256", S + "llama-1m-d256.json", contexts=[131072, 1048576]),
    case("qwen3-next-1m", S + "qwen3-next-1m.json", contexts=[262144, 1048576]),
    case("llama-2-7b-dynamic-alpha", S + "llama-2-7b-dynamic-alpha.json", contexts=[4096, 8192],
         extra_positions=[8191]),
    case("hunyuan-dense-dynamic-alpha", S + "hunyuan-dense-dynamic-alpha.json", contexts=[4096, 32768]),
    case("llama-2-7b-ntk", S + "llama-2-7b-ntk.json"),
    case("llama-2-7b-ntk-mixed-b", S + "llama-2-7b-ntk-mixed-b.json"),
]
