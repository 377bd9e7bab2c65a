"""vLLM's own RoPE for each request: `get_rope` called as the architecture's model file calls it.

The worker loads the config the way `vllm serve` does (`ModelConfig` on a directory holding the
config.json, with `max_model_len` = the context: vLLM's own config patches, rope-type renames and
length checks run), then calls `get_rope(...)` with the arguments the model file of that
architecture passes (each call below cites its line), inside
`set_current_vllm_config(VllmConfig(model_config, device_config=cpu))`. `_ROPE_DICT` is cleared
before each case. The entry holds the `cos_sin_cache` rows the forward indexes (what q and k are
multiplied by), the inv_freq the cache was built from (captured from the object's own
`_compute_cos_sin_cache` / `_compute_inv_freq`), and where the attention factor goes.

Architectures that vLLM runs through its Transformers backend use transformers' rotary class (from
the transformers release vLLM pins), evaluated like transformers_worker.py does.

Run by scripts/stack_reference.py (protocol in protocol.py).
"""
import contextlib
import json
import os
import tempfile

from protocol import base_entry, config_path, f32_list, refusal, serve, unsupported, where

REQUIREMENTS = ["vllm==0.34.0"]
EXCLUDED_DEPENDENCIES = {
    "flashinfer-python": "vllm 0.34.0 pins flashinfer-python==0.7.3, which is not on PyPI (0.7.2.post1 and "
                         "0.7.4 are); it is a CUDA kernel library that the rotary modules never import on a CPU",
}

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import vllm  # noqa: E402
from vllm.config import DeviceConfig, ModelConfig, VllmConfig, set_current_vllm_config  # noqa: E402
from vllm.model_executor.layers import rotary_embedding as vre  # noqa: E402
from vllm.model_executor.models import registry  # noqa: E402

import transformers_worker as hf  # noqa: E402  (transformers as vLLM pins it, for its Transformers backend)

PKG = os.path.dirname(vllm.__file__)
MODELS = os.path.join(PKG, "model_executor", "models")
ROPE = os.path.join(PKG, "model_executor", "layers", "rotary_embedding")


def header():
    """Top-level fields of the fixture."""
    return {"stack": "vllm", "version": vllm.__version__, "torch": torch.__version__,
            "packages": {"vllm": vllm.__version__, "torch": torch.__version__,
                         "transformers": hf.transformers.__version__}}


def model_file(module):
    """The path of a vLLM model module."""
    return os.path.join(MODELS, f"{module}.py")


def model_module(architecture):
    """The vLLM model module name and whether it is the Transformers backend, for an architecture."""
    for table in (registry._TEXT_GENERATION_MODELS, registry._MULTIMODAL_MODELS):
        if architecture in table:
            return table[architecture][0], False
    if architecture in registry._TRANSFORMERS_SUPPORTED_MODELS:
        return "transformers", True
    raise LookupError(f"architecture {architecture} is not in vLLM's model registry")


def length_refusal(error):
    """vLLM's message when it refuses a max_model_len, or None for any other error."""
    errors = error.errors() if hasattr(error, "errors") else []
    message = errors[0]["msg"] if errors else str(error)
    if "VLLM_ALLOW_LONG_MAX_MODEL_LEN" not in message:
        return None
    return message.removeprefix("Value error, ").split(" To allow")[0]


def load(model_dir, context):
    """(ModelConfig, refusal or None): vLLM's config for a model directory at max_model_len = context.

    When vLLM refuses the length, the config is built again as VLLM_ALLOW_LONG_MAX_MODEL_LEN=1
    lets a user force it, and the refusal is returned with it.
    """
    try:
        return ModelConfig(model=model_dir, skip_tokenizer_init=True, max_model_len=context), None
    except Exception as e:  # noqa: BLE001 - vLLM's own refusal, recorded
        reason = length_refusal(e)
        if reason is None:
            raise
    os.environ["VLLM_ALLOW_LONG_MAX_MODEL_LEN"] = "1"
    try:
        return ModelConfig(model=model_dir, skip_tokenizer_init=True, max_model_len=context), reason
    finally:
        del os.environ["VLLM_ALLOW_LONG_MAX_MODEL_LEN"]


