#!/usr/bin/env python3
"""llama.cpp's RoPE for each case: what convert_hf_to_gguf.py writes, what the loader makes of it,
and what the ggml CPU rope kernel computes.

Three stages, each from llama.cpp's own code as vendored in the llama-cpp-python sdist:

1. Converter (run). The sdist's `convert_hf_to_gguf.py` model class for the config's architecture
   (`conversion.get_model_class`) is instantiated on a temporary directory holding only
   config.json (its hparams come from `ModelBase.load_hparams`, i.e. transformers' AutoConfig at
   the converter's pinned version). Weights are not needed for the rope: `index_tensors` is
   replaced by one small norm tensor so that the file is a valid GGUF with a real tensor, and
   `set_vocab` (the tokenizer) is skipped. `write()` then runs `prepare_tensors` (including
   `generate_extra_tensors`: rope_freqs, rope_factors_long/short) and `set_gguf_parameters`, and
   the GGUF is read back with `gguf.GGUFReader`.
2. Loader (transcribed, and checked against libllama). `llama_model_base::load_hparams`
   (src/llama-model.cpp), the architecture's `load_arch_hparams` (src/models/<arch>.cpp),
   `llama_context`'s cparams (src/llama-context.cpp) and the graph's `ggml_rope_ext` arguments
   (src/llama-graph.cpp, src/models/<arch>.cpp) are transcribed in `loader_params` with file:line
   references computed from the vendored sources. The full-size model cannot be loaded without its
   weights, so `loader_check` builds a random-weight model that keeps the config's rope section and
   head size, converts it, loads it with libllama at the entry's n_ctx, decodes one token and
   compares the ROPE node's arguments with the transcription bit for bit
   (LLAMACPP_LOADER_CHECK=0 skips it).
3. Kernel (run). `ggml_rope_ext` from the installed libggml (llama_cpp/lib) through ctypes, on
   unit vectors at the case positions, with the parameters of stage 2 and the GGUF's factor
   tensor; the worker's f32 transcription of the kernel's `theta *= theta_scale` recurrence
   gives the angle per token and is checked bit for bit against the kernel's cos/sin.

Run by scripts/stack_reference.py (protocol in protocol.py: requests on stdin), or standalone:
  python scripts/stack_ref/llamacpp_worker.py --out tests/data/stack_reference/llama.cpp.json
  python scripts/stack_ref/llamacpp_worker.py --config FILE [--layer-type T] [--context N] [--positions P,...]
  python scripts/stack_ref/llamacpp_worker.py rope-from-gguf FILE --positions P,... [--context N] [--layer-type T]
  python scripts/stack_ref/llamacpp_worker.py convert --config FILE --out X.gguf
"""
import argparse
import contextlib
import ctypes
import glob
import importlib.metadata as md
import io
import json
import logging
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

# Pinned for scripts/stack_reference.py. llama-cpp-python is an sdist that builds llama.cpp and
# ggml from source (cmake + a C++ compiler; tens of minutes on two cores); its vendored
# convert_hf_to_gguf.py needs torch and the transformers version it pins.
LLAMA_CPP_PYTHON = "0.3.36"
REQUIREMENTS = ["llama-cpp-python==0.3.36", "gguf==0.19.0", "torch", "transformers==4.57.6",
                "sentencepiece", "protobuf<5", "numpy"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

SRC_ROOT = Path(os.environ.get("RESONANCE_LAB_SRC", Path.home() / ".cache/resonance-lab/src"))

f32 = np.float32
_libm = ctypes.CDLL("libm.so.6")
for _name in ("powf", "logf", "cosf", "sinf"):
    getattr(_libm, _name).restype = ctypes.c_float
_libm.powf.argtypes = [ctypes.c_float, ctypes.c_float]
_libm.logf.argtypes = [ctypes.c_float]
_libm.cosf.argtypes = [ctypes.c_float]
_libm.sinf.argtypes = [ctypes.c_float]


def powf(a, b):
    return f32(_libm.powf(f32(a), f32(b)))


def logf(a):
    return f32(_libm.logf(f32(a)))


def cosf(a):
    return f32(_libm.cosf(f32(a)))


def sinf(a):
    return f32(_libm.sinf(f32(a)))


def fma(a, b, c):
    """f32 fused multiply-add: a*b is exact in f64; one rounding of the sum (to f64, then f32)."""
    return f32(np.float64(f32(a)) * np.float64(f32(b)) + np.float64(f32(c)))


def f32list(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


# ---------------------------------------------------------------------------------------------
# The vendored llama.cpp sources (sdist) and the installed ggml
# ---------------------------------------------------------------------------------------------

def vendored_llama_cpp():
    """vendor/llama.cpp of the llama-cpp-python sdist, downloaded with pip and unpacked if absent."""
    env = os.environ.get("LLAMA_CPP_SRC")
    if env:
        return Path(env)
    root = SRC_ROOT / f"llama_cpp_python-{LLAMA_CPP_PYTHON}"
    if not (root / "vendor/llama.cpp/convert_hf_to_gguf.py").exists():
        SRC_ROOT.mkdir(parents=True, exist_ok=True)
        tar = SRC_ROOT / f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"
        if not tar.exists():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-python",
                            f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "-d", str(SRC_ROOT)],
                           check=True, stdout=sys.stderr)
        with tarfile.open(tar) as t:
            t.extractall(SRC_ROOT, filter="data")
    return root / "vendor/llama.cpp"


LLAMA = vendored_llama_cpp()


def rel(path):
    p = Path(path).resolve()
    try:
        return str(p.relative_to(LLAMA.resolve()))
    except ValueError:
        return str(p)


def where(path, snippet, start_snippet=None):
    """'file:line' of the first line containing `snippet` (after the line containing `start_snippet`)."""
    path = LLAMA / path if not Path(path).is_absolute() else Path(path)
    lines = path.read_text(errors="replace").splitlines()
    start = 0
    if start_snippet is not None:
        start = next((i for i, l in enumerate(lines) if start_snippet in l), 0)
    for i in range(start, len(lines)):
        if snippet in lines[i]:
            return f"{rel(path)}:{i + 1}"
    raise LookupError(f"{snippet!r} not in {path}")


