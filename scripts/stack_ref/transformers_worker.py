"""transformers' own RoPE for each request: the model's rotary embedding class, run on the CPU.

For a config the worker builds the config class offline (`AutoConfig.for_model`), takes the
text config of a multimodal file, instantiates the architecture's `<Model>RotaryEmbedding` (the
class the model's decoder calls) and runs its forward the way a forward pass of length N does.
Its `dynamic_rope_update` decorator reads only `max(position_ids) + 1`, so one call with
position ids ending at N - 1 puts the module in the state of a length-N forward (dynamic NTK
recomputes `inv_freq`, LongRoPE picks its short or long factors). cos and sin at the case's
positions then come from the undecorated forward (`forward.__wrapped__`), which keeps that state;
the worker checks they equal the decorated forward's output at every position below N.

Run by scripts/stack_reference.py (protocol in protocol.py).
"""
import importlib
import inspect
import json

from protocol import base_entry, f32_list, load_request_config, refusal, serve, unsupported, where

REQUIREMENTS = ["torch==2.15.0", "transformers==5.24.0", "numpy"]

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoConfig  # noqa: E402
from transformers import modeling_rope_utils as mru  # noqa: E402
from transformers.models.auto.configuration_auto import model_type_to_module_name  # noqa: E402

ROPE_UTILS = mru.__file__


def header():
    """Top-level fields of the fixture."""
    return {"stack": "transformers", "version": transformers.__version__, "torch": torch.__version__,
            "packages": {"transformers": transformers.__version__, "torch": torch.__version__}}


def build_config(cfg):
    """The text config transformers builds from a config.json dict, offline."""
    d = {k: v for k, v in json.loads(json.dumps(cfg)).items() if not k.startswith("_")}
    return AutoConfig.for_model(d.pop("model_type"), **d).get_text_config()


def modeling_module(config):
    """The modeling module of a config's architecture."""
    name = model_type_to_module_name(config.model_type)
    return importlib.import_module(f"transformers.models.{name}.modeling_{name}")


def rotary_class(module):
    """The text rotary embedding class a modeling module defines."""
    found = [c for n, c in inspect.getmembers(module, inspect.isclass)
             if n.endswith("RotaryEmbedding") and "Vision" not in n and c.__module__ == module.__name__]
    if len(found) != 1:
        raise LookupError(f"{module.__name__}: expected one text RotaryEmbedding, found {found}")
    return found[0]


def pair_layout(config, module):
    """(is_neox_style, layout, note) of how the architecture pairs the rotated coordinates."""
    path = module.__file__
    if config.model_type == "deepseek_v2":
        return False, "interleaved", f"{where(path, 'view_as_complex')}: pairs (2i, 2i+1) as complex numbers"
    if config.model_type == "deepseek_v3" and config.rope_interleave:
        return False, "interleaved", (f"{where(path, 'if self.config.rope_interleave')}: rope_interleave true, "
                                      "pairs (2i, 2i+1) de-interleaved before rotate_half")
    return True, "half-split", None


def softmax_scale_factor(config, module):
    """(factor, note): what the attention module multiplies its softmax scale by for RoPE's sake."""
    fn = getattr(module, "yarn_apply_mscale", None)
    if fn is None:
        return 1.0, None
    factor = fn(config.rope_parameters, 1.0)
    line = where(module.__file__, "scaling = scaling * mscale * mscale")
    return factor, f"{line}: softmax scale multiplied by yarn_get_mscale(factor, mscale_all_dim)^2 = {factor!r}"


def layer_args(layer_type):
    """Keyword arguments of a rotary forward for a layer type (per-layer classes need one)."""
    return {"layer_type": layer_type} if layer_type else {}


def state(rotary, layer_type):
    """(inv_freq, attention_scaling) the rotary module holds now for a layer type."""
    prefix = f"{layer_type}_" if layer_type else ""
    scaling = getattr(rotary, f"{prefix}attention_scaling", None)
    if scaling is None:
        scaling = rotary.attention_scaling
    return getattr(rotary, f"{prefix}inv_freq"), float(scaling)


def cos_sin(out, pairs):
    """Per position, per pair cos and sin from a rotary forward's output."""
    if isinstance(out, torch.Tensor) and out.is_complex():  # DeepSeek-V2: polar(1, angle) * attention factor
        return out.real[0], out.imag[0]
    cos, sin = out
    return cos[0, :, :pairs], sin[0, :, :pairs]


