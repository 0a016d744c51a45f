"""ONNX Runtime inference for the dual encoder's towers, and the choice between it and torch.

A tower is exported once per encoder fingerprint (weights + configuration) together with its pooling and
normalisation, so one ONNX call returns the final embeddings. The export uses eager attention, so ONNX
Runtime's transformer optimiser can fuse the embeddings, attention, GELU and layer norms of BERT-family
towers into its contrib kernels; the fused graph is kept only if it reproduces the torch tower on a check
batch (otherwise the plain export is kept, and if that too differs the export fails). Files live under
``$SPART_CACHE/onnx/v1/<fingerprint>/<tower>.onnx`` and are written atomically, so a crash never leaves a
half-written model under a final name; a later load reuses them.

Backends (``DualEncoder(backend=...)`` and the embedders' ``backend`` init parameter):

- ``"torch"``: the torch forward pass (bf16 autocast where native, see :mod:`spart.encoders.precision`).
- ``"onnx"``: ONNX Runtime on the CPU, fp32. Needs the ``onnx`` extra (``pip install 'spart[onnx]'``).
- ``"auto"`` (default): torch on a GPU, where bf16 runs natively (precision resolved to bf16), and for an
  encoder that is being trained (any parameter requires grad: encodings must follow the live weights);
  otherwise, when ONNX Runtime is installed, whichever of torch fp32 and ONNX Runtime ran a synthetic batch
  faster on this machine. That micro-benchmark (a few seconds) runs once per machine, thread count, library
  versions and tower architecture, and its result is cached in ``$SPART_CACHE/onnx/backend-choice.json``.
  The embedders freeze their (inference-only) encoder, so ``auto`` applies to them.

Quantisation is not offered: int8 dynamic quantisation of MiniLM's linear layers gave a minimum cosine of
about 0.91 to the fp32 embeddings on wiki passages, far below the 0.999 a drop-in backend needs.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from spart import onnx_runtime
from spart.atomic import atomic_path, write_text_atomic
from spart.onnx_runtime import (
    eager_attention,
    export_traced,
    onnx_session,
    quiet_export,
    require_onnxruntime,
)

if TYPE_CHECKING:
    from spart.encoders.dual_encoder import DualEncoder

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
EXPORT_FORMAT = "v1"  # bump when the exported graph changes (inputs, pooling in the graph, opset...)
CHOICE_FILE = "backend-choice.json"
# The fused graph must reproduce the torch tower this closely on the check batch (fp32 reorderings only).
CHECK_ATOL = 1e-4
# A measured speed-up smaller than this keeps torch (the measurement is noisy on a shared machine).
MIN_GAIN = 1.05


def check_backend(backend: Any) -> str:
    """``backend`` if it is one of :data:`BACKENDS`; a ``ValueError`` naming the choices otherwise."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def onnx_root() -> Path:
    """``$SPART_CACHE/onnx`` (``~/.cache/spart/onnx`` without ``$SPART_CACHE``)."""
    from spart.evaluation.cache import cache_root

    return cache_root() / "onnx"


def weights_stamp(module: nn.Module) -> tuple:
    """Changes whenever a weight of ``module`` is modified in place or replaced (cheap: no data is read)."""
    return tuple((name, t.data_ptr(), t._version) for name, t in module.state_dict(keep_vars=True).items())


# ---------------------------------------------------------------------------------------- export
class _PooledTower(nn.Module):
    """One tower with the encoder's pooling and normalisation: ``(input_ids, attention_mask) -> embeddings``."""

    def __init__(self, encoder: DualEncoder, role: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.role = role

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # Zero segment ids, exactly as DualEncoder._encode feeds the torch tower.
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": torch.zeros_like(input_ids),
        }
        return self.encoder.embed(inputs, self.role)


def _check_batch(tokenizer: Any, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two padded rows of ordinary tokens (one shorter, so padding is exercised)."""
    generator = torch.Generator().manual_seed(0)
    low = min(1000, vocab // 2)
    ids = torch.randint(low, vocab, (2, 12), generator=generator)
    ids[:, 0] = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else ids[:, 0]
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    ids[1, 7:] = tokenizer.pad_token_id or 0
    return ids, mask


def _fuse(raw: Path, out: Path, config: Any) -> dict[str, int]:
    """ONNX Runtime's transformer optimiser (portable level-1 graph + BERT fusions) from ``raw`` to ``out``."""
    from onnxruntime.transformers.optimizer import optimize_model

    with quiet_export():
        model = optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
            hidden_size=int(getattr(config, "hidden_size", 0) or 0),
            opt_level=1,
        )
        model.save_model_to_file(str(out))
    return {k: v for k, v in model.get_fused_operator_statistics().items() if v}