# ---------------------------------------------------------------------------------------------
# get_rope as each model file calls it: (kwargs, softmax scale factor, notes)

def llama_call(config, layer_type):
    """llama.py LlamaAttention._init_rotary_emb (also MistralForCausalLM, Phi3ForCausalLM)."""
    path = model_file("llama")
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    kwargs = dict(head_size=head_dim, max_position=getattr(config, "max_position_embeddings", 8192),
                  rope_parameters=getattr(config, "rope_parameters", None), is_neox_style=True)
    return kwargs, 1.0, [f"{where(path, 'self.rotary_emb = get_rope(')}: get_rope(head_dim, "
                         "max_position=max_position_embeddings, rope_parameters, is_neox_style=True)"]


def plain_call(module, head_dim_expr):
    """The call of mixtral.py, qwen2.py, qwen3.py, qwen3_next.py: config values passed through."""
    def call(config, layer_type):
        """get_rope's arguments for this model file."""
        kwargs = dict(head_size=head_dim_expr(config), max_position=config.max_position_embeddings,
                      rope_parameters=config.rope_parameters, is_neox_style=True)
        return kwargs, 1.0, [f"{where(model_file(module), 'get_rope(')}: get_rope(head_dim, "
                             "max_position=config.max_position_embeddings, rope_parameters=config.rope_parameters)"]
    return call


def deepseek_call(config, layer_type):
    """deepseek_v2.py DeepseekV2MLAAttention: yarn renamed to deepseek_yarn, mscale on the softmax scale."""
    path = model_file("deepseek_v2")
    params = config.rope_parameters
    notes = [f"{where(path, 'self.rotary_emb = get_rope(', 3)}: get_rope(qk_rope_head_dim, "
             "max_position=max_position_embeddings, rope_parameters, is_neox_style=False)"]
    softmax = 1.0
    if params["rope_type"] != "default":
        params["rope_type"] = "deepseek_llama_scaling" if params.get("attention_factor") == 1.0 else "deepseek_yarn"
        notes.append(f"{where(path, 'deepseek_llama_scaling', 2)}: rope_type {params['rope_type']!r} "
                     "(deepseek_llama_scaling only when attention_factor == 1.0); the scaling class takes "
                     "no attention_factor")
    if params["rope_type"] == "deepseek_yarn":
        mscale = vre.deepseek_scaling_rope.yarn_get_mscale(params["factor"], float(params.get("mscale_all_dim", False)))
        softmax = mscale * mscale
        notes.append(f"{where(path, 'self.scaling = self.scaling * mscale * mscale', 2)}: softmax scale "
                     f"multiplied by yarn_get_mscale(factor, mscale_all_dim)^2 = {softmax!r}")
    kwargs = dict(head_size=getattr(config, "qk_rope_head_dim", 0),
                  max_position=getattr(config, "max_position_embeddings", 8192),
                  rope_parameters=params, is_neox_style=False)
    return kwargs, softmax, notes


def gpt_oss_call(config, layer_type):
    """gpt_oss.py OssAttention: a yarn dict rebuilt from six keys, cache in float32."""
    p = config.rope_parameters
    params = {"rope_theta": p["rope_theta"], "rope_type": "yarn", "factor": p["factor"],
              "original_max_position_embeddings": p["original_max_position_embeddings"],
              "beta_fast": p["beta_fast"], "beta_slow": p["beta_slow"], "truncate": p.get("truncate", True)}
    kwargs = dict(head_size=config.head_dim, max_position=config.max_position_embeddings,
                  rope_parameters=params, is_neox_style=True, dtype=torch.float32)
    line = where(model_file("gpt_oss"), "self.rotary_emb = get_rope(")
    return kwargs, 1.0, [f"{line}: rope_parameters rebuilt from rope_theta, factor, "
                         "original_max_position_embeddings, beta_fast, beta_slow, truncate: mscale, "
                         "mscale_all_dim and attention_factor of the config never reach get_rope"]