def run_forward(rotary, context, positions, layer_type):
    """cos/sin at `positions` in the state of a length-`context` forward, checked against the real forward."""
    x = torch.zeros(1, dtype=torch.float32)
    inside = [p for p in positions if p < context]
    ids = torch.tensor([inside + [context - 1]], dtype=torch.long)
    decorated = rotary(x, ids, **layer_args(layer_type))
    inv_freq, _ = state(rotary, layer_type)
    pairs = inv_freq.shape[0]
    undecorated = type(rotary).forward.__wrapped__
    at = torch.tensor([positions], dtype=torch.long)
    cos, sin = cos_sin(undecorated(rotary, x, at, **layer_args(layer_type)), pairs)
    dcos, dsin = cos_sin(decorated, pairs)
    for k, p in enumerate(inside):
        j = positions.index(p)
        if not (torch.equal(cos[j], dcos[k]) and torch.equal(sin[j], dsin[k])):
            raise AssertionError(f"undecorated forward differs from the forward at position {p}")
    return cos, sin


def rope_notes(config, params, rotary, context):
    """Where transformers' code does something a reader of the config would not expect."""
    rope_type = rotary.rope_type if isinstance(rotary.rope_type, str) else params["rope_type"]
    notes = []
    if rope_type == "dynamic":
        notes.append(f"{where(ROPE_UTILS, 'if seq_len > max_seq_len_cached:  # growth')}: inv_freq recomputed "
                     f"with seq_len = max(position_ids)+1 only above max_position_embeddings "
                     f"({config.max_position_embeddings}); context {context} "
                     + ("recomputes" if context > config.max_position_embeddings else "keeps the initial inv_freq"))
    if rope_type == "longrope":
        omax = params["original_max_position_embeddings"]
        notes.append(f"{where(ROPE_UTILS, 'inv_freq = torch.where(seq_len > original_max_position_embeddings')}: "
                     f"long factors when max(position_ids)+1 > {omax}, per forward; context {context} uses the "
                     + ("long" if context > omax else "short") + " factors")
        if params.get("factor") is None:
            notes.append(f"{where(ROPE_UTILS, 'factor = config.max_position_embeddings / original_max_position_embeddings', 2)}: "
                         "no factor in the rope section: attention factor from max_position_embeddings / original")
    if rope_type == "yarn":
        notes.append(f"{where(ROPE_UTILS, 'truncate = config.rope_parameters.get')}: truncate read from the "
                     "top-level rope_parameters (a per-layer section's own truncate is not read)")
    if rope_type == "ntk_alpha":
        notes.append("HunYuan's rotary class turns dynamic + alpha into a static 'ntk_alpha' type: "
                     "base = rope_theta * alpha^(d/(d-2)), independent of the context")
    return notes


def evaluate(request):
    """One fixture entry for a request."""
    cfg = load_request_config(request["config"])
    layer_type, context, positions = request["layer_type"], request["context"], request["positions"]
    config = build_config(cfg)
    module = modeling_module(config)
    cls = rotary_class(module)
    params = config.rope_parameters[layer_type] if layer_type else config.rope_parameters
    try:
        rotary = cls(config)
    except Exception as e:  # noqa: BLE001 - the stack's own refusal, recorded
        return unsupported(request, f"{cls.__name__}(config) raises {refusal(e)}", notes=[
            f"{where(ROPE_UTILS, 'ROPE_INIT_FUNCTIONS: dict')}: ROPE_INIT_FUNCTIONS has no "
            f"{params.get('rope_type')!r}; the model cannot be built"])
    cos, sin = run_forward(rotary, context, positions, layer_type)
    inv_freq, scaling = state(rotary, layer_type)
    neox, layout, layout_note = pair_layout(config, module)
    softmax, softmax_note = softmax_scale_factor(config, module)
    notes = rope_notes(config, params, rotary, context) + [n for n in (layout_note, softmax_note) if n]
    rope_type = rotary.rope_type[layer_type] if layer_type else rotary.rope_type
    return dict(
        base_entry(request), supported=True, rope_class=f"{cls.__module__}.{cls.__name__}",
        rope_type=rope_type, inv_freq=f32_list(inv_freq.tolist()), attention_factor=scaling,
        attention_factor_applied_to="cos_sin", cos_sin_scale=scaling, softmax_scale_factor=softmax,
        is_neox_style=neox, pair_layout=layout, rotary_dim=2 * inv_freq.shape[0], dtype="float32",
        positions=positions, cos=[f32_list(r) for r in cos.tolist()], sin=[f32_list(r) for r in sin.tolist()],
        notes=notes)


if __name__ == "__main__":
    serve(header, evaluate)