def export_tower(encoder: DualEncoder, role: str, path: str | os.PathLike) -> Path:
    """Export ``encoder``'s ``role`` tower (with pooling and normalisation) to ``path``, atomically.

    :param encoder: an fp32 encoder on the CPU.
    :param role: ``"query"`` or ``"passage"``.
    :param path: the final ``.onnx`` file; its directory is created.
    :returns: ``path``.
    :raises ValueError: if the encoder is not fp32, or the export does not reproduce the torch tower.
    """
    require_onnxruntime()
    path = Path(path)
    tower = encoder.tower(role)
    dtypes = {p.dtype for p in tower.parameters()}
    if dtypes != {torch.float32}:
        raise ValueError(f"the ONNX export needs fp32 weights, the {role} tower has {sorted(map(str, dtypes))}")
    wrapper = _PooledTower(encoder, role).eval()
    ids, mask = _check_batch(encoder.tokenizer, int(tower.config.vocab_size))
    with torch.inference_mode():
        expected = wrapper(ids, mask).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{path.stem}.export-", dir=path.parent))
    was_training = encoder.training
    encoder.eval()
    try:
        raw = scratch / "raw.onnx"
        with eager_attention(tower):
            export_traced(
                wrapper,
                (ids, mask),
                raw,
                ["input_ids", "attention_mask"],
                ["embedding"],
                {
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "embedding": {0: "batch"},
                },
            )
        candidates = []
        fused = scratch / "fused.onnx"
        try:
            stats = _fuse(raw, fused, tower.config)
            candidates.append((fused, f"fused {stats}" if stats else "optimised"))
        except Exception as error:  # noqa: BLE001 - any optimiser failure leaves the plain export usable
            logger.warning("ONNX Runtime's transformer optimiser failed (%s); using the plain export", error)
        candidates.append((raw, "plain"))
        for candidate, label in candidates:
            got = onnx_session(candidate, threads=1).run(
                None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
            )[0]
            error = float(np.abs(got - expected).max())
            if error <= CHECK_ATOL:
                with atomic_path(path) as tmp:
                    shutil.copyfile(candidate, tmp)
                logger.info("exported the %s tower to %s (%s graph, max |diff| %.2g)", role, path, label, error)
                return path
            logger.warning("the %s ONNX graph differs from torch by %.3g; not used", label, error)
        raise ValueError(f"the ONNX export of the {role} tower does not reproduce the torch tower")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        encoder.train(was_training)


