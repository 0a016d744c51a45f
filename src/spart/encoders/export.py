"""What the runtime backends share: the tower module they export, its check batch, the weights stamp.

The ONNX Runtime and OpenVINO backends (:mod:`spart.encoders.onnx_backend`, :mod:`spart.encoders.openvino_backend`)
export the same :class:`PooledTower` and check it against torch on :func:`check_batch` within :data:`CHECK_ATOL`;
:mod:`spart.encoders.backends` chooses between them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import nn

from spart.encoders.pooling import pool

if TYPE_CHECKING:
    from spart.encoders.dual_encoder import DualEncoder

# An exported tower must reproduce the torch tower this closely on the check batch (fp32 reorderings only).
CHECK_ATOL = 1e-4


def weights_stamp(module: nn.Module) -> tuple:
    """Changes whenever a weight of ``module`` is modified in place or replaced (cheap: no data is read)."""
    return tuple((name, t.data_ptr(), t._version) for name, t in module.state_dict(keep_vars=True).items())


class Towers(Protocol):
    """An exported runtime's towers: ``embed`` returns what ``DualEncoder.embed`` returns, as float32."""

    stamp: tuple

    def embed(self, role: str, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...


class PooledTower(nn.Module):
    """One tower with the encoder's pooling and normalisation: ``(input_ids, attention_mask) -> embeddings``.

    It holds the tower alone, not the encoder: tracing (OpenVINO's frontend) reads every attribute of the
    traced module, and the encoder's ``inference_backend`` property would resolve the backend mid-export.
    """

    def __init__(self, encoder: DualEncoder, role: str) -> None:
        super().__init__()
        self.tower = encoder.tower(role)
        self.pooling = encoder.config.pooling
        self.normalize = encoder.config.normalize
        self.segment_ids = "token_type_ids" in inspect.signature(self.tower.forward).parameters

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.segment_ids:  # zero segment ids, as DualEncoder._encode feeds the torch tower
            inputs["token_type_ids"] = torch.zeros_like(input_ids)
        hidden = self.tower(**inputs).last_hidden_state
        return pool(hidden, attention_mask, self.pooling, self.normalize)


def check_batch(tokenizer: Any, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two padded rows of ordinary tokens (one shorter, so padding is exercised)."""
    generator = torch.Generator().manual_seed(0)
    low = min(1000, vocab // 2)
    ids = torch.randint(low, vocab, (2, 12), generator=generator)
    ids[:, 0] = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else ids[:, 0]
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    ids[1, 7:] = tokenizer.pad_token_id or 0
    return ids, mask


def fp32_tower(encoder: DualEncoder, role: str, runtime: str) -> nn.Module:
    """``encoder``'s ``role`` tower; a ``ValueError`` unless its weights are fp32 (what the exports need)."""
    tower = encoder.tower(role)
    dtypes = {p.dtype for p in tower.parameters()}
    if dtypes != {torch.float32}:
        raise ValueError(f"the {runtime} export needs fp32 weights, the {role} tower has {sorted(map(str, dtypes))}")
    return tower


def tower_paths(folder: Path, encoder: DualEncoder, suffix: str = "") -> dict[str, Path]:
    """``{role: folder / (name + suffix)}`` for the towers of ``encoder``: one ``shared`` entry for both roles when
    the tower is shared, ``query`` and ``passage`` otherwise."""
    if encoder.config.shared:
        shared = folder / f"shared{suffix}"
        return {"query": shared, "passage": shared}
    return {role: folder / f"{role}{suffix}" for role in ("query", "passage")}


def open_towers(
    encoder: DualEncoder,
    locations: dict[str, Path],
    artifact: Callable[[Path], Path],
    export: Callable[[DualEncoder, str, Path], Any],
    open_: Callable[[Path], Any],
) -> dict[str, Any]:
    """``{role: open_(artifact(location))}``, each distinct location opened once (a shared tower is one export),
    exported first with ``export(encoder, role, location)`` where its ``artifact`` file is missing."""
    opened: dict[Path, Any] = {}
    for role, location in locations.items():
        if location not in opened:
            if not artifact(location).is_file():
                export(encoder, role, location)
            opened[location] = open_(artifact(location))
    return {role: opened[location] for role, location in locations.items()}