def gemma3_call(config, layer_type):
    """gemma3.py Gemma3Attention: the layer type's rope section."""
    kwargs = dict(head_size=config.head_dim, max_position=config.max_position_embeddings,
                  rope_parameters=config.rope_parameters[layer_type], is_neox_style=True)
    line = where(model_file("gemma3"), "rope_parameters = config.rope_parameters[layer_type]")
    return kwargs, 1.0, [f"{line}: rope_parameters[layer_type]"]


def gemma4_call(config, layer_type):
    """gemma4.py Gemma4Attention: the layer type's section and that layer's own head_dim."""
    layer = config.layer_types.index(layer_type)
    kwargs = dict(head_size=config.per_layer_config[layer].head_dim, max_position=config.max_position_embeddings,
                  rope_parameters=dict(config.rope_parameters[layer_type]), is_neox_style=True)
    line = where(model_file("gemma4"), "head_dim = layer_config.head_dim")
    return kwargs, 1.0, [f"{line}: head_dim of the layer ({kwargs['head_size']}) from per_layer_config"]


CALLS = {
    "llama": llama_call, "mistral": llama_call, "phi3": llama_call,
    "mixtral": plain_call("mixtral", lambda c: getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads),
    "qwen2": plain_call("qwen2", lambda c: c.hidden_size // c.num_attention_heads),
    "qwen3": plain_call("qwen3", lambda c: getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads),
    "qwen3_next": plain_call("qwen3_next", lambda c: c.head_dim or c.hidden_size // c.num_attention_heads),
    "deepseek_v2": deepseek_call, "gpt_oss": gpt_oss_call,
    "gemma3": gemma3_call, "gemma3_mm": gemma3_call, "gemma4": gemma4_call,
}


# ---------------------------------------------------------------------------------------------
# reading the rotary object

@contextlib.contextmanager
def einsum_operands():
    """Record the operands of every torch.einsum call in the block (the cache is t x inv_freq)."""
    seen = []
    real = torch.einsum

    def recording(eq, *ops):
        """torch.einsum, remembering its operands."""
        seen.append(ops)
        return real(eq, *ops)

    torch.einsum = recording
    try:
        yield seen
    finally:
        torch.einsum = real


def longrope_state(rotary):
    """(inv_freq, cos/sin scale, first cache row, rows, notes) of vLLM's LongRoPE object."""
    long = rotary.use_long_rope
    factors = rotary.long_factor if long else rotary.short_factor
    inv_freq = rotary._compute_inv_freq(factors)
    path = os.path.join(ROPE, "phi3_long_rope_scaled_rope.py")
    notes = [f"{where(path, 'self.use_long_rope = max_model_len > original_max_position_embeddings')}: "
             f"{'long' if long else 'short'} factors for every sequence, chosen once from max_model_len "
             f"(> {rotary.original_max_position_embeddings} picks long)",
             f"{where(path, 'scale = self.max_position_embeddings / self.original_max_position_embeddings')}: "
             "attention factor from max_position_embeddings / original_max_position_embeddings; the config's "
             "factor and attention_factor are not read (only short_mscale / long_mscale)"]
    omax = rotary.original_max_position_embeddings
    first, rows = (omax, rotary.max_position_embeddings) if long else (0, omax)
    return inv_freq, rotary.long_mscale if long else rotary.short_mscale, first, rows, notes


def cached_state(rotary):
    """(inv_freq, cos/sin scale, position scale, notes) of a RotaryEmbedding built on cos_sin_cache."""
    with einsum_operands() as seen:
        rotary._compute_cos_sin_cache()
    t, inv_freq = seen[-1]
    position_scale = float(t[1]) if t.shape[0] > 1 else 1.0
    notes = []
    if position_scale != 1.0:
        path = os.path.join(ROPE, "linear_scaling_rope.py")
        notes.append(f"{where(path, 't = t / scaling_factor')}: positions divided by the factor, "
                     "angle = f32(f32(p / factor) * inv_freq); inv_freq here is f32(inv_freq * (1 / factor)) "
                     "folded in, so cos/sin can differ from cos(p * inv_freq) by the angle's rounding")
    scale = float(getattr(rotary, "mscale", 1.0))
    return (inv_freq * position_scale).to(torch.float32), inv_freq, scale, position_scale, notes


def rows_at(cache, first, rows, positions, pairs):
    """cos and sin rows the forward would index for each position (None outside the cache segment)."""
    cos, sin = [], []
    for p in positions:
        if p >= rows:
            cos.append(None)
            sin.append(None)
            continue
        row = cache[first + p]
        cos.append(f32_list(row[:pairs].tolist()))
        sin.append(f32_list(row[pairs:2 * pairs].tolist()))
    return cos, sin


def missing_rows_notes(context, rows, missing):
    """Notes on positions whose cache row does not exist (cos/sin recorded as null)."""
    notes = []
    overrun = [p for p in missing if p < context]
    if overrun:
        line = where(os.path.join(ROPE, "base.py"), "cos_sin = cos_sin_cache.index_select(0, positions)")
        notes.append(f"{line}: max_model_len {context} is accepted but the cache has {rows} rows: positions "
                     f"{overrun} index past it (index_select raises IndexError on the CPU path)")
    unreachable = [p for p in missing if p >= context]
    if unreachable:
        notes.append(f"positions {unreachable} are at or past max_model_len {context} and past the {rows} cache "
                     "rows this branch uses: vLLM never feeds them")
    return notes


# the classes that multiply their cos/sin cache by an attention factor (mscale)
SCALED_CLASSES = (vre.YaRNScalingRotaryEmbedding, vre.DeepseekScalingRotaryEmbedding,
                  vre.Phi3LongRoPEScaledRotaryEmbedding)


def rotary_entry(request, rotary, softmax, call_notes):
    """The entry for a vLLM rotary object."""
    positions = request["positions"]
    cls = type(rotary)
    notes = list(call_notes)
    unscaled = None
    if isinstance(rotary, vre.Phi3LongRoPEScaledRotaryEmbedding):
        inv_freq, scale, first, rows, more = longrope_state(rotary)
        cache = rotary.long_short_cos_sin_cache
    else:
        inv_freq, unscaled, scale, position_scale, more = cached_state(rotary)
        cache, first, rows = rotary.cos_sin_cache, 0, rotary.cos_sin_cache.shape[0]
    notes += more
    pairs = inv_freq.shape[0]
    cos, sin = rows_at(cache.to(torch.float32), first, rows, positions, pairs)
    notes += missing_rows_notes(request["context"], rows, [p for p, c in zip(positions, cos) if c is None])
    applied = "cos_sin" if isinstance(rotary, SCALED_CLASSES) else "none"
    neox = getattr(rotary, "is_neox_style", True)  # LongRoPE has no attribute: it refuses anything but neox
    entry = dict(
        base_entry(request), supported=True, rope_class=f"{cls.__module__}.{cls.__name__}",
        inv_freq=f32_list(inv_freq.tolist()), attention_factor=scale, attention_factor_applied_to=applied,
        cos_sin_scale=scale, softmax_scale_factor=softmax,
        is_neox_style=neox, pair_layout="half-split" if neox else "interleaved",
        rotary_dim=rotary.rotary_dim, head_size=rotary.head_size, cache_rows=rows, dtype="float32",
        positions=positions, cos=cos, sin=sin, notes=notes)
    if unscaled is not None and position_scale != 1.0:
        entry.update(inv_freq_unscaled=f32_list(unscaled.tolist()), position_scale=position_scale)
    return entry


def build_rotary(vllm_config, kwargs):
    """get_rope(**kwargs) under vLLM's config context, with the cache computed in float32."""
    vre._ROPE_DICT.clear()
    kwargs = dict(kwargs)
    cast_to = kwargs.pop("dtype", None)
    with set_current_vllm_config(vllm_config):
        return vre.get_rope(**kwargs, dtype=torch.float32), cast_to


def cast_note(cast_to):
    """Where the float32 cache goes next: the model's dtype, unless the model file asks for float32."""
    line = where(os.path.join(ROPE, "base.py"), "cache = cache.to(dtype)")
    target = "float32 (the model file passes dtype=torch.float32)" if cast_to else "the model dtype (torch_dtype)"
    return f"{line}: the cache is cast to {target}; the values here are the float32 cache before that cast"


def transformers_backend(request, model_config, notes):
    """The entry for an architecture vLLM runs with its Transformers backend."""
    config = model_config.hf_text_config
    module = hf.modeling_module(config)
    cls = hf.rotary_class(module)
    line = where(os.path.join(MODELS, "registry.py"), f'"{model_config.architectures[0]}": ("transformers"')
    notes = notes + [f"{line}: vLLM runs {model_config.architectures[0]} through its Transformers backend: "
                     f"the rotary embedding is transformers {hf.transformers.__version__}'s {cls.__name__}, "
                     "recomputed per forward pass"]
    rotary = cls(config)
    cos, sin = hf.run_forward(rotary, request["context"], request["positions"], request["layer_type"])
    inv_freq, scaling = hf.state(rotary, request["layer_type"])
    neox, layout, _ = hf.pair_layout(config, module)
    return dict(
        base_entry(request), supported=True, rope_class=f"{cls.__module__}.{cls.__name__}",
        inv_freq=f32_list(inv_freq.tolist()), attention_factor=scaling, attention_factor_applied_to="cos_sin",
        cos_sin_scale=scaling, softmax_scale_factor=1.0, is_neox_style=neox, pair_layout=layout,
        rotary_dim=2 * inv_freq.shape[0], dtype="float32", positions=request["positions"],
        cos=[f32_list(r) for r in cos.tolist()], sin=[f32_list(r) for r in sin.tolist()],
        notes=notes + hf.rope_notes(config, hf_params(config, request["layer_type"]), rotary, request["context"]))


def hf_params(config, layer_type):
    """A transformers config's rope section for a layer type."""
    return config.rope_parameters[layer_type] if layer_type else config.rope_parameters


def evaluate(request):
    """One fixture entry for a request (the config sits in a model directory while vLLM reads it)."""
    with open(config_path(request["config"])) as f:
        cfg = json.load(f)
    with tempfile.TemporaryDirectory() as model_dir:
        with open(os.path.join(model_dir, "config.json"), "w") as f:
            json.dump(cfg, f)
        model_config, refused = load(model_dir, request["context"])
        entry = evaluate_loaded(request, model_config, refused)
    if refused:
        entry.update(supported=False, reason=f"vLLM refuses max_model_len {request['context']}: {refused}",
                     runs_instead="with VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vLLM accepts the length and builds "
                                  "the rotary embedding recorded in this entry")
    return entry


def evaluate_loaded(request, model_config, refused):
    """The entry for a request once vLLM has loaded its config."""
    notes = []
    if refused:
        notes.append(f"{where(os.path.join(PKG, 'config', 'model.py'), 'elif max_model_len > derived_max_model_len')}: "
                     "max_model_len above the derived maximum is refused unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1")
    module, backend = model_module(model_config.architectures[0])
    if backend:
        return transformers_backend(request, model_config, notes)
    kwargs, softmax, call_notes = CALLS[module](model_config.hf_text_config, request["layer_type"])
    vllm_config = VllmConfig(model_config=model_config, device_config=DeviceConfig(device="cpu"))
    try:
        rotary, cast_to = build_rotary(vllm_config, kwargs)
    except Exception as e:  # noqa: BLE001 - get_rope's own refusal, recorded
        return unsupported(request, f"get_rope raises {refusal(e)}", notes=notes + call_notes)
    entry = rotary_entry(request, rotary, softmax, notes + call_notes + [cast_note(cast_to)])
    params = kwargs["rope_parameters"]
    entry["rope_parameters"] = {k: v for k, v in params.items() if not k.endswith("_factor") or k in (
        "factor", "partial_rotary_factor", "attention_factor", "low_freq_factor", "high_freq_factor")} \
        if params else None
    return entry


if __name__ == "__main__":
    serve(header, evaluate)