# ---------------------------------------------------------------------------------------- runtime
class OnnxTowers:
    """ONNX Runtime sessions of one encoder's towers (a single session when the tower is shared).

    Built by :func:`load_onnx_towers`; ``embed(role, input_ids, attention_mask)`` returns the same float32
    embeddings as ``DualEncoder.embed`` on those inputs.
    """

    def __init__(self, sessions: dict[str, Any], paths: dict[str, Path], stamp: tuple) -> None:
        self.sessions = sessions
        self.paths = paths
        self.stamp = stamp

    def embed(self, role: str, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {
            "input_ids": np.asarray(input_ids, dtype=np.int64),
            "attention_mask": np.asarray(attention_mask, dtype=np.int64),
        }
        return self.sessions[role].run(None, feed)[0]


def tower_files(encoder: DualEncoder, root: Path | None = None) -> dict[str, Path]:
    """Where the towers of ``encoder`` are (or will be) exported: ``{role: path}`` (one file if shared)."""
    folder = (root or onnx_root()) / EXPORT_FORMAT / encoder.fingerprint
    if encoder.config.shared:
        shared = folder / "shared.onnx"
        return {"query": shared, "passage": shared}
    return {role: folder / f"{role}.onnx" for role in ("query", "passage")}


def load_onnx_towers(encoder: DualEncoder, root: Path | None = None) -> OnnxTowers:
    """ONNX Runtime sessions for ``encoder``'s towers, exporting the ones not yet in the cache.

    :param encoder: an fp32 encoder on the CPU.
    :param root: the export cache (default ``$SPART_CACHE/onnx``).
    :returns: the sessions.
    """
    require_onnxruntime()
    stamp = weights_stamp(encoder)
    paths = tower_files(encoder, root)
    sessions: dict[Path, Any] = {}
    for role, path in paths.items():
        if path in sessions:
            continue
        if not path.is_file():
            export_tower(encoder, role, path)
        sessions[path] = onnx_session(path)
    return OnnxTowers({role: sessions[path] for role, path in paths.items()}, paths, stamp)


class BackendState:
    """An encoder's resolved backend and its ONNX sessions; resolved on first use, again when weights change.

    Pickling or copying an encoder drops this state (sessions cannot be copied); the copy resolves afresh.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.backend: str | None = None
        self.towers: OnnxTowers | None = None

    def resolve(self, encoder: DualEncoder) -> tuple[str, OnnxTowers | None]:
        """``(backend, towers)``: ``towers`` is set when the backend is ``"onnx"``."""
        with self._lock:
            stale = self.towers is not None and self.towers.stamp != weights_stamp(encoder)
            if self.backend is None or stale:
                if stale:
                    logger.info("the encoder's weights changed since the ONNX export; resolving the backend again")
                self.towers = None
                self.backend = resolve_backend(encoder)
                if self.backend == "onnx":
                    self.towers = load_onnx_towers(encoder)
            return self.backend, self.towers

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()


# ---------------------------------------------------------------------------------------- auto choice
def resolve_backend(encoder: DualEncoder) -> str:
    """The backend ``encoder`` encodes with: its ``backend`` unless that is ``"auto"`` (see the module doc)."""
    if encoder.backend != "auto":
        return encoder.backend
    if encoder.device.type != "cpu" or encoder.precision != "fp32":
        return "torch"
    if any(p.requires_grad for p in encoder.parameters()):
        return "torch"
    if not onnx_runtime.onnxruntime_available():
        return "torch"
    return measured_choice(encoder)


def machine_key(encoder: DualEncoder) -> str:
    """What the speed of a backend depends on: CPU, threads, library versions and the tower architecture."""
    import onnxruntime

    config = encoder.query_model.config
    arch = [
        getattr(config, k, None)
        for k in ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    ]
    parts = [
        _cpu_model(),
        torch.backends.cpu.get_cpu_capability(),
        f"threads={torch.get_num_threads()}",
        f"torch={torch.__version__}",
        f"onnxruntime={onnxruntime.__version__}",
        "arch=" + ",".join(map(str, arch)),
    ]
    return " | ".join(parts)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


_CHOICE_LOCK = threading.Lock()


def measured_choice(encoder: DualEncoder, root: Path | None = None, *, repeats: int = 5) -> str:
    """``"onnx"`` or ``"torch"``: the faster fp32 backend for this encoder's architecture on this machine.

    Measured once (a synthetic batch of 16 x 128 tokens, both backends alternating, best of ``repeats``)
    and cached in ``<root>/backend-choice.json`` under :func:`machine_key`. ONNX Runtime must be at least
    :data:`MIN_GAIN` times faster to be chosen.
    """
    root = root or onnx_root()
    file = root / CHOICE_FILE
    key = machine_key(encoder)
    with _CHOICE_LOCK:
        choices = _read_choices(file)
        if key in choices:
            return choices[key]["backend"]
        towers = load_onnx_towers(encoder, root)
        seconds = _race(encoder, towers, repeats)
        backend = "onnx" if seconds["torch"] >= MIN_GAIN * seconds["onnx"] else "torch"
        choices = _read_choices(file)  # another process may have written meanwhile
        choices[key] = {"backend": backend, "seconds": seconds}
        file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(file, json.dumps(choices, indent=2, sort_keys=True) + "\n")
        logger.info(
            "backend 'auto' chose %s (torch fp32 %.3f s, onnx %.3f s per batch)",
            backend,
            seconds["torch"],
            seconds["onnx"],
        )
        return backend


def _read_choices(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _race(encoder: DualEncoder, towers: OnnxTowers, repeats: int) -> dict[str, float]:
    vocab = int(encoder.query_model.config.vocab_size)
    ids = torch.randint(min(1000, vocab // 2), vocab, (16, 128), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    ids_np, mask_np = ids.numpy(), mask.numpy()
    runs = {
        "torch": lambda: encoder.embed(inputs, "passage"),
        "onnx": lambda: towers.embed("passage", ids_np, mask_np),
    }
    best = {name: float("inf") for name in runs}
    with torch.inference_mode():
        for run in runs.values():  # warm-up: lazy initialisation, kernel selection
            run()
        for _ in range(repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)
    return best