def ggml_libs():
    """libggml-base and libggml-cpu of the installed llama-cpp-python (or GGML_LIB_DIR)."""
    d = os.environ.get("GGML_LIB_DIR")
    if not d:
        import llama_cpp  # noqa: F401  (only to find its lib directory)
        d = str(Path(llama_cpp.__file__).parent / "lib")
    base = ctypes.CDLL(os.path.join(d, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
    cpu = ctypes.CDLL(os.path.join(d, "libggml-cpu.so"), mode=ctypes.RTLD_GLOBAL)
    return d, base, cpu


class GgmlInitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


GGML_TYPE_F32, GGML_TYPE_I32 = 0, 26
ROPE_MODES = {0: "normal (pairs 2i, 2i+1: interleaved)", 2: "neox (pairs i, i+n_rot/2: half-split)",
              8: "mrope", 40: "imrope", 24: "vision"}


class Ggml:
    def __init__(self):
        self.dir, self.base, self.cpu = ggml_libs()
        b, c = self.base, self.cpu
        b.ggml_init.restype = ctypes.c_void_p
        b.ggml_init.argtypes = [GgmlInitParams]
        b.ggml_free.argtypes = [ctypes.c_void_p]
        b.ggml_new_tensor_1d.restype = ctypes.c_void_p
        b.ggml_new_tensor_1d.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int64]
        b.ggml_new_tensor_3d.restype = ctypes.c_void_p
        b.ggml_new_tensor_3d.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
        b.ggml_get_data.restype = ctypes.c_void_p
        b.ggml_get_data.argtypes = [ctypes.c_void_p]
        b.ggml_rope_ext.restype = ctypes.c_void_p
        b.ggml_rope_ext.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                    ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                    ctypes.c_float, ctypes.c_float, ctypes.c_float, ctypes.c_float,
                                    ctypes.c_float, ctypes.c_float]
        b.ggml_new_graph.restype = ctypes.c_void_p
        b.ggml_new_graph.argtypes = [ctypes.c_void_p]
        b.ggml_build_forward_expand.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        b.ggml_rope_yarn_corr_dims.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_float, ctypes.c_float,
                                               ctypes.c_float, ctypes.POINTER(ctypes.c_float)]
        c.ggml_graph_compute_with_ctx.restype = ctypes.c_int
        c.ggml_graph_compute_with_ctx.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        if hasattr(c, "ggml_cpu_init"):
            c.ggml_cpu_init()

    def corr_dims(self, n_dims, n_ctx_orig, base, beta_fast, beta_slow):
        out = (ctypes.c_float * 2)()
        self.base.ggml_rope_yarn_corr_dims(n_dims, n_ctx_orig, base, beta_fast, beta_slow, out)
        return [float(out[0]), float(out[1])]

    def rope(self, positions, n_rot, mode, n_ctx_orig, freq_base, freq_scale, ext_factor, attn_factor,
             beta_fast, beta_slow, freq_factors=None):
        """cos and sin per position and pair: ggml_rope_ext on x = 1 on the first coordinate of each pair."""
        P = len(positions)
        mem = (n_rot * P * 4) * 3 + P * 4 + n_rot * 4 + 64 * 1024 * 1024
        ctx = self.base.ggml_init(GgmlInitParams(mem, None, False))
        try:
            a = self.base.ggml_new_tensor_3d(ctx, GGML_TYPE_F32, n_rot, 1, P)
            pos = self.base.ggml_new_tensor_1d(ctx, GGML_TYPE_I32, P)
            x = np.zeros((P, n_rot), dtype=np.float32)
            if mode == 0:
                x[:, 0::2] = 1.0
            else:
                x[:, : n_rot // 2] = 1.0
            ctypes.memmove(self.base.ggml_get_data(a), x.ctypes.data, x.nbytes)
            p = np.asarray(positions, dtype=np.int32)
            ctypes.memmove(self.base.ggml_get_data(pos), p.ctypes.data, p.nbytes)
            ff = None
            if freq_factors is not None:
                f = np.asarray(freq_factors, dtype=np.float32)
                ff = self.base.ggml_new_tensor_1d(ctx, GGML_TYPE_F32, len(f))
                ctypes.memmove(self.base.ggml_get_data(ff), f.ctypes.data, f.nbytes)
            out = self.base.ggml_rope_ext(ctx, a, pos, ff, n_rot, mode, n_ctx_orig, freq_base, freq_scale,
                                          ext_factor, attn_factor, beta_fast, beta_slow)
            gf = self.base.ggml_new_graph(ctx)
            self.base.ggml_build_forward_expand(gf, out)
            status = self.cpu.ggml_graph_compute_with_ctx(ctx, gf, 1)
            if status != 0:
                raise RuntimeError(f"ggml_graph_compute_with_ctx returned {status}")
            y = np.empty((P, n_rot), dtype=np.float32)
            ctypes.memmove(y.ctypes.data, self.base.ggml_get_data(out), y.nbytes)
        finally:
            self.base.ggml_free(ctx)
        if mode == 0:
            return y[:, 0::2], y[:, 1::2]
        return y[:, : n_rot // 2], y[:, n_rot // 2:]


_GGML = None


def ggml():
    global _GGML
    if _GGML is None:
        _GGML = Ggml()
    return _GGML


# ---------------------------------------------------------------------------------------------
# Stage 1: the converter
# ---------------------------------------------------------------------------------------------

def converter():
    """The vendored converter package (conversion/*) with its own gguf-py first on sys.path,
    as convert_hf_to_gguf.py itself arranges (convert_hf_to_gguf.py:14-15)."""
    for p in (str(LLAMA / "gguf-py"), str(LLAMA)):
        if p not in sys.path:
            sys.path.insert(0, p)
    import gguf  # noqa: F401
    import conversion
    return conversion


def run_converter(cfg, out_path, extra_tensors=True):
    """Write the GGUF convert_hf_to_gguf.py produces for a config.json (no weights).

    Returns (arch of the converter class, notes)."""
    conv = converter()
    import gguf
    import torch
    from conversion import ModelBase, ModelType, get_model_class
    from conversion.base import TextModel
    notes = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "config.json").write_text(json.dumps(cfg))
        log = io.StringIO()
        handler = logging.StreamHandler(log)
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                hparams = ModelBase.load_hparams(d, False)
                arch = conv.get_model_architecture(hparams, ModelType.TEXT)
                cls = get_model_class(arch)
                hidden = hparams.get("hidden_size") or (hparams.get("text_config") or {}).get("hidden_size") or 8

                def index_tensors(self, remote_hf_model_id=None):
                    if not extra_tensors:
                        return {}
                    return {"model.norm.weight": lambda: torch.ones(int(hidden), dtype=torch.float32)}

                patched = {"index_tensors": index_tensors, "set_vocab": lambda self: None}
                if getattr(cls, "supports_mtp_export", False):
                    # as `--no-nextn`: the MTP layer count is otherwise read off the checkpoint's tensors
                    patched["no_mtp"] = True
                    notes.append(f"{cls.__name__}: converted as with --no-nextn (no MTP layers), the MTP "
                                 "layer count being read from the weights")
                saved = {k: cls.__dict__.get(k) for k in patched}
                for k, v in patched.items():
                    setattr(cls, k, v)
                # subclasses that define their own set_vocab are patched on the instance below
                try:
                    model = cls(d, gguf.LlamaFileType.ALL_F32, Path(out_path), eager=True)
                    model.set_vocab = lambda: None
                    model.write()
                finally:
                    for k, v in saved.items():
                        if v is None:
                            delattr(cls, k)
                        else:
                            setattr(cls, k, v)
        finally:
            logging.getLogger().removeHandler(handler)
        for line in log.getvalue().splitlines():
            if "rope" in line.lower() or "warning" in line.lower() or "yarn" in line.lower():
                line = line.strip().replace(str(d), "<model dir>")
                note = f"converter log: {line[:240]}{' ...' if len(line) > 240 else ''}"
                if note not in notes:
                    notes.append(note)
    return arch, cls, notes


# Fields some converter classes read that carry no RoPE information; filled when a config subset
# omits them (the built-in configs keep only RoPE-bearing fields).
PLACEHOLDERS = {"rms_norm_eps": 1e-6, "num_kv_shared_layers": 0, "intermediate_size": 256, "vocab_size": 256,
                "layer_norm_eps": 1e-5, "hidden_act": "silu"}


ROPE_HPARAMS = {"rope_theta", "rope_scaling", "rope_parameters", "head_dim", "hidden_size", "num_attention_heads",
                "max_position_embeddings", "original_max_position_embeddings", "partial_rotary_factor"}


def convert(cfg, out_path):
    """run_converter, filling PLACEHOLDERS fields one by one when the converter misses one."""
    cfg = json.loads(json.dumps(cfg))
    filled = []
    for _ in range(12):
        try:
            arch, cls, notes = run_converter(cfg, out_path)
            if filled:
                notes.insert(0, "config subset lacks fields the converter reads that carry no RoPE information; "
                                f"filled with placeholders: {', '.join(filled)}")
            return arch, cls, notes
        except KeyError as e:
            asked = re.findall(r"'([A-Za-z0-9_]+)'", str(e))
            key = next((k for k in asked if k in PLACEHOLDERS and k not in filled), None)
            if key is None:
                key = next((k for k in asked if k not in filled and k not in ROPE_HPARAMS
                            and any(w in k for w in ("intermediate", "expert", "eps", "vocab"))), None)
            if key is None:
                raise
            target = cfg["text_config"] if isinstance(cfg.get("text_config"), dict) else cfg
            target[key] = PLACEHOLDERS.get(key, 1e-6 if "eps" in key else 256)
            filled.append(key)
    raise RuntimeError("converter kept asking for fields")


def read_gguf(path):
    """(metadata dict, tensors dict name -> np.ndarray of the rope tensors) of a GGUF file."""
    converter()
    import gguf
    r = gguf.GGUFReader(str(path))
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k.startswith("tokenizer."):
            continue
        try:
            v = f.contents()
        except Exception:
            continue
        meta[k] = v
    tensors = {}
    for t in r.tensors:
        if t.name.startswith("rope_"):
            tensors[t.name] = np.array(t.data, dtype=np.float32).reshape(-1)
    names = [t.name for t in r.tensors]
    return meta, tensors, names


# ---------------------------------------------------------------------------------------------
# Stage 2: the loader, transcribed
# ---------------------------------------------------------------------------------------------

def arch_tables():
    """{gguf arch name: LLM_ARCH_* enum} from src/llama-arch.cpp and {enum: rope type} from
    llama_model_rope_type in src/llama-model.cpp, parsed from the vendored sources."""
    names = {}
    for m in re.finditer(r'\{\s*(LLM_ARCH_[A-Z0-9_]+),\s*"([^"]+)"\s*\}', (LLAMA / "src/llama-arch.cpp").read_text()):
        names[m.group(2)] = m.group(1)
    src = (LLAMA / "src/llama-model.cpp").read_text()
    start = src.index("llama_rope_type llama_model_rope_type(const llama_model * model) {")
    body = src[start: src.index("\n}\n", start)]
    types, pending = {}, []
    for line in body.splitlines():
        m = re.match(r"\s*case (LLM_ARCH_[A-Z0-9_]+):", line)
        if m:
            pending.append(m.group(1))
            continue
        m = re.search(r"return (.*);", line)
        if m and pending:
            expr = m.group(1)
            for e in pending:
                types.setdefault(e, expr)
            pending = []
    return names, types


ROPE_TYPE_VALUES = {"LLAMA_ROPE_TYPE_NONE": -1, "LLAMA_ROPE_TYPE_NORM": 0, "LLAMA_ROPE_TYPE_NEOX": 2,
                    "LLAMA_ROPE_TYPE_MROPE": 8, "LLAMA_ROPE_TYPE_IMROPE": 40, "LLAMA_ROPE_TYPE_VISION": 24}


def arch_source(enum):
    """src/models/<arch>.cpp of an LLM_ARCH_* enum."""
    stem = enum[len("LLM_ARCH_"):].lower()
    for cand in (stem.replace("_", "-"), stem.replace("_", ""), stem):
        p = LLAMA / "src/models" / f"{cand}.cpp"
        if p.exists():
            return p
    return None


def mget(meta, arch, key, default=None):
    return meta.get(f"{arch}.{key}", default)


def loader_params(meta, tensors, layer_type, n_ctx_user):
    """The ggml_rope_ext arguments llama.cpp passes for one layer at context n_ctx_user."""
    notes = []
    arch = meta["general.architecture"]
    names, types = arch_tables()
    enum = names.get(arch)
    if enum is None:
        raise ValueError(f"architecture {arch!r} unknown to llama.cpp")
    src = arch_source(enum)
    src_text = src.read_text() if src else ""
    model_cpp = "src/llama-model.cpp"
    ctx_cpp = "src/llama-context.cpp"

    n_ctx_train = int(mget(meta, arch, "context_length"))
    n_embd = int(mget(meta, arch, "embedding_length", 0) or 0)
    n_head = mget(meta, arch, "attention.head_count", 0)
    n_head = int(n_head[0] if isinstance(n_head, list) else n_head or 0)
    head_k = int(mget(meta, arch, "attention.key_length", n_embd // n_head if n_head else 0))
    n_rot_full = int(mget(meta, arch, "rope.dimension_count", head_k))
    n_rot_swa = int(mget(meta, arch, "rope.dimension_count_swa", n_rot_full))
    n_ctx_orig_yarn = int(mget(meta, arch, "rope.scaling.original_context_length", n_ctx_train))
    base_train = float(f32(mget(meta, arch, "rope.freq_base", 10000.0)))
    scaling = mget(meta, arch, "rope.scaling.type", "linear")
    factor = mget(meta, arch, "rope.scaling.factor", None)
    if factor is None:
        factor = mget(meta, arch, "rope.scale_linear", 0.0)
    factor = f32(factor or 0.0)
    scale_train = f32(1.0) if factor == 0 else f32(f32(1.0) / factor)
    rope_attn_factor = f32(mget(meta, arch, "rope.scaling.attn_factor", 1.0))
    notes.append(f"loader: n_ctx_orig_yarn = rope.scaling.original_context_length, else context_length "
                 f"({where(model_cpp, 'hparams.n_ctx_orig_yarn = hparams.n_ctx_train;')}); freq_base default 10000 "
                 f"({where(model_cpp, 'hparams.rope_freq_base_train = 10000.0f;')}); rope.scaling.type default 'linear' "
                 f"({where(model_cpp, 'std::string rope_scaling(')}); freq_scale = 1/rope.scaling.factor "
                 f"({where(model_cpp, 'hparams.rope_freq_scale_train = ropescale == 0.0f')}); rope.scaling.attn_factor "
                 f"({where(model_cpp, 'LLM_KV_ROPE_SCALING_ATTN_FACTOR, hparams.rope_attn_factor')})")

    # per-architecture hparams
    yarn_log_mul = f32(0.0)
    if "LLM_KV_ROPE_SCALING_YARN_LOG_MUL" in src_text:
        stored = mget(meta, arch, "rope.scaling.yarn_log_multiplier", None)
        if stored is not None:
            yarn_log_mul = f32(f32(stored) / f32(0.1)) if "rope_yarn_log_mul /= 0.1f" in src_text else f32(stored)
            notes.append(f"{arch}: rope.scaling.yarn_log_multiplier = {float(f32(stored))!r} (stored x0.1 by the converter) "
                         f"divided by 0.1 on load ({where(src, 'rope_yarn_log_mul /= 0.1f')}) = {float(yarn_log_mul)!r}")
    elif mget(meta, arch, "rope.scaling.yarn_log_multiplier", None) is not None:
        notes.append(f"{arch}: rope.scaling.yarn_log_multiplier is in the file but {rel(src)} does not read it")
    yarn = {"ext_factor": f32(-1.0), "attn_factor": f32(1.0), "beta_fast": f32(32.0), "beta_slow": f32(1.0)}
    for key, kv in (("ext_factor", "yarn_ext_factor"), ("attn_factor", "yarn_attn_factor"),
                    ("beta_fast", "yarn_beta_fast"), ("beta_slow", "yarn_beta_slow")):
        written = mget(meta, arch, f"rope.scaling.{kv}", None)
        if f"LLM_KV_ROPE_SCALING_YARN_{key.upper()}" in src_text and written is not None:
            yarn[key] = f32(written)
        elif written is not None:
            notes.append(f"{arch}: rope.scaling.{kv} = {written!r} is written but not read by "
                         f"{rel(src) if src else 'this architecture'}; the default {float(yarn[key])!r} applies "
                         f"(src/llama-hparams.h)")

    swa_layer = False
    base_swa, scale_swa = f32(10000.0), f32(1.0)
    if "rope_freq_base_train_swa  = hparams.rope_freq_base_train" in src_text or \
            "rope_freq_base_train_swa = hparams.rope_freq_base_train" in src_text:
        base_swa = f32(base_train)
    if "rope_freq_scale_train_swa = hparams.rope_freq_scale_train" in src_text:
        scale_swa = scale_train
    if "LLM_KV_ROPE_FREQ_BASE_SWA" in src_text and mget(meta, arch, "rope.freq_base_swa", None) is not None:
        base_swa = f32(mget(meta, arch, "rope.freq_base_swa"))
    has_swa = mget(meta, arch, "attention.sliding_window", None) is not None and (
        "LLAMA_SWA_TYPE_STANDARD" in src_text)
    if layer_type == "sliding_attention":
        if has_swa:
            swa_layer = True
        else:
            notes.append(f"layer type sliding_attention, but {arch} has no sliding window in this GGUF: "
                         "its layers use the full-attention rope")
    if swa_layer:
        notes.append(f"{arch} sliding layer: freq_base = rope.freq_base_swa or its default, freq_scale = "
                     f"rope_freq_scale_train_swa ({where(model_cpp, 'float llama_model::get_rope_freq_base')})")

    mode_expr = types.get(enum, "LLAMA_ROPE_TYPE_NONE")
    m = re.findall(r"LLAMA_ROPE_TYPE_[A-Z]+", mode_expr)
    if "use_mrope()" in mode_expr:
        mode_name = m[1] if not mget(meta, arch, "rope.dimension_sections", None) else m[0]
    elif "?" in mode_expr:
        mode_name = m[-1]
    else:
        mode_name = m[0]
    mode = ROPE_TYPE_VALUES[mode_name]
    notes.append(f"rope type {mode_name} for {enum} ({where(model_cpp, 'case ' + enum + ':', 'llama_rope_type llama_model_rope_type')})")

    # cparams (llama_context constructor); llama_context_default_params except n_ctx
    n_ctx = int(math.ceil(n_ctx_user / 256) * 256)
    n_ctx_seq = n_ctx
    notes.append(f"context: n_ctx {n_ctx_user} padded to a multiple of 256 = {n_ctx} "
                 f"({where(ctx_cpp, 'cparams.n_ctx = GGML_PAD(cparams.n_ctx, 256);')}), n_ctx_seq = n_ctx (one sequence)")
    freq_base = f32(base_train)
    freq_scale = scale_train
    stype = scaling
    if stype == "none":
        freq_scale = f32(1.0)
    ext_factor = yarn["ext_factor"]
    if ext_factor < 0:
        ext_factor = f32(1.0) if stype == "yarn" else f32(0.0)
    attn_factor = yarn["attn_factor"]
    if ext_factor != 0:
        def get_mscale(scale, mscale):
            return f32(1.0) if scale <= f32(1.0) else f32(f32(f32(f32(0.1) * f32(mscale)) * logf(scale)) + f32(1.0))
        fac = f32(f32(1.0) / freq_scale)
        if yarn_log_mul != 0:
            mscale = f32(1.0)
            if enum == "LLM_ARCH_DEEPSEEK2" and yarn_log_mul != f32(1.0):
                mscale = yarn_log_mul
            attn_factor = f32(get_mscale(fac, mscale) / get_mscale(fac, yarn_log_mul))
        else:
            attn_factor = get_mscale(fac, f32(1.0))
        attn_factor = f32(attn_factor * f32(f32(1.0) / f32(f32(1.0) + f32(f32(0.1) * logf(fac)))))
        notes.append(f"yarn_attn_factor recomputed from the scale factor, whatever rope.scaling.yarn_attn_factor says "
                     f"({where(ctx_cpp, 'if (cparams.yarn_ext_factor != 0) {')}), then divided by 1+0.1 ln(factor) "
                     f"because the kernel multiplies it back ({where(ctx_cpp, 'cparams.yarn_attn_factor *= 1.0f / (1.0f + 0.1f * logf(factor));')})")
    attn_factor = f32(attn_factor * rope_attn_factor)
    n_ctx_orig = n_ctx_orig_yarn

    if swa_layer:
        freq_base, freq_scale = base_swa, scale_swa
    n_rot = n_rot_swa if swa_layer else n_rot_full

    # frequency factors the graph passes
    factors, factors_name = None, None
    if "get_rope_factors(" in src_text:
        if "rope_freqs.weight" in tensors:
            factors, factors_name = tensors["rope_freqs.weight"], "rope_freqs.weight"
        elif "rope_factors_long.weight" in tensors:
            long_ = n_ctx_seq > n_ctx_orig_yarn
            factors_name = "rope_factors_long.weight" if long_ else "rope_factors_short.weight"
            factors = tensors.get(factors_name)
            notes.append(f"LongRoPE factors chosen by the allocated context: n_ctx_seq {n_ctx_seq} "
                         f"{'>' if long_ else '<='} n_ctx_orig_yarn {n_ctx_orig_yarn} -> {factors_name} for every "
                         f"sequence ({where(model_cpp, 'if (n_ctx_seq > hparams.n_ctx_orig_yarn) {')})")
        if "rope_factors_long.weight" in tensors:
            notes.append("the factor list is fixed when the context is created: a short prompt in a context "
                         f"allocated above {n_ctx_orig_yarn} tokens also runs with the long factors (transformers "
                         "switches per forward on the sequence length)")
        notes.append(f"{rel(src)} passes model.get_rope_factors(cparams, il) to ggml_rope_ext "
                     f"({where(src, 'get_rope_factors(')})")
    elif "layers[il].rope_freqs" in src_text:
        if not swa_layer and "rope_freqs.weight" in tensors:
            factors, factors_name = tensors["rope_freqs.weight"], "rope_freqs.weight"
        notes.append(f"{rel(src)} passes layers[il].rope_freqs on full-attention layers only "
                     f"({where(src, 'layers[il].rope_freqs')})")
    else:
        present = [k for k in tensors if k.startswith("rope_")]
        if present:
            notes.append(f"{', '.join(present)} in the file but {rel(src)} passes no frequency factors")

    # softmax scale
    softmax_factor = 1.0
    if "const float kq_scale = 1.0f * mscale * mscale / sqrtf(float(n_embd_head_k));" in src_text:
        attn_factor_org = f32(attn_factor * f32(f32(1.0) + f32(f32(0.1) * logf(f32(f32(1.0) / freq_scale)))))
        ms = f32(attn_factor_org * f32(f32(1.0) + f32(f32(f32(0.1) * yarn_log_mul) * logf(f32(f32(1.0) / freq_scale)))))
        softmax_factor = float(f32(ms * ms))
        notes.append(f"{arch}: kq_scale = mscale^2 / sqrt(head_k) with mscale = attn_factor_org * (1 + 0.1 * "
                     f"yarn_log_mul * ln(1/freq_scale)) ({where(src, 'const float kq_scale = 1.0f * mscale * mscale')}) "
                     f"= {softmax_factor!r} x 1/sqrt(head_k)")

    return {
        "arch": arch, "arch_enum": enum, "arch_source": rel(src) if src else None,
        "n_ctx": n_ctx, "n_ctx_seq": n_ctx_seq, "n_ctx_train": n_ctx_train,
        "n_rot": n_rot, "head_dim": head_k, "mode": mode, "mode_name": mode_name,
        "n_ctx_orig": n_ctx_orig, "freq_base": float(freq_base), "freq_scale": float(freq_scale),
        "ext_factor": float(ext_factor), "attn_factor": float(attn_factor),
        "beta_fast": float(yarn["beta_fast"]), "beta_slow": float(yarn["beta_slow"]),
        "rope_scaling_type": stype, "rope_attn_factor": float(rope_attn_factor),
        "rope_yarn_log_mul": float(yarn_log_mul), "swa_layer": swa_layer,
        "freq_factors_tensor": factors_name, "freq_factors": None if factors is None else f32list(factors),
        "softmax_scale_factor": softmax_factor,
    }, notes


# ---------------------------------------------------------------------------------------------
# Stage 3: the kernel and its f32 transcription
# ---------------------------------------------------------------------------------------------

OPS = "ggml/src/ggml-cpu/ops.cpp"


def kernel_angles(p, lp, corr):
    """theta per pair at position p and the magnitude factor, transcribing ggml_rope_cache_init /
    rope_yarn (ops.cpp) in f32: theta starts at p and is multiplied by theta_scale = powf(base,
    -2/n_dims) after each pair."""
    n_dims = lp["n_rot"]
    theta_scale = powf(lp["freq_base"], f32(-2.0) / f32(n_dims))
    ff = lp["freq_factors"]
    fs, ext = f32(lp["freq_scale"]), f32(lp["ext_factor"])
    theta = f32(p)
    out = []
    mscale = f32(lp["attn_factor"])
    ms = mscale
    for i0 in range(0, n_dims, 2):
        extrap = f32(theta / f32(ff[i0 // 2])) if ff is not None else theta
        interp = f32(fs * extrap)
        t = interp
        ms = mscale
        if ext != 0:
            y = f32(f32(i0 // 2) - f32(corr[0])) / max(f32(0.001), f32(f32(corr[1]) - f32(corr[0])))
            ramp = f32(1) - min(f32(1), max(f32(0), f32(y)))
            mix = f32(ramp * ext)
            # theta_interp * (1 - ramp_mix) + theta_extrap * ramp_mix: GCC contracts it (its default
            # -ffp-contract=fast, FMA-capable x86-64 target) into one fma with the second product
            # rounded first; the plain f32 sum differs from the kernel by an ulp on a few pairs.
            t = fma(interp, f32(f32(1) - mix), f32(extrap * mix))
            ms = f32(mscale * f32(f32(1.0) + f32(f32(0.1) * logf(f32(f32(1.0) / fs)))))
        out.append(t)
        theta = f32(theta * theta_scale)
    return np.array(out, dtype=np.float32), ms


def evaluate_rope(lp, positions, notes):
    g = ggml()
    corr = g.corr_dims(lp["n_rot"], lp["n_ctx_orig"], lp["freq_base"], lp["beta_fast"], lp["beta_slow"])
    cos, sin = g.rope(positions, lp["n_rot"], lp["mode"], lp["n_ctx_orig"], lp["freq_base"], lp["freq_scale"],
                      lp["ext_factor"], lp["attn_factor"], lp["beta_fast"], lp["beta_slow"], lp["freq_factors"])
    # transcription check, position by position
    exact = True
    for k, p in enumerate(positions):
        th, ms = kernel_angles(p, lp, corr)
        c = np.array([f32(cosf(t) * ms) for t in th], dtype=np.float32)
        s = np.array([f32(sinf(t) * ms) for t in th], dtype=np.float32)
        if not (np.array_equal(c, cos[k]) and np.array_equal(s, sin[k])):
            exact = False
    per_token, ms1 = kernel_angles(1, lp, corr)
    notes.append(f"cos/sin from ggml_rope_ext run on the CPU backend ({where(OPS, 'static void ggml_compute_forward_rope_flt(')}); "
                 f"theta_scale = powf(freq_base, -2/n_dims) ({where(OPS, 'const float theta_scale = powf(freq_base, -2.0f/n_dims);')}), "
                 f"theta *= theta_scale per pair from theta = p ({where(OPS, 'theta *= theta_scale;')}), theta/freq_factor, "
                 f"YaRN ramp and mscale in rope_yarn ({where(OPS, 'static void rope_yarn(')}); the worker's f32 "
                 f"transcription matches the kernel bit for bit at every position: {exact}")
    notes.append("inv_freq is the kernel's angle at position 1; at position p the kernel recomputes the "
                 "recurrence from theta = p, so p * inv_freq differs from its angle by the f32 rounding of the chain")
    return cos, sin, per_token, float(ms1), corr, exact


# ---------------------------------------------------------------------------------------------
# Check of the loader transcription on a tiny model of the same rope section
# ---------------------------------------------------------------------------------------------

class GgmlTensor(ctypes.Structure):
    """struct ggml_tensor of ggml/include/ggml.h (GGML_MAX_DIMS 4, GGML_MAX_OP_PARAMS 64, GGML_MAX_SRC 10,
    GGML_MAX_NAME 64)."""
    pass


GgmlTensor._fields_ = [
    ("type", ctypes.c_int), ("buffer", ctypes.c_void_p), ("ne", ctypes.c_int64 * 4), ("nb", ctypes.c_size_t * 4),
    ("op", ctypes.c_int), ("op_params", ctypes.c_int32 * 16), ("flags", ctypes.c_int32),
    ("src", ctypes.POINTER(GgmlTensor) * 10), ("view_src", ctypes.c_void_p), ("view_offs", ctypes.c_size_t),
    ("data", ctypes.c_void_p), ("name", ctypes.c_char * 64), ("extra", ctypes.c_void_p), ("padding", ctypes.c_char * 8),
]

TINY_SIZES = {  # non-RoPE sizes of the tiny model; head size, rotary part and rope section are kept
    "num_attention_heads": 2, "num_key_value_heads": 2, "intermediate_size": 32, "vocab_size": 64,
    "moe_intermediate_size": 16, "n_routed_experts": 4, "num_experts": 4, "num_local_experts": 4,
    "num_experts_per_tok": 2, "experts_per_token": 2, "n_shared_experts": 1, "first_k_dense_replace": 1,
    "n_group": 1, "topk_group": 1, "q_lora_rank": 32, "kv_lora_rank": 32, "qk_nope_head_dim": 16,
    "v_head_dim": 16, "shared_expert_intermediate_size": 16, "linear_num_key_heads": 2,
    "linear_num_value_heads": 2, "linear_key_head_dim": 16, "linear_value_head_dim": 16,
    "decoder_sparse_step": 1, "moe_layer_freq": 1,
}


def tiny_config(cfg, n_layers):
    """The config with the RoPE fields kept and every other size made small."""
    c = json.loads(json.dumps(cfg))
    if isinstance(c.get("text_config"), dict) and "rope_theta" not in c and "rope_parameters" not in c:
        t = c["text_config"]
        t.setdefault("model_type", (c.get("model_type") or "") + "_text")
        arch = (c.get("architectures") or [""])[0].replace("ForConditionalGeneration", "ForCausalLM")
        c = dict(t, architectures=[arch])
    if c.get("head_dim") is None and not (c.get("hidden_size") and c.get("num_attention_heads")):
        c["head_dim"] = 256  # a sparse Gemma 3 text config: Gemma3TextConfig's default, as the converter's
    head_dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    c["pad_token_id"], c["bos_token_id"], c["eos_token_id"] = 0, 1, 1
    c.setdefault("rms_norm_eps", 1e-6)
    if str(c.get("model_type", "")).startswith("deepseek"):
        # DeepSeek-V2-Lite's q without LoRA is recognised by its layer count (27); n_group <= experts
        c.update(q_lora_rank=32, n_routed_experts=4, num_experts_per_tok=2, n_group=1, topk_group=1)
    for k, v in TINY_SIZES.items():
        if k in c and c[k] is not None:
            c[k] = v
    c["num_attention_heads"], c["num_key_value_heads"] = 2, 2
    if "head_dim" not in c:
        c["hidden_size"] = 2 * head_dim
    else:
        c["hidden_size"] = min(c.get("hidden_size", 128), 256)
    c["num_hidden_layers"] = n_layers
    c["vocab_size"] = 64
    c["intermediate_size"] = 4 * c["hidden_size"]  # Phi-2's converter writes 4 * n_embd as n_ff
    for k in ("layer_types", "mlp_only_layers"):
        if isinstance(c.get(k), list) and k == "layer_types":
            c[k] = c[k][:n_layers]
    c.pop("quantization_config", None)
    c["torch_dtype"] = "float32"
    return c


def write_tiny_model(cfg, d):
    """Random float32 weights of the tiny config, saved by transformers, config.json as given."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    # weights do not depend on the rope section: the model is built without it (transformers 4.57
    # refuses some sections the converter reads, e.g. vLLM's types), config.json keeps it
    body = {k: v for k, v in cfg.items() if not k.startswith("_") and k not in ("rope_scaling", "rope_parameters")}
    mt = body.pop("model_type")
    conf = AutoConfig.for_model(mt, **body)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(conf, torch_dtype=torch.float32)
    model.save_pretrained(d, safe_serialization=True)
    (Path(d) / "config.json").write_text(json.dumps(cfg))
    n = int(cfg.get("vocab_size") or 64)  # some converters count the vocabulary from tokenizer.json
    (Path(d) / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {f"<t{i}>": i for i in range(n)}},
                                                        "added_tokens": []}))


def convert_with_weights(d, out):
    """The converter on a model directory with weights; the vocabulary is a plain token list."""
    conv = converter()
    import gguf
    from conversion import ModelBase, ModelType, get_model_class
    with contextlib.redirect_stdout(sys.stderr):
        hparams = ModelBase.load_hparams(Path(d), False)
        cls = get_model_class(conv.get_model_architecture(hparams, ModelType.TEXT))
        mtp = getattr(cls, "supports_mtp_export", False)
        if mtp:
            cls.no_mtp = True  # as --no-nextn
        try:
            model = cls(Path(d), gguf.LlamaFileType.ALL_F32, Path(out), eager=True)
        finally:
            if mtp:
                del cls.no_mtp
        n_vocab = int(hparams.get("vocab_size") or 64)

        def set_vocab():
            w = model.gguf_writer
            w.add_tokenizer_model("llama")
            w.add_token_list([f"<t{i}>" for i in range(n_vocab)])
            w.add_token_scores([0.0] * n_vocab)
            w.add_token_types([1] * n_vocab)
        model.set_vocab = set_vocab
        model.write()


def run_llama_cpp(gguf_path, n_ctx, layer):
    """Load the GGUF with libllama, decode one token, and read the graph's rope and softmax nodes."""
    import llama_cpp as lc
    g = ggml()
    g.base.ggml_op_desc.restype = ctypes.c_char_p
    g.base.ggml_op_desc.argtypes = [ctypes.c_void_p]
    seen = {"rope": [], "softmax": []}

    @lc.ggml_backend_sched_eval_callback
    def cb(t, ask, user):
        op = g.base.ggml_op_desc(t)
        if op not in (b"ROPE", b"SOFT_MAX", b"FLASH_ATTN_EXT"):
            return not ask  # observe only rope and attention nodes
        if ask:
            return True
        T = ctypes.cast(t, ctypes.POINTER(GgmlTensor)).contents
        name = T.name.decode(errors="replace")
        if op == b"ROPE":
            pr = list(T.op_params)
            fl = [float(np.frombuffer(np.int32(v).tobytes(), dtype=np.float32)[0]) for v in pr[5:11]]
            factors = None
            if T.src[2]:
                ff = T.src[2].contents
                n = int(ff.ne[0])
                factors = f32list(np.ctypeslib.as_array(ctypes.cast(ff.data, ctypes.POINTER(ctypes.c_float)), (n,)))
            seen["rope"].append({"name": name, "n_dims": pr[1], "mode": pr[2], "n_ctx_orig": pr[4],
                                 "freq_base": fl[0], "freq_scale": fl[1], "ext_factor": fl[2],
                                 "attn_factor": fl[3], "beta_fast": fl[4], "beta_slow": fl[5],
                                 "freq_factors": factors})
        else:
            seen["softmax"].append({"name": name, "op": op.decode(),
                                    "scale": float(np.frombuffer(np.int32(T.op_params[0]).tobytes(), dtype=np.float32)[0])})
        return True

    lc.llama_backend_init()
    mp = lc.llama_model_default_params()
    model = lc.llama_model_load_from_file(str(gguf_path).encode(), mp)
    if not model:
        raise RuntimeError("llama_model_load_from_file failed")
    try:
        cp = lc.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = n_ctx, 1, 1, 1
        cp.n_threads = cp.n_threads_batch = 1
        cp.cb_eval, cp.cb_eval_user_data = cb, None
        cp.no_perf = True
        ctx = lc.llama_init_from_model(model, cp)
        if not ctx:
            raise RuntimeError("llama_init_from_model failed")
        try:
            tok = (lc.llama_token * 1)(1)
            rc = lc.llama_decode(ctx, lc.llama_batch_get_one(tok, 1))
            if rc != 0:
                raise RuntimeError(f"llama_decode returned {rc}")
        finally:
            lc.llama_free(ctx)
    finally:
        lc.llama_model_free(model)
    ropes = [r for r in seen["rope"] if r["name"].endswith(f"-{layer}")]
    return ropes, seen["softmax"]


_TINY = {}


def _remove_tiny_models():
    import shutil
    for path in _TINY.values():
        shutil.rmtree(Path(path).parent, ignore_errors=True)


import atexit  # noqa: E402
atexit.register(_remove_tiny_models)


def loader_check(cfg, meta, request, lp):
    """Compare loader_params with the ggml_rope_ext arguments llama.cpp itself builds for a tiny model
    that keeps the config's rope section and head size."""
    layer_type = request.get("layer_type")
    arch = meta["general.architecture"]
    pattern = mget(meta, arch, "attention.sliding_window_pattern", None)
    swa = [((i % 6) < 5) if arch == "gemma3" else ((i % 2) < 1) for i in range(8)] if pattern is None else \
        [bool(v) for v in pattern] if isinstance(pattern, list) else [(i % int(pattern)) < int(pattern) - 1 for i in range(8)]
    layer = 0
    if lp["swa_layer"]:
        layer = next(i for i, v in enumerate(swa) if v)
    elif mget(meta, arch, "attention.sliding_window", None) is not None and arch in ("gemma3", "gemma4", "gpt-oss"):
        layer = next(i for i, v in enumerate(swa) if not v)
    n_layers = max(layer + 1, 2 if arch in ("deepseek2",) else 1)
    if arch == "qwen3next":
        n_layers = 4
        layer = 3
    key = (json.dumps(cfg, sort_keys=True), n_layers)
    try:
        if key not in _TINY:
            d = tempfile.mkdtemp(prefix="tiny-")
            _TINY[key] = Path(d) / "tiny.gguf"
            tiny = tiny_config(cfg, n_layers)
            write_tiny_model(tiny, d)
            convert_with_weights(d, Path(d) / "tiny.gguf")
        proc = subprocess.run([sys.executable, __file__, "_graph-args", str(_TINY[key]), str(request["context"]),
                               str(layer)], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(HERE)))
        if proc.returncode != 0:
            tail = [l for l in proc.stderr.splitlines() if "error" in l.lower() or "GGML_ASSERT" in l or "failed" in l]
            raise RuntimeError(f"libllama exited with {proc.returncode}: {(tail[-1] if tail else '').strip()[:200]}")
        ropes, softmax = json.loads(proc.stdout.strip().splitlines()[-1])
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else ""
        if "Unrecognized model identifier" in msg:
            import transformers
            msg = (f"transformers {transformers.__version__} (the converter's pin) has no model class for "
                   f"{tiny_config(cfg, 1).get('model_type')!r} to make the weights")
        return {"ran": False, "why": f"tiny model of this config not built or not loaded: {type(e).__name__}: {msg[:200]}"}
    if not ropes:
        return {"ran": False, "why": f"no ROPE node named *-{layer} in the graph"}
    r = ropes[0]
    want = {"n_dims": lp["n_rot"], "mode": lp["mode"], "n_ctx_orig": lp["n_ctx_orig"], "freq_base": lp["freq_base"],
            "freq_scale": lp["freq_scale"], "ext_factor": lp["ext_factor"], "attn_factor": lp["attn_factor"],
            "beta_fast": lp["beta_fast"], "beta_slow": lp["beta_slow"], "freq_factors": lp["freq_factors"]}
    diff = {k: {"llama.cpp": r[k], "transcribed": v} for k, v in want.items() if r[k] != v}
    return {"ran": True, "layer": layer, "rope_node": r["name"],
            "how": "random-weight model with the config's rope section and head size, two heads, "
                   f"{n_layers} layer(s); converted with the converter, loaded with libllama at n_ctx "
                   f"{request['context']}, one token decoded; ggml_rope_ext arguments read from the graph",
            "matches": not diff, "differences": diff,
            "softmax_scale": softmax[0]["scale"] if softmax else None}


# ---------------------------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------------------------

ROPE_KEYS = ("rope.", "context_length", "attention.key_length", "attention.head_count", "attention.sliding_window",
             "embedding_length")


def rope_metadata(meta):
    arch = meta.get("general.architecture")
    out = {"general.architecture": arch}
    for k, v in meta.items():
        if arch and k.startswith(arch + ".") and any(k[len(arch) + 1:].startswith(r) for r in ROPE_KEYS):
            if isinstance(v, (float, np.floating)):
                v = float(f32(v))
            elif isinstance(v, list):
                v = [float(f32(x)) if isinstance(x, float) else x for x in v]
            out[k] = v
    return out


def converter_notes(cfg, meta, tensors):
    """What the converter dropped or rewrote, read off its output."""
    notes = []
    t = cfg.get("text_config", cfg) if "rope_theta" not in cfg and "rope_parameters" not in cfg else cfg
    sec = t.get("rope_scaling") or t.get("rope_parameters") or {}
    if sec and all(isinstance(v, dict) for v in sec.values()):
        sec = sec.get("full_attention") or next(iter(sec.values()))
    rtype = sec.get("rope_type") or sec.get("type")
    arch = meta["general.architecture"]
    written = meta.get(f"{arch}.rope.scaling.type")
    base = where("conversion/base.py", 'rope_params = self.rope_parameters.get("full_attention", self.rope_parameters)')
    if rtype == "llama3" and "rope_freqs.weight" not in tensors:
        notes.append(f"llama3 scaling dropped: the {arch} converter class writes no rope_freqs tensor and base.py "
                     f"writes no scaling type for llama3 ({where('conversion/base.py', 'elif rope_type.lower() == ')})")
    DYN_REF = where("conversion/base.py", 'elif rope_type == "dynamic":')
    if rtype == "dynamic" and sec.get("alpha") is None:
        notes.append(f"dynamic NTK: the converter writes no dynamic scaling ({DYN_REF}); "
                     "llama.cpp has no dynamic NTK, the file runs as plain RoPE at every context")
    if rtype == "yarn":
        if "attention_factor" in sec:
            notes.append(f"YaRN attention_factor {sec['attention_factor']!r} written as rope.scaling.yarn_attn_factor "
                         f"({where('conversion/base.py', 'add_rope_scaling_yarn_attn_factor(yarn_attn_factor)')}) only")
        if sec.get("truncate") is False:
            notes.append("truncate: false is not written; ggml_rope_yarn_corr_dims always floors/ceils "
                         f"({where('ggml/src/ggml.c', 'float start = floorf(ggml_rope_yarn_corr_dim(')})")
        if "mscale" in sec or "mscale_all_dim" in sec:
            notes.append(f"mscale {sec.get('mscale')!r} / mscale_all_dim {sec.get('mscale_all_dim')!r} in the config; "
                         f"generic base.py writes neither ({where('conversion/base.py', '# self.gguf_writer.add_rope_scaling_yarn_log_mul')})")
    if rtype in ("longrope", "su"):
        ignored = [k for k in ("factor", "attention_factor") if k in sec]
        notes.append("LongRoPE attention factor written as rope.scaling.attn_factor = sqrt(1 + ln(s)/ln(orig)) with "
                     f"s = max_position_embeddings / original ({where('conversion/phi.py', 'attn_factor = math.sqrt(1 + math.log(scale) / math.log(orig_max_pos_embds))')})"
                     + (f"; the config's {', '.join(ignored)} not read" if ignored else ""))
    if rtype and written is None and rtype not in ("default", "llama3", "dynamic", "longrope", "su") \
            and not (rtype == "proportional" and "rope_freqs.weight" in tensors):
        notes.append(f"rope type {rtype!r} in the config, no rope.scaling.type written ({base})")
    return notes


_CONVERTED = {}  # config.json text -> converter output (contexts of a case share one conversion)


def run_request(request):
    from protocol import base_entry, load_request_config, refusal, unsupported
    cfg = load_request_config(request["config"])
    positions = list(request["positions"])
    entry0 = base_entry(request)
    notes = []
    key = json.dumps(cfg, sort_keys=True)
    if key not in _CONVERTED:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "model.gguf"
            try:
                arch_cls, cls, conv_notes = convert(cfg, path)
                meta, tensors, names = read_gguf(path)
                _CONVERTED[key] = (arch_cls, cls, conv_notes, meta, tensors, names)
            except Exception as e:
                _CONVERTED[key] = e
    got = _CONVERTED[key]
    if isinstance(got, Exception):
        return unsupported(request, f"convert_hf_to_gguf.py cannot convert this config: {refusal(got)}",
                           runs_instead=None,
                           notes=["converter run on config.json only (no weights); "
                                  f"{where('conversion/__init__.py', 'def get_model_class')}"])
    arch_cls, cls, conv_notes, meta, tensors, names = got
    notes.append(f"converter: {cls.__module__}.{cls.__name__} for {arch_cls} "
                 f"({where(Path(sys.modules[cls.__module__].__file__), 'class ' + cls.__name__)}), run on config.json "
                 "with one placeholder norm tensor and no tokenizer; GGUF read back with gguf.GGUFReader")
    notes += conv_notes
    notes += converter_notes(cfg, meta, tensors)
    try:
        lp, lnotes = loader_params(meta, tensors, request.get("layer_type"), int(request["context"]))
    except Exception as e:
        return unsupported(request, f"llama.cpp cannot load this GGUF: {refusal(e)}", notes=notes)
    notes += lnotes
    if lp["mode"] < 0:
        return unsupported(request, f"{lp['arch_enum']} uses no RoPE in llama.cpp", notes=notes)
    cos, sin, per_token, ms1, corr, exact = evaluate_rope(lp, positions, notes)
    check = loader_check(cfg, meta, request, lp) if os.environ.get("LLAMACPP_LOADER_CHECK", "1") != "0" else \
        {"ran": False, "why": "LLAMACPP_LOADER_CHECK=0"}
    supported, reason, runs_instead = True, None, None
    t = cfg.get("text_config", cfg) if "rope_theta" not in cfg and "rope_parameters" not in cfg else cfg
    sec = t.get("rope_scaling") or t.get("rope_parameters") or {}
    if sec and all(isinstance(v, dict) for v in sec.values()):
        sec = (sec.get(request.get("layer_type") or "full_attention") or next(iter(sec.values())))
    rtype = sec.get("rope_type") or sec.get("type") or "default"
    if request.get("layer_type") == "sliding_attention" and "gemma3" in str(t.get("model_type", cfg.get("model_type"))) \
            and "sliding_attention" not in (t.get("rope_parameters") or {}):
        rtype = "default"
    ran = {"none": "default", "linear": "linear" if lp["freq_scale"] != 1.0 else "default",
           "yarn": "yarn", "longrope": "longrope"}.get(lp["rope_scaling_type"], lp["rope_scaling_type"])
    if lp["swa_layer"]:
        ran = "linear" if lp["freq_scale"] != 1.0 else "default"
    if lp["freq_factors_tensor"] == "rope_freqs.weight" and rtype in ("llama3", "proportional"):
        ran = rtype
    if lp["freq_factors_tensor"] in ("rope_factors_long.weight", "rope_factors_short.weight"):
        ran = "longrope"
    want = {"su": "longrope"}.get(rtype, rtype)
    if want == "dynamic" and sec.get("alpha") is not None and "hunyuan" in str(t.get("model_type", "")):
        # HunYuan: dynamic + alpha is a static stretch of the base (transformers' ntk_alpha)
        want = "ntk_alpha"
        theta = sec.get("rope_theta", t.get("rope_theta", 10000.0))
        if lp["freq_base"] != float(f32(theta)):
            ran = "ntk_alpha"
            notes.append(f"alpha {sec['alpha']!r} folded into the base by the converter: freq_base "
                         f"{lp['freq_base']!r} = rope_theta * alpha^(d/(d-2)) "
                         f"({where(Path(sys.modules[cls.__module__].__file__), 'add_rope_freq_base(scaled_base)', 'class ' + cls.__name__ + '(')})")
    if want != ran:
        supported = False
        reason = (f"rope type {want!r} in the config; the converted GGUF runs {ran!r} in llama.cpp "
                  f"(rope.scaling.type {lp['rope_scaling_type']!r}, freq_scale {lp['freq_scale']!r}, "
                  f"factors {lp['freq_factors_tensor']})")
        runs_instead = (f"ggml_rope_ext(mode {lp['mode']}, freq_base {lp['freq_base']}, freq_scale {lp['freq_scale']}, "
                        f"ext_factor {lp['ext_factor']}, factors {lp['freq_factors_tensor']})")
    ff = lp["freq_factors"]
    if ff is not None and max(ff) >= 1e29:
        notes.append(f"{lp['freq_factors_tensor']} holds {max(ff):.3g} on {sum(1 for v in ff if v >= 1e29)} pairs: "
                     "the kernel divides their angle by it (theta/freq_factor), so they turn by ~1e-30 rad per "
                     "token instead of exactly 0")
    if any(p >= lp["n_ctx"] for p in positions):
        notes.append(f"positions at or past n_ctx {lp['n_ctx']} cannot occur in this context; evaluated for comparison")
    cs = ms1
    entry = dict(
        entry0,
        supported=supported,
        reason=reason,
        runs_instead=runs_instead,
        rope_class=f"ggml_rope_ext mode {lp['mode']} ({lp['mode_name']})",
        rope_type=lp["rope_scaling_type"],
        inv_freq=f32list(per_token),
        attention_factor=float(f32(cs)),
        attention_factor_applied_to="cos_sin" if cs != 1.0 else "none",
        cos_sin_scale=float(f32(cs)),
        softmax_scale_factor=lp["softmax_scale_factor"],
        is_neox_style=lp["mode"] != 0,
        pair_layout="interleaved" if lp["mode"] == 0 else "half-split",
        rotary_dim=lp["n_rot"],
        dtype="float32",
        positions=positions,
        cos=[f32list(r) for r in cos],
        sin=[f32list(r) for r in sin],
        gguf_metadata=rope_metadata(meta),
        gguf_tensors={k: f32list(v) for k, v in tensors.items()},
        loader=lp,
        corr_dims=corr,
        kernel_transcription_bitexact=exact,
        loader_check=check,
        notes=notes,
    )
    if lp["mode"] == 0 and lp["arch_enum"] in ("LLM_ARCH_LLAMA",):
        entry["notes"].append("llama: normal (interleaved) rope on q/k rows that the converter permuted "
                              f"({where('conversion/llama.py', 'def permute(')}): the same rotation as "
                              "transformers' half-split on the original weights")
    return entry


# ---------------------------------------------------------------------------------------------
# Modes
# ---------------------------------------------------------------------------------------------

def versions():
    v = {}
    for dist in ("llama-cpp-python", "gguf", "torch", "transformers", "numpy"):
        try:
            v[dist] = md.version(dist)
        except md.PackageNotFoundError:
            v[dist] = None
    return v


def vendored_commit():
    """The llama.cpp commit the sdist vendors, from its CHANGELOG's latest 'update llama.cpp to' line."""
    log = LLAMA.parents[1] / "CHANGELOG.md"
    if log.exists():
        m = re.search(r"update llama\.cpp to (ggml-org/llama\.cpp@[0-9a-f]+)", log.read_text())
        if m:
            return m.group(1)
    return None


def header():
    v = versions()
    gg = ggml()
    return {
        "stack": "llama.cpp",
        "version": f"llama-cpp-python {v['llama-cpp-python']} (llama.cpp {vendored_commit()})",
        "packages": v,
        "ggml_lib": "site-packages/" + os.path.relpath(gg.dir, str(Path(gg.dir).parents[1])) if "site-packages" in gg.dir else gg.dir,
        "llama_cpp_source": f"llama-cpp-python {LLAMA_CPP_PYTHON} sdist, vendor/llama.cpp",
        "llama_cpp_commit": vendored_commit(),
        "ran": {
            "converter": {"ran": True, "how": "convert_hf_to_gguf.py's model class for the config's architecture "
                          "(prepare_tensors with generate_extra_tensors, set_gguf_parameters, write) on config.json "
                          "with one placeholder tensor and no tokenizer; GGUF read back with gguf.GGUFReader"},
            "loader": {"ran": True,
                       "how": "transcribed in loader_params (file:line per entry in its notes): src/llama-model.cpp "
                              "load_hparams, src/models/<arch>.cpp, src/llama-context.cpp cparams, src/llama-graph.cpp; "
                              "and checked per entry (loader_check) against libllama itself: a random-weight model "
                              "with the config's rope section and head size, converted with the converter, loaded "
                              "at the entry's n_ctx, one token decoded, the ggml_rope_ext arguments (n_dims, mode, "
                              "n_ctx_orig, freq_base, freq_scale, ext_factor, attn_factor, beta_fast, beta_slow, "
                              "freq factors) read from the graph's ROPE node and compared bit for bit",
                       "not_run": "the full-size model (needs its weights); where no tiny model can be built "
                                  "(loader_check.ran false, with the reason) the entry rests on the transcription"},
            "kernel": {"ran": True, "how": "ggml_rope_ext from the installed libggml-base/libggml-cpu through "
                       "ctypes (CPU backend); the worker's f32 transcription is checked bit for bit per entry"},
        },
    }


def evaluate(request):
    return run_request(request)


def requests_from_cases():
    import cases as cases_mod
    out = []
    for c in cases_mod.CASES:
        pos = cases_mod.case_positions(c)
        for n in c["contexts"]:
            out.append({"id": c["id"], "config": c["config"], "layer_type": c["layer_type"], "context": n,
                        "positions": pos})
    return out


def write_fixture(path, doc):
    head = {k: v for k, v in doc.items() if k != "cases"}
    lines = json.dumps(head, indent=1)[:-2]
    body = ",\n".join(json.dumps(e) for e in doc["cases"])
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{lines},\n \"cases\": [\n{body}\n ]\n}}\n")
    os.replace(tmp, path)


def mode_convert(argv):
    ap = argparse.ArgumentParser(prog="llamacpp_worker.py convert")
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    cfg = json.loads(Path(a.config).read_text())
    out = Path(a.out)
    tmp = out.with_name(out.name + ".tmp")
    arch, cls, notes = convert(cfg, tmp)
    os.replace(tmp, out)
    meta, tensors, names = read_gguf(out)
    json.dump({"gguf": str(out), "converter_class": cls.__name__, "hf_architecture": arch,
               "gguf_metadata": rope_metadata(meta), "tensors": names,
               "gguf_tensors": {k: f32list(v) for k, v in tensors.items()}, "notes": notes}, sys.__stdout__, indent=1)
    print(file=sys.__stdout__)


def mode_rope_from_gguf(argv):
    ap = argparse.ArgumentParser(prog="llamacpp_worker.py rope-from-gguf")
    ap.add_argument("gguf")
    ap.add_argument("--positions", required=True)
    ap.add_argument("--context", type=int, help="n_ctx (default: the file's context_length)")
    ap.add_argument("--layer-type")
    a = ap.parse_args(argv)
    meta, tensors, names = read_gguf(a.gguf)
    arch = meta["general.architecture"]
    ctx = a.context or int(meta[f"{arch}.context_length"])
    lp, notes = loader_params(meta, tensors, a.layer_type, ctx)
    positions = [int(p) for p in a.positions.split(",")]
    cos, sin, per_token, ms1, corr, exact = evaluate_rope(lp, positions, notes)
    json.dump({"gguf": a.gguf, "context": ctx, "layer_type": a.layer_type, "positions": positions,
               "inv_freq": f32list(per_token), "cos_sin_scale": float(f32(ms1)),
               "pair_layout": "interleaved" if lp["mode"] == 0 else "half-split", "rotary_dim": lp["n_rot"],
               "cos": [f32list(r) for r in cos], "sin": [f32list(r) for r in sin],
               "gguf_metadata": rope_metadata(meta), "gguf_tensors": {k: f32list(v) for k, v in tensors.items()},
               "loader": lp, "corr_dims": corr, "kernel_transcription_bitexact": exact, "notes": notes},
              sys.__stdout__, indent=1)
    print(file=sys.__stdout__)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        from protocol import serve
        serve(header, evaluate)
        return 0
    if argv[0] == "convert":
        mode_convert(argv[1:])
        return 0
    if argv[0] == "_graph-args":  # internal: one libllama load in its own process (a GGML_ASSERT aborts)
        ropes, softmax = run_llama_cpp(argv[1], int(argv[2]), int(argv[3]))
        print(json.dumps([ropes, softmax]), file=sys.__stdout__)
        return 0
    if argv[0] == "rope-from-gguf":
        mode_rope_from_gguf(argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the fixture for every case of cases.py here")
    ap.add_argument("--config", help="single-config mode: one entry's JSON on stdout")
    ap.add_argument("--layer-type")
    ap.add_argument("--context", type=int)
    ap.add_argument("--positions")
    a = ap.parse_args(argv)
    if a.config:
        import cases as cases_mod
        cfg = json.loads(Path(a.config).read_text())
        L, max_pos = cases_mod.lengths(cfg, a.layer_type)
        positions = [int(p) for p in a.positions.split(",")] if a.positions else cases_mod.positions(L, max_pos)
        req = {"id": Path(a.config).stem, "config": str(Path(a.config).resolve()), "layer_type": a.layer_type,
               "context": a.context or max_pos, "positions": positions}
        json.dump(dict(header(), **run_request(req)), sys.__stdout__, indent=1)
        print(file=sys.__stdout__)
        return 0
    entries = []
    for r in requests_from_cases():
        print(f"case {r['id']} context {r['context']}", file=sys.stderr)
        entries.append(evaluate(r))
    doc = dict(header(), python=platform.python_version(),
               generated_by=shlex.join(["python", "scripts/stack_ref/llamacpp_worker.py", *argv]), cases=entries)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    write_fixture(Path(a.out), doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
