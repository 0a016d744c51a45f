"""ONNX Runtime inference for the dual encoder's towers.

A tower is exported once per encoder fingerprint (weights + configuration) together with its pooling and
normalisation, so one ONNX call returns the final embeddings. The export uses eager attention, so ONNX
Runtime's transformer optimiser can fuse the embeddings, attention, GELU and layer norms of BERT-family
towers into its contrib kernels; the fused graph is kept only if it reproduces the torch tower on a check
batch (otherwise the plain export is kept, and if that too differs the export fails). Files live under
``$SPART_CACHE/onnx/v1/<fingerprint>/<tower>.onnx`` and are written atomically, so a crash never leaves a
half-written model under a final name; a later load reuses them.

Selected with ``backend="onnx"`` (needs the ``onnx`` extra: ``pip install 'spart[onnx]'``), or by ``"auto"``
where it measures fastest; see :mod:`spart.encoders.backends`.

Quantisation is not offered: int8 dynamic quantisation of MiniLM's linear layers gave a minimum cosine of
about 0.91 to the fp32 embeddings on wiki passages, far below the 0.999 a drop-in backend needs.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from spart.atomic import atomic_path
from spart.encoders.export import (
    CHECK_ATOL,
    PooledTower,
    check_batch,
    fp32_tower,
    open_towers,
    tower_paths,
    weights_stamp,
)
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

EXPORT_FORMAT = "v1"  # bump when the exported graph changes (inputs, pooling in the graph, opset...)


def onnx_root() -> Path:
    """``$SPART_CACHE/onnx`` (``~/.cache/spart/onnx`` without ``$SPART_CACHE``)."""
    from spart.evaluation.cache import cache_root

    return cache_root() / "onnx"


# ---------------------------------------------------------------------------------------- export
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
    tower = fp32_tower(encoder, role, "ONNX")
    wrapper = PooledTower(encoder, role).eval()
    ids, mask = check_batch(encoder.tokenizer, int(tower.config.vocab_size))
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
    return tower_paths((root or onnx_root()) / EXPORT_FORMAT / encoder.fingerprint, encoder, ".onnx")


def load_onnx_towers(encoder: DualEncoder, root: Path | None = None) -> OnnxTowers:
    """ONNX Runtime sessions for ``encoder``'s towers, exporting the ones not yet in the cache.

    :param encoder: an fp32 encoder on the CPU.
    :param root: the export cache (default ``$SPART_CACHE/onnx``).
    :returns: the sessions.
    """
    require_onnxruntime()
    stamp = weights_stamp(encoder)
    paths = tower_files(encoder, root)
    sessions = open_towers(encoder, paths, lambda path: path, export_tower, onnx_session)
    return OnnxTowers(sessions, paths, stamp)
